"""What only the SQL store has: URLs, the schema version, index use, disk-full and fork safety."""

from __future__ import annotations

import logging
import os
import sqlite3

import pytest

from vsm_actors.core.model.events import EventFilter, LedgerEventKind as K, TraceWindow
from vsm_actors.ledger import (
    LedgerError, LedgerFullError, MemoryLedger, PeeweeLedger, open_ledger,
)

from .builders import event, trace


def test_open_ledger_picks_the_backend(tmp_path, monkeypatch) -> None:
    assert isinstance(open_ledger("memory://"), MemoryLedger)
    for url, engine in [(":memory:", "sqlite"), (str(tmp_path / "a.sqlite"), "sqlite"),
                        (f"sqlite:///{tmp_path / 'b.sqlite'}", "sqlite")]:
        ledger = open_ledger(url)
        assert isinstance(ledger, PeeweeLedger) and ledger.target.engine == engine
        ledger.close()
    assert (tmp_path / "b.sqlite").exists()
    monkeypatch.setenv("VSM_LEDGER", str(tmp_path / "env.sqlite"))
    open_ledger().close()
    assert (tmp_path / "env.sqlite").exists()


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://x/y", "unsupported ledger URL"),
    ("sqlite://", "names no database"),
    ("postgresql://u@127.0.0.1:5432/", "names no database"),
    ("postgresql://u@127.0.0.1/db?schema=a;drop", "plain identifier"),
    ("postgresql://u@127.0.0.1/db?sslmode=x", "unknown parameter"),
])
def test_bad_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(LedgerError, match=message):
        open_ledger(url)


def test_unreachable_postgres_is_a_storage_error_without_the_password() -> None:
    with pytest.raises(LedgerError, match="opening the ledger failed") as caught:
        open_ledger("postgresql://someone:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(caught.value)


def test_sqlite_pragmas_and_schema_version(tmp_path) -> None:
    path = tmp_path / "l.sqlite"
    ledger = PeeweeLedger(str(path))
    pragmas = {p: ledger._db.execute_sql(f"PRAGMA {p}").fetchone()[0]
               for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}
    ledger.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(LedgerError, match="schema version 99"):
        PeeweeLedger(str(path))


def test_a_file_that_is_not_a_database_is_refused(tmp_path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="not a database"):
        PeeweeLedger(str(path))


def test_queries_use_indexes(tmp_path, caplog) -> None:
    """Filtered event reads and subtree reads are index searches, never full scans."""
    ledger = PeeweeLedger(str(tmp_path / "l.sqlite"))
    ledger.append_events([event(f"e{i}", K.TaskRouted, i, node_id=f"n{i % 5}") for i in range(50)])
    ledger.write_traces([trace(f"t{i}", f"n{i % 5}", i, ("team", "root")) for i in range(50)])
    caplog.set_level(logging.DEBUG, logger="peewee")
    for name in ("node_id", "task_id", "directive_id", "correlation_id"):
        ledger.events(EventFilter(**{name: "n1"}, limit=5))
    ledger.events(EventFilter(kinds=(K.TaskRouted,), limit=5))
    ledger.subtree_task_traces("team", TraceWindow(limit=5))
    statements = [r.msg for r in caplog.records if isinstance(r.msg, tuple) and r.msg[0].startswith("SELECT")]
    assert len(statements) == 6
    for sql, params in statements:
        plan = [row[-1] for row in ledger._db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
        assert not any(step.startswith("SCAN") for step in plan), (sql, plan)
    ledger.close()


def test_disk_full_is_reported_and_recoverable(tmp_path) -> None:
    """A full database refuses the batch whole, says so, and accepts writes once space is back."""
    ledger = PeeweeLedger(str(tmp_path / "l.sqlite"))
    pages = ledger._db.execute_sql("PRAGMA page_count").fetchone()[0]
    ledger._db.execute_sql(f"PRAGMA max_page_count = {pages + 2}")
    big = [event(f"e{i}", K.TaskRouted, i, payload={"blob": "x" * 2000}) for i in range(100)]
    with pytest.raises(LedgerFullError, match="full"):
        ledger.append_events(big)
    assert ledger.events() == []
    ledger._db.execute_sql("PRAGMA max_page_count = 1073741823")
    ledger.append_events(big)
    assert len(ledger.events()) == 100
    ledger.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_opens_its_own_connection(tmp_path) -> None:
    path = tmp_path / "l.sqlite"
    ledger = PeeweeLedger(str(path))
    ledger.append_event(event("parent-1", K.TaskMapped, 1))
    pid = os.fork()
    if pid == 0:  # child: must not touch the parent's connection
        code = 1
        try:
            ledger.append_events([event(f"child-{i}", K.TaskRouted, 2 + i) for i in range(100)])
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    ledger.append_event(event("parent-2", K.TaskMapped, 500))
    assert len(ledger.events()) == 102
    assert ledger._db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
    ledger.close()
