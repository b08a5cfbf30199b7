"""Storage faults told truthfully (issue 11 point 6): a full disk, a read-only or locked database and
a lost PostgreSQL connection are reported in plain words, naming the ledger without its password,
by the store, the writer process, at boot and by the CLI; what was acknowledged is never lost, and
writing resumes once the fault is gone.

Every fault here is real: SQLite's own SQLITE_FULL (`PRAGMA max_page_count`, or a tiny tmpfs when
this process may mount one), a `mode=ro` connection, a second connection holding the write lock,
and `pg_terminate_backend` against the PostgreSQL server on 127.0.0.1."""

from __future__ import annotations

import errno
import os
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from vsm_actors.core.model.events import LedgerEvent
from vsm_actors.core.model.variants import Other
from vsm_actors.ledger import EventQuery, LedgerError, LedgerFullError, PeeweeLedger, describe_ledger, open_ledger
from vsm_actors.ledger import _database
from vsm_actors.ledger._database import make_database, parse_target
from vsm_actors.ledger.faults import (
    LedgerDiskFullError, LedgerFaultError, StorageFault, classify_storage_error, describe_storage_error,
    open_failure,
)
from vsm_actors.ledger.writer import WriterProcess

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
PLANTED_PASSWORD = "planted-pw-77"


def events(prefix: str, count: int, size: int = 600) -> list[LedgerEvent]:
    # random text: the ledger stores a repeated long text once, compressed (ledger/_compact.py)
    return [LedgerEvent(id=f"{prefix}-{n}", kind=Other("fault_probe"), created_at=AT,
                        payload={"blob": secrets.token_hex(size)}) for n in range(count)]


def stored_ids(url: str) -> set[str]:
    with open_ledger(url, read_only=True) as ledger:
        return {e.id for e in ledger.events(EventQuery())}


