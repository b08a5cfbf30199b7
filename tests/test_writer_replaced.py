"""A killed ledger writer process is replaced; nothing acknowledged is lost, throughput returns."""

from __future__ import annotations

import os
import signal

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.core.model.events import EventFilter
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization

from test_supervision import events_named, processes_mentioning, wait_for


def writer_pids(ledger_path) -> list[int]:
    return [p for p in processes_mentioning("vsm_actors.ledger.writer") if str(ledger_path) in
            open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace")]


def test_a_killed_writer_process_is_replaced(tmp_path, genomes_dir):
    ledger_path = tmp_path / "ledger.sqlite"
    config = RuntimeConfig(ledger_url=str(ledger_path), ledger_writer="process")
    genome = load_genome(genomes_dir / "two_level.yaml")
    with Organization.start(genome, config, restore=False) as org:  # in process: the writer is a child
        before = org.run_many([f"before {i}" for i in range(20)])
        (first,) = wait_for(lambda: writer_pids(ledger_path), 10, "the writer process")
        os.kill(first, signal.SIGKILL)
        during = org.run_many([f"during {i}" for i in range(50)])
        (second,) = wait_for(lambda: [p for p in writer_pids(ledger_path) if p != first], 10, "a new writer")
        after = org.run_many([f"after {i}" for i in range(20)])
        assert all(d.ok for d in (*before, *during, *after))
    (restarted,) = events_named(ledger_path, "ledger_writer_restarted")
    assert restarted.payload["pid"] == second
    with open_ledger(str(ledger_path)) as ledger:
        completed = ledger.events(EventFilter(kinds=()))
    answered = {e.directive_id for e in completed if e.storage_key == "other:directive_completed"}
    assert {d.directive_id for d in (*before, *during, *after)} <= answered
