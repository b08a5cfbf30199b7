"""`vsm ledger ...` over a ledger written by a real in-process organization run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.cli import main
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization

GENOMES = Path(__file__).resolve().parent.parent / "genomes"

EVENT_KEYS = {"id", "kind", "kind_storage_key", "created_at", "node_id", "task_id", "directive_id", "genome_id",
              "correlation_id", "suggestion_id", "payload", "metadata"}
DIRECTIVES = ("Add a health endpoint", "Document the health endpoint")


@pytest.fixture(scope="module")
def run_ledger(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ledger") / "l.sqlite"
    genome = load_genome(GENOMES / "two_level.yaml")
    with Organization.start(genome, RuntimeConfig(ledger_url=str(path)), base="simple") as org:
        for text in DIRECTIVES:
            org.run(text)
    return path


def vsm(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def jsonl(result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def stored_events(path):
    with open_ledger(str(path)) as ledger:
        return ledger.events()


def test_events_jsonl_keys_and_kinds(run_ledger):
    rows = jsonl(vsm("ledger", "events", "--ledger", str(run_ledger), "-o", "jsonl"))
    assert len(rows) == len(stored_events(run_ledger))
    assert all(EVENT_KEYS <= row.keys() for row in rows)
    kinds = {row["kind"] for row in rows}
    assert {"directive_accepted", "task_mapped", "task_routed", "trace_written", "task_result_received"} <= kinds
    # an open-ended kind prints its bare name, the stored key keeps the prefix
    started = [r for r in rows if r["kind"] == "organization_started"]
    assert started and started[0]["kind_storage_key"] == "other:organization_started"
    named = next(r for r in rows if r["kind"] == "task_routed")
    assert named["kind_storage_key"] == "task_routed"
    assert named["created_at"].endswith("Z") and isinstance(named["payload"], dict)
    assert named["payload"]["child_node_id"] in {"backend-team", "backend-coder"}


def test_events_filters(run_ledger):
    L = ("--ledger", str(run_ledger))
    routed = jsonl(vsm("ledger", "events", *L, "--kind", "task_routed", "-o", "jsonl"))
    assert len(routed) == 2 * len(DIRECTIVES) and {r["kind"] for r in routed} == {"task_routed"}
    # PascalCase and repeated kinds
    both = jsonl(vsm("ledger", "events", *L, "--kind", "TaskRouted", "--kind", "trace_written", "-o", "jsonl"))
    assert {r["kind"] for r in both} == {"task_routed", "trace_written"} and len(both) == 3 * len(DIRECTIVES)
    team = jsonl(vsm("ledger", "events", *L, "--kind", "task_routed", "--node", "backend-team", "-o", "jsonl"))
    assert [r["payload"]["child_node_id"] for r in team] == ["backend-coder"] * len(DIRECTIVES)
    directive = routed[0]["directive_id"]
    one = jsonl(vsm("ledger", "events", *L, "--directive", directive, "-o", "jsonl"))
    assert one and {r["directive_id"] for r in one} == {directive}
    task = routed[0]["task_id"]
    assert {r["task_id"] for r in jsonl(vsm("ledger", "events", *L, "--task", task, "-o", "jsonl"))} == {task}
    corr = routed[0]["correlation_id"]
    assert {r["correlation_id"] for r in jsonl(vsm("ledger", "events", *L, "--correlation", corr, "-o", "jsonl"))} \
        == {corr}
    newest = jsonl(vsm("ledger", "events", *L, "--limit", "2", "-o", "jsonl"))
    assert [r["id"] for r in newest] == [e.id for e in stored_events(run_ledger)[-2:]]
    assert jsonl(vsm("ledger", "events", *L, "--kind", "organization_started", "-o", "jsonl"))[0]["node_id"] == "root"
    as_json = vsm("ledger", "events", *L, "--kind", "task_routed", "-o", "json")
    assert json.loads(as_json.stdout) == routed


def test_events_text_one_line_per_event(run_ledger):
    result = vsm("ledger", "events", "--ledger", str(run_ledger), "--kind", "task_routed")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and len(lines) == 2 * len(DIRECTIVES)
    assert all("task_routed" in line for line in lines)
    assert len({line.index("task_routed") for line in lines}) == 1  # aligned


def test_tree_nested_path_with_rolled_up_tokens(run_ledger):
    with open_ledger(str(run_ledger)) as ledger:
        traces = ledger.recent_task_traces()
    assert len(traces) == len(DIRECTIVES)
    result = vsm("ledger", "tree", "--ledger", str(run_ledger))
    assert result.exit_code == 0, result.stderr
    blocks = result.stdout.strip().split("\n\n")
    assert len(blocks) == len(DIRECTIVES)
    for block, text, trace in zip(blocks, DIRECTIVES, traces):
        tokens = trace.input_tokens + trace.output_tokens
        lines = block.splitlines()
        assert lines[0].startswith("directive ") and f'"{text}"  completed  tokens {tokens}  ' in lines[0]
        assert lines[1].startswith(f"└── root  [tokens {tokens}, ")
        assert lines[2].startswith(f"    └── backend-team  Completed  [tokens {tokens}, ")
        assert lines[3].startswith(f"        └── backend-coder  Completed  [tokens {tokens}, ")

    data = json.loads(vsm("ledger", "tree", "--ledger", str(run_ledger), "--limit", "1", "-o", "json").stdout)
    [tree] = data
    assert tree["title"] == DIRECTIVES[-1] and tree["status"] == "completed"
    team = tree["root"]["children"][0]
    coder = team["children"][0]
    assert (tree["root"]["node_id"], team["node_id"], coder["node_id"]) == ("root", "backend-team", "backend-coder")
    last = traces[-1]
    for node in (tree["root"], team, coder):
        assert node["total"]["input_tokens"] == last.input_tokens
        assert node["total"]["output_tokens"] == last.output_tokens
    assert team["usage"]["tokens"] == 0 and coder["usage"]["traces"] == 1

    only = json.loads(vsm("ledger", "tree", "--ledger", str(run_ledger), "--directive", tree["directive_id"],
                          "-o", "json").stdout)
    assert only == data
    missing = vsm("ledger", "tree", "--ledger", str(run_ledger), "--directive", "nope")
    assert missing.exit_code == 2 and "nope" in missing.stderr


def test_export_every_event(run_ledger, tmp_path, monkeypatch):
    count = len(stored_events(run_ledger))
    rows = jsonl(vsm("ledger", "export", "--ledger", str(run_ledger)))
    assert len(rows) == count and all(EVENT_KEYS <= r.keys() for r in rows)
    assert len({r["id"] for r in rows}) == count
    # paging: a page smaller than the ledger still yields every event once, in order
    from vsm_actors.commands import ledger as ledger_cmd
    monkeypatch.setattr(ledger_cmd, "PAGE_SIZE", 3)
    out = tmp_path / "events.jsonl"
    result = vsm("ledger", "export", "--ledger", str(run_ledger), "--out", str(out))
    assert result.exit_code == 0 and f"{count} events" in result.stderr
    paged = [json.loads(line) for line in out.read_text().splitlines()]
    assert paged == rows


def test_traces_and_genomes(run_ledger):
    traces = jsonl(vsm("ledger", "traces", "--ledger", str(run_ledger), "-o", "jsonl"))
    assert len(traces) == len(DIRECTIVES)
    assert all(t["assigned_node_id"] == "backend-coder" and t["tokens"] == t["input_tokens"] + t["output_tokens"]
               and t["status"] == "Completed" for t in traces)
    team = jsonl(vsm("ledger", "traces", "--ledger", str(run_ledger), "--node", "backend-team", "-o", "jsonl"))
    assert len(team) == len(DIRECTIVES)
    assert jsonl(vsm("ledger", "traces", "--ledger", str(run_ledger), "--node", "backend-tester", "-o", "jsonl")) == []
    text = vsm("ledger", "traces", "--ledger", str(run_ledger)).stdout
    assert text.count("backend-coder") == 2 and " ms " in text

    genomes = json.loads(vsm("ledger", "genomes", "--ledger", str(run_ledger), "-o", "json").stdout)
    # the controller key the runtime uses for its pointer is its business; the snapshot lists it
    [controller] = genomes["champions"]
    assert genomes["champions"][controller] == "two-level"
    [snap] = genomes["snapshots"]
    assert snap["genome_id"] == "two-level" and snap["role"] == "champion" and snap["champion_of"] == [controller]
    assert f"champion of {controller}" in vsm("ledger", "genomes", "--ledger", str(run_ledger)).stdout
    assert vsm("ledger", "trials", "--ledger", str(run_ledger), "-o", "json").stdout.strip() == "[]"


def test_missing_ledger_is_bad_input_and_not_created(tmp_path, monkeypatch):
    missing = tmp_path / "absent.sqlite"
    for cmd in ("events", "traces", "trials", "genomes", "tree", "export"):
        result = vsm("ledger", cmd, "--ledger", str(missing))
        assert result.exit_code == 2, cmd
        assert str(missing) in result.stderr
    result = vsm("ledger", "events", "--ledger", f"sqlite:///{missing}")
    assert result.exit_code == 2 and str(missing) in result.stderr
    # the default: $VSM_LEDGER, else ./vsm-ledger.sqlite in the working directory
    monkeypatch.chdir(tmp_path)
    result = vsm("ledger", "events", env={"VSM_LEDGER": ""})
    assert result.exit_code == 2 and "vsm-ledger.sqlite" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_default_ledger_from_environment(run_ledger):
    rows = jsonl(vsm("ledger", "events", "--kind", "directive_accepted", "-o", "jsonl",
                     env={"VSM_LEDGER": str(run_ledger)}))
    assert [r["payload"]["title"] for r in rows] == list(DIRECTIVES)


def test_real_subprocess(run_ledger, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vsm_actors", "ledger", "events", "--ledger", str(run_ledger),
                           "-o", "jsonl"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(stored_events(run_ledger)) and all(EVENT_KEYS <= r.keys() for r in rows)
    proc = subprocess.run([sys.executable, "-m", "vsm_actors", "ledger", "tree", "--ledger", str(tmp_path / "x.db")],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "x.db" in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("url", ["postgresql://bob:hunter2@127.0.0.1:1/nowhere",
                                 "postgresql://bob:hunter2@127.0.0.1:1/nowhere?schema=bad-name!"])
def test_a_ledger_url_password_never_reaches_the_error(url) -> None:
    result = CliRunner().invoke(main, ["ledger", "events", "--ledger", url])
    assert result.exit_code == 2
    assert "hunter2" not in result.output and "bob" in result.output


def test_the_tree_reads_many_directives_at_once_as_it_reads_each(tmp_path):
    """`vsm ledger tree` reads the newest directives in one window; what each gets is exactly
    what reading it alone gives, splits, failures and interleaved directives included."""
    from vsm_actors.actors.protocol import ProviderSpec
    from vsm_actors.commands.ledger_tree import directive_events, directives_events
    from vsm_actors.core.model.events import EventFilter, LedgerEventKind
    from vsm_actors.system import make_directive

    path = tmp_path / "l.sqlite"
    script = {"rules": [{"match": {"task_title": "broken"}, "outcome": "failed", "error": "it broke"}]}
    config = RuntimeConfig(ledger_url=str(path), provider=ProviderSpec(name="scripted", options={"script": script}))
    with Organization.start(load_genome(GENOMES / "three_level.yaml"), config, base="simple") as org:
        org.run("before the window")
        org.run_many([make_directive(text) for _ in range(3) for text in (
            "Add an endpoint and write its tests and docs", "a broken change", "Please review PR 12")])
    with open_ledger(str(path)) as ledger:
        accepted = ledger.events(EventFilter(kinds=(LedgerEventKind.DirectiveAccepted,), limit=9))
        many = directives_events(ledger, accepted)
        assert len(many) == 9
        for event in accepted:
            assert many[event.directive_id] == directive_events(ledger, event.directive_id)


def test_a_kind_the_runtime_writes_is_a_valid_filter_before_it_happened(run_ledger):
    none_yet = CliRunner().invoke(main, ["ledger", "events", "--ledger", str(run_ledger), "--kind", "directive_failed"])
    assert none_yet.exit_code == 0 and "no events match" in none_yet.output
    made_up = CliRunner().invoke(main, ["ledger", "events", "--ledger", str(run_ledger), "--kind", "directive_exploded"])
    assert made_up.exit_code == 2 and "unknown event kind" in made_up.output
