"""The Ledger contract: every backend (memory, SQLite file, PostgreSQL) passes these unchanged."""

from __future__ import annotations

import math

import pytest
from attrs import evolve

from vsm_actors.core.model.events import EventFilter, LedgerEventKind as K, TraceWindow
from vsm_actors.core.model.records import (
    GenomeSnapshot, GenomeSnapshotRoleKind, PopulationArchiveStatus as PA, StoredTrialDecision, StoredTrialStatus,
)
from vsm_actors.core.model.variants import Other
from vsm_actors.ledger import (
    EventQuery, Ledger, LedgerConflictError, LedgerError, LedgerSerializationError,
)

from .builders import archive, at, event, generation, genome, queued, trace


def ids(items) -> list[str]:
    return [getattr(x, "id", None) or getattr(x, "trial_id", None) or x.genome_id for x in items]


# -- events ----------------------------------------------------------------------------------------

@pytest.fixture
def mixed(ledger: Ledger) -> Ledger:
    ledger.append_events([
        event("e1", K.DirectiveAccepted, 1, node_id="root", directive_id="d1", correlation_id="c1"),
        event("e2", K.TaskMapped, 2, node_id="root", task_id="t1", directive_id="d1", genome_id="g1"),
        event("e3", K.TaskRouted, 3, node_id="team", task_id="t1", directive_id="d1", genome_id="g2"),
        event("e4", K.TrialQueued, 4, node_id="root", genome_id="g2", suggestion_id="s1"),
        event("e5", Other("command_received"), 5, node_id="team", task_id="t2", correlation_id="c1"),
        event("e6", K.TaskRouted, 6, node_id="root", task_id="t2", directive_id="d2", suggestion_id="s1"),
    ])
    return ledger


def test_batch_append_round_trips_every_field(mixed: Ledger) -> None:
    """A stored event reads back equal to what was appended, payload and metadata included."""
    original = event("e7", K.TraceWritten, 7, payload={"b": [1, 2.5, None], "a": {"z": True}}, node_id="n",
                     task_id="t", directive_id="d", genome_id="g", suggestion_id="s", correlation_id="c")
    mixed.append_event(original.with_metadata(trace_id="tr-1"))
    assert mixed.get_event("e7") == original.with_metadata(trace_id="tr-1")
    assert mixed.get_event("missing") is None
    assert ids(mixed.events()) == ["e1", "e2", "e3", "e4", "e5", "e6", "e7"]


@pytest.mark.parametrize(("query", "expected"), [
    (EventFilter(kinds=(K.TaskRouted,)), ["e3", "e6"]),
    (EventFilter(kinds=(K.TaskRouted, Other("command_received"))), ["e3", "e5", "e6"]),
    (EventQuery(kinds=("task_mapped", "other:command_received")), ["e2", "e5"]),
    (EventFilter(node_id="team"), ["e3", "e5"]),
    (EventFilter(task_id="t1"), ["e2", "e3"]),
    (EventFilter(directive_id="d1"), ["e1", "e2", "e3"]),
    (EventFilter(correlation_id="c1"), ["e1", "e5"]),
    (EventQuery(genome_id="g2"), ["e3", "e4"]),
    (EventQuery(suggestion_id="s1"), ["e4", "e6"]),
    (EventFilter(since=at(4)), ["e4", "e5", "e6"]),
    (EventFilter(node_id="root", since=at(2), kinds=(K.TaskMapped, K.TaskRouted)), ["e2", "e6"]),
    (EventFilter(limit=2), ["e5", "e6"]),
    (EventFilter(node_id="root", limit=2), ["e4", "e6"]),
    (EventFilter(limit=0), ["e1", "e2", "e3", "e4", "e5", "e6"]),
    (EventQuery(limit=2, keep="oldest"), ["e1", "e2"]),
    (EventFilter(node_id="nobody"), []),
])
def test_filters(mixed: Ledger, query: EventFilter, expected: list[str]) -> None:
    """Conditions apply first, then the newest `limit`, returned oldest to newest."""
    assert ids(mixed.events(query)) == expected


