"""Readers only read: a read-only ledger never creates a schema, refuses a database that is not a
vsm ledger, never writes, and does not wait for a writer holding the database (issue 11 point 5)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from vsm_actors.core.model.events import LedgerEvent
from vsm_actors.core.model.variants import Other
from vsm_actors.ledger import EventQuery, LedgerError, PeeweeLedger, open_ledger

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def an_event(n: int) -> LedgerEvent:
    return LedgerEvent(id=f"ev-{n}", kind=Other("probe"), created_at=AT, node_id="root", payload={"n": n})


def vsm(*args):
    return subprocess.run([sys.executable, "-m", "vsm_actors", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def test_a_zero_byte_file_is_not_a_ledger_and_stays_zero_bytes(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.write_bytes(b"")
    with pytest.raises(LedgerError, match="is not a vsm ledger"):
        open_ledger(str(path), read_only=True)
    assert path.read_bytes() == b""
    proc = vsm("ledger", "events", "--ledger", path)
    assert proc.returncode == 2 and "is not a vsm ledger" in proc.stderr and path.read_bytes() == b""


def test_another_programs_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table accounts(id integer primary key, name text)")
    before = path.read_bytes()
    proc = vsm("ledger", "traces", "--ledger", path)
    assert proc.returncode == 2 and "not a vsm ledger (it has accounts)" in proc.stderr
    assert path.read_bytes() == before
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("select name from sqlite_master")] == ["accounts"]


def test_a_reader_never_writes_and_does_not_wait_for_a_writer(tmp_path):
    path = str(tmp_path / "ledger.sqlite")
    with open_ledger(path) as writer:
        writer.append_events([an_event(1)])
        hold = sqlite3.connect(path, isolation_level=None, timeout=0.1)
        hold.execute("BEGIN IMMEDIATE")  # another process mid-write, holding the write lock
        try:
            with open_ledger(path, read_only=True) as reader:
                assert [e.id for e in reader.events(EventQuery())] == ["ev-1"]
                with pytest.raises(LedgerError):
                    reader.append_events([an_event(2)])
        finally:
            hold.execute("ROLLBACK")
            hold.close()
    with open_ledger(path, read_only=True) as reader:
        assert [e.id for e in reader.events(EventQuery())] == ["ev-1"]


def test_postgres_readers_only_read(postgres_url):
    with pytest.raises(LedgerError, match="is not a vsm ledger"):
        PeeweeLedger(postgres_url, read_only=True)
    with PeeweeLedger(postgres_url) as writer:
        writer.append_events([an_event(1)])
    with PeeweeLedger(postgres_url, read_only=True) as reader:
        assert [e.id for e in reader.events(EventQuery())] == ["ev-1"]
        with pytest.raises(LedgerError):
            reader.append_events([an_event(2)])
