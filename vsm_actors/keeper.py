"""Restarting a dead supervisor from outside it, as an OTP supervisor is restarted by its own.

On the multiprocess base the supervisor creates every node actor and the ledger actor, so when
its process dies nothing restarts a node any more. Its actors watch its process and exit with it
(`_posix.exit_when_gone`; the ledger actor reaps its writer first), so a replacement never runs
beside orphans of the old organization. The keeper, the process that started the organization
(`Organization.start`'s client, or `vsm up`'s server), then, within a restart intensity:

1. waits until the old organization's processes it knows of are gone (SIGKILL after a grace),
2. creates a new supervisor and boots it from the ledger: the champion, pauses, budgets and
   evolution state come back as at any restart,
3. records `supervisor_restarted` (the old and new process, the reason, how many so far).

Every client then asks the new supervisor for each directive it still waits for
(`RecoverDirectives` with `rebuild`): one the ledger holds an answer for gets that answer again
(clients drop a repeat), any other a failure saying the supervisor restarted. So no directive is
left unanswered, and none is answered twice. Past the intensity the keeper gives up with
`SupervisorGaveUp`: a supervisor that dies on every boot is not booted forever.
"""

from __future__ import annotations

import logging
import os
import signal
import time

from attrs import frozen

from ._posix import alive
from .actors.protocol import Boot, Booted, LedgerReady, RuntimeConfig, StatusReply, StatusRequest
from .actors.protocol_control import EventRecorded, RecordEvent
from .actors.supervisor import OrganizationActor
from .core.control.restarts import RestartIntensity, RestartWindow
from .core.model.genome import OrganizationalGenome

log = logging.getLogger("vsm.keeper")
SUPERVISOR_INTENSITY = RestartIntensity(max_restarts=3, period_seconds=60.0)
_GRACE_S = 5.0     # for the old organization's actors to see their supervisor gone and exit


class SupervisorGaveUp(RuntimeError):
    """The supervisor died more often than its restart intensity allows, or could not be booted."""


class OrganizationStopped(SupervisorGaveUp):
    """Nothing replaces the supervisor because the organization was stopped (`vsm down`)."""


@frozen
class Replacement:
    address: object
    booted: Booted
    pid: int
    restarts: int


class SupervisorKeeper:
    """Boots a replacement for a dead supervisor of one organization. `stash` receives whatever
    else arrives while it waits for the new supervisor's replies (the client's own answers)."""

    def __init__(self, asys, genome: OrganizationalGenome, config: RuntimeConfig, *, global_name: str | None = None,
                 intensity: RestartIntensity = SUPERVISOR_INTENSITY, timeout: float = 60.0) -> None:
        self.asys, self.genome, self.config, self.global_name = asys, genome, config, global_name
        self.intensity, self.timeout = intensity, timeout
        self.window = RestartWindow()
        self.restarts = 0
        self.known_pids: dict[int, int] = {}  # pid -> its session, so a reused pid is never killed

    def note(self, status: StatusReply) -> None:
        """The organization's processes as the supervisor last reported them: waited for when it dies."""
        own = os.getpid()
        self.known_pids = {}
        for pid in (*status.pids.values(), status.ledger_pid):
            if pid not in (None, own):
                try:
                    self.known_pids[pid] = os.getsid(pid)
                except OSError:
                    pass

    def replace(self, old_address, old_pid: int, reason: str, stash: list) -> Replacement:
        self.window, allowed = self.window.admit(time.monotonic(), self.intensity)
        if not allowed:
            raise SupervisorGaveUp(f"the supervisor died {self.intensity.max_restarts + 1} times within "
                                   f"{self.intensity.period_seconds:g}s; not restarting it again ({reason})")
        _wait_gone({**self.known_pids, old_pid: None})
        address = self._new_supervisor(old_address)
        booted = self._ask(address, Boot(genome=self.genome, config=self.config, restore=True, if_changed="resume"),
                           Booted, stash)
        if booted.error:
            raise SupervisorGaveUp(f"the replacement supervisor did not boot: {booted.error}")
        self.restarts += 1
        pid = booted.supervisor_pid or 0
        self._ask(address, RecordEvent(name="supervisor_restarted", payload={
            "previous_pid": old_pid, "pid": pid, "reason": reason, "restarts": self.restarts,
            "genome_id": booted.genome_id}), EventRecorded, stash)
        self.note(self._ask(address, StatusRequest(), StatusReply, stash))
        log.warning("supervisor %s died (%s); replaced by %s, restart %d", old_pid, reason, pid, self.restarts)
        return Replacement(address=address, booted=booted, pid=pid, restarts=self.restarts)

    def _new_supervisor(self, old_address):
        """A new supervisor actor. A name the admin has not yet released (it learns of the death
        by its own child-exit handling) still gives the dead address: ask again until it does not."""
        deadline = time.monotonic() + self.timeout
        while True:
            address = self.asys.createActor(OrganizationActor, globalName=self.global_name)
            if self.global_name is None or address != old_address:
                return address
            if time.monotonic() > deadline:
                raise SupervisorGaveUp(f"the actor system still names the dead supervisor after {self.timeout:g}s")
            time.sleep(0.05)  # the admin's bookkeeping of another process's exit: nothing to wait on

    def _ask(self, address, message, kind: type, stash: list):
        self.asys.tell(address, message)
        deadline = time.monotonic() + self.timeout
        while (remaining := deadline - time.monotonic()) > 0:
            reply = self.asys.listen(remaining)
            if isinstance(reply, kind):
                return reply
            if isinstance(reply, LedgerReady) and reply.error:
                raise SupervisorGaveUp(f"the replacement supervisor could not open the ledger: {reply.error}")
            if reply is not None:
                stash.append(reply)
        raise SupervisorGaveUp(f"the replacement supervisor did not answer {type(message).__name__} within "
                               f"{self.timeout:g}s")


def _wait_gone(pids: dict[int, int | None], grace: float = _GRACE_S) -> None:
    """Until every process in `pids` (pid -> session, None for unknown) is gone: they exit by
    themselves once their supervisor is (`exit_when_gone`); one still there after `grace`, and
    still in the session it had, is killed."""
    deadline = time.monotonic() + grace
    while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.02)  # other processes' exits: there is nothing of ours to wait on
    for pid in left:
        try:
            if pids[pid] is not None and os.getsid(pid) != pids[pid]:
                continue  # the number now belongs to another process
        except OSError:
            continue
        log.warning("process %d of the dead supervisor's organization outlived it; killing it", pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while {p for p in left if alive(p)} and time.monotonic() < deadline:
        time.sleep(0.02)