def test_filter_before_limit_on_a_busy_ledger(ledger: Ledger) -> None:
    """Old matches are found even when thousands of newer events do not match."""
    ledger.append_events([event(f"m{i}", K.TrialPromoted, i, node_id="ctl") for i in range(3)])
    noise = [event(f"x{i}", K.MessageReceived, 10 + i / 1000, node_id="other") for i in range(2000)]
    for start in range(0, 2000, 500):
        ledger.append_events(noise[start:start + 500])
    assert ids(ledger.events(EventFilter(node_id="ctl", limit=10))) == ["m0", "m1", "m2"]
    assert ids(ledger.events(EventFilter(kinds=(K.TrialPromoted,), limit=2))) == ["m1", "m2"]
    assert len(ledger.events(EventFilter(node_id="other"))) == 2000


def test_order_is_chronological_with_append_order_for_ties(ledger: Ledger) -> None:
    ledger.append_events([event("late", K.TaskRouted, 9), event("tie-a", K.TaskRouted, 5)])
    ledger.append_events([event("early", K.TaskRouted, 1), event("tie-b", K.TaskRouted, 5)])
    assert ids(ledger.events()) == ["early", "tie-a", "tie-b", "late"]
    assert ids(ledger.events(EventFilter(limit=2))) == ["tie-b", "late"]


def test_paging_by_cursor(mixed: Ledger) -> None:
    """A reader pages forward with after_id + keep oldest, backward with before_id."""
    first = mixed.events(EventQuery(limit=2, keep="oldest"))
    second = mixed.events(EventQuery(limit=2, keep="oldest", after_id=first[-1].id))
    assert ids(first) + ids(second) == ["e1", "e2", "e3", "e4"]
    assert ids(mixed.events(EventQuery(limit=2, before_id="e5"))) == ["e3", "e4"]
    assert ids(mixed.events(EventQuery(after_id="e2", before_id="e6", node_id="team"))) == ["e3", "e5"]
    with pytest.raises(LedgerError, match="not in the ledger"):
        mixed.events(EventQuery(after_id="nope"))


@pytest.mark.parametrize("duplicate", ["e3", "new-2"])
def test_a_batch_failing_midway_commits_nothing(mixed: Ledger, duplicate: str) -> None:
    """A duplicate id (already stored, or twice in the batch) refuses the whole batch."""
    batch = [event("new-1", K.TaskMapped, 10), event("new-2", K.TaskMapped, 11),
             event(duplicate, K.TaskMapped, 12), event("new-3", K.TaskMapped, 13)]
    with pytest.raises(LedgerConflictError) as caught:
        mixed.append_events(batch)
    assert caught.value.event_id == duplicate
    assert ids(mixed.events()) == ["e1", "e2", "e3", "e4", "e5", "e6"]
    mixed.append_events(batch[:2])  # the ledger is still writable afterwards
    assert ids(mixed.events(EventFilter(limit=2))) == ["new-1", "new-2"]


def test_an_unencodable_event_commits_nothing(ledger: Ledger) -> None:
    batch = [event("ok", K.TaskMapped, 1), event("bad", K.TaskMapped, 2, payload={"x": math.nan})]
    with pytest.raises(LedgerSerializationError, match="event 'bad'"):
        ledger.append_events(batch)
    assert ledger.events() == []


def test_negative_limit_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError):
        ledger.events(EventFilter(limit=-1))


# -- traces ----------------------------------------------------------------------------------------

def test_trace_upsert_by_id(ledger: Ledger) -> None:
    ledger.write_traces([trace("tr1", "coder", 1), trace("tr2", "coder", 2)])
    updated = trace("tr1", "reviewer", 1, ("team", "root"), outcome_score=7.5, input_tokens=10)
    ledger.write_task_trace(updated)
    assert ledger.get_trace("tr1") == updated
    assert ledger.get_trace("missing") is None
    assert ids(ledger.recent_task_traces()) == ["tr1", "tr2"]
    # the last copy wins inside one batch, too
    ledger.write_traces([trace("tr3", "a", 3), trace("tr3", "b", 3)])
    assert ledger.get_trace("tr3").assigned_node_id == "b"


