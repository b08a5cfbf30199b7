"""The supervisor of a `vsm up` organization, kept: `vsm up`'s server process stays, watches the
supervisor's process, and replaces it when it dies (`keeper.SupervisorKeeper`), writing the new
supervisor into the state file; attached clients (`vsm send`, `vsm status`) find it there and
recover what they waited for from it (`StateFileKeeper`). `vsm down` stops the keeper first.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time

from .._posix import alive, wait_gone
from ..actors.protocol import Booted
from ..actors.supervisor import OrganizationActor
from ..keeper import OrganizationStopped, Replacement, SupervisorGaveUp, SupervisorKeeper

log = logging.getLogger("vsm.keeper")
REPLACEMENT_WAIT_S = 60.0  # how long a client waits for the keeper to boot a new supervisor


def state_path(state_dir: str) -> str:
    return os.path.join(state_dir, "organization.json")


def write_state(state_dir: str, state: dict) -> None:
    """Atomically, readable by its owner only: it holds the organization's frame key."""
    tmp = state_path(state_dir) + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        json.dump(state, fh)
    os.replace(tmp, state_path(state_dir))


def keep(keeper: SupervisorKeeper, supervisor, state: dict, state_dir: str, admin_pid: int | None) -> int:
    """Until `vsm down` (SIGTERM) or the admin is gone: replace the supervisor each time it dies.
    Returns the exit status: 0, or 1 once the keeper gave up (said in the state file and the log)."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    pid = state["supervisor_pid"]
    while not stopping:
        if not wait_gone(pid, timeout=1.0):
            if admin_pid is not None and not alive(admin_pid):
                return 0  # the actor system is gone: nothing left to keep
            continue
        if stopping or (admin_pid is not None and not alive(admin_pid)):
            return 0
        try:
            new = keeper.replace(supervisor, pid, "its process is gone", [])
        except SupervisorGaveUp as exc:
            log.error("%s", exc)
            write_state(state_dir, {**state, "supervisor_gave_up": str(exc)})
            return 1
        supervisor, pid = new.address, new.pid
        state = {**state, "supervisor_pid": pid, "supervisor_restarts": new.restarts}
        write_state(state_dir, state)
    return 0


def keeper_running(state: dict, state_dir: str) -> int | None:
    """The state file's keeper process, when it still runs as this organization's server."""
    pid = state.get("keeper_pid")
    if not pid or not alive(pid):
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return None
    return pid if b"_serve" in argv and os.path.abspath(state_dir).encode() in argv else None


def stop_keeper(state: dict, state_dir: str, wait: float = 10.0) -> None:
    pid = keeper_running(state, state_dir)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, timeout=wait):
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, timeout=wait)


def replacement_state(state_dir: str, old_pid: int | None, wait: float = REPLACEMENT_WAIT_S) -> dict:
    """The state file once it names a live supervisor other than `old_pid` (the keeper replaced
    it); SupervisorGaveUp when the keeper gave up, is gone, or takes longer than `wait`."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with open(state_path(state_dir), encoding="utf-8") as fh:
                state = json.load(fh)
        except FileNotFoundError:
            raise OrganizationStopped("the organization stopped (`vsm down`)") from None
        pid = state.get("supervisor_pid")
        if pid != old_pid and pid is not None and alive(pid):
            return state
        if state.get("supervisor_gave_up"):
            raise SupervisorGaveUp(state["supervisor_gave_up"])
        if keeper_running(state, state_dir) is None:
            raise OrganizationStopped("the organization stopped (its server process, which replaces a dead "
                                      "supervisor, is gone)")
        if time.monotonic() > deadline:
            raise SupervisorGaveUp(f"no replacement within {wait:g}s")
        time.sleep(0.05)  # another process's progress, recorded in a file: nothing to wait on


class StateFileKeeper:
    """An attached client's keeper: the server replaces the supervisor; this finds the new one."""

    def __init__(self, asys, state_dir: str, global_name: str) -> None:
        self.asys, self.state_dir, self.global_name = asys, state_dir, global_name

    def replace(self, old_address, old_pid, reason: str, stash: list) -> Replacement:
        state = replacement_state(self.state_dir, old_pid)
        deadline = time.monotonic() + REPLACEMENT_WAIT_S
        while (address := self.asys.createActor(OrganizationActor, globalName=self.global_name)) == old_address:
            if time.monotonic() > deadline:
                raise SupervisorGaveUp("the actor system still names the dead supervisor")
            time.sleep(0.05)  # the admin's bookkeeping of another process's exit
        booted = Booted(genome_id=state["genome_id"], node_count=state["node_count"], restored=True,
                        supervisor_pid=state["supervisor_pid"])
        return Replacement(address=address, booted=booted, pid=state["supervisor_pid"],
                           restarts=state.get("supervisor_restarts", 0))

    def note(self, status) -> None:
        pass
