"""The supervisor's restarts: a dead node comes back within its restart intensity; past it, the
node is given up on and escalated (core/control/restarts.py), and `vsm resume` revives it.

A mixin of OrganizationActor (it uses the supervisor's genome, directory, pids, ledger, config).
"""

from __future__ import annotations

import logging
import os
import signal
import time

from ..core.control.restarts import RestartIntensity, RestartWindow, hung_reason
from ..core.model.payloads import AlgedonicOverridePolicy, AlgedonicSignal, AlgedonicSourceKind, AlgedonicValence
from .._posix import stopped
from .leaf_providers import node_provider_spec
from .ledger_actor import LedgerActor
from .node_actor import NodeActor
from .protocol import ChildRestarted, GenomeChanged, LedgerReady, LedgerWrite, RootMoved
from .protocol_control import LedgerMoved, Ping, Pong, SignalApplied, SignalNode

log = logging.getLogger("vsm.supervisor")
GIVE_UP_SEVERITY = 8  # a node that keeps dying is serious: its metasystem must hear of it
DEFAULT_PROVIDER_TIMEOUT = 600.0  # the command provider's own default


class RestartSupervision:
    def restart(self, node_id: str, reason: str) -> None:
        if node_id not in self.genome.nodes or node_id in self.given_up:
            return
        intensity = RestartIntensity(max_restarts=self.config.restart_intensity,
                                     period_seconds=self.config.restart_period_seconds)
        window, allowed = self.restart_windows.get(node_id, RestartWindow()).admit(time.monotonic(), intensity)
        self.restart_windows[node_id] = window
        parent = self.genome.node(node_id).parent_id
        if not allowed and parent is not None:
            return self.give_up(node_id, parent, reason, intensity)
        if not allowed:  # the root has no metasystem to escalate to: it is always restarted, and said so
            log.error("the root died %d times within %gs; restarting it again", len(window.times),
                      intensity.period_seconds)
        self.start_again(node_id, reason, self.pids.pop(node_id, None))

    def start_again(self, node_id: str, reason: str, old_pid: int | None) -> None:
        self.restarts[node_id] = self.restarts.get(node_id, 0) + 1
        self.last_pong.pop(node_id, None)  # a new process: its heartbeats start now
        self.directory[node_id] = self.createActor(NodeActor)
        self.setup(node_id)
        changed = GenomeChanged(genome=self.genome, directory=dict(self.directory))
        for other, address in self.directory.items():
            if other != node_id:
                self.tell(address, changed)
        parent = self.genome.node(node_id).parent_id
        if parent is not None:
            self.tell(self.directory.get(parent), ChildRestarted(node_id=node_id, directory=dict(self.directory)))
        else:  # the booting client sends directives straight to the root
            self.tell(self.client, RootMoved(root=self.directory[node_id]))
            forwarded, since = self.forwarded.take_all()
            self.settle([(reply_to, d) for d, reply_to in forwarded], since=since)
        self.tell(self.ledger, LedgerWrite(events=(self.event("node_restarted", {
            "node_id": node_id, "node_kind": self.node_kind(node_id), "reason": reason, "old_pid": old_pid,
            "restart_count": self.restarts[node_id]}),)))

    def give_up(self, node_id: str, parent: str, reason: str, intensity: RestartIntensity) -> None:
        """Escalate, OTP-style: the metasystem above pauses the node's subtree with a pain signal
        (nothing more is routed into it, what waits is held per its pause policy), then fails
        what was in the node, as after any death."""
        self.given_up.add(node_id)
        old_pid = self.pids.pop(node_id, None)
        message = (f"{self.node_kind(node_id)} {node_id} died {intensity.max_restarts + 1} times within "
                   f"{intensity.period_seconds:g}s (last: {reason}); no longer restarted: resume it to try again")
        log.error("%s", message)
        self.tell(self.ledger, LedgerWrite(events=(self.event("node_restart_intensity_exceeded", {
            "node_id": node_id, "node_kind": self.node_kind(node_id), "reason": reason, "old_pid": old_pid,
            "max_restarts": intensity.max_restarts, "period_seconds": intensity.period_seconds}),)))
        signal = AlgedonicSignal(source=AlgedonicSourceKind.ChildNode, valence=AlgedonicValence.Pain,
                                 severity=GIVE_UP_SEVERITY, target_node_id=node_id, message=message,
                                 override_policy=AlgedonicOverridePolicy(pause_subtree=True),
                                 created_at=self.services.now())
        address = self.directory.get(parent)
        self.tell(address, SignalNode(node_id=parent, signal=signal, reply_to=self.myAddress))
        self.tell(address, ChildRestarted(node_id=node_id, directory=dict(self.directory)))

    def revive(self, node_id: str) -> None:
        """`vsm resume` over a subtree: every node given up on in it starts again, window fresh."""
        for revived in [n for n in self.genome.subtree_ids(node_id) if n in self.given_up]:
            self.given_up.discard(revived)
            self.restart_windows.pop(revived, None)
            self.start_again(revived, "resumed after its restart intensity was exceeded", None)

    # -- heartbeats -------------------------------------------------------------------------------

    def check_heartbeats(self, own_pid: int) -> None:
        """Each watchdog period: ping every node in another process, and kill one that has been
        silent too long (core of it: `hung_reason`); its death then restarts it as any other."""
        now = time.monotonic()
        self.ping_seq += 1
        for node_id, pid in list(self.pids.items()):
            if pid == own_pid:
                continue
            self.tell(self.directory[node_id], Ping(seq=self.ping_seq))
            silent = now - self.last_pong.setdefault(node_id, now)
            reason = hung_reason(silent, stopped(pid), self.config.hang_seconds, self.provider_timeout(node_id))
            if reason is None:
                continue
            log.error("%s %s (pid %s) is hung: %s; killing it", self.node_kind(node_id), node_id, pid, reason)
            self.tell(self.ledger, LedgerWrite(events=(self.event("node_hung", {
                "node_id": node_id, "node_kind": self.node_kind(node_id), "pid": pid, "reason": reason,
                "silent_seconds": round(silent, 3)}),)))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.last_pong.pop(node_id, None)

    def receiveMsg_Pong(self, msg: Pong, sender) -> None:
        self.last_pong[msg.node_id] = time.monotonic()
        self.node_rejected_frames[msg.node_id] = msg.rejected_frames

    def provider_timeout(self, node_id: str) -> float:
        spec = node_provider_spec(self.config, self.genome.node(node_id))
        return float(spec.options.get("timeout_seconds", DEFAULT_PROVIDER_TIMEOUT))

    # -- the ledger actor ------------------------------------------------------------------------

    def restart_ledger(self, reason: str) -> None:
        """A new ledger actor on the same ledger; every node is told once it is open. What the dead
        one held uncommitted was never acknowledged; answers it held are sent again (the root's
        recent answers, settled against the ledger: see NodeActor.receiveMsg_LedgerMoved)."""
        if self.ledger_reopening or self.stopping or self.phase != "running":
            return
        self.ledger_lost = (reason, self.ledger_pid)
        self.ledger_pid, self.ledger_reopening = None, True
        self.ledger = self.createActor(LedgerActor)
        self.tell(self.ledger, self.ledger_open)

    def ledger_reopened(self, msg: LedgerReady) -> None:
        self.ledger_reopening = False
        reason, old_pid = self.ledger_lost
        if msg.error:
            log.error("the ledger actor died (%s) and its replacement cannot open the ledger: %s", reason, msg.error)
            return
        self.ledger_pid = msg.pid
        self.restarts["ledger"] = self.restarts.get("ledger", 0) + 1
        moved = LedgerMoved(ledger=self.ledger)
        for address in self.directory.values():
            self.tell(address, moved)
        log.warning("ledger actor restarted (%s) as pid %s", reason, msg.pid)
        self.tell(self.ledger, LedgerWrite(events=(self.event("node_restarted", {
            "node_id": "ledger", "node_kind": "ledger actor", "reason": reason, "old_pid": old_pid,
            "restart_count": self.restarts["ledger"]}),)))

    def receiveMsg_SignalApplied(self, msg: SignalApplied, sender) -> None:
        if msg.error:  # the pause of a given-up node could not be applied: say so, it is all we can do
            log.error("pausing %s after its restarts failed: %s", msg.node_id, msg.error)

    def node_kind(self, node_id: str) -> str:
        return "leaf" if self.genome.node(node_id).is_leaf else "metasystem"
