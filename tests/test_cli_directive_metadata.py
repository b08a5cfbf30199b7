"""Directive metadata from every entry point (`vsm run|send --meta/--class/--risk/--capability`,
`--directives` files of plain lines, JSON lines or YAML/JSON), word routing in `two_level`
without metadata, route events naming the rule, and bad input: exit 2, a message, no traceback,
nothing written. Runs go through real `vsm` processes; bad input through CliRunner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vsm_actors._posix import kill_session
from vsm_actors.cli import main

GENOMES = Path(__file__).resolve().parent.parent / "genomes"
TWO_LEVEL = str(GENOMES / "two_level.yaml")
REVIEW = "Please review PR 12 (review only, do not write code)"


def vsm(cwd, *args, check=True, timeout=120):
    proc = subprocess.run([sys.executable, "-m", "vsm_actors", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"vsm {' '.join(map(str, args))} exited {proc.returncode}: {proc.stderr}")
    return proc


def run_json(cwd, *args) -> list[dict]:
    return json.loads(vsm(cwd, "run", TWO_LEVEL, "--ledger", "l.sqlite", "-o", "json", *args).stdout)


def leaves(results: list[dict]) -> list[str]:
    return [r["results"][0]["produced_by"] for r in results]


def events(cwd, kind: str, ledger: str = "l.sqlite") -> list[dict]:
    out = CliRunner().invoke(main, ["ledger", "events", "--ledger", str(cwd / ledger), "-o", "jsonl"],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.stderr
    return [e for e in map(json.loads, out.stdout.splitlines()) if e["kind"] == kind]


def route_to(cwd, directive_id: str, ledger: str = "l.sqlite") -> dict:
    """The payload of the route that chose the directive's leaf (the last hop)."""
    (*_, last) = [e for e in events(cwd, "task_routed", ledger) if e["directive_id"] == directive_id]
    return last["payload"]


# -- routing by words, no metadata ----------------------------------------------------------------

def test_two_level_sends_review_and_test_directives_to_their_leaves_without_metadata(tmp_path):
    results = run_json(tmp_path, "--directive", REVIEW, "--directive", "Run the backend test suite",
                       "--directive", "Add a /health endpoint with tests", "--directive", "Update the changelog")
    assert all(r["ok"] for r in results)
    assert leaves(results) == ["backend-reviewer", "backend-tester", "backend-coder", "backend-coder"]
    reasons = [route_to(tmp_path, r["directive_id"])["reason"] for r in results]
    assert reasons == [
        "matched routing rule review-requests-go-to-reviewer (keyword 'review'; code writing was not asked for)",
        "matched routing rule test-runs-go-to-tester (keyword 'test'; code writing was not asked for)",
        "matched routing rule code-changes-go-to-coder (keyword 'add')",
        "first direct leaf child with required capabilities",
    ]
    chosen = [route_to(tmp_path, r["directive_id"]) for r in results]
    assert [(c["routing_rule_id"], c["routing_keyword"]) for c in chosen] == [
        ("review-requests-go-to-reviewer", "review"), ("test-runs-go-to-tester", "test"),
        ("code-changes-go-to-coder", "add"), (None, None)]
    assert "write_code" in chosen[3]["routing_capabilities"]  # no rule: the capabilities chose
    # the reviewer was asked to review, not to write code: its trace says it succeeded
    traces = {e["payload"]["assigned_node_id"]: e for e in events(tmp_path, "trace_written")}
    assert set(traces) == {"backend-reviewer", "backend-tester", "backend-coder"}


def test_multiproc_base_routes_a_yaml_list_of_directives_by_words_and_metadata(tmp_path):
    (tmp_path / "work.yaml").write_text(
        f"# a review, a test run, and one steered by metadata alone\n"
        f"- {REVIEW}\n"
        "- title: Nightly\n"
        "  body: Run the backend test suite on main\n"
        "- title: Look over the change\n"
        "  metadata: {required_capability: review}\n", encoding="utf-8")
    results = run_json(tmp_path, "--directives", "work.yaml", "--base", "multiproc")
    assert leaves(results) == ["backend-reviewer", "backend-tester", "backend-reviewer"]
    assert route_to(tmp_path, results[2]["directive_id"])["reason"] == "matched routing rule reviews-go-to-reviewer"


