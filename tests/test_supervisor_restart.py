"""The supervisor itself supervised, with real processes on the multiprocess base: killed with
SIGKILL, its actors exit with it, its keeper (the client that started it) boots a new one from
the ledger within a restart intensity, and every directive in flight is answered exactly once."""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter

import pytest

from test_supervision import events_named, wait_for
from vsm_actors._posix import alive
from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.core.control.ledger_events import ENDING_KINDS
from vsm_actors.core.model.events import EventFilter
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization, OrganizationGone

SLOW = "import sys, time\ntime.sleep(float(sys.argv[1]))\nprint('done')\n"


def slow_config(tmp_path, seconds: float, **kw) -> RuntimeConfig:
    script = tmp_path / "slow.py"
    script.write_text(SLOW)
    provider = ProviderSpec(name="command", options={"argv": [sys.executable, str(script), str(seconds)],
                                                     "workspace": str(tmp_path), "timeout_seconds": 60})
    return RuntimeConfig(ledger_url=str(tmp_path / "ledger.sqlite"), provider=provider, watchdog_seconds=0.5, **kw)


def endings_per_directive(ledger_path) -> Counter:
    with open_ledger(str(ledger_path)) as ledger:
        return Counter(e.directive_id for e in ledger.events(EventFilter(kinds=ENDING_KINDS)))


def test_a_killed_supervisor_is_replaced_and_every_directive_answered_once(tmp_path, genomes_dir):
    config = slow_config(tmp_path, 0.3)
    genome = load_genome(genomes_dir / "two_level.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False, timeout=120) as org:
        before = org.run_many(["warm up 1", "warm up 2"])
        assert all(d.ok for d in before)
        status = org.status()
        old_supervisor, old_pids = org.booted.supervisor_pid, set(status.pids.values()) | {status.ledger_pid}
        sent = [org.submit(f"in flight {i}") for i in range(12)]
        os.kill(old_supervisor, signal.SIGKILL)
        answers = org.wait(sent, timeout=120)
        # every directive answered: done before the kill, or failed saying why
        assert [a.directive_id for a in answers] == [d.id for d in sent]
        for answer in answers:
            assert answer.ok or "supervisor died" in answer.error, answer
        # its actors did not run on beside the new organization
        wait_for(lambda: not any(alive(p) for p in old_pids), 10, "the old organization's processes to exit")
        now = org.status()
        assert org.booted.supervisor_pid not in (None, old_supervisor) and alive(org.booted.supervisor_pid)
        assert not set(now.pids.values()) & old_pids
        assert org.run("after the restart").ok
        assert org.status().genome.id == status.genome.id
    (restart,) = events_named(tmp_path / "ledger.sqlite", "supervisor_restarted")
    assert restart.payload["previous_pid"] == old_supervisor and restart.payload["restarts"] == 1
    endings = endings_per_directive(tmp_path / "ledger.sqlite")
    assert all(endings[d.id] == 1 for d in sent), endings  # exactly one ending each in the ledger


def test_an_answer_stored_before_the_supervisor_died_is_given_again_not_failed(tmp_path, genomes_dir):
    """A directive the ledger holds an answer for, whose answer its client never had (it died with
    the process that was to send it), gets that answer from the replacement."""
    config = slow_config(tmp_path, 0.0)
    genome = load_genome(genomes_dir / "single_coder.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False, timeout=120) as org:
        finished = org.run("finished before")
        assert finished.ok
        org._answered = type(org._answered)()  # as if the answer had never arrived here
        org._unanswered[finished.directive_id] = None
        os.kill(org.booted.supervisor_pid, signal.SIGKILL)
        org.status()  # notices, replaces, recovers
        (again,) = org.wait([type("D", (), {"id": finished.directive_id})()], timeout=60)
        assert again.ok and again.correlation_id == finished.correlation_id
        assert [r.task_id for r in again.results] == [r.task_id for r in finished.results]
        assert again.results == finished.results
    assert endings_per_directive(tmp_path / "ledger.sqlite")[finished.directive_id] == 1


def test_past_its_restart_intensity_the_supervisor_is_not_replaced(tmp_path, genomes_dir):
    config = slow_config(tmp_path, 0.0, restart_intensity=1)
    genome = load_genome(genomes_dir / "single_coder.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False, timeout=120) as org:
        first = org.booted.supervisor_pid
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: not alive(first), 10, "the kill to land")
        assert org.run("once").ok  # the first death is within the intensity, and seen before sending
        os.kill(org.booted.supervisor_pid, signal.SIGKILL)
        with pytest.raises(OrganizationGone, match="died 2 times within 60s"):
            org.status()
