"""In process, a PostgreSQL ledger is written by the writer process too: the rows it builds from
handed-over data read back as the events and traces the organization produced."""

from __future__ import annotations

import os
from pathlib import Path

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.core.model.events import EventFilter, LedgerEventKind
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization, make_directive

from actors.conftest import wait_until  # tests/ is on the path: its packages are top level

GENOMES = Path(__file__).resolve().parents[2] / "genomes"


def writer_of(url: str) -> int | None:
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if b"vsm_actors.ledger.writer" in argv and url.encode() in argv:
            return int(entry)
    return None


def connected(pid: int) -> bool:
    """The writer opens its ledger (a socket to the server) before it reports ready."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def replies_sent(pid: int) -> int:
    with open(f"/proc/{pid}/io") as fh:
        return int(next(line for line in fh if line.startswith("syscw:")).split()[1])


def test_an_in_process_organization_commits_to_postgresql_through_the_writer(postgres_url: str) -> None:
    genome = load_genome(GENOMES / "two_level.yaml")
    config = RuntimeConfig(ledger_url=postgres_url, ledger_writer="process")
    with Organization.start(genome, config, restore=False) as org:
        pid = wait_until(lambda: writer_of(postgres_url), what="the writer process")
        wait_until(lambda: connected(pid), what="the writer to connect")
        assert org.run("warm up").ok  # the actor learns the writer is ready by now
        before = replies_sent(pid)
        dones = org.run_many([make_directive(f"directive {i}") for i in range(40)])
        assert replies_sent(pid) > before  # batches went to the writer and were acknowledged
    assert all(done.ok for done in dones)
    with open_ledger(postgres_url) as ledger:
        accepted = ledger.events(EventFilter(kinds=(LedgerEventKind.DirectiveAccepted,)))
        assert {d.directive_id for d in dones} <= {e.directive_id for e in accepted}
        traces = ledger.recent_task_traces()
        assert len(traces) == 41
        results = ledger.events(EventFilter(kinds=(LedgerEventKind.TaskResultReceived,)))
        assert {e.payload["status"] for e in results} == {"Completed"}
        assert {e.task_id for e in results} == {t.task_id for t in traces}
