"""Multiprocess supervision with real processes: a leaf killed with SIGKILL mid-task is noticed,
restarted and its in-flight task failed or retried according to policy, all recorded."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.core.model.events import EventFilter
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization, make_directive

# Sleeps on its first call (marker absent), returns at once on later calls.
SLOW_ONCE = ("import os, sys, time\n"
             "p = sys.argv[1]\n"
             "first = not os.path.exists(p)\n"
             "open(p, 'a').close()\n"
             "time.sleep(60 if first else 0)\n"
             "print('done')\n")


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)  # polling an external process's effect, not ordering our own messages
    raise AssertionError(f"timed out waiting for {what}")


def processes_mentioning(text: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read().decode(errors="replace")
            with open(f"/proc/{pid}/stat", "rb") as fh:
                zombie = fh.read().split(b")")[-1].split()[0] == b"Z"
        except OSError:
            continue
        if text in cmdline and not zombie:
            found.append(int(pid))
    return found


def events_named(ledger_path, name):
    with open_ledger(str(ledger_path)) as ledger:
        return [e for e in ledger.events(EventFilter()) if str(e.kind) == f'Other("{name}")']


@pytest.mark.parametrize("policy", ["fail", "retry"])
def test_killed_leaf_is_restarted_and_its_task_settled(tmp_path, genomes_dir, policy):
    script = tmp_path / "slow_once.py"
    script.write_text(SLOW_ONCE)
    marker = tmp_path / "started"
    ledger_path = tmp_path / "ledger.sqlite"
    provider = ProviderSpec(name="command", options={"argv": [sys.executable, str(script), str(marker)],
                                                     "workspace": str(tmp_path), "timeout_seconds": 120})
    config = RuntimeConfig(ledger_url=str(ledger_path), provider=provider, crash_policy=policy,
                           watchdog_seconds=0.5)
    genome = load_genome(genomes_dir / "single_coder.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        directive = org.submit("Write the slow thing")
        wait_for(marker.exists, 30, "the leaf to start executing")
        pids = org.status().pids
        leaf_pid = pids["primary-code-service"]
        assert leaf_pid != os.getpid()
        killed_at = time.monotonic()
        os.kill(leaf_pid, signal.SIGKILL)
        (done,) = org.wait([directive], timeout=60)
        settled_after = time.monotonic() - killed_at
        status = org.status()
        assert status.restarts.get("primary-code-service", 0) >= 1
        new_pid = status.pids["primary-code-service"]
        assert new_pid != leaf_pid
        if policy == "fail":
            assert not done.ok and "died" in done.results[0].error
        else:
            assert done.ok and done.results[0].produced_by == "primary-code-service"
        # the restarted leaf serves new work
        assert org.run("after the crash").ok
    assert settled_after < 5.0, f"death noticed and settled after {settled_after:.2f}s"
    # the provider command of the killed leaf died with it: nothing is left behind
    wait_for(lambda: not processes_mentioning(str(marker)), 10, "the orphaned provider command to exit")
    restarts = events_named(ledger_path, "node_restarted")
    assert restarts and restarts[0].payload["node_id"] == "primary-code-service"
    settled = events_named(ledger_path, "task_failed_after_crash" if policy == "fail" else "task_retried_after_crash")
    assert len(settled) == 1


def test_killed_root_is_restarted_and_takes_directives_again(tmp_path, genomes_dir):
    """The booting client sends directives straight to the root; when supervision replaces the
    root's actor, the client is told where the new one is."""
    config = RuntimeConfig(ledger_url=str(tmp_path / "ledger.sqlite"), watchdog_seconds=0.5)
    genome = load_genome(genomes_dir / "single_coder.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        assert org.run("before the crash").ok
        root_pid = org.status().pids["root"]
        assert root_pid != os.getpid()
        os.kill(root_pid, signal.SIGKILL)
        status = wait_for(lambda: (lambda s: s if s.pids.get("root") not in (None, root_pid) else None)(org.status()),
                          10, "the root to be restarted")
        assert status.restarts.get("root", 0) >= 1
        assert org.run("after the crash").ok
    restarts = events_named(tmp_path / "ledger.sqlite", "node_restarted")
    assert [e.payload["node_id"] for e in restarts] == ["root"]


def test_stopping_while_a_leaf_is_mid_call_leaves_no_process(tmp_path, genomes_dir):
    """Thespian gives up on an actor busy in a provider call, and leaves it and its admin
    running; the organization's shutdown finishes the job."""
    from vsm_actors._posix import session_members

    script, marker = tmp_path / "slow_once.py", tmp_path / "started"
    script.write_text(SLOW_ONCE)
    provider = ProviderSpec(name="command", options={"argv": [sys.executable, str(script), str(marker)],
                                                     "workspace": str(tmp_path), "timeout_seconds": 120})
    config = RuntimeConfig(ledger_url=str(tmp_path / "ledger.sqlite"), provider=provider, watchdog_seconds=0.5)
    genome = load_genome(genomes_dir / "single_coder.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        sessions = {os.getsid(pid) for pid in org.status().pids.values()} - {os.getsid(0)}
        assert sessions
        org.submit("Write the slow thing")
        wait_for(marker.exists, 30, "the leaf to start executing")
    assert not set().union(*(session_members(s) for s in sessions))
    wait_for(lambda: not processes_mentioning(str(marker)), 10, "the provider command to exit")


def test_an_idle_organization_stops_without_anything_left_to_kill(tmp_path, genomes_dir, caplog):
    """After some work, Thespian's admin is still on its way out when its shutdown returns: it
    is given time to go by itself, so an ordinary stop kills nothing and warns of nothing."""
    from vsm_actors._posix import session_members

    genome = load_genome(genomes_dir / "single_coder.yaml")
    config = RuntimeConfig(ledger_url=str(tmp_path / "ledger.sqlite"))
    with caplog.at_level("WARNING", logger="vsm.system"):
        with Organization.start(genome, config, base="multiproc", restore=False) as org:
            sessions = {os.getsid(pid) for pid in org.status().pids.values()} - {os.getsid(0)}
            assert all(d.ok for d in org.run_many([make_directive(f"quick {i}") for i in range(300)], timeout=120))
    assert not set().union(*(session_members(s) for s in sessions))
    assert not [r for r in caplog.records if "outlived" in r.getMessage()]


def test_a_directive_in_flight_when_the_root_dies_is_answered(tmp_path, genomes_dir):
    """The root's memory of what it owes its clients dies with it: the directive it had in flight
    is answered from the ledger with a failure saying why, once, long before the client's timeout."""
    script, marker = tmp_path / "slow_once.py", tmp_path / "started"
    script.write_text(SLOW_ONCE)
    provider = ProviderSpec(name="command", options={"argv": [sys.executable, str(script), str(marker)],
                                                     "workspace": str(tmp_path), "timeout_seconds": 120})
    ledger_path = tmp_path / "ledger.sqlite"
    config = RuntimeConfig(ledger_url=str(ledger_path), provider=provider, watchdog_seconds=0.5)
    genome = load_genome(genomes_dir / "two_level.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        directive = org.submit("Write the slow thing")
        wait_for(marker.exists, 30, "the leaf to start executing")
        root_pid = org.status().pids["root"]
        killed_at = time.monotonic()
        os.kill(root_pid, signal.SIGKILL)
        (done,) = org.wait([directive], timeout=60)
        answered_after = time.monotonic() - killed_at
        assert not done.ok and "root restarted" in done.error
        # the coder still runs the old call; the reviewer takes new work from the new root
        assert org.run("Please review PR 12").ok
    assert answered_after < 10.0, f"answered {answered_after:.1f}s after the root died"
    failed = events_named(ledger_path, "directive_failed")
    assert [e.directive_id for e in failed] == [directive.id]
    assert "send it again" in failed[0].payload["error"]
    completed = events_named(ledger_path, "directive_completed")
    assert directive.id not in {e.directive_id for e in completed}


def test_a_node_past_its_restart_intensity_is_paused_until_resumed(tmp_path, genomes_dir):
    """OTP's restart intensity: the second death within the period is not restarted; the metasystem
    above pauses the node with a pain signal, and a resume brings it back."""
    from datetime import datetime, timezone

    from vsm_actors.core.model.payloads import (
        AlgedonicOverridePolicy, AlgedonicSignal, AlgedonicSourceKind, AlgedonicValence)

    ledger_path = tmp_path / "ledger.sqlite"
    config = RuntimeConfig(ledger_url=str(ledger_path), watchdog_seconds=0.2, restart_intensity=1,
                           restart_period_seconds=300)
    genome = load_genome(genomes_dir / "single_coder.yaml")
    leaf = "primary-code-service"
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        first = org.status().pids[leaf]
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: (lambda p: p if p not in (None, first) else None)(org.status().pids.get(leaf)),
                          15, "the first restart")
        os.kill(second, signal.SIGKILL)
        (gave_up,) = wait_for(lambda: events_named(ledger_path, "node_restart_intensity_exceeded"), 15,
                              "the supervisor to give up on the leaf")
        assert gave_up.payload["node_id"] == leaf and gave_up.payload["node_kind"] == "leaf"
        assert wait_for(lambda: events_named(ledger_path, "algedonic_subtree_paused"), 15, "the pause")
        assert org.status().restarts[leaf] == 1 and leaf not in org.status().pids
        resume = AlgedonicSignal(source=AlgedonicSourceKind.User, valence=AlgedonicValence.Pleasure, severity=1,
                                 message="fixed", override_policy=AlgedonicOverridePolicy(resume_subtree=True),
                                 created_at=datetime.now(timezone.utc))
        org.signal(leaf, resume)
        wait_for(lambda: org.status().pids.get(leaf) not in (None, second), 15, "the leaf to come back")
        assert org.run("after the resume").ok
    restarted = [e.payload["reason"] for e in events_named(ledger_path, "node_restarted")]
    assert len(restarted) == 2 and "resumed" in restarted[1]


def test_a_killed_ledger_actor_is_replaced_and_no_directive_waits_for_it(tmp_path, genomes_dir):
    """The single writer dies: a new one opens the same ledger, every node writes to it, and the
    answers the dead one was to send after committing are settled again from the ledger."""
    ledger_path = tmp_path / "ledger.sqlite"
    config = RuntimeConfig(ledger_url=str(ledger_path), watchdog_seconds=0.2)
    genome = load_genome(genomes_dir / "two_level.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        before = org.run_many([f"before {i}" for i in range(5)])
        assert all(d.ok for d in before)
        old = org.status().ledger_pid
        assert old not in (None, os.getpid())
        in_flight = [org.submit(f"during {i}") for i in range(20)]
        os.kill(old, signal.SIGKILL)
        answers = org.wait(in_flight, timeout=60)  # every one answered, none left to the timeout
        assert len(answers) == 20
        status = wait_for(lambda: (lambda s: s if s.ledger_pid not in (None, old) else None)(org.status()), 15,
                          "the ledger actor to be replaced")
        assert status.restarts.get("ledger") == 1
        after = org.run_many([f"after {i}" for i in range(5)])
        assert all(d.ok for d in after)
    restarted = [e.payload for e in events_named(ledger_path, "node_restarted")]
    assert [p["node_kind"] for p in restarted] == ["ledger actor"]
    with open_ledger(str(ledger_path)) as ledger:
        for done in (*before, *answers, *after):  # one ending each, in flight at the death or not
            endings = [e for e in ledger.events(EventFilter(directive_id=done.directive_id))
                       if e.storage_key in ("other:directive_completed", "other:directive_failed")]
            assert len(endings) == 1


def test_a_stopped_leaf_is_noticed_by_its_heartbeat_and_replaced(tmp_path, genomes_dir):
    """SIGSTOP: the process is alive, so exit watching never notices; its silence does."""
    ledger_path = tmp_path / "ledger.sqlite"
    config = RuntimeConfig(ledger_url=str(ledger_path), watchdog_seconds=0.2, hang_seconds=1.0)
    genome = load_genome(genomes_dir / "single_coder.yaml")
    leaf = "primary-code-service"
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        assert org.run("before").ok
        frozen_pid = org.status().pids[leaf]
        stopped_at = time.monotonic()
        os.kill(frozen_pid, signal.SIGSTOP)
        wait_for(lambda: org.status().pids.get(leaf) not in (None, frozen_pid), 20, "the hung leaf to be replaced")
        noticed_after = time.monotonic() - stopped_at
        assert org.run("after").ok
    (hung,) = events_named(ledger_path, "node_hung")
    assert hung.payload["node_id"] == leaf and "stopped" in hung.payload["reason"]
    assert noticed_after < 10.0, f"noticed after {noticed_after:.1f}s"  # 1 s of silence, then a tick
    wait_for(lambda: not os.path.exists(f"/proc/{frozen_pid}") or open(f"/proc/{frozen_pid}/stat").read()
             .rsplit(")", 1)[1].split()[0] in ("Z", "X"), 10, "the stopped process to be gone")


def test_a_dead_supervisor_not_to_be_replaced_is_said_at_once_not_waited_for(tmp_path, genomes_dir):
    """With a restart intensity of 0 its keeper does not replace it (tests/test_supervisor_restart.py
    for when it does): its client is told right away."""
    from vsm_actors.system import OrganizationGone

    config = RuntimeConfig(ledger_url=str(tmp_path / "ledger.sqlite"), watchdog_seconds=0.5, restart_intensity=0)
    genome = load_genome(genomes_dir / "single_coder.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False, timeout=120) as org:
        assert org.run("before").ok
        supervisor = org.booted.supervisor_pid
        assert supervisor not in (None, os.getpid())
        os.kill(supervisor, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(OrganizationGone, match="supervisor died and was not replaced"):
            org.status()
        assert time.monotonic() - t0 < 10  # not the 120 s timeout


def test_an_answer_sent_twice_is_taken_once_and_a_directive_sent_twice_answered_twice(tmp_path, genomes_dir):
    from vsm_actors.actors.protocol import DirectiveDone

    config = RuntimeConfig(ledger_url=str(tmp_path / "ledger.sqlite"))
    with Organization.start(load_genome(genomes_dir / "single_coder.yaml"), config, restore=False) as org:
        directive = make_directive("twice")
        first, second = org.run(directive), org.run(directive)
        assert first.ok and second.ok and first.correlation_id != second.correlation_id
        # the copy a new ledger actor resends after the old one died arrives before the next answer
        listen, copies = org.asys.listen, [first]
        org.asys.listen = lambda timeout=None: copies.pop() if copies else listen(timeout)
        assert org.run("after").ok and not copies
        assert not [m for m in org._stash if isinstance(m, DirectiveDone)]  # dropped, not kept