def until(predicate, what: str, timeout: float = 30.0):
    """A deadline loop on a condition (never a sleep standing in for one)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return value


# -- the classifier, on real driver errors -----------------------------------------------------------

def real_full_error(path: Path) -> sqlite3.OperationalError:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x BLOB)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    try:
        for _ in range(100):
            conn.execute("INSERT INTO t VALUES (randomblob(4096))")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("SQLite never filled up")


def test_sqlite_full_is_a_full_disk(tmp_path: Path) -> None:
    exc = real_full_error(tmp_path / "f.sqlite")
    assert exc.sqlite_errorname == "SQLITE_FULL"
    assert classify_storage_error(exc) is StorageFault.DISK_FULL
    text = describe_storage_error(exc, "sqlite:/data/l.sqlite", "writing a batch")
    assert text.startswith("ledger disk is full (sqlite:/data/l.sqlite): writing a batch stored nothing; free space")


def test_the_fault_behind_a_failed_rollback_is_the_one_told(tmp_path: Path) -> None:
    """SQLite ends the transaction itself on SQLITE_FULL; the ROLLBACK that follows fails, and its
    "no transaction is active" must not hide the full disk."""
    path = tmp_path / "f.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0] + 1}")
    try:
        try:
            conn.execute("BEGIN")
            for _ in range(100):
                conn.execute("INSERT INTO t VALUES (randomblob(4096))")
        except sqlite3.OperationalError:
            conn.execute("ROLLBACK")  # raises: the transaction is already gone
        raise AssertionError("no failed rollback")
    except sqlite3.OperationalError as aftermath:
        assert "no transaction is active" in str(aftermath)
        assert classify_storage_error(aftermath) is StorageFault.DISK_FULL
        text = describe_storage_error(aftermath, "sqlite:x")
        assert "disk is full" in text and "no transaction" not in text
    finally:
        conn.close()


def test_a_read_only_connection_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as caught:
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    assert classify_storage_error(caught.value) is StorageFault.READ_ONLY
    assert describe_storage_error(caught.value, "sqlite:r").startswith("ledger database is read-only (sqlite:r)")


def test_a_held_write_lock_is_a_locked_database(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as caught:
        other.execute("INSERT INTO t VALUES (1)")
    holder.close(), other.close()
    assert classify_storage_error(caught.value) is StorageFault.LOCKED
    assert describe_storage_error(caught.value, "sqlite:l").startswith("ledger database is locked (sqlite:l)")


def test_os_errors_and_postgres_codes() -> None:
    assert classify_storage_error(OSError(errno.ENOSPC, "No space left on device")) is StorageFault.DISK_FULL
    assert classify_storage_error(OSError(errno.EROFS, "Read-only file system")) is StorageFault.READ_ONLY

    class PgError(Exception):  # psycopg2 errors carry the server's SQLSTATE as `pgcode`
        def __init__(self, text: str, pgcode: str) -> None:
            super().__init__(text)
            self.pgcode = pgcode

    assert classify_storage_error(PgError("could not extend file", "53100")) is StorageFault.DISK_FULL
    assert classify_storage_error(PgError("cannot execute INSERT", "25006")) is StorageFault.READ_ONLY
    assert classify_storage_error(PgError("terminating connection", "57P01")) is StorageFault.CONNECTION_LOST
    assert classify_storage_error(PgError("connection failure", "08006")) is StorageFault.CONNECTION_LOST


def test_an_io_error_on_a_filesystem_without_room_is_a_full_disk() -> None:
    class ShmError(Exception):  # what SQLite says when it cannot grow its -shm file on a full disk
        sqlite_errorname = "SQLITE_IOERR_SHMSIZE"

    exc = ShmError("disk I/O error")
    assert classify_storage_error(exc) is StorageFault.IO_ERROR
    assert classify_storage_error(exc, free_bytes=10 << 30) is StorageFault.IO_ERROR  # room: the disk is failing
    assert classify_storage_error(exc, free_bytes=0) is StorageFault.DISK_FULL
    assert describe_storage_error(exc, "sqlite:l", "opening the ledger", free_bytes=0) == (
        "ledger disk is full (sqlite:l): opening the ledger failed; free space and writes resume "
        "(disk I/O error; 0 bytes free)")


def test_other_errors_keep_their_own_words_and_no_password(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "u.sqlite")
    conn.execute("CREATE TABLE t (x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as caught:
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    assert classify_storage_error(caught.value) is StorageFault.OTHER
    assert describe_storage_error(caught.value, "sqlite:u", "appending events") == \
        "appending events failed on sqlite:u: UNIQUE constraint failed: t.x"
    leaked = Exception(f"could not connect to postgresql://app:{PLANTED_PASSWORD}@db/x")
    assert PLANTED_PASSWORD not in describe_storage_error(leaked, "postgresql://app@db:5432/x")


def test_an_open_failure_names_the_ledger_once() -> None:
    fault = LedgerFaultError("ledger disk is full (sqlite:/d/l.sqlite): opening the ledger failed")
    assert open_failure(fault, "sqlite:/d/l.sqlite") == f"cannot open the ledger: {fault}"
    assert open_failure(OSError("boom"), "sqlite:/d/l.sqlite") == "cannot open ledger sqlite:/d/l.sqlite: boom"


# -- the store on SQLite -------------------------------------------------------------------------------

def test_a_full_sqlite_ledger_says_so_keeps_what_it_acknowledged_and_resumes(tmp_path: Path) -> None:
    path = str(tmp_path / "l.sqlite")
    ledger = PeeweeLedger(path)
    ledger.write_batch(events("acked", 5), [])
    pages = ledger._db.execute_sql("PRAGMA page_count").fetchone()[0]
    ledger._db.execute_sql(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(LedgerFullError) as caught:  # the batch a writer commits: one transaction
        ledger.write_batch(events("lost", 40), [])
    message = str(caught.value)
    assert isinstance(caught.value, LedgerDiskFullError) and caught.value.fault is StorageFault.DISK_FULL
    assert message.startswith(f"ledger disk is full (sqlite:{path}): writing a batch stored nothing")
    assert "rollback" not in message and "transaction" not in message
    assert {e.id for e in ledger.events()} == {f"acked-{n}" for n in range(5)}
    ledger._db.execute_sql("PRAGMA max_page_count = 1073741823")
    ledger.write_batch(events("later", 3), [])
    ledger.close()
    assert stored_ids(path) == {f"acked-{n}" for n in range(5)} | {f"later-{n}" for n in range(3)}


def test_a_read_only_ledger_says_so(tmp_path: Path) -> None:
    path = str(tmp_path / "l.sqlite")
    with open_ledger(path) as ledger:
        ledger.append_events(events("a", 1))
    reader = PeeweeLedger(path, read_only=True)  # a mode=ro connection: SQLite refuses the write itself
    with pytest.raises(LedgerFaultError) as caught:
        reader.append_events(events("b", 1))
    reader.close()
    assert caught.value.fault is StorageFault.READ_ONLY
    assert str(caught.value).startswith(f"ledger database is read-only (sqlite:{path}): "
                                        "appending events stored nothing")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes a 0444 file anyway")
def test_a_file_without_write_permission_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with open_ledger(str(path)) as ledger:
        ledger.append_events(events("a", 1))
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.chmod(f"{path}{suffix}", 0o444)
    with pytest.raises(LedgerError, match="read-only|cannot open"):
        with open_ledger(str(path)) as ledger:
            ledger.append_events(events("b", 1))


def test_a_locked_ledger_says_so_and_writes_once_the_lock_is_gone(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # the 5 s busy timeout, shortened: what is tested is the message after it, not the wait
    monkeypatch.setitem(_database.SQLITE_PRAGMAS, "busy_timeout", 100)
    monkeypatch.setattr(_database, "BUSY_TIMEOUT_S", 0.1)
    path = str(tmp_path / "l.sqlite")
    ledger = PeeweeLedger(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LedgerFaultError) as caught:
            ledger.write_batch(events("locked", 2), [])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert caught.value.fault is StorageFault.LOCKED
    assert str(caught.value).startswith(f"ledger database is locked (sqlite:{path}): another program held it")
    ledger.write_batch(events("free", 2), [])
    assert {e.id for e in ledger.events()} == {"free-0", "free-1"}
    ledger.close()


# -- a real full filesystem (a tiny tmpfs), when this process may mount one -------------------------------

@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem refuses: the disk is then really full."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(os.urandom(16384))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_filesystem_is_told_as_such_and_so_is_a_restart_on_it(tiny_fs: Path) -> None:
    path = str(tiny_fs / "l.sqlite")
    with open_ledger(path) as ledger:
        ledger.write_batch(events("acked", 3), [])
        filler = fill(tiny_fs)
        with pytest.raises(LedgerFullError, match=rf"^ledger disk is full \(sqlite:{path}\): writing a batch"):
            ledger.write_batch(events("lost", 200), [])
    # a restart on the full disk: the same plain reason
    with open_ledger(path) as ledger:
        with pytest.raises(LedgerFullError, match=rf"^ledger disk is full \(sqlite:{path}\)"):
            ledger.write_batch(events("lost-again", 200), [])
    filler.unlink()
    assert stored_ids(path) == {f"acked-{n}" for n in range(3)}


def test_a_ledger_that_cannot_even_be_created_on_a_full_disk_says_so(tiny_fs: Path) -> None:
    fill(tiny_fs)
    with pytest.raises(LedgerError) as caught:
        open_ledger(str(tiny_fs / "new.sqlite"))
    assert str(caught.value).startswith(f"ledger disk is full (sqlite:{tiny_fs / 'new.sqlite'}): opening the ledger")


def wait_ready(writer: WriterProcess) -> None:
    deadline = time.monotonic() + 30
    while writer.state == "starting" and time.monotonic() < deadline:
        writer.replies(timeout=1.0)  # blocks until the writer reports (ready, or why it failed)
    assert writer.state == "ready", writer.error


def commit(writer: WriterProcess, seq: int, batch: list[LedgerEvent]) -> str | None:
    writer.submit((seq, batch, [], []))
    (reply,) = until(lambda: writer.replies(timeout=1.0), f"batch {seq}'s report")
    assert reply[0] == seq
    return reply[1]


def test_the_writer_process_reports_a_full_disk_and_goes_on(tiny_fs: Path) -> None:
    path = str(tiny_fs / "l.sqlite")
    open_ledger(path).close()
    writer = WriterProcess(path)
    try:
        wait_ready(writer)
        assert commit(writer, 1, events("acked", 3)) is None
        filler = fill(tiny_fs)
        error = commit(writer, 2, events("lost", 200))
        assert error is not None and error.startswith(f"ledger disk is full (sqlite:{path}): writing a batch")
        assert writer.state == "ready"  # the writer is still there for the next batch
        filler.unlink()
        assert commit(writer, 3, events("later", 2)) is None
    finally:
        writer.close()
    assert stored_ids(path) == {"acked-0", "acked-1", "acked-2", "later-0", "later-1"}


# -- PostgreSQL: a lost connection, a read-only session, a server that is not there ------------------------

def with_password(url: str) -> str:
    # trust authentication ignores it: it is planted, to show that no message repeats it
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PLANTED_PASSWORD}@", 1)


def admin_query(base_url: str, sql: str, *params: object) -> list[tuple]:
    # one statement per connection, outside a transaction: pg_stat_activity is a snapshot taken
    # once per transaction, and a fresh look is what is wanted
    admin = make_database(parse_target(base_url))
    admin.connect()
    try:
        return list(admin.execute_sql(sql, params).fetchall())
    finally:
        admin.close()


def terminate(backend_pids: list[int], base_url: str) -> None:
    admin_query(base_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)", backend_pids)
    # pg_terminate_backend only signals: wait until the backends are gone
    until(lambda: not admin_query(base_url, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                                  backend_pids)[0][0], "the backends to exit")


def backends_of(pid: int, base_url: str) -> list[int]:
    """The server processes serving the connections process `pid` holds (by their client ports)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = []
    with open("/proc/net/tcp") as table:
        for line in table.read().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes and int(fields[2].rsplit(":", 1)[1], 16) == 5432:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    rows = admin_query(base_url, "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)", ports)
    return [row[0] for row in rows]


