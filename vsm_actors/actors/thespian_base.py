"""Starting and stopping Thespian systems safely (guides/thespian.md pitfalls 8-12).

Loopback only: Thespian's TCP base binds `''` (every interface) for "external" addresses even when
THESPIAN_BASE_IPADDR says 127.0.0.1, and unpickles whatever arrives. `bind_loopback_only()` makes
an address whose advertised host is loopback also *bind* to loopback. It patches one method, is
applied before any system starts, and forked actor processes inherit it.

Wakeup scan: `simpleSystemBase` looks for expired wakeups before *every* message it delivers, by
folding the whole wakeup list through three lambdas and a view object per entry. The ledger actor
keeps a wakeup pending whenever a batch is in flight, so in process that scan cost more than
delivering the message. `fast_wakeup_scan()` replaces it with a plain loop that selects the same
entries (expired at the same instant, in the same order). And every delivery looks the "Thespian"
logger up again (a module lock and a dict) to format a debug line that is almost never enabled;
`quiet_receive()` keeps the logger and asks it first. And each delivery walks Thespian's
cases for its own control messages (source loading, status, exit, child exits, poison) even for
an ordinary first attempt; `direct_delivery()` hands such a message straight to its actor.

Prompt listen: `listen` returns an answer that is already waiting before it sleeps to the next
wakeup (`prompt_listen()`).

Transmit expiry scan: the TCP base checks every queued outbound message for expiry on every
send and every completed send, by the same fold with a view object per message. A metasystem
that receives a burst queues one message per directive to its child, so each send scanned
thousands (quadratic: 90% of the root's CPU in a multiprocess benchmark). `fast_transmit_expiry()`
keeps a lower bound of the queued intents' expiry times as they are queued, and scans (with
Thespian's own `expired()`) only once that moment has come.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile

from thespian.actors import ActorSystem

from . import signed_frames

LOOPBACK = "127.0.0.1"
BASES = {"simple": "simpleSystemBase", "multiproc": "multiprocTCPBase"}
_patched = False
_scan_patched = False
_expiry_patched = False


def bind_loopback_only() -> None:
    global _patched
    if _patched:
        return
    from thespian.system.transport import IPBase

    original = IPBase.IPActorAddress.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if os.environ.get("THESPIAN_BASE_IPADDR") == LOOPBACK and self.sockname[0] == LOOPBACK:
            self.bindname = self.sockname

    IPBase.IPActorAddress.__init__ = __init__
    _patched = True


def fast_wakeup_scan() -> None:
    global _scan_patched
    if _scan_patched:
        return
    from thespian.system.simpleSystemBase import WakeupManager

    def _pop_expired_wakeups(self, ct):
        wakeups = self._wakeUps
        for entry in wakeups:
            due = entry[1]._time_to_quit
            if due is not None and ct >= due:
                break
        else:
            return ()
        expired, pending = [], []
        for entry in wakeups:
            due = entry[1]._time_to_quit
            (expired if due is not None and ct >= due else pending).append(entry)
        self._wakeUps = pending
        return expired

    WakeupManager._pop_expired_wakeups = _pop_expired_wakeups
    _scan_patched = True


def fast_transmit_expiry() -> None:
    global _expiry_patched
    if _expiry_patched:
        return
    from collections import deque

    from thespian.system import timing
    from thespian.system.transport import SendStatus, TransmitIntent
    from thespian.system.transport.asyncTransportBase import DROP_TRANSMITS_LEVEL, asyncTransportBase
    from thespian.system.utilis import thesplog

    plain_expired = TransmitIntent.expired

    def due_at(intent) -> float:
        """When the intent expires; -inf for one that decides for itself (always looked at)."""
        if type(intent).expired is not plain_expired:
            return float("-inf")
        quit_at = intent._quitTime._time_to_quit
        return float("inf") if quit_at is None else quit_at

    def _qtx(self, transmitIntent):
        with self._aTB_lock:
            if len(self._aTB_queuedPendingTransmits) < DROP_TRANSMITS_LEVEL:
                self._aTB_queuedPendingTransmits.append(transmitIntent)
                self._vsm_first_due = min(getattr(self, "_vsm_first_due", float("inf")), due_at(transmitIntent))
                return True
        return False

    def _complete_expired_intents(self):
        with self._aTB_lock:
            queued, now = self._aTB_queuedPendingTransmits, timing.currentTime()
            # a lower bound of every queued intent's expiry: nothing is due before it
            if now < getattr(self, "_vsm_first_due", float("-inf")):
                return len(queued), False
            expired, kept = [], deque()
            for intent in queued:
                (expired if intent.expired() else kept).append(intent)
            self._aTB_queuedPendingTransmits = kept
            self._vsm_first_due = min(map(due_at, kept), default=float("inf"))
            remaining = len(kept)
        for each in expired:
            thesplog("TX intent %s timed out", each, level=logging.WARNING)
            each.tx_done(SendStatus.Failed)
        return remaining, bool(expired)

    asyncTransportBase._qtx = _qtx
    asyncTransportBase._complete_expired_intents = _complete_expired_intents
    _expiry_patched = True


def quiet_receive() -> None:
    from thespian.system import simpleSystemBase

    if getattr(simpleSystemBase.actor_base_receive, "_vsm_quiet", False):
        return
    thespian_log = logging.getLogger("Thespian")

    def actor_base_receive(actorInst, msg, sender):  # noqa: N803 - Thespian's signature
        if thespian_log.isEnabledFor(logging.DEBUG):
            thespian_log.debug('Actor "%s" got message "%s" from "%s"', actorInst, msg, sender)
        actorInst.receiveMessage(msg, sender)

    actor_base_receive._vsm_quiet = True
    simpleSystemBase.actor_base_receive = actor_base_receive


def direct_delivery() -> None:
    from thespian.actors import ActorExitRequest, ChildActorExited, ValidatedSource
    from thespian.system.messages.status import Thespian_StatusReq
    from thespian.system.simpleSystemBase import ActorSystemBase

    if getattr(ActorSystemBase._runSingleSend, "_vsm_direct", False):
        return
    thespians_own = (ValidatedSource, Thespian_StatusReq, ActorExitRequest, ChildActorExited)
    ordinary: dict[type, bool] = {}
    general = ActorSystemBase._runSingleSend

    def _runSingleSend(self, ps):
        # what Thespian does for a first attempt at a message none of its cases concern
        kind = type(ps.msg)
        plain = ordinary.get(kind)
        if plain is None:
            plain = ordinary[kind] = not issubclass(kind, thespians_own)
        if plain and ps.attempts == 0:
            target = self.actorRegistry.get(ps.toActor.actorAddressString, None)
            if target and target.instance:
                self._callActorWithMessage(target, ps, ps.msg, ps.sender)
                return
        general(self, ps)

    _runSingleSend._vsm_direct = True
    ActorSystemBase._runSingleSend = _runSingleSend


def prompt_listen() -> None:
    """`listen` answers with a reply that has already arrived instead of first sleeping until the
    next pending wakeup: after a `tell`, every send has run, so Thespian's own loop finds nothing to
    send and sleeps to the ledger actor's flush timer (~100 ms) with the answer already waiting."""
    from thespian.system.simpleSystemBase import ActorSystemBase, isInternalActorSystemMessage

    if getattr(ActorSystemBase.listen, "_vsm_prompt", False):
        return
    general = ActorSystemBase.listen

    def listen(self, timeout):
        responses = getattr(self.actorRegistry['System:ExternalRequester'].instance, 'responses', None)
        while responses:
            response = responses.pop(0)
            if not isInternalActorSystemMessage(response):
                return response
        return general(self, timeout)

    listen._vsm_prompt = True
    ActorSystemBase.listen = listen


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def log_config(path: str) -> dict:
    """A real logging configuration (logDefs=False kills multiprocess children at start-up)."""
    return {
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": path, "formatter": "plain",
                              "level": "INFO"}},
        "root": {"handlers": ["file"], "level": "INFO"},
    }


