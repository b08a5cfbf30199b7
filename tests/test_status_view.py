"""`vsm status` (issue 13 point 2): per node kind, state, tasks done and failed, tokens and queue;
for the organization its genome and what changed since boot, uptime, providers, ledger and
directives in flight — from the running organization and its ledger."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from vsm_actors.core.model.events import LedgerEvent, LedgerEventKind
from vsm_actors.core.model.variants import Other
from vsm_actors.files.genome_files import load_genome
from vsm_actors.views.status import render_status, status_data

from test_live_cli import live_dir, vsm  # noqa: F401

T0 = datetime(2026, 12, 6, 12, tzinfo=timezone.utc)


def test_status_after_work_and_a_promotion(live_dir, genomes_dir):  # noqa: F811
    vsm(live_dir, "up", str(genomes_dir / "two_level.yaml"))
    try:
        vsm(live_dir, "send", "Add a check", "Review PR 3")
        vsm(live_dir, "promote", "backend-coder", "--child-name", "gen-coder")
        data = json.loads(vsm(live_dir, "status", "-o", "json").stdout)
        text = vsm(live_dir, "status").stdout
    finally:
        vsm(live_dir, "down", check=False)
    g = data["genome"]
    assert g["name"] == "two-level" and g["version"] == 2 and g["boot_genome_id"] == "two-level"
    assert "+ node gen-coder" in g["changed_since_boot"]
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["backend-reviewer"]["done"] == 1 and nodes["backend-reviewer"]["tokens"] > 0
    assert nodes["backend-coder"]["kind"] == "metasystem" and nodes["gen-coder"]["state"] == "idle"
    assert data["providers"] == ["echo"] and data["directives_in_flight"] == 0
    assert data["uptime_seconds"] >= 0 and "vsm-ledger.sqlite" in data["ledger"]
    assert "genome two-level v2" in text and "changed since boot: + node gen-coder" in text
    assert "backend-reviewer" in text and "directives in flight 0" in text


def event(name, n, node, **payload):
    kind = getattr(LedgerEventKind, name, None) or Other(name)
    links = {k: payload.pop(k) for k in ("task_id", "directive_id") if k in payload}
    return LedgerEvent(id=f"e{n}", kind=kind, created_at=T0 + timedelta(seconds=n), node_id=node, payload=payload,
                       **links)


def test_busy_queued_paused_and_in_flight_from_the_events(genomes_dir):
    genome = load_genome(genomes_dir / "two_level.yaml")
    events = [
        event("DirectiveAccepted", 1, "root", directive_id="d1"),
        event("DirectiveAccepted", 2, "root", directive_id="d2"),
        event("TaskRouted", 3, "backend-team", task_id="t-000001", child_node_id="backend-coder"),
        event("task_queued", 4, "backend-team", task_id="t-000002"),
        event("algedonic_subtree_paused", 5, "backend-team", target_node_id="backend-tester"),
    ]
    data = status_data(genome, pids={}, restarts={"backend-coder": 1}, events=events, traces=[],
                       now=T0 + timedelta(minutes=1), started_at=T0, boot_genome=genome,
                       providers={"backend-coder": "command"}, ledger="sqlite:l.sqlite")
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["backend-coder"]["state"] == "busy 000001 since 12:00:03"
    assert nodes["backend-team"]["queue"] == 1 and nodes["backend-tester"]["state"] == "paused"
    assert data["directives_in_flight"] == 2 and data["uptime_seconds"] == 60.0
    assert "(restarted 1x)" in render_status(data)


def test_supervision_shows_only_what_needs_attention(genomes_dir):
    genome = load_genome(genomes_dir / "two_level.yaml")
    events = [event("DirectiveAccepted", 1, "root", directive_id="d1"),
              event("DirectiveAccepted", 2, "root", directive_id="d2"),
              event("directive_failed", 3, "root", directive_id="d1")]  # answered by a restarted root
    data = status_data(genome, pids={}, restarts={}, events=events, traces=[], now=T0 + timedelta(minutes=1),
                       started_at=T0, boot_genome=genome, providers={}, ledger="sqlite:l.sqlite")
    assert data["directives_in_flight"] == 1
    assert "given up" not in render_status(data) and "refused" not in render_status(data)
    data["supervision"] = {"given_up": ["backend-tester"], "rejected_frames": 3,
                           "rejected_frames_by_process": {"root": 3, "supervisor": 0}}
    text = render_status(data)
    assert "given up (restarted too often; `vsm resume NODE`): backend-tester" in text
    assert "refused 3 unsigned or forged frames (root 3)" in text