def test_a_lost_postgres_connection_is_told_and_the_next_write_reconnects(postgres_url: str,
                                                                        postgres_base_url: str) -> None:
    url = with_password(postgres_url)
    ledger = PeeweeLedger(url)
    ledger.write_batch(events("acked", 3), [])
    terminate([ledger._db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]], postgres_base_url)
    with pytest.raises(LedgerFaultError) as caught:
        ledger.write_batch(events("lost", 2), [])
    message = str(caught.value)
    assert caught.value.fault is StorageFault.CONNECTION_LOST
    assert message.startswith(f"lost connection to PostgreSQL ({describe_ledger(url)}): writing a batch was not "
                              "acknowledged; the next attempt reconnects")
    assert "postgresql://postgres@127.0.0.1:5432/test?schema=" in message and PLANTED_PASSWORD not in message
    ledger.write_batch(events("later", 2), [])  # a fresh session, not "connection already closed"
    assert {e.id for e in ledger.events()} == {"acked-0", "acked-1", "acked-2", "later-0", "later-1"}
    ledger.close()


def test_the_writer_process_reports_a_lost_postgres_connection_and_reconnects(postgres_url: str,
                                                                            postgres_base_url: str) -> None:
    url = with_password(postgres_url)
    open_ledger(url).close()
    writer = WriterProcess(url)
    try:
        wait_ready(writer)
        assert commit(writer, 1, events("acked", 2)) is None
        terminate(until(lambda: backends_of(writer.proc.pid, postgres_base_url), "the writer's backend"),
                  postgres_base_url)
        error = commit(writer, 2, events("lost", 2))
        assert error is not None and error.startswith(f"lost connection to PostgreSQL ({describe_ledger(url)})")
        assert PLANTED_PASSWORD not in error
        assert commit(writer, 3, events("later", 1)) is None
    finally:
        writer.close()
    assert stored_ids(postgres_url) == {"acked-0", "acked-1", "later-0"}


