"""SQLite WAL checkpoints on a thread of their own, so the ledger writer never waits for a disk.

Why: with SQLite's automatic checkpoint, every ~1,000 pages the commit that crosses the line also
copies the log into the database file and fsyncs both, ~10 ms here. Under load that was a third
of the writer process's time per directive (benchmarks/throughput.py: three_level in process
2,350 directives/s with it, 3,400 without). A checkpoint only needs the database to itself for
the short moment it takes the checkpoint lock; a PASSIVE one on another connection runs while
the writer keeps appending, and the fsyncs wait on the disk with the GIL released.

Durability is unchanged: commits are written to the log exactly as before (synchronous=NORMAL),
and the checkpoints are the same checkpoints with the same syncs, run elsewhere.

The log starts over only when a transaction begins with every frame already copied. Under a
steady stream the writer commits while a checkpoint runs, so that moment may never come by
itself; once the log holds `restart_frames`, the writer waits for one checkpoint that starts
after its last commit (it copies only what came since the previous one) and its next
transaction starts the log over. A reader holding an old snapshot keeps the log from starting
over whatever we do; the writer then waits again only after the log has grown by another
`restart_frames`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque

log = logging.getLogger("vsm.ledger.checkpoint")

WAIT_S = 30.0


class WalCheckpointer:
    """One daemon thread running `PRAGMA wal_checkpoint(PASSIVE)` when the writer asks for it.

    The writer's own connection must have `wal_autocheckpoint=0`; it calls `committed(rows)`
    after each commit and `close()` before closing its connection.
    """

    def __init__(self, path: str, *, nudge_rows: int = 400, restart_frames: int = 8192,
                 busy_timeout_s: float = 5.0) -> None:
        self._path = path
        self._nudge_rows = nudge_rows
        self._restart_frames = restart_frames
        self._busy_timeout_s = busy_timeout_s
        self._cond = threading.Condition()
        self._rows = 0            # rows committed since the last request
        self._commits = 0
        self._requested = 0       # checkpoint passes asked for
        self._finished = 0        # passes done (each covers every request made before it began)
        self._log_frames = 0      # frames in the log after the last pass
        self._wait_above = restart_frames
        self._closing = False
        self.passes = 0
        self.errors: deque[str] = deque(maxlen=10)  # the latest
        self._thread = threading.Thread(target=self._run, name="vsm-wal-checkpoint", daemon=True)
        self._thread.start()

    @property
    def log_frames(self) -> int:
        return self._log_frames

    def committed(self, rows: int) -> None:
        """Called by the writer after each commit of `rows` rows."""
        with self._cond:
            self._rows += rows
            self._commits += 1
            if self._log_frames >= self._wait_above:
                self._wait_for_pass(self._request())
            elif self._rows >= self._nudge_rows:
                self._request()

    def checkpoint_now(self) -> None:
        """Ask for a pass and wait until it is done (tests; a writer falling idle)."""
        with self._cond:
            self._wait_for_pass(self._request())

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(WAIT_S)

    def _request(self) -> int:
        self._rows = 0
        self._requested += 1
        self._cond.notify_all()
        return self._requested

    def _wait_for_pass(self, ticket: int) -> None:
        if not self._cond.wait_for(lambda: self._finished >= ticket or not self._thread.is_alive(), WAIT_S):
            log.warning("WAL checkpoint of %s did not finish within %.0fs", self._path, WAIT_S)
        if self._log_frames >= self._wait_above:
            # a reader pins the log: waiting again before it grows further would stall every commit
            self._wait_above = self._log_frames + self._restart_frames

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._requested > self._finished or self._closing)
                    if self._requested <= self._finished:
                        return
                    ticket, commits = self._requested, self._commits
                if conn is None:
                    conn = self._connect()
                result = None if conn is None else self._pass(conn)
                with self._cond:
                    self._finished = ticket
                    self.passes += 1
                    if result is not None:
                        frames, all_copied = result
                        # and no commit since the pass began: the next transaction starts the log over
                        self._log_frames = 0 if all_copied and self._commits == commits else frames
                        if self._log_frames < self._restart_frames:
                            self._wait_above = self._restart_frames
                    self._cond.notify_all()
        finally:
            if conn is not None:
                conn.close()
            with self._cond:
                self._finished = self._requested  # nobody waits on a thread that is gone
                self._cond.notify_all()

    def _connect(self) -> sqlite3.Connection | None:
        try:
            return sqlite3.connect(self._path, timeout=self._busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            self._failed(exc)
            return None

    def _pass(self, conn: sqlite3.Connection) -> tuple[int, bool] | None:
        """Frames in the log and whether all were copied; None if the checkpoint failed."""
        try:
            _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            self._failed(exc)
            return None
        return frames, frames == copied

    def _failed(self, exc: sqlite3.Error) -> None:
        # the writer's commits stand on their own; a later pass, or SQLite at close, catches up
        log.warning("WAL checkpoint of %s failed: %s", self._path, exc)
        with self._cond:
            self.errors.append(str(exc))
