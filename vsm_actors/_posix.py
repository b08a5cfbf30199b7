"""Process helpers shared by the adapters that start child processes."""

from __future__ import annotations

import os
import signal
import time


def die_with_parent() -> None:
    """In a child, before exec: get SIGKILL when the parent dies (e.g. kill -9), so no helper
    process outlives the actor that started it. Linux only; elsewhere a no-op."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def process_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, state, session id) for every process (Linux /proc; elsewhere empty)."""
    table: dict[int, tuple[int, str, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), fields[0].decode(), int(fields[3]))
    return table


def session_members(session: int) -> set[int]:
    """Live processes of `session`, this one excepted. Thespian's TCP admin daemonizes into a
    session of its own that every actor process inherits, so the session marks one
    organization's processes."""
    return {pid for pid, (_ppid, state, sid) in process_table().items()
            if sid == session and state not in ("Z", "X") and pid != os.getpid()}


def kill_session(session: int, wait: float = 5.0) -> set[int]:
    """SIGKILL every live process of `session` and wait up to `wait` seconds for them to be
    gone; returns those signalled."""
    members = session_members(session)
    for pid in members:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + wait
    while members and session_members(session) and time.monotonic() < deadline:
        time.sleep(0.01)  # the kernel tears them down; there is nothing to wait on for a non-child
    return members