def test_recent_trace_window(ledger: Ledger) -> None:
    ledger.write_traces([trace(f"tr{i:03d}", "coder", i) for i in range(150)])
    assert len(ledger.recent_task_traces()) == 100  # the default window
    assert ids(ledger.recent_task_traces(TraceWindow(limit=2))) == ["tr148", "tr149"]
    assert ids(ledger.recent_task_traces(TraceWindow(since=at(147), limit=None))) == ["tr147", "tr148", "tr149"]
    assert len(ledger.recent_task_traces(TraceWindow(limit=0))) == 150
    ledger.write_traces([trace("tie-B", "x", 200), trace("tie-a", "x", 200), trace("tie-_", "x", 200)])
    # equal start times order by id, by code point on every engine
    assert ids(ledger.recent_task_traces(TraceWindow(limit=3))) == ["tie-B", "tie-_", "tie-a"]


def test_subtree_traces_filter_before_limit(ledger: Ledger) -> None:
    """Assigned to the node or under it; the restriction applies before the window limit."""
    ledger.write_traces([
        trace("own", "team", 1, ("root",)),
        trace("child", "coder", 2, ("team", "root")),
        trace("grandchild", "sub", 3, ("coder", "team", "root")),
        trace("elsewhere", "ops", 4, ("root",)),
    ])
    ledger.write_traces([trace(f"noise{i}", "ops", 10 + i, ("root",)) for i in range(300)])
    assert ids(ledger.subtree_task_traces("team", TraceWindow(limit=10))) == ["own", "child", "grandchild"]
    assert ids(ledger.subtree_task_traces("team", TraceWindow(limit=2))) == ["child", "grandchild"]
    assert ids(ledger.subtree_task_traces("team", TraceWindow(since=at(2)))) == ["child", "grandchild"]
    assert len(ledger.subtree_task_traces("root", TraceWindow(limit=None))) == 304
    assert ledger.subtree_task_traces("nobody") == []
    # an upsert that moves a trace out of the subtree takes effect
    ledger.write_task_trace(trace("child", "coder", 2, ("ops", "root")))
    assert ids(ledger.subtree_task_traces("team")) == ["own", "grandchild"]


# -- directive lineage -----------------------------------------------------------------------------

def test_directive_lineage(ledger: Ledger) -> None:
    routed = {"task_id": "t1", "parent_node_id": "root", "child_node_id": "coder", "routed_genome_id": "g1",
              "reason": "rule", "is_trial_route": False, "is_shadow_route": False}
    result = {"task_id": "t1", "produced_by": "coder", "status": "Completed", "summary": "done", "error": None}
    ledger.append_events([
        event("a", K.DirectiveAccepted, 1, payload={"id": "d1", "title": "Add billing"}, node_id="root",
              directive_id="d1"),
        event("m1", K.TaskMapped, 2, payload={"task_id": "t1", "task_title": "billing api"},
              node_id="root", task_id="t1", directive_id="d1"),
        event("m2", K.TaskMapped, 3, payload={"task_id": "t2", "task_title": "billing ui", "parent_task_id": "t1"},
              node_id="root", task_id="t2", directive_id="d1"),
        event("r1", K.TaskRouted, 4, payload=routed, node_id="root", task_id="t1", directive_id="d1"),
        event("noise", K.TaskMapped, 5, payload={"task_id": "t9"}, node_id="root", task_id="t9", directive_id="d2"),
        # results and traces are linked to their task only, as the reference writes them
        event("res1", K.TaskResultReceived, 6, payload=result, node_id="root", task_id="t1"),
        event("tw1", K.TraceWritten, 7, payload={"id": "tr1", "outcome_score": 1.0}, node_id="coder", task_id="t1"),
    ])
    lineage = ledger.directive_lineage("d1")
    assert (lineage.title, lineage.accepted_by, lineage.accepted_at) == ("Add billing", "root", at(1))
    assert [t.task_id for t in lineage.tasks] == ["t1", "t2"]
    t1, t2 = lineage.tasks
    assert (t1.title, t1.status, t1.mapped_at) == ("billing api", "Completed", at(2))
    assert [(r.child_node_id, r.genome_id, r.reason) for r in t1.routes] == [("coder", "g1", "rule")]
    assert [(r.produced_by, r.summary) for r in t1.results] == [("coder", "done")]
    assert [(tr.trace_id, tr.node_id, tr.outcome_score) for tr in t1.traces] == [("tr1", "coder", 1.0)]
    assert (t2.parent_task_id, t2.status, t2.routes) == ("t1", "Mapped", ())
    assert lineage.event_ids == ("a", "m1", "m2", "r1", "res1", "tw1")
    assert ledger.directive_lineage("unknown").is_empty