# -- options become metadata ------------------------------------------------------------------------

def test_run_options_become_directive_metadata_and_risk(tmp_path):
    results = run_json(tmp_path, "--directive", "Look over the change", "--meta", "team=backend", "--meta",
                       "ticket=OPS-7", "--class", "docs", "--risk", "HIGH", "--capability", "review")
    assert leaves(results) == ["backend-reviewer"]
    (accepted,) = events(tmp_path, "directive_accepted")
    assert accepted["payload"]["metadata"] == {"team": "backend", "ticket": "OPS-7", "task_class": "docs",
                                               "risk": "high", "required_capability": "review"}
    assert accepted["payload"]["risk"] == "High"
    (mapped,) = events(tmp_path, "task_mapped")
    assert mapped["payload"]["risk"] == "High"
    meta = mapped["payload"]["metadata"]
    assert (meta["task_class"], meta["required_capability"], meta["requires_code_write"]) == ("docs", "review",
                                                                                              "false")
    assert meta["requires_parent_review"] == "true"  # what the mapper does with an elevated risk


def test_capability_routes_to_a_leaf_holding_it_and_the_route_names_it(tmp_path):
    (result,) = run_json(tmp_path, "--directive", "Look at the failing pipeline", "--capability", "run_tests",
                         "--meta", "requires_code_write=false")
    # the coder runs tests too and comes first; the route event says which capability chose it
    assert leaves([result]) == ["backend-coder"]
    assert route_to(tmp_path, result["directive_id"])["reason"] == \
        "first direct leaf child with required capabilities: run_tests"


def test_a_stated_code_write_keeps_a_review_word_away_from_the_reviewer(tmp_path):
    (result,) = run_json(tmp_path, "--directive", "Review and repair PR 12", "--meta", "requires_code_write=true")
    assert leaves([result]) == ["backend-coder"]


# -- directives files ----------------------------------------------------------------------------

def test_json_lines_entries_carry_their_own_metadata_over_the_options(tmp_path):
    lines = [
        {"title": "Review PR 3", "body": "Check the migration in PR 3"},
        {"title": "Document the API", "metadata": {"task_class": "api", "target_child": "backend-tester",
                                                   "estimated_files_touched": 2, "requires_code_write": False}},
        "Fix the login bug",
    ]
    path = tmp_path / "work.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n# done\n", encoding="utf-8")
    results = run_json(tmp_path, "--directives", str(path), "--class", "backend", "--risk", "low")
    assert leaves(results) == ["backend-reviewer", "backend-tester", "backend-coder"]
    accepted = {e["directive_id"]: e["payload"] for e in events(tmp_path, "directive_accepted")}
    first, second, third = (accepted[r["directive_id"]] for r in results)
    assert (first["title"], first["body"]) == ("Review PR 3", "Check the migration in PR 3")
    assert first["metadata"] == {"task_class": "backend", "risk": "low"} and first["risk"] == "Low"
    assert second["metadata"] == {"task_class": "api", "risk": "low", "target_child": "backend-tester",
                                  "estimated_files_touched": "2", "requires_code_write": "false"}
    assert second["body"] == "Document the API"  # a title alone is the body too
    assert third["title"] == "Fix the login bug"


