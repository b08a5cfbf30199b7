"""A ledger writer in a process of its own, so commits run on another core.

Why a process: in-process, the actors and SQLite share one interpreter. Encoding an event and
inserting it cost more than routing it (benchmarks/throughput.py), and a writer *thread* does not
help: `executemany` takes the GIL back for every row and waits out the 5 ms switch interval each
time a busy actor thread holds it (measured: 4.4 ms a row). A child process owns its GIL.

The ledger actor stays the only writer: this process writes on its behalf, one batch at a time,
in the order handed over, and each batch is one transaction, as before. On SQLite its commits
never checkpoint the log; a thread of its own does (`_checkpoint`).

Protocol, over two pipes with `multiprocessing.connection` framing:

    parent -> writer   encode_batch(seq, events, traces, champions)   champions: [(key, genome), ...]
    writer -> parent   (pickled) ("ready", pid) once the ledger is open, or ("failed", message)
                       (seq, None) after a batch committed, (seq, message) when it did not

End of input makes the writer finish the batch in hand, close the ledger and exit. It ignores
SIGINT (Ctrl-C reaches the whole process group; the parent decides when writing stops) and gets
SIGKILL if its parent dies, so it never outlives the organization.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import select
import signal
import subprocess
import sys
from multiprocessing.connection import Connection

from .._posix import die_with_parent
from ._handover import batch_seq, decode_batch, encode_batch
from .base import write_state

log = logging.getLogger("vsm.ledger.writer")

Batch = tuple  # (seq, events, traces, champions)


class WriterProcess:
    """The parent's handle on one writer process. Nothing here blocks unless asked to."""

    def __init__(self, url: str) -> None:
        to_child, child_in = os.pipe()
        child_out, from_child = os.pipe()
        _widen(child_in)
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own module, argv list
                [sys.executable, "-m", "vsm_actors.ledger.writer", url, str(to_child), str(from_child)],
                pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
                env=_child_env())
        except BaseException:
            for fd in (to_child, child_in, child_out, from_child):
                os.close(fd)
            raise
        os.close(to_child)
        os.close(from_child)
        self._out = Connection(child_in, readable=False)
        self._in = Connection(child_out, writable=False)
        self._readable = select.poll()  # one syscall per look; Connection.poll builds a selector
        self._readable.register(child_out, select.POLLIN)
        self.state = "starting"   # starting -> ready -> (closed | failed)
        self.error: str | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def replies(self, timeout: float = 0.0) -> list[tuple[int, str | None]]:
        """Batches reported since the last call, as (seq, error or None). Waits up to `timeout`
        for the first report; a dead writer turns the state to "failed"."""
        out: list[tuple[int, str | None]] = []
        if timeout == 0.0 and not self._readable.poll(0):
            return out
        try:
            while self.state in ("starting", "ready") and self._in.poll(timeout):
                timeout = 0.0
                first, second = self._in.recv()
                if first == "ready":
                    self.state = "ready"
                elif first == "failed":
                    self.state, self.error = "failed", second
                else:
                    out.append((first, second))
        except (EOFError, OSError):
            self.state = "failed"
            self.error = f"ledger writer process {self.proc.pid} exited ({_status(self.proc)})"
        return out

    def submit(self, batch: Batch) -> None:
        """Hand over one batch; a writer that is gone turns the state to "failed"."""
        try:
            self._out.send_bytes(encode_batch(*batch))
        except (OSError, ValueError) as exc:
            self.state = "failed"
            self.error = f"ledger writer process {self.proc.pid} is gone: {exc}"

    def close(self, timeout: float = 30.0) -> None:
        """End input, let the writer finish and exit; kill it if it does not within `timeout`."""
        if self.state in ("starting", "ready"):
            self.state = "closed"
        for conn in (self._out, self._in):
            if not conn.closed:
                conn.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("ledger writer %d did not exit within %.0fs; killing it", self.proc.pid, timeout)
            self.proc.kill()
            self.proc.wait()


def _widen(fd: int) -> None:
    """A batch under load is hundreds of kilobytes; through the default 64 KB pipe the actor's
    write blocks and resumes a dozen times while the writer drains it. Linux lets a pipe grow to
    pipe-max-size (1 MB by default); elsewhere, or if refused, the default stays."""
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        except OSError:
            pass


def _child_env() -> dict[str, str]:
    """Our environment, with this package importable however the parent found it."""
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": package_parent + (os.pathsep + path if path else "")}


def _status(proc: subprocess.Popen) -> str:
    try:  # its pipe closed as it died: the exit status follows within moments
        code = proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        return "still running, pipe closed"
    return f"signal {-code}" if code < 0 else f"exit status {code}"


def serve(url: str, inbox: Connection, outbox: Connection) -> int:
    from . import describe_ledger
    from .faults import open_failure
    from .store import PeeweeLedger

    try:
        ledger = PeeweeLedger(url, background_checkpoints=True)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which falls back to itself
        outbox.send(("failed", open_failure(exc, describe_ledger(url))))  # never the URL's password
        return 1
    # everything so far lives as long as the process; new rows die young and acyclic: keep the
    # collector's passes off the former and rare over the latter
    gc.collect()
    gc.freeze()
    gc.set_threshold(5000, *gc.get_threshold()[1:])
    try:
        outbox.send(("ready", os.getpid()))
        while True:
            try:
                frame = inbox.recv_bytes()
            except EOFError:
                return 0
            seq = batch_seq(frame)
            try:
                seq, events, traces, champions = decode_batch(frame)
                ledger.write_rows(events, traces)
                for item in champions:
                    write_state(ledger, item)
            except Exception as exc:  # noqa: BLE001 - the parent turns it into unacknowledged events
                # a storage fault's message is already plain ("ledger disk is full (...)", faults.py);
                # the batch is not retried here: the parent answers its waiting senders with it
                outbox.send((seq, str(exc)))
            else:
                outbox.send((seq, None))
    finally:
        ledger.close()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    url, read_fd, write_fd = argv
    inbox = Connection(int(read_fd), writable=False)
    outbox = Connection(int(write_fd), readable=False)
    try:
        return serve(url, inbox, outbox)
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the parent is gone; nothing is waiting for an answer


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