# -- genomes and champion pointers -----------------------------------------------------------------

def test_snapshots_and_champion_pointer(ledger: Ledger) -> None:
    g1, g2 = genome("g1"), genome("g2", leaves=2)
    candidate = GenomeSnapshot.new(g2, GenomeSnapshotRoleKind.Candidate, at(5), metadata={"suggestion_id": "s1"})
    ledger.save_genome_snapshot(candidate)
    assert ledger.get_genome_snapshot("g2") == candidate
    assert ledger.get_genome_snapshot("g2").genome == g2
    assert ledger.get_champion_genome("root") is None

    saved = ledger.set_champion_genome("root", g1, saved_at=at(1))
    assert saved.role == GenomeSnapshotRoleKind.Champion
    assert ledger.get_champion_genome_id("root") == "g1"
    assert ledger.get_champion_genome("root") == g1
    assert ids(ledger.genome_snapshots()) == ["g2", "g1"]
    assert ids(ledger.genome_snapshots(limit=1)) == ["g2"]
    assert ids(ledger.genome_snapshots(role=GenomeSnapshotRoleKind.Champion)) == ["g1"]

    ledger.set_champion_genome_id("root", "g2")
    ledger.set_champion_genome_id("team", "ghost")
    assert ledger.get_champion_genome("root") == g2
    assert ledger.get_champion_genome("team") is None  # pointer without a snapshot
    assert ledger.champion_genome_ids() == {"root": "g2", "team": "ghost"}
    ledger.save_genome_snapshot(evolve(candidate, role=Other("experimental")))
    assert ledger.get_genome_snapshot("g2").role == Other("experimental")


# -- trials, archive, generations ------------------------------------------------------------------

def test_trial_records(ledger: Ledger) -> None:
    for trial_id, seconds in [("s3", 3), ("s1", 1), ("s2", 2)]:
        ledger.write_trial_record(queued(trial_id, seconds))
    ledger.write_trial_record(queued("other", 0, controller="team"))
    assert ids(ledger.queued_trial_records("root")) == ["s1", "s2", "s3"]
    assert ids(ledger.queued_trial_records("root", limit=2)) == ["s1", "s2"]
    assert ids(ledger.queued_trial_records("root", limit=0)) == ["s1", "s2", "s3"]

    active = ledger.get_trial_record("s1").mark_active(at(10))
    ledger.write_trial_record(active)
    assert ledger.get_active_trial_record("root") == active
    assert ledger.get_active_trial_record("team") is None
    ledger.write_trial_record(ledger.get_trial_record("s2").mark_active(at(11)))
    assert ledger.get_active_trial_record("root").trial_id == "s2"  # newest updated_at

    ledger.write_trial_record(evolve(active, status=StoredTrialStatus.Promoted, updated_at=at(20), completed_at=at(20),
                                     decision=StoredTrialDecision.Promote, trace_count=4, total_score=12.5))
    ledger.write_trial_record(ledger.get_trial_record("s3").mark_rejected("superseded", at(30)))
    assert ids(ledger.completed_trial_records("root")) == ["s3", "s1"]
    assert ids(ledger.completed_trial_records("root", limit=1)) == ["s3"]
    promoted = ledger.get_trial_record("s1")
    assert (promoted.decision, promoted.total_score, promoted.suggestion) == (
        StoredTrialDecision.Promote, 12.5, queued("s1", 1).suggestion)
    assert ids(ledger.trial_records("root")) == ["s3", "s1", "s2"]
    assert len(ledger.trial_records()) == 4
    assert ledger.get_trial_record("missing") is None


