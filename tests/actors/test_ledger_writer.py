"""The ledger writer process: batches commit in order, failures are reported and acknowledged as
failures, a writer that dies loses nothing, and no writer outlives its organization."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from vsm_actors.actors.ledger_actor import LedgerActor
from vsm_actors.actors.protocol import LedgerClose, LedgerClosed, LedgerOpen, LedgerReady, LedgerWrite
from vsm_actors.actors.thespian_base import start_system
from vsm_actors.core.model.events import LedgerEvent, LedgerEventKind
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.ledger.writer import WriterProcess
from vsm_actors.system import make_directive

from .conftest import descendants, scripted, session_members, session_of, wait_until

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def event(n: int, event_id: str | None = None) -> LedgerEvent:
    return LedgerEvent.new(LedgerEventKind.TaskMapped, {"n": n}, id=event_id or str(uuid.uuid4()),
                           created_at=T0 + timedelta(milliseconds=n), node_id="root")


def writer_pids(ledger_path) -> list[int]:
    """Live writer processes for `ledger_path`, found by their command line."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as fh:
                state = fh.read().split(b")")[-1].split()[0]
        except OSError:
            continue
        if b"vsm_actors.ledger.writer" in argv and str(ledger_path).encode() in argv and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def has_open(pid: int, path) -> bool:
    """The process holds `path` open: the writer has opened its ledger and announced it is ready."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def waiting_for_input(pid: int) -> bool:
    """Blocked reading its input pipe (read(2) on the fd its command line names): it has opened
    its ledger, created the schema (a write transaction) and reported ready."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            read_fd = int(fh.read().split(b"\0")[-3])
        with open(f"/proc/{pid}/syscall") as fh:
            call = fh.read().split()
    except (OSError, ValueError):
        return False
    return len(call) > 1 and call[0] == "0" and int(call[1], 16) == read_fd


def ready_writer(ledger_path) -> int:
    pid = wait_until(lambda: (lambda pids: pids[0] if len(pids) == 1 else None)(writer_pids(ledger_path)),
                     what="one writer process")
    wait_until(lambda: has_open(pid, ledger_path), what="the writer to open its ledger")
    # stopping it any earlier could stop it inside its schema transaction, holding the write lock
    wait_until(lambda: waiting_for_input(pid), what="the writer to wait for batches")
    return pid


# -- the process on its own -------------------------------------------------------------------

def wait_ready(writer: WriterProcess) -> None:
    wait_until(lambda: writer.replies(0.05) == [] and writer.state != "starting", what="writer ready")
    assert writer.ready, writer.error


def test_writer_commits_batches_in_order_and_reports_a_failed_batch(tmp_path):
    path = tmp_path / "ledger.sqlite"
    writer = WriterProcess(str(path))
    try:
        wait_ready(writer)
        taken = str(uuid.uuid4())
        writer.submit((1, [event(1), event(2, taken)], [], []))
        assert writer.replies(10) == [(1, None)]
        # a duplicate id fails the whole batch, is reported, and the writer keeps going
        writer.submit((2, [event(3), event(4, taken)], [], []))
        [(seq, error)] = writer.replies(10)
        assert seq == 2 and taken in error
        writer.submit((3, [event(5)], [], []))
        assert writer.replies(10) == [(3, None)]
    finally:
        writer.close()
    assert writer.proc.returncode == 0
    with open_ledger(str(path)) as ledger:
        assert [e.payload["n"] for e in ledger.events(EventQuery())] == [1, 2, 5]


def test_writer_that_cannot_open_its_ledger_says_why(tmp_path):
    writer = WriterProcess(str(tmp_path))  # a directory, not a database file
    try:
        wait_until(lambda: writer.replies(0.05) == [] and writer.state != "starting", what="writer answer")
        assert writer.state == "failed" and str(tmp_path) in writer.error
    finally:
        writer.close()


