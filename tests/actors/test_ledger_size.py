"""A small ledger: each output once however many levels pass it up, and one ending per directive."""

from __future__ import annotations

import sqlite3

from vsm_actors.core.model.task import TaskOutcomeStatus
from vsm_actors.system import make_directive

from .conftest import scripted

LONG = "a long answer from a real agent, with its whole diff. " * 60


def test_an_output_is_stored_once_on_its_way_up(org_factory):
    running = org_factory("three_level", scripted({"default": {"output_text": LONG}}))
    directives = [make_directive(f"Add endpoint {i} to the service") for i in range(3)]
    answers = running.run_many(directives)
    assert all(d.ok and d.results[0].summary == LONG for d in answers)
    for d in directives:
        # the output passed up three levels, each recording the whole result as it received it
        received = running.wait_events("task_result_received", 3, directive_id=d.id)
        assert all(e.payload["summary"] == LONG for e in received)
        assert all(a["content"] == LONG for e in received for a in e.payload["artifacts"])
    running.wait_events("directive_completed", 3)
    with sqlite3.connect(running.ledger_path) as db:
        texts = db.execute("SELECT count(*) FROM ledger_blobs").fetchone()[0]
        verbatim = db.execute("SELECT count(*) FROM ledger_events WHERE instr(event_json, ?) > 0",
                              (LONG[:80],)).fetchone()[0]
    # the same text, the same key: one stored copy for nine events and eighteen fields
    assert texts == 1 and verbatim == 0


def test_every_directive_ends_in_one_completion_or_failure_event(org_factory):
    running = org_factory("two_level", scripted({
        "rules": [{"match": {"task_title": "broken"}, "outcome": "failed", "error": "the tool crashed"}],
        "default": {"output_text": "done"}}))
    ok, broken = make_directive("Add a backend endpoint"), make_directive("a broken change")
    done_ok, done_broken = running.run_many([ok, broken])
    assert done_ok.ok and not done_broken.ok
    (completed,) = running.wait_events("directive_completed", directive_id=ok.id)
    (failed,) = running.wait_events("directive_failed", directive_id=broken.id)
    assert completed.node_id == "root" and completed.correlation_id == done_ok.correlation_id
    assert completed.payload["status"] == "Completed" and completed.payload["produced_by"] == ["backend-coder"]
    assert completed.payload["task_ids"] == [done_ok.results[0].task_id]
    assert completed.payload["latency_ms"] >= 0
    assert failed.payload["status"] == "Failed" and "the tool crashed" in failed.payload["error"]
    assert done_broken.results[0].status is TaskOutcomeStatus.Failed
    assert running.events("directive_failed", directive_id=ok.id) == []


def test_the_organization_records_its_stop(org_factory):
    running = org_factory("single_coder")
    assert running.run(make_directive("Add a health check")).ok
    running.org.shutdown()
    (started,) = running.events("organization_started")
    (stopped,) = running.events("organization_stopped")
    assert stopped.payload["genome_id"] == started.payload["genome_id"] == running.initial_genome.id
    assert stopped.payload["uptime_seconds"] >= 0 and stopped.created_at >= started.created_at
