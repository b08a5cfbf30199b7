"""Algedonic signals in the running actors (issue 12 point 4), on both Thespian bases: a paused
subtree gets no work (the task waits, an event says so) and gets it on resume; the pause survives
a restart; escalation travels one hop per metasystem to the root; a freeze ends the active trial;
and `vsm signal` / `vsm resume` drive it against a running organization."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.core.model.payloads import (
    AlgedonicOverridePolicy, AlgedonicSignal, AlgedonicSourceKind, AlgedonicValence,
)
from vsm_actors.core.model.records import StoredTrialStatus
from vsm_actors.core.model.variants import Other
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.system import Organization, make_directive

from test_live_cli import live_dir, vsm  # noqa: F401


def signal(**policy) -> AlgedonicSignal:
    return AlgedonicSignal(source=AlgedonicSourceKind.Ci, valence=AlgedonicValence.Pain, severity=8,
                           message="CI is red", override_policy=AlgedonicOverridePolicy(**policy),
                           created_at=datetime.now(timezone.utc))


def kinds(path) -> list[str]:
    with open_ledger(str(path)) as ledger:
        return [e.storage_key for e in ledger.events(EventQuery())]


def wait_for_event(org, name: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not org.read_ledger("events", EventQuery(kinds=(Other(name),))):
        assert time.monotonic() < deadline, f"no {name} event within {timeout}s"
        time.sleep(0.05)  # the ledger is written by another actor: polling what it has committed


@pytest.mark.parametrize("base", ["simple", "multiproc"])
def test_a_paused_leaf_gets_no_work_until_it_is_resumed(tmp_path, genomes_dir, base):
    path = tmp_path / "l.sqlite"
    genome = load_genome(genomes_dir / "single_coder.yaml")
    with Organization.start(genome, RuntimeConfig(ledger_url=str(path)), base=base, restore=False) as org:
        paused = org.signal("primary-code-service", signal(pause_subtree=True))
        assert paused.node_id == "root" and paused.paused == ("primary-code-service",)
        item = org.submit(make_directive("Add a health check"))
        wait_for_event(org, "algedonic_route_blocked")
        resumed = org.signal("primary-code-service", signal(resume_subtree=True))
        assert resumed.paused == ()
        (done,) = org.wait([item])
        assert done.ok and done.results[0].produced_by == "primary-code-service"
    seen = kinds(path)
    blocked, lifted = seen.index("other:algedonic_route_blocked"), seen.index("other:algedonic_subtree_resumed")
    routed = [i for i, k in enumerate(seen) if k == "task_routed"]
    assert blocked < lifted < routed[-1] and seen.index("trace_written") > lifted


def test_a_pause_survives_a_restart(tmp_path, genomes_dir):
    path = str(tmp_path / "l.sqlite")
    genome = load_genome(genomes_dir / "single_coder.yaml")
    with Organization.start(genome, RuntimeConfig(ledger_url=path), restore=False) as org:
        assert org.run("Before the pause").ok
        org.signal("primary-code-service", signal(pause_subtree=True))
    with Organization.start(genome, RuntimeConfig(ledger_url=path)) as org:
        item = org.submit(make_directive("While paused"))
        wait_for_event(org, "algedonic_route_blocked")
        assert org.signal("primary-code-service", signal(resume_subtree=True)).paused == ()
        assert org.wait([item])[0].ok


def test_escalation_travels_one_hop_per_metasystem_to_the_root(tmp_path, genomes_dir):
    path = tmp_path / "l.sqlite"
    with Organization.start(load_genome(genomes_dir / "two_level.yaml"), RuntimeConfig(ledger_url=str(path)),
                            restore=False) as org:
        applied = org.signal("backend-coder", signal(escalate_to_root=True))
        assert applied.node_id == "backend-team" and applied.actions == ("escalated_to_parent",)
        assert org.run("Add a health check").ok  # the organization works on
    with open_ledger(str(path)) as ledger:
        events = [(e.node_id, e.storage_key) for e in ledger.events(EventQuery())]
    assert ("backend-team", "other:algedonic_escalated") in events
    assert ("root", "other:algedonic_signal_received") in events
    assert ("root", "other:algedonic_escalation_at_root") in events


def test_a_freeze_ends_the_active_trial_as_frozen(tmp_path):
    from vsm_actors.files.genome_files import parse_genome_text
    genome = parse_genome_text("""
id: freeze
root:
  id: root
  name: root
  children: [{name: coder, leaf_operation: coding}]
audit_policies:
  - {id: a, node_id: root, window_tasks: 1000, min_traces: 2, failure_ratio_threshold: 0.4}
""", name="freeze.yaml")
    script = {"rules": [{"match": {"node_name": "coder"}, "outcome": "failed", "error": "broken"}]}
    config = RuntimeConfig(ledger_url=str(tmp_path / "l.sqlite"),
                           provider=ProviderSpec(name="scripted", options={"script": script}))
    with Organization.start(genome, config, restore=False) as org:
        org.run_many([make_directive(f"Change {n}") for n in range(3)])
        trial = org.evolution("audit").active
        assert trial is not None
        applied = org.signal("coder", signal(freeze_mutation=True))
        assert f"active_trial_frozen={trial.trial_id}" in applied.actions
        status = org.evolution("status")
        assert status.active is None
        (record,) = [r for r in status.records if r.trial_id == trial.trial_id]
        assert record.status is StoredTrialStatus.Frozen


def test_vsm_signal_and_resume_against_a_running_organization(live_dir, genomes_dir):  # noqa: F811
    vsm(live_dir, "up", str(genomes_dir / "single_coder.yaml"))
    try:
        out = vsm(live_dir, "signal", "pain", "--node", "primary-code-service", "--severity", "8", "--pause",
                  "--reason", "CI is red", "-o", "json")
        assert json.loads(out.stdout) == {"node_id": "root", "actions": ["subtree_paused=primary-code-service"],
                                          "paused": ["primary-code-service"]}
        sender = subprocess.Popen([sys.executable, "-m", "vsm_actors", "send", "Add a health check", "-o", "json"],
                                  cwd=live_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with open_ledger(str(live_dir / "vsm-ledger.sqlite"), read_only=True) as ledger:
            deadline = time.monotonic() + 30
            while not ledger.events(EventQuery(kinds=(Other("algedonic_route_blocked"),))):
                assert time.monotonic() < deadline and sender.poll() is None
                time.sleep(0.05)  # another process writes the ledger: polling what it committed
        resumed = vsm(live_dir, "resume", "primary-code-service")
        assert "subtree_resumed=primary-code-service" in resumed.stdout
        stdout, stderr = sender.communicate(timeout=60)
        assert sender.returncode == 0, stderr
        assert json.loads(stdout)[0]["results"][0]["produced_by"] == "primary-code-service"
        bad = vsm(live_dir, "signal", "pain", "--node", "ghost", "--pause", check=False)
        assert bad.returncode == 2 and "no node 'ghost'" in bad.stderr
        both = vsm(live_dir, "signal", "pain", "--node", "root", "--pause", "--resume", check=False)
        assert both.returncode == 2 and "contradict" in both.stderr
    finally:
        vsm(live_dir, "down", check=False)