def test_a_read_only_postgres_session_says_so(postgres_url: str) -> None:
    open_ledger(postgres_url).close()
    reader = PeeweeLedger(postgres_url, read_only=True)
    with pytest.raises(LedgerFaultError) as caught:
        reader.append_events(events("x", 1))
    reader.close()
    assert str(caught.value).startswith(f"ledger database is read-only ({describe_ledger(postgres_url)})")


def test_a_server_that_is_not_there_cannot_be_connected_to(unused_tcp_port: int) -> None:
    url = f"postgresql://postgres:{PLANTED_PASSWORD}@127.0.0.1:{unused_tcp_port}/test"
    with pytest.raises(LedgerFaultError) as caught:
        open_ledger(url)
    assert str(caught.value).startswith(f"cannot connect to PostgreSQL (postgresql://postgres@127.0.0.1:"
                                        f"{unused_tcp_port}/test): opening the ledger failed")
    assert PLANTED_PASSWORD not in str(caught.value)


@pytest.fixture
def unused_tcp_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- an organization: directives in flight fail with the reason; the organization goes on ---------------------

GENOMES = Path(__file__).resolve().parent.parent / "genomes"


def organization(path: str, writer: str):
    from vsm_actors.actors.protocol import RuntimeConfig
    from vsm_actors.files.genome_files import load_genome
    from vsm_actors.system import Organization

    return Organization.start(load_genome(GENOMES / "single_coder.yaml"),
                              RuntimeConfig(ledger_url=path, ledger_writer=writer))