def test_plain_lines_and_a_json_document(tmp_path):
    (tmp_path / "work.txt").write_text(f"# one per line\n\n{REVIEW}\nRun the tests\n", encoding="utf-8")
    assert leaves(run_json(tmp_path, "--directives", "work.txt")) == ["backend-reviewer", "backend-tester"]
    doc = {"directives": [{"title": "Add a readiness probe", "metadata": {"risk": "critical"}}, "Test it"]}
    (tmp_path / "work.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    results = run_json(tmp_path, "--directives", "work.json", "--ledger", "other.sqlite")
    assert leaves(results) == ["backend-coder", "backend-tester"]
    accepted = events(tmp_path, "directive_accepted", "other.sqlite")
    assert [e["payload"]["risk"] for e in accepted] == ["Critical", "Medium"]


# -- vsm send ---------------------------------------------------------------------------------------

@pytest.fixture
def live_dir(tmp_path):
    yield tmp_path
    state = tmp_path / ".vsm" / "organization.json"
    if state.exists():
        sessions = json.loads(state.read_text()).get("sessions", [])
        if vsm(tmp_path, "down", check=False).returncode != 0:
            for session in sessions:  # only the organization this test started
                kill_session(session)


def test_send_carries_options_and_files_like_run(live_dir):
    vsm(live_dir, "up", TWO_LEVEL, "--ledger", "l.sqlite")
    sent = json.loads(vsm(live_dir, "send", REVIEW, "Run the tests", "--meta", "ticket=OPS-9", "--risk", "low",
                          "-o", "json").stdout)
    assert leaves(sent) == ["backend-reviewer", "backend-tester"]
    (live_dir / "more.jsonl").write_text(json.dumps({"title": "Look over it",
                                                     "metadata": {"required_capability": "review"}}) + "\n")
    more = json.loads(vsm(live_dir, "send", "--directives", "more.jsonl", "-o", "json").stdout)
    assert leaves(more) == ["backend-reviewer"]
    bad = vsm(live_dir, "send", "x", "--risk", "extreme", check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    vsm(live_dir, "down")
    accepted = {e["directive_id"]: e["payload"] for e in events(live_dir, "directive_accepted")}
    assert accepted[sent[0]["directive_id"]]["metadata"] == {"ticket": "OPS-9", "risk": "low"}
    assert accepted[sent[0]["directive_id"]]["risk"] == "Low"
    assert accepted[more[0]["directive_id"]]["metadata"] == {"required_capability": "review"}


# -- bad input ---------------------------------------------------------------------------------------

BAD_FILES = {
    "meta.jsonl": ('{"title": "a"}\n\n{"title": "b", "metadata": [1]}\n', "meta.jsonl:3: metadata must be a mapping"),
    "json.jsonl": ('{"title": "a",}\n', "json.jsonl:1: invalid JSON"),
    "dup.jsonl": ('{"title": "a", "title": "b"}\n', "dup.jsonl:1: invalid JSON: the key 'title' is repeated"),
    "nan.jsonl": ('{"title": "a", "metadata": {"x": NaN}}\n', "nan.jsonl:1: invalid JSON: NaN"),
    "risk.jsonl": ('{"title": "a", "metadata": {"risk": "extreme"}}\n',
                   "risk.jsonl:1: metadata.risk must be one of low, medium, high, critical, not 'extreme'"),
    "field.jsonl": ('{"title": "a", "priority": 1}\n', "field.jsonl:1: unknown field 'priority'"),
    "title.jsonl": ('{"title": 12}\n', "title.jsonl:1: title must be a string, not a number"),
    "empty.jsonl": ('{"title": " ", "body": ""}\n', "empty.jsonl:1: a directive needs a title or a body"),
    "kind.jsonl": ('{"title": "a"}\n[1, 2]\n', "kind.jsonl:2: a directive is a string or a mapping"),
    "nested.yaml": ("- ok\n- title: b\n  metadata:\n    tags: [a, b]\n",
                    "nested.yaml:4: metadata.tags must be a string, number or boolean, not a list"),
    "syntax.yaml": ("- ok\n- title: [unclosed\n", "syntax.yaml:"),
    "top.yaml": ("work: []\n", "top.yaml:1: unknown field 'work'"),
    "list.yaml": ("directives: {a: 1}\n", "list.yaml:1: directives must be a list, not a mapping"),
    "dupkey.yaml": ("- title: a\n  title: b\n", "dupkey.yaml:2:"),
    "tagged.yaml": ("- !!python/object:os.system {}\n", "tagged.yaml:1:"),
    "none.yaml": ("directives: []\n", "none.yaml: holds no directives"),
    "none.txt": ("# nothing\n\n", "none.txt: holds no directives"),
    "field.json": ('[{"title": "a", "colour": "red"}]', "field.json:1: unknown field 'colour'"),
}
BAD_BYTES = {
    "latin1.txt": ("Caf\xe9 au lait\n".encode("latin-1"), "latin1.txt:1: not UTF-8 text (byte 0xe9)"),
    "binary.txt": (b"ok\n\x00\x01\x02\xff", "binary.txt:2:"),
    "utf16.txt": ("hello\n".encode("utf-16"), "utf16.txt: the file is UTF-16 or UTF-32 encoded"),
}
BAD_OPTIONS = [
    (["--directive", "x", "--meta", "novalue"], "--meta expects KEY=VALUE, got 'novalue'"),
    (["--directive", "x", "--meta", "=v"], "--meta expects KEY=VALUE"),
    (["--directive", "x", "--meta", "a=1", "--meta", "a=2"], "--meta a is given twice"),
    (["--directive", "x", "--meta", "risk=extreme"], "--meta risk must be one of low, medium, high, critical"),
    (["--directive", "x", "--risk", "extreme"], "Invalid value for '--risk'"),
    (["--directive", "x", "--capability", "reveiw"], "Invalid value for '--capability'"),
    (["--directive", "x", "--class", "a", "--meta", "task_class=b"], "--class a conflicts with --meta task_class=b"),
    (["--directive", "x", "--class", " "], "--class must not be empty"),
    (["--directive", ""], "--directive 1: the directive is empty"),
    (["--directive", "ok", "--directive", "   "], "--directive 2: the directive is empty"),
    (["--directives", "missing.txt"], "missing.txt: cannot read"),
    ([], "give at least one directive"),
]


def invoke(cwd: Path, *args: str):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)


def assert_bad_input(result, message: str, cwd: Path) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert message in result.stderr, result.stderr
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert not (cwd / "l.sqlite").exists(), "bad input must not write a ledger"


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_directives_file_is_exit_2_with_file_and_line(tmp_path, name):
    text, message = BAD_FILES[name]
    (tmp_path / name).write_text(text, encoding="utf-8")
    assert_bad_input(invoke(tmp_path, "run", TWO_LEVEL, "--ledger", "l.sqlite", "--directives", name), message,
                     tmp_path)


@pytest.mark.parametrize("name", sorted(BAD_BYTES))
def test_undecodable_directives_file_is_exit_2(tmp_path, name):
    raw, message = BAD_BYTES[name]
    (tmp_path / name).write_bytes(raw)
    assert_bad_input(invoke(tmp_path, "run", TWO_LEVEL, "--ledger", "l.sqlite", "--directives", name), message,
                     tmp_path)


@pytest.mark.parametrize("args, message", BAD_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_directive_options_are_exit_2(tmp_path, args, message):
    assert_bad_input(invoke(tmp_path, "run", TWO_LEVEL, "--ledger", "l.sqlite", *args), message, tmp_path)


def test_send_checks_its_input_before_looking_for_an_organization(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"metadata": "x", "title": "a"}\n', encoding="utf-8")
    result = invoke(tmp_path, "send", "--directives", "bad.jsonl", "--state-dir", str(tmp_path / ".vsm"))
    assert_bad_input(result, "bad.jsonl:1: metadata must be a mapping, not a string", tmp_path)
    assert_bad_input(invoke(tmp_path, "send", "--state-dir", str(tmp_path / ".vsm")),
                     "give at least one directive: TEXT or --directives FILE", tmp_path)


@pytest.mark.parametrize("args, message", [
    (["--directive", b"caf\xe9"], "--directive 1: the text is not valid UTF-8"),
    (["--directive", "ok", "--meta", b"ticket=caf\xe9"], "--meta 'ticket': not valid UTF-8"),
    (["--directive", "ok", "--class", b"\xff"], "--class: not valid UTF-8"),
])
def test_non_utf8_text_on_the_command_line_is_exit_2(tmp_path, args, message):
    argv = [os.fsdecode(a) if isinstance(a, bytes) else a for a in args]
    proc = subprocess.run([sys.executable, "-m", "vsm_actors", "run", TWO_LEVEL, "--ledger", "l.sqlite", *argv],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "l.sqlite").exists()
