"""Run one child process with a wall-clock limit, bounded capture and process-group cleanup.

Why not `subprocess.run(timeout=...)`: it kills only the direct child, so a coding agent's own
children (test runners, shells) would survive the timeout and keep the pipes open; and it buffers
all output in memory. Here the child leads a new session, so the whole group can be signalled, and
readers keep only a bounded head of stdout and a bounded tail of stderr.

POSIX only (process groups and `os.waitid`), which is what leaf workers run on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO

from attrs import frozen

from .._posix import die_with_parent

__all__ = ["ProcessRun", "describe_status", "run_process"]

_CHUNK = 65536
# After the leader exits, its descendants are killed and the readers should see EOF at once;
# this only bounds the wait for a descendant that escaped the process group with our pipes.
_READER_JOIN_SECONDS = 5.0


@frozen(kw_only=True)
class ProcessRun:
    """The outcome of one run; `returncode` is negative (-signal) when the child was killed."""

    returncode: int
    stdout: bytes
    stdout_truncated: bool
    stderr_tail: bytes
    timed_out: bool
    duration_ms: int
    pipes_left_open: bool = False

    @property
    def status(self) -> str:
        """Exit status worded like the reference (Rust `ExitStatus` display)."""
        return describe_status(self.returncode)


def describe_status(returncode: int) -> str:
    """Return "exit status: N" or "signal: N (SIGNAME)"."""
    if returncode >= 0:
        return f"exit status: {returncode}"
    number = -returncode
    try:
        return f"signal: {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal: {number}"


def run_process(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    stdin: bytes,
    timeout_seconds: float,
    stdout_limit: int,
    stderr_limit: int,
    kill_grace_seconds: float = 2.0,
) -> ProcessRun:
    """Run `argv` (never through a shell) and return what it did.

    Raises:
        OSError: the program could not be started (missing binary, bad cwd, not executable).
    """
    started = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - argv list, no shell; the caller owns the template
        list(argv), cwd=cwd, env=dict(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True, close_fds=True, preexec_fn=die_with_parent,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdout = _HeadBuffer(stdout_limit)
    stderr = _TailBuffer(stderr_limit)
    threads = [
        _start(_write_all, proc.stdin, stdin),
        _start(_pump, proc.stdout, stdout.add),
        _start(_pump, proc.stderr, stderr.add),
    ]
    exited = _wait_exited(proc.pid, timeout_seconds)
    if not exited:
        # Polite first: let the agent flush and clean up, then make sure.
        _signal_group(proc.pid, signal.SIGTERM)
        _wait_exited(proc.pid, kill_grace_seconds)
    # Always sweep the group: background processes left behind by a finished child are leaks
    # (they hold our pipes and the workspace). The leader is not reaped yet, so its pid (the
    # group id) cannot have been reused by an unrelated process.
    _signal_group(proc.pid, signal.SIGKILL)
    returncode = proc.wait()
    deadline = time.monotonic() + _READER_JOIN_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    pipes_left_open = any(t.is_alive() for t in threads)
    if not pipes_left_open:
        for stream in (proc.stdout, proc.stderr):
            stream.close()
    return ProcessRun(
        returncode=returncode,
        stdout=stdout.value(),
        stdout_truncated=stdout.truncated,
        stderr_tail=stderr.value(),
        timed_out=not exited,
        duration_ms=int((time.monotonic() - started) * 1000),
        pipes_left_open=pipes_left_open,
    )


def _start(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True, name="vsm-provider-io")
    thread.start()
    return thread


def _write_all(stream: IO[bytes], data: bytes) -> None:
    # A child that exits without reading its stdin is not an error by itself; its exit status says.
    try:
        stream.write(data)
        stream.flush()
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            stream.close()
        except OSError:
            pass


def _pump(stream: IO[bytes], sink: Callable[[bytes], None]) -> None:
    fd = stream.fileno()
    while True:
        try:
            chunk = os.read(fd, _CHUNK)
        except OSError:
            return
        if not chunk:
            return
        sink(chunk)


def _wait_exited(pid: int, timeout_seconds: float) -> bool:
    """Wait until `pid` has exited, without reaping it (WNOWAIT keeps its pid reserved)."""
    deadline = time.monotonic() + timeout_seconds
    delay = 0.001
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _HeadBuffer:
    """Keeps the first `limit` bytes; later bytes are drained (so the child never blocks) and dropped."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self._limit - len(self._data)
        if room > 0:
            self._data += chunk[:room]
        if len(chunk) > max(room, 0):
            self.truncated = True

    def value(self) -> bytes:
        return bytes(self._data)


class _TailBuffer:
    """Keeps the last `limit` bytes: for stderr the end (the error) matters most."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        if len(self._data) > self._limit:
            del self._data[: len(self._data) - self._limit]

    def value(self) -> bytes:
        return bytes(self._data)