def directive_ids(path: str) -> set[str]:
    with open_ledger(path, read_only=True) as ledger:
        return {e.directive_id for e in ledger.events(EventQuery()) if e.storage_key == "trace_written"}


def test_a_directive_whose_commit_meets_a_locked_ledger_fails_with_that_reason(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_database.SQLITE_PRAGMAS, "busy_timeout", 100)  # in process: the actor's connection
    monkeypatch.setattr(_database, "BUSY_TIMEOUT_S", 0.1)
    path = str(tmp_path / "l.sqlite")
    with organization(path, "inline") as org:
        before = org.run("Before the lock")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            locked = org.run("While another program holds the lock", timeout=60)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        after = org.run("After the lock")
    assert before.ok and after.ok
    assert not locked.ok
    assert locked.error.startswith(f"ledger commit failed: ledger database is locked (sqlite:{path})")
    assert {before.directive_id, after.directive_id} <= directive_ids(path)  # nothing acknowledged is lost


def big_directive() -> str:
    # larger than the WAL's free frames: the commit must grow a file on the full disk
    return "Refactor: " + secrets.token_urlsafe(300_000)


def test_a_full_disk_fails_the_directives_in_flight_and_a_restart_says_the_same(tiny_fs: Path) -> None:
    from vsm_actors.system import OrganizationError

    path = str(tiny_fs / "l.sqlite")
    with organization(path, "process") as org:  # the writer process commits
        before = org.run("Before the disk fills")
        filler = fill(tiny_fs)
        full = org.run(big_directive(), timeout=60)
        filler.unlink()
        after = org.run("After space came back")
    assert before.ok and after.ok and not full.ok
    assert full.error.startswith(f"ledger commit failed: ledger disk is full (sqlite:{path})")
    filler = fill(tiny_fs)
    try:  # a restart on the full disk: at boot, or at the first commit that needs room, the same words
        with organization(path, "process") as org:
            reason = org.run(big_directive(), timeout=60).error
    except OrganizationError as exc:
        reason = str(exc)
    filler.unlink()
    assert reason is not None and f"ledger disk is full (sqlite:{path})" in reason
    assert {before.directive_id, after.directive_id} <= directive_ids(path)


# -- the command line ---------------------------------------------------------------------------------------------

def test_the_cli_tells_a_damaged_ledger_file_plainly(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from vsm_actors.cli import main

    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is no database " * 200)
    result = CliRunner().invoke(main, ["ledger", "events", "--ledger", str(path)])
    assert result.exit_code == 2
    assert f"ledger file is damaged or not a SQLite database (sqlite:{path})" in result.output
    assert "Traceback" not in result.output


def test_vsm_run_on_a_full_disk_says_so_in_plain_words(tiny_fs: Path, tmp_path: Path) -> None:
    import sys

    path = tiny_fs / "l.sqlite"
    open_ledger(str(path)).close()
    directives = tmp_path / "big.txt"  # one directive a line; too long for a command-line argument
    directives.write_text(big_directive() + "\n")
    filler = fill(tiny_fs)
    try:
        proc = subprocess.run([sys.executable, "-m", "vsm_actors", "run", str(GENOMES / "single_coder.yaml"),
                               "--ledger", str(path), "--directives", str(directives), "-q", "-o", "json"],
                              capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL, check=False)
    finally:
        filler.unlink()
    assert proc.returncode == 1, proc.stderr
    assert f"ledger disk is full (sqlite:{path})" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "no transaction is active" not in proc.stdout + proc.stderr