def test_a_dead_writer_is_reported_not_waited_for(tmp_path):
    writer = WriterProcess(str(tmp_path / "ledger.sqlite"))
    try:
        wait_ready(writer)
        os.kill(writer.proc.pid, signal.SIGKILL)
        wait_until(lambda: writer.replies(0.05) == [] and writer.state == "failed", what="writer death noticed")
        assert "signal 9" in writer.error
    finally:
        writer.close()


# -- inside the ledger actor, on both bases ---------------------------------------------------

@pytest.mark.parametrize("mode", ["process", "inline"])
def test_events_buffered_when_the_ledger_closes_are_committed(base, tmp_path, mode):
    path = tmp_path / "ledger.sqlite"
    before = descendants()
    asys = start_system(base)
    sessions: set[int] = set()
    try:
        ledger = asys.createActor(LedgerActor)
        assert isinstance(asys.ask(ledger, LedgerOpen(url=str(path), writer=mode), 10), LedgerReady)
        if mode == "process":
            pid = ready_writer(path)
            sessions.add(session_of(pid))
        written = [event(n) for n in range(5)]
        for one in written:
            asys.tell(ledger, LedgerWrite(events=(one,)))  # no acknowledgement asked: stays buffered
        assert isinstance(asys.ask(ledger, LedgerClose(), 30), LedgerClosed)
        with open_ledger(str(path)) as store:
            assert [e.id for e in store.events(EventQuery())] == [e.id for e in written]
        assert not writer_pids(path)
    finally:
        asys.shutdown()
        sessions.discard(None)
        sessions.discard(os.getsid(0))  # in process, the writer is this test's child: `descendants` covers it
        wait_until(lambda: not (descendants() - before) and not session_members(sessions), timeout=15,
                   what="processes to exit")


def test_organization_commits_through_the_writer_and_stops_it(org_factory):
    running = org_factory("single_coder", scripted(), ledger_writer="process")
    ready_writer(running.ledger_path)
    dones = running.run_many([make_directive(f"directive {i}") for i in range(30)])
    assert all(d.ok for d in dones)
    accepted = running.events("directive_accepted")
    assert {e.directive_id for e in accepted} >= {d.directive_id for d in dones}
    running.shutdown()
    assert not writer_pids(running.ledger_path)


def test_writer_killed_with_batches_in_flight_loses_nothing(org_factory):
    running = org_factory("two_level", scripted(), ledger_writer="process")
    pid = ready_writer(running.ledger_path)
    os.kill(pid, signal.SIGSTOP)  # the next batch is handed over and never committed
    try:
        first = [running.submit(make_directive(f"before the kill {i}")) for i in range(5)]
    finally:
        os.kill(pid, signal.SIGKILL)
    later = [make_directive(f"after the kill {i}") for i in range(5)]
    dones = running.wait(first) + running.run_many(later)
    assert all(d.ok for d in dones)
    # the ledger actor committed the lost batch itself, once, and everything after it
    accepted = running.events("directive_accepted")
    ids = [e.directive_id for e in accepted]
    assert sorted(ids) == sorted(d.id for d in first + later)
    all_ids = [e.id for e in running.events()]
    assert len(all_ids) == len(set(all_ids))
    # and a new writer process took over from the dead one
    assert [p for p in writer_pids(running.ledger_path) if p != pid]
    assert len(running.events("ledger_writer_restarted")) == 1


def test_inline_mode_starts_no_writer(org_factory):
    running = org_factory("single_coder", scripted(), ledger_writer="inline")
    assert running.run("inline commits").ok
    assert not writer_pids(running.ledger_path)
    assert running.events("trace_written")


def test_auto_mode_uses_a_writer_only_when_the_ledger_shares_the_organizations_process(org_factory, base):
    running = org_factory("single_coder", scripted())
    assert running.run("which writer").ok
    if base == "simple":
        ready_writer(running.ledger_path)
    else:  # the ledger actor has a process of its own: it commits there, with no extra process
        assert not writer_pids(running.ledger_path)
