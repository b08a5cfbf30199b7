"""On the multiprocess base a metasystem holds a routed task's events until the result comes back
through it (RuntimeConfig.node_defer_ms), and results go up with the events of the levels below;
nothing is lost: the root's write carries them all, and a stopping organization collects what is
still held before its ledger closes."""

from __future__ import annotations

import sys

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.core.model.events import EventFilter, LedgerEventKind
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization

from actors.test_ledger_writer import ready_writer  # tests/ is on the path
from test_supervision import SLOW_ONCE, wait_for


def routed(ledger_path) -> list:
    with open_ledger(str(ledger_path)) as ledger:
        return ledger.events(EventFilter(kinds=(LedgerEventKind.TaskRouted,)))


def test_held_events_ride_with_the_result(tmp_path, genomes_dir):
    ledger_path = tmp_path / "ledger.sqlite"
    config = RuntimeConfig(ledger_url=str(ledger_path), node_defer_ms=600_000)  # only a result sends them
    genome = load_genome(genomes_dir / "two_level.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        dones = org.run_many(["first", "second", "third"])
        assert all(d.ok for d in dones)
    events = routed(ledger_path)
    assert len(events) == 2 * len(dones)  # root -> team, team -> leaf, for each directive
    assert {e.directive_id for e in events} == {d.directive_id for d in dones}


def test_a_directive_completes_after_every_level_recorded_it(tmp_path, genomes_dir):
    """A leaf's and the teams' events travel up with the result, so the root's write, which the
    completion follows, holds them all: nothing of a finished directive is still on its way."""
    ledger_path = tmp_path / "ledger.sqlite"
    config = RuntimeConfig(ledger_url=str(ledger_path), node_defer_ms=600_000)
    genome = load_genome(genomes_dir / "three_level.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        for i in range(5):
            done = org.run(f"directive {i}")
            assert done.ok
            with open_ledger(str(ledger_path)) as ledger:
                kinds = sorted(e.storage_key for e in ledger.events(EventFilter(directive_id=done.directive_id)))
            # the root, two teams and the leaf: three routings, three results received, one ending
            assert kinds == sorted(["directive_accepted", "task_mapped", *["task_routed"] * 3,
                                    "trace_written", *["task_result_received"] * 3, "other:directive_completed"])


def test_a_stopping_organization_collects_events_still_held(tmp_path, genomes_dir):
    script, marker = tmp_path / "slow_once.py", tmp_path / "started"
    script.write_text(SLOW_ONCE)
    ledger_path = tmp_path / "ledger.sqlite"
    provider = ProviderSpec(name="command", options={"argv": [sys.executable, str(script), str(marker)],
                                                     "workspace": str(tmp_path), "timeout_seconds": 120})
    config = RuntimeConfig(ledger_url=str(ledger_path), provider=provider, node_defer_ms=600_000)
    genome = load_genome(genomes_dir / "single_coder.yaml")
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        directive = org.submit("Write the slow thing")
        wait_for(marker.exists, 30, "the leaf to start executing")
        assert routed(ledger_path) == []  # held by the root while the leaf works
    (event,) = routed(ledger_path)
    assert event.directive_id == directive.id


# Polls the ledger (from outside the organization) for the routing of the task it is executing
# (the second routed task: the first run only warms up).
LOOK_FOR_ROUTING = ("import os, sqlite3, sys, time\n"
                    "if not os.path.exists(sys.argv[2]):\n"
                    "    open(sys.argv[2], 'a').close(); print('warmed up'); sys.exit()\n"
                    "deadline = time.monotonic() + 20\n"
                    "while time.monotonic() < deadline:\n"
                    "    db = sqlite3.connect(sys.argv[1])\n"
                    "    try:\n"
                    "        if db.execute(\"SELECT count(*) FROM ledger_events WHERE kind = 'task_routed'\").fetchone()[0] >= 2:\n"
                    "            print('seen'); break\n"
                    "    except sqlite3.OperationalError:\n"
                    "        pass\n"
                    "    finally:\n"
                    "        db.close()\n"
                    "    time.sleep(0.05)\n"
                    "else:\n"
                    "    print('unseen')\n")


def test_in_process_nothing_is_held(tmp_path, genomes_dir):
    """A leaf's provider call holds up every actor in the process, so held events would wait for
    it: in process the routing is in the ledger while the leaf works."""
    script, ledger_path = tmp_path / "look.py", tmp_path / "ledger.sqlite"
    script.write_text(LOOK_FOR_ROUTING)
    provider = ProviderSpec(name="command", options={"argv": [sys.executable, str(script), str(ledger_path),
                                                              str(tmp_path / "warmed")],
                                                     "workspace": str(tmp_path), "timeout_seconds": 60})
    config = RuntimeConfig(ledger_url=str(ledger_path), provider=provider, node_defer_ms=600_000)
    genome = load_genome(genomes_dir / "single_coder.yaml")
    with Organization.start(genome, config, restore=False) as org:
        ready_writer(ledger_path)  # until the writer process is up, commits wait for timers (see the note)
        org.run("warm up")
        done = org.run("look for your own routing")
    assert done.ok and done.results[0].summary.strip() == "seen"