def test_record_ties_order_by_id_code_point(ledger: Ledger) -> None:
    for trial_id in ["B", "a", "_"]:
        ledger.write_trial_record(queued(trial_id, 1))
        ledger.write_population_archive_record(archive(trial_id, 1, PA.ParetoFrontier))
    assert ids(ledger.queued_trial_records("root")) == ["B", "_", "a"]
    assert ids(ledger.population_archive_records("root")) == ["a", "_", "B"]


def test_population_archive(ledger: Ledger) -> None:
    ledger.write_population_archive_record(archive("s1", 1, PA.Dominated))
    ledger.write_population_archive_record(archive("s2", 2, PA.ParetoFrontier))
    ledger.write_population_archive_record(archive("s3", 3, PA.SelectedForTrial))
    ledger.write_population_archive_record(archive("s4", 4, PA.Pruned))
    ledger.write_population_archive_record(archive("x", 5, PA.Promoted, controller="team"))
    assert ledger.get_population_archive_record("s2") == archive("s2", 2, PA.ParetoFrontier)
    assert ids(ledger.population_archive_records("root")) == ["s4", "s3", "s2", "s1"]
    assert ids(ledger.population_archive_records("root", limit=2)) == ["s4", "s3"]
    assert ids(ledger.pareto_archive_records("root")) == ["s3", "s2"]
    ledger.write_population_archive_record(archive("s1", 9, PA.Promoted))  # upsert
    assert ids(ledger.pareto_archive_records("root", limit=0)) == ["s1", "s3", "s2"]
    assert ledger.get_population_archive_record("missing") is None


def test_evolution_generations(ledger: Ledger) -> None:
    assert ledger.latest_evolution_generation_record("root") is None
    for n in (2, 1, 3):
        ledger.write_evolution_generation_record(generation(n))
    ledger.write_evolution_generation_record(generation(7, controller="team"))
    ledger.write_evolution_generation_record(generation(2, champion="g9"))  # upsert by (controller, generation)
    assert ledger.latest_evolution_generation_record("root") == generation(3)
    assert [r.generation for r in ledger.evolution_generation_records("root")] == [3, 2, 1]
    assert [r.generation for r in ledger.evolution_generation_records("root", limit=2)] == [3, 2]
    assert ledger.evolution_generation_records("root")[1].champion_genome_id == "g9"


# -- lifecycle -------------------------------------------------------------------------------------

def test_persistence_across_close_and_reopen(open_durable) -> None:
    first = open_durable()
    first.append_events([event("e1", K.TaskMapped, 1, node_id="root"), event("e2", K.TaskRouted, 2, node_id="root")])
    first.write_task_trace(trace("tr1", "coder", 1, ("root",)))
    first.set_champion_genome("root", genome("g1"))
    first.write_trial_record(queued("s1", 1))
    first.write_population_archive_record(archive("s1", 1, PA.ParetoFrontier))
    first.write_evolution_generation_record(generation(1))
    first.close()
    first.close()  # idempotent

    second = open_durable()
    try:
        assert ids(second.events(EventFilter(node_id="root"))) == ["e1", "e2"]
        assert ids(second.subtree_task_traces("root")) == ["tr1"]
        assert second.get_champion_genome("root") == genome("g1")
        assert ids(second.queued_trial_records("root")) == ["s1"]
        assert ids(second.pareto_archive_records("root")) == ["s1"]
        assert second.latest_evolution_generation_record("root") == generation(1)
        second.append_event(event("e3", K.TaskResultReceived, 3))
        assert len(second.events()) == 3
    finally:
        second.close()


def test_a_closed_ledger_refuses_use(open_ledger_fn) -> None:
    ledger = open_ledger_fn()
    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        ledger.events()
    with pytest.raises(LedgerError, match="closed"):
        ledger.append_event(event("e1", K.TaskMapped, 1))
