"""Process helpers shared by the adapters that start child processes."""

from __future__ import annotations

import os
import signal
import threading
import time

OWNER_POLL_S = 1.0   # how often a forked process looks for its owner (noticed within ~1 s)
_owner: int | None = None
_registered = False


def die_with_parent() -> None:
    """In a child, before exec: get SIGKILL when the parent dies (e.g. kill -9), so no helper
    process outlives the actor that started it. Linux only; elsewhere a no-op."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def bind_forks_to_owner(owner: int | None = None) -> None:
    """Every process forked from here on (and every process they fork) exits when `owner` (this
    process by default) is gone, kill -9 included. Thespian's admin daemonizes, so a parent-death
    signal would not reach the actors; each forked process watches the owner instead."""
    global _owner, _registered
    _owner = owner or os.getpid()
    if not _registered:
        os.register_at_fork(after_in_child=_watch_owner_in_child)
        _registered = True


def unbind_forks() -> None:
    global _owner
    _owner = None


def _state(pid: int) -> bytes:
    """The process state letter of /proc/PID/stat (OSError when there is none)."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()[0]


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, killed but not yet reaped, is not running)."""
    try:
        return _state(pid) not in (b"Z", b"X")
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not os.path.isdir("/proc")


def stopped(pid: int) -> bool:
    """True while `pid` is stopped (SIGSTOP, a debugger): alive, but running nothing."""
    try:
        return _state(pid) in (b"T", b"t")
    except OSError:
        return False


def _watch_owner_in_child() -> None:
    owner = _owner
    if owner is None or owner == os.getpid():
        return
    threading.Thread(target=_watch_owner, args=(owner,), name="vsm-owner-watch", daemon=True).start()


def _watch_owner(owner: int) -> None:
    while alive(owner):
        time.sleep(OWNER_POLL_S)  # another process's liveness: there is nothing to wait on
    os.kill(os.getpid(), signal.SIGKILL)


_watched: set[int] = set()


def exit_when_gone(pid: int, before=None) -> None:
    """Kill this process once process `pid` is gone: an actor whose supervisor died must not run
    on as an orphan beside the supervisor that replaces it (OTP links a supervisor's children to
    it the same way). `before` runs first, best effort (the ledger actor reaps its writer there,
    so nothing of the old organization commits once this process is seen gone). Waits on a pidfd
    (woken by the exit itself); polls where there is none. Once per watched pid per process."""
    if pid in _watched or pid == os.getpid():
        return
    _watched.add(pid)
    threading.Thread(target=_wait_then_die, args=(pid, before), name=f"vsm-watch-{pid}", daemon=True).start()


def wait_gone(pid: int, timeout: float | None = None) -> bool:
    """Wait until process `pid` is gone (True) or `timeout` seconds pass (False). Waits on a
    pidfd, which the exit itself wakes; polls where there is none."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        fd = None
    if fd is None:
        while alive(pid):
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(OWNER_POLL_S / 4)  # another process's liveness, with no pidfd to wait on
        return True
    import select
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if poller.poll(None if left is None else left * 1000):
                return True
            if left is not None and time.monotonic() >= deadline:
                return False
    finally:
        os.close(fd)


def _wait_then_die(pid: int, before) -> None:
    wait_gone(pid)
    if before is not None:
        try:
            before()
        except BaseException:  # noqa: BLE001 - dying anyway
            pass
    os.kill(os.getpid(), signal.SIGKILL)


def listener_of(port: int) -> int | None:
    """The pid of the process listening on TCP `port` on this machine (Linux /proc), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{parts[9]}]")
    if not inodes:
        return None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if any(os.readlink(f"/proc/{entry}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{entry}/fd")):
                return int(entry)
        except OSError:
            continue
    return None


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


def kill_session(session: int, grace: float = 2.0, wait: float = 5.0) -> set[int]:
    """Give the processes of `session` `grace` seconds to exit by themselves (Thespian's admin
    is often still on its way out when its shutdown returns), SIGKILL those left, and wait up to
    `wait` seconds for them to be gone; returns those signalled."""
    members = _left_after(session, grace)
    for pid in members:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _left_after(session, wait if members else 0.0)
    return members


def _left_after(session: int, seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while (members := session_members(session)) and time.monotonic() < deadline:
        time.sleep(0.01)  # nothing to wait on for a process that is not our child
    return members
