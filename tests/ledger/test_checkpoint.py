"""WAL checkpoints on their own thread (`vsm_actors/ledger/_checkpoint.py`): the writer's commits
never checkpoint, the log is still copied into the database file and starts over under a steady
stream, and a reader pinning the log does not make every commit wait."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from vsm_actors.core.model.events import EventFilter
from vsm_actors.ledger._checkpoint import WalCheckpointer
from vsm_actors.ledger.store import PeeweeLedger

from vsm_actors.core.model.events import LedgerEventKind

from .builders import event

PAGE = 4096
FRAME = 24 + PAGE  # a WAL frame: header and one page


def writer_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the table itself is in the database file
    return conn


def commit_rows(conn: sqlite3.Connection, start: int, n: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(k, "x" * 3000) for k in range(start, start + n)])
    conn.execute("COMMIT")


def wal_size(path: Path) -> int:
    """The log's high-water mark: a log that starts over is written again from its beginning."""
    return os.path.getsize(f"{path}-wal")


def rows_in_database_file(path: Path, tmp: Path) -> int:
    """Rows the database file holds by itself, without its log: what checkpoints copied."""
    alone = tmp / "alone.sqlite"
    shutil.copyfile(path, alone)
    with sqlite3.connect(alone) as conn:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]


def test_without_checkpoints_the_log_holds_everything(tmp_path: Path) -> None:
    """The baseline the other tests improve on: autocheckpoint off and nothing else grows the log."""
    db = tmp_path / "l.sqlite"
    conn = writer_connection(db)
    for i in range(200):
        commit_rows(conn, i * 5, 5)
    assert wal_size(db) > 200 * 5 * PAGE
    assert rows_in_database_file(db, tmp_path) == 0
    conn.close()


def test_the_log_is_copied_and_starts_over_under_a_steady_stream(tmp_path: Path) -> None:
    db = tmp_path / "l.sqlite"
    conn = writer_connection(db)
    checkpointer = WalCheckpointer(str(db), nudge_rows=20, restart_frames=100)
    for i in range(400):
        commit_rows(conn, i * 5, 5)  # ~5 pages a commit: 2,000 pages in all
        checkpointer.committed(5)
    checkpointer.checkpoint_now()
    # bounded by the restart line plus what one pass lets through, far below 2,000 frames
    assert wal_size(db) < 600 * FRAME
    assert checkpointer.passes >= 20 and not checkpointer.errors
    assert rows_in_database_file(db, tmp_path) == 2000
    checkpointer.close()
    conn.close()


def test_a_reader_pinning_the_log_does_not_make_every_commit_wait(tmp_path: Path) -> None:
    db = tmp_path / "l.sqlite"
    conn = writer_connection(db)
    commit_rows(conn, 0, 5)
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 5  # holds this snapshot
    checkpointer = WalCheckpointer(str(db), nudge_rows=50, restart_frames=100)
    commits = 400
    for i in range(1, commits + 1):
        commit_rows(conn, i * 5, 5)
        checkpointer.committed(5)
    pinned = checkpointer.log_frames
    # a wait per commit would be a pass per commit; the writer waits once per 100 frames of growth
    assert pinned > 1000
    assert checkpointer.passes < commits / 4
    reader.execute("COMMIT")
    reader.close()
    checkpointer.checkpoint_now()  # the reader is gone: everything is copied now ...
    assert checkpointer.log_frames == 0
    high_water = wal_size(db)
    for i in range(commits + 1, commits + 200):
        commit_rows(conn, i * 5, 5)
        checkpointer.committed(5)
    assert wal_size(db) == high_water  # ... and the log started over instead of growing
    checkpointer.close()
    conn.close()


def test_a_failed_checkpoint_is_reported_and_commits_go_on(tmp_path: Path) -> None:
    db = tmp_path / "l.sqlite"
    conn = writer_connection(db)
    checkpointer = WalCheckpointer(str(tmp_path / "missing-dir" / "nothing.sqlite"), nudge_rows=1)
    commit_rows(conn, 0, 5)
    checkpointer.committed(5)
    checkpointer.checkpoint_now()
    assert checkpointer.errors
    commit_rows(conn, 5, 5)
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 10
    checkpointer.close()
    conn.close()


def test_a_ledger_with_background_checkpoints_commits_without_checkpointing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = PeeweeLedger(str(path), background_checkpoints=True)
    assert ledger._ready().execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    events = [event(f"e{i:04}", LedgerEventKind.TaskRouted, i, payload={"text": "y" * 2000}) for i in range(300)]
    for start in range(0, 300, 10):
        ledger.write_batch(events[start:start + 10], [])
    ledger._checkpointer.checkpoint_now()
    alone = tmp_path / "alone.sqlite"
    shutil.copyfile(path, alone)  # the database file without its log holds every event
    with sqlite3.connect(alone) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0] == 300
    ledger.close()
    with PeeweeLedger(str(path)) as reopened:
        assert [e.id for e in reopened.events(EventFilter())] == [e.id for e in events]
        assert reopened._ready().execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
