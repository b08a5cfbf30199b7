"""`vsm ledger` text views and filters over ledgers written by a real organization run, on SQLite
and PostgreSQL: short ids that are unique and work as filters, status and outcome on event lines,
error text of failed tasks, unknown kinds, stats, the timeline and costs."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vsm_actors.commands import ledger_id_order, ledger_ids
from vsm_actors.ledger import open_ledger

from .conftest import BUILD_ERROR, DIRECTIVES, vsm

EVENT_IDS = re.compile(r"  task (\S+)\s+directive (\S+)\s+event (\S+)\s+(\S+)")
UNROUTABLE = "no routeable child found"


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def jsonl(result) -> list[dict]:
    return [json.loads(line) for line in ok(result).splitlines()]


def printed_ids(url: str) -> list[tuple[str, str, str]]:
    """(kind of id, fragment printed, the full id it was printed for) from every text view."""
    L = ("--ledger", url)
    out = []
    rows = jsonl(vsm("ledger", "events", *L, "-o", "jsonl"))
    lines = ok(vsm("ledger", "events", *L)).splitlines()
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows):
        task, directive, event, _status = EVENT_IDS.search(line).groups()
        for what, piece in (("task", task), ("directive", directive), ("event", event)):
            full = row["id"] if what == "event" else row[f"{what}_id"]
            if full is not None:
                out.append((what, piece, full))
    traces = jsonl(vsm("ledger", "traces", *L, "-o", "jsonl"))
    trace_lines = [ln for ln in ok(vsm("ledger", "traces", *L)).splitlines() if not ln.startswith("    ")]
    for line, t in zip(trace_lines, traces, strict=True):
        out.append(("task", re.search(r"  task (\S+)", line).group(1), t["task_id"]))
        out.append(("trace", re.search(r"  trace (\S+)$", line).group(1), t["id"]))
    trees = json.loads(ok(vsm("ledger", "tree", *L, "--limit", "0", "-o", "json")))
    headers = [ln for ln in ok(vsm("ledger", "tree", *L, "--limit", "0")).splitlines() if ln.startswith("directive ")]
    for line, tree in zip(headers, trees, strict=True):
        out.append(("directive", line.split()[1], tree["directive_id"]))
    return out


@pytest.fixture(scope="module")
def printed(run_ledger) -> list[tuple[str, str, str]]:
    return printed_ids(run_ledger)


def test_event_lines_show_status_outcome_and_unique_short_ids(run_ledger, printed):
    lines = ok(vsm("ledger", "events", "--ledger", run_ledger)).splitlines()
    statuses = {EVENT_IDS.search(line).group(4) for line in lines}
    assert {"accepted", "mapped", "routed", "Completed", "Failed"} <= statuses
    failed = [ln for ln in lines if "task_result_received" in ln and " Failed " in ln]
    assert any(BUILD_ERROR in ln and "by backend-coder" in ln for ln in failed)
    assert any(UNROUTABLE in ln for ln in lines if "task_routing_failed" in ln)
    assert any("tokens 500+250=750  cost 0.001500  800 ms" in ln for ln in lines if "trace_written" in ln)
    # within each column a fragment stands for one id and an id for one fragment, much shorter
    # than the 36 characters (ids of a run share their first 8 characters, an actor's their last 12)
    for what in ("task", "directive", "event"):
        pairs = {(p, f) for w, p, f in printed if w == what}
        assert len({p for p, _ in pairs}) == len({f for _, f in pairs}) == len(pairs)
        assert all(len(p) <= 10 and p in f for p, f in pairs)
    assert len({f for w, _p, f in printed if w == "directive"}) == len(DIRECTIVES)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_printed_id_resolves_to_exactly_one_record(run_ledger, printed, data):
    what, piece, full = data.draw(st.sampled_from(printed))
    with open_ledger(run_ledger, read_only=True) as ledger:
        assert ledger_ids.resolve(ledger, what, piece, run_ledger) == full
        if what == "event":
            assert ledger.get_event(full) is not None
        elif what == "trace":
            assert ledger.get_trace(full) is not None


def test_ids_printed_over_narrow_near_windows_resolve_to_exactly_their_record(run_ledger, monkeypatch):
    """The same views with near windows of a few events and a tiny sample: each id column is then
    shortened over little more than the ids shown, and the recency rule alone keeps every printed
    id naming its record (`commands/ledger_ids.py`)."""
    monkeypatch.setattr(ledger_id_order, "NEAR_EVENTS", 3)
    monkeypatch.setattr(ledger_id_order, "NEAR_TRACES", 1)
    monkeypatch.setattr(ledger_id_order, "SAMPLE", 2)
    printed = printed_ids(run_ledger)
    with open_ledger(run_ledger, read_only=True) as ledger:
        for what, piece, full in sorted(set(printed)):
            assert ledger_ids.resolve(ledger, what, piece, run_ledger) == full, (what, piece)


@pytest.mark.parametrize("what", ["task", "directive", "event"])
def test_printed_ids_work_as_filters(run_ledger, printed, what):
    every = jsonl(vsm("ledger", "events", "--ledger", run_ledger, "-o", "jsonl"))
    key = "id" if what == "event" else f"{what}_id"
    for piece, full in sorted({(p, f) for w, p, f in printed if w == what})[:6]:
        rows = jsonl(vsm("ledger", "events", "--ledger", run_ledger, f"--{what}", piece, "-o", "jsonl"))
        assert rows == [r for r in every if r[key] == full] and rows


def test_trace_and_node_filters_take_printed_ids(run_ledger, printed):
    traces = jsonl(vsm("ledger", "traces", "--ledger", run_ledger, "-o", "jsonl"))
    for piece, full in {(p, f) for w, p, f in printed if w == "trace"}:
        assert [t["id"] for t in jsonl(vsm("ledger", "traces", "--ledger", run_ledger, "--trace", piece,
                                           "-o", "jsonl"))] == [full]
    failed = next(t for t in traces if t["status"] == "Failed")
    piece = next(p for w, p, f in printed if w == "task" and f == failed["task_id"])
    assert [t["id"] for t in jsonl(vsm("ledger", "traces", "--ledger", run_ledger, "--task", piece,
                                       "-o", "jsonl"))] == [failed["id"]]
    # a node by any unique part of its name
    coder = jsonl(vsm("ledger", "events", "--ledger", run_ledger, "--node", "coder", "-o", "jsonl"))
    assert coder and {r["node_id"] for r in coder} == {"backend-coder"}


def test_ambiguous_missing_and_empty_filters(run_ledger):
    directives = [r["directive_id"] for r in jsonl(vsm("ledger", "events", "--ledger", run_ledger, "--kind",
                                                       "directive_accepted", "-o", "jsonl"))]
    shared = directives[0][-12:]  # one factory made them all: its random tail is theirs
    result = vsm("ledger", "events", "--ledger", run_ledger, "--directive", shared)
    assert result.exit_code == 2 and f"matches {len(DIRECTIVES)} directives" in result.stderr
    assert all(d in result.stderr for d in directives) and result.stdout == ""
    result = vsm("ledger", "events", "--ledger", run_ledger, "--task", "zz-not-there")
    assert result.exit_code == 2 and "no task in" in result.stderr and "'zz-not-there'" in result.stderr
    result = vsm("ledger", "tree", "--ledger", run_ledger, "--directive", "zz-not-there")
    assert result.exit_code == 2 and "zz-not-there" in result.stderr
    # each filter names something, but no event has both
    result = vsm("ledger", "events", "--ledger", run_ledger, "--node", "backend-reviewer", "--kind", "task_mapped")
    assert result.exit_code == 0 and result.stdout == "" and "no events match" in result.stderr


def test_unknown_kind_lists_the_valid_ones(run_ledger):
    for command in ("events", "tail"):
        result = vsm("ledger", command, "--ledger", run_ledger, "--kind", "task_routd")
        assert result.exit_code == 2, command
        assert "unknown event kind" in result.stderr and "task_routed" in result.stderr
        assert "trial_promoted" in result.stderr and "organization_started" in result.stderr
    # a recorded open kind is valid, by its bare name
    rows = jsonl(vsm("ledger", "events", "--ledger", run_ledger, "--kind", "task_routing_failed", "-o", "jsonl"))
    assert len(rows) == 1 and UNROUTABLE in rows[0]["payload"]["error"]


def test_tree_shows_error_text_and_cost(run_ledger):
    text = ok(vsm("ledger", "tree", "--ledger", run_ledger, "--limit", "0"))
    blocks = {b.splitlines()[0].split('"')[1]: b for b in text.strip().split("\n\n")}
    broken = blocks["Break the build"].splitlines()
    coder = next(i for i, ln in enumerate(broken) if "backend-coder  Failed" in ln)
    assert "error (task " in broken[coder + 1] and BUILD_ERROR in broken[coder + 1]
    assert sum(BUILD_ERROR in ln for ln in broken) == 1  # shown where it was produced, not at every level
    assert UNROUTABLE in blocks["Deploy the release"]
    assert "cost 0.001500" in blocks["Add a health endpoint"].splitlines()[0]
    data = json.loads(ok(vsm("ledger", "tree", "--ledger", run_ledger, "--limit", "0", "-o", "json")))
    by_title = {t["title"]: t for t in data}
    [failure] = by_title["Break the build"]["failures"]
    assert failure["node_id"] == "backend-coder" and BUILD_ERROR in failure["error"]
    review = by_title["Review PR 12"]
    assert review["cost"] == pytest.approx(0.0007) and review["root"]["total_cost"] == pytest.approx(0.0007)


def test_traces_show_error_text_and_cost(run_ledger):
    lines = ok(vsm("ledger", "traces", "--ledger", run_ledger)).splitlines()
    failed = next(i for i, ln in enumerate(lines) if " Failed " in ln)
    assert lines[failed + 1].startswith("    error: ") and BUILD_ERROR in lines[failed + 1]
    assert sum(ln.startswith("    error: ") for ln in lines) == 1
    traces = jsonl(vsm("ledger", "traces", "--ledger", run_ledger, "-o", "jsonl"))
    assert [BUILD_ERROR in (t["error"] or "") for t in traces] == [t["status"] == "Failed" for t in traces]
    reviewer = next(t for t in traces if t["assigned_node_id"] == "backend-reviewer")
    assert reviewer["cost"] == pytest.approx((300 * 0.001 + 100 * 0.004) / 1000)


def test_stats_per_node_class_and_genome(run_ledger):
    traces = jsonl(vsm("ledger", "traces", "--ledger", run_ledger, "--limit", "0", "-o", "jsonl"))
    data = json.loads(ok(vsm("ledger", "stats", "--ledger", run_ledger, "-o", "json")))
    rows = {r["node"]: r for r in data["rows"]}
    assert list(rows) == ["root", "backend-team", "backend-coder", "backend-reviewer"]
    coder = [t for t in traces if t["assigned_node_id"] == "backend-coder"]
    assert rows["backend-coder"]["tasks"] == len(coder) == 3 and rows["backend-coder"]["failures"] == 1
    assert rows["backend-coder"]["tokens"] == sum(t["tokens"] for t in coder)
    assert rows["backend-coder"]["p50_latency_ms"] == 800 and rows["backend-coder"]["p95_latency_ms"] == 800
    assert rows["root"]["tasks"] == data["total"]["tasks"] == len(traces)
    assert data["total"]["cost"] == pytest.approx(sum(t["cost"] for t in traces))
    text = ok(vsm("ledger", "stats", "--ledger", run_ledger)).splitlines()
    assert text[0].split() == ["node", "scope", "tasks", "failed", "fail%", "tokens", "cost", "p50", "ms", "p95", "ms"]
    assert text[-1].split()[:4] == ["total", "all", str(len(traces)), "1"]
    classes = {r["task_class"]: r["tasks"] for r in json.loads(ok(vsm(
        "ledger", "stats", "--ledger", run_ledger, "--by", "class", "-o", "json")))["rows"]}
    assert classes == {"feature": 2, "review": 1, "(none)": 1}
    genomes = jsonl(vsm("ledger", "stats", "--ledger", run_ledger, "--by", "genome", "-o", "jsonl"))
    assert [r["genome"] for r in genomes] == ["two-level", "total"]
    only = json.loads(ok(vsm("ledger", "stats", "--ledger", run_ledger, "--node", "reviewer", "-o", "json")))
    assert [r["node"] for r in only["rows"]] == ["backend-reviewer"] and only["total"]["tasks"] == 1


def test_timeline_is_a_gantt_of_each_task_per_node(run_ledger, printed):
    trees = json.loads(ok(vsm("ledger", "tree", "--ledger", run_ledger, "--limit", "0", "-o", "json")))
    broken = next(t["directive_id"] for t in trees if t["title"] == "Break the build")
    piece = next(p for w, p, f in printed if w == "directive" and f == broken)
    lines = ok(vsm("ledger", "timeline", piece, "--ledger", run_ledger, "--width", "40")).splitlines()
    assert lines[0].startswith(f'directive {piece} "Break the build"  span ')
    rows = [ln for ln in lines if "|" in ln][1:]  # after the time axis
    assert [r.split()[0] for r in rows] == ["root", "backend-team", "backend-coder"]
    bars = [r[r.index("|") + 1:r.rindex("|")] for r in rows]
    assert all(len(b) == 40 and "x" in b for b in bars)  # every interval failed
    assert any(BUILD_ERROR in ln and "error:" in ln for ln in lines)
    data = json.loads(ok(vsm("ledger", "timeline", broken, "--ledger", run_ledger, "-o", "json")))
    assert [(i["node_id"], i["status"], i["depth"]) for i in data["intervals"]] == [
        ("root", "Failed", 0), ("backend-team", "Failed", 1), ("backend-coder", "Failed", 2)]
    starts = [i["offset_ms"] for i in data["intervals"]]
    assert starts == sorted(starts) and all(i["duration_ms"] >= 0 for i in data["intervals"])
    done = next(t["directive_id"] for t in trees if t["title"] == "Add a health endpoint")
    coder = json.loads(ok(vsm("ledger", "timeline", done, "--ledger", run_ledger, "-o", "json")))["intervals"][-1]
    assert coder["node_id"] == "backend-coder" and coder["tokens"] == 750 and coder["cost"] == pytest.approx(0.0015)
    result = vsm("ledger", "timeline", "zz-none", "--ledger", run_ledger)
    assert result.exit_code == 2 and "no directive" in result.stderr
