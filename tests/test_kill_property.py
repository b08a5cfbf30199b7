"""Property (issue 11): whatever processes die during a directive stream, and in whatever order,
every accepted directive is answered exactly once, and the ledger holds exactly one ending for it."""

from __future__ import annotations

import os
import signal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.core.model.events import EventFilter
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization

from test_supervision import wait_for

VICTIMS = ("backend-coder", "backend-reviewer", "backend-team", "root", "ledger", "supervisor")
ENDINGS = ("other:directive_completed", "other:directive_failed")


def victim_pid(org, victim: str) -> int | None:
    status = org.status()  # notices a dead supervisor, and has it replaced, first
    if victim == "supervisor":
        return org.booted.supervisor_pid
    return status.ledger_pid if victim == "ledger" else status.pids.get(victim)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kills=st.lists(st.tuples(st.sampled_from(VICTIMS), st.integers(0, 20)), min_size=1, max_size=3))
def test_every_directive_is_answered_exactly_once_whatever_dies(tmp_path_factory, genomes_dir, kills):
    ledger_path = tmp_path_factory.mktemp("kills") / "ledger.sqlite"
    config = RuntimeConfig(ledger_url=str(ledger_path), watchdog_seconds=0.2, restart_intensity=10)
    genome = load_genome(genomes_dir / "two_level.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        sent = []
        for victim, after in sorted(kills, key=lambda k: k[1]):
            while len(sent) < after:
                sent.append(org.submit(f"directive {len(sent)}, please review it" if len(sent) % 2 else
                                       f"directive {len(sent)}"))
            pid = victim_pid(org, victim)
            if pid is not None and pid != os.getpid():
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: victim_pid(org, victim) not in (None, pid), 20, f"{victim} to be replaced")
        sent += [org.submit(f"directive {len(sent) + i}") for i in range(5)]
        answers = org.wait(sent, timeout=120)
    assert [a.directive_id for a in answers] == [d.id for d in sent]
    with open_ledger(str(ledger_path)) as ledger:
        for d in sent:
            endings = [e for e in ledger.events(EventFilter(directive_id=d.id)) if e.storage_key in ENDINGS]
            assert len(endings) == 1, (d.id, [e.storage_key for e in endings])