def start_system(base: str = "simple", admin_port: int | None = None, log_path: str | None = None,
                 key: bytes | None = None) -> ActorSystem:
    """Start (or join, when `admin_port` names a running one) an actor system. On the TCP base
    every frame is signed with `key` (the key this process already uses, or a new one, when None;
    `signed_frames.installed().key` tells which)."""
    if base not in BASES:
        raise ValueError(f"unknown base {base!r}; expected one of {', '.join(BASES)}")
    if base == "simple":
        fast_wakeup_scan()
        quiet_receive()
        direct_delivery()
        prompt_listen()
        return ActorSystem(BASES[base], logDefs=log_config(log_path) if log_path else None,
                           transientUnique=True)
    os.environ["THESPIAN_BASE_IPADDR"] = LOOPBACK
    bind_loopback_only()
    fast_transmit_expiry()
    signed_frames.install(key)
    port = admin_port or free_port()
    log_path = log_path or os.path.join(tempfile.gettempdir(), f"vsm-thespian-{port}.log")
    logging.getLogger("thespian").setLevel(logging.WARNING)
    return ActorSystem(BASES[base], {"Admin Port": port, "Admin Routing": False}, logDefs=log_config(log_path))


def join_system(admin_port: int, key: bytes | None = None) -> ActorSystem:
    """Join the running organization at `admin_port`; `key` is its frame key (from its state file)."""
    os.environ["THESPIAN_BASE_IPADDR"] = LOOPBACK
    bind_loopback_only()
    fast_transmit_expiry()
    signed_frames.install(key)
    return ActorSystem(BASES["multiproc"], {"Admin Port": admin_port})
