"""Our one speed patch to Thespian's in-process base selects exactly what Thespian would."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest

from hypothesis import given
from hypothesis import strategies as st
from thespian.system.simpleSystemBase import WakeupManager
from thespian.system.timing import ExpirationTimer
from thespian.system.utilis import partition

from vsm_actors.actors.thespian_base import fast_transmit_expiry, fast_wakeup_scan, start_system


def timer(due: float | None) -> ExpirationTimer:
    t = ExpirationTimer(None)
    t._time_to_quit = due
    return t


dues = st.lists(st.one_of(st.none(), st.floats(0, 10)), max_size=8)


@given(dues, st.floats(0.001, 10))  # thespian reads a current time of 0.0 as "now"
def test_fast_scan_pops_what_thespian_pops_in_the_same_order(due_times, now) -> None:
    fast_wakeup_scan()
    wakeups = [(f"actor{i}", timer(d), i) for i, d in enumerate(due_times)]
    thespian_expired, thespian_left = partition(lambda E: E[1].view(now).expired(), list(wakeups))
    manager = WakeupManager()
    manager._wakeUps = list(wakeups)
    assert list(manager._pop_expired_wakeups(now)) == thespian_expired
    assert manager._wakeUps == thespian_left


def test_wakeups_still_fire_on_the_patched_base() -> None:
    from thespian.actors import Actor, WakeupMessage

    class Sleeper(Actor):
        def receiveMessage(self, msg, sender):
            if msg == "nap":
                self.asker = sender
                self.wakeupAfter(0.01, payload="p")
            elif isinstance(msg, WakeupMessage):
                self.send(self.asker, ("woke", msg.payload))

    asys = start_system("simple")
    try:
        assert asys.ask(asys.createActor(Sleeper), "nap", 5) == ("woke", "p")
    finally:
        asys.shutdown()


def test_deliveries_are_still_logged_when_thespian_debug_logging_is_on() -> None:
    from thespian.actors import Actor

    class Echo(Actor):
        def receiveMessage(self, msg, sender):
            self.send(sender, msg)

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    lines: list[str] = []
    asys = start_system("simple")  # configures logging itself, so listen on the logger after it
    thespian_log, handler = logging.getLogger("Thespian"), Collect()
    level = thespian_log.level
    thespian_log.addHandler(handler)
    try:
        thespian_log.setLevel(logging.DEBUG)
        assert asys.ask(asys.createActor(Echo), "marco", 5) == "marco"
        assert any('got message "marco"' in line for line in lines)
    finally:
        thespian_log.removeHandler(handler)
        thespian_log.setLevel(level)
        asys.shutdown()


def intent(due):
    """A queued TCP transmit expiring at `due` (None: never), its failure kept on `result`."""
    from thespian.system.transport import TransmitIntent

    queued = TransmitIntent("somewhere", "message")
    queued._quitTime = timer(due)
    return queued


@given(st.lists(st.lists(st.one_of(st.none(), st.floats(1, 100)), max_size=6), min_size=1, max_size=5),
       st.lists(st.floats(1, 100), min_size=1, max_size=5))
def test_transmit_expiry_fails_exactly_the_intents_thespian_would(batches, nows) -> None:
    """Queue batches of intents and check expiry between them, as sends do: each check fails the
    same intents Thespian's scan fails (everything due by then), and keeps the rest in order."""
    import threading
    from unittest import mock

    from thespian.system.transport import SendStatus
    from thespian.system.transport.asyncTransportBase import asyncTransportBase

    fast_transmit_expiry()
    transport = asyncTransportBase.__new__(asyncTransportBase)
    transport._aTB_lock, transport._aTB_queuedPendingTransmits = threading.RLock(), __import__("collections").deque()
    queued: list = []
    for batch, now in zip(batches, nows):
        for due in batch:
            queued.append(intent(due))
            assert transport._qtx(queued[-1])
        with mock.patch("thespian.system.timing.currentTime", return_value=now):
            remaining, any_expired = transport._complete_expired_intents()
        expected_failed = [i for i in queued if i._quitTime._time_to_quit is not None and now >= i._quitTime._time_to_quit]
        assert any_expired == bool(expected_failed)
        assert all(i.result == SendStatus.Failed for i in expected_failed)
        queued = [i for i in queued if i not in expected_failed]
        assert list(transport._aTB_queuedPendingTransmits) == queued and remaining == len(queued)


def test_a_ledger_write_reads_short() -> None:
    from datetime import datetime, timezone

    from vsm_actors.actors.protocol import DirectiveDone, LedgerWrite
    from vsm_actors.core.model.events import LedgerEvent, LedgerEventKind

    event = LedgerEvent.new(LedgerEventKind.TaskRouted, {"big": "x" * 10_000}, id="e",
                            created_at=datetime.now(timezone.utc))
    text = repr(LedgerWrite(events=(event,) * 4, then=DirectiveDone(directive_id="d", correlation_id="c", results=())))
    assert text == "LedgerWrite(4 events [task_routed, task_routed, task_routed, ...], 0 traces, then=DirectiveDone)"


def test_direct_delivery_keeps_thespians_retry_poison_and_exit_handling() -> None:
    """Ordinary first attempts go straight to the actor; retries, poison returns and exits still
    take Thespian's own path."""
    from thespian.actors import Actor, ActorExitRequest, ChildActorExited, PoisonMessage

    class Flaky(Actor):
        def receiveMessage(self, msg, sender):
            if isinstance(msg, tuple) and msg[0] == "fail":
                self.tries = getattr(self, "tries", 0) + 1
                if self.tries <= msg[1]:
                    raise RuntimeError("not yet")
                self.send(sender, ("ok after", self.tries))
            elif msg == "spawn":
                self.child = self.createActor(Flaky)
                self.asker = sender
                self.send(self.child, ActorExitRequest())
            elif isinstance(msg, ChildActorExited):
                self.send(self.asker, "child exited")

    asys = start_system("simple")
    try:
        assert asys.ask(asys.createActor(Flaky), ("fail", 1), 5) == ("ok after", 2)  # retried
        poisoned = asys.ask(asys.createActor(Flaky), ("fail", 10), 5)
        assert isinstance(poisoned, PoisonMessage) and poisoned.poisonMessage == ("fail", 10)
        assert asys.ask(asys.createActor(Flaky), "spawn", 5) == "child exited"
    finally:
        asys.shutdown()


def test_an_answer_already_waiting_is_returned_without_sleeping_to_the_next_wakeup() -> None:
    from thespian.actors import Actor

    class Echo(Actor):
        def receiveMessage(self, msg, sender):
            if msg == "arm":
                self.wakeupAfter(timedelta(seconds=30))  # a far wakeup, as the ledger's flush timer
            if isinstance(msg, str):
                self.send(sender, f"echo {msg}")

    from vsm_actors.actors.thespian_base import start_system
    asys = start_system("simple")
    try:
        echo = asys.createActor(Echo)
        assert asys.ask(echo, "arm", 5) == "echo arm"
        asys.tell(echo, "again")  # delivered and answered inside tell
        t0 = time.monotonic()
        assert asys.listen(60) == "echo again"
        assert time.monotonic() - t0 < 5  # Thespian alone sleeps the 30 s to the wakeup first
        assert asys.listen(0.01) is None  # nothing waiting: Thespian's own listen
    finally:
        asys.shutdown()


# The Thespian internals our patches replace or wrap, fingerprinted as written in the version we
# tested (pinned in setup.cfg): a Thespian that changes any of them fails here, so each patch is
# checked again before it runs on code it was not written for.
PATCHED = {
    ("thespian.system.simpleSystemBase", "ActorSystemBase.listen"): "8c5a3083f6883719",
    ("thespian.system.simpleSystemBase", "ActorSystemBase._runSends"): "9d1a518e1a7a396e",
    ("thespian.system.simpleSystemBase", "ActorSystemBase._runSingleSend"): "d2f39ac6be5dd535",
    ("thespian.system.simpleSystemBase", "WakeupManager._pop_expired_wakeups"): "66156c7b53987fa9",
    ("thespian.system.simpleSystemBase", "actor_base_receive"): "daf665c380062164",
    ("thespian.system.transport.asyncTransportBase", "asyncTransportBase._qtx"): "7b70297d08371c78",
    ("thespian.system.transport.asyncTransportBase", "asyncTransportBase._complete_expired_intents"): "7a30e60358aa924d",
    ("thespian.system.transport.IPBase", "IPActorAddress.__init__"): "da41148e34d2648d",
}


def original_source(module: str, qualname: str) -> str:
    """The function's text in Thespian's file (not the live attribute, which may be our patch)."""
    import ast
    import importlib

    path = importlib.import_module(module).__file__
    text = open(path, encoding="utf-8").read()
    scope = ast.parse(text).body
    *owners, name = qualname.split(".")
    for owner in owners:
        scope = next(n for n in scope if isinstance(n, ast.ClassDef) and n.name == owner).body
    node = next(n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name)
    return ast.get_source_segment(text, node)


@pytest.mark.parametrize("module, qualname", sorted(PATCHED))
def test_the_thespian_code_we_patch_is_the_code_we_tested(module, qualname) -> None:
    import hashlib
    import thespian

    digest = hashlib.sha256(original_source(module, qualname).encode()).hexdigest()[:16]
    assert digest == PATCHED[(module, qualname)], (
        f"{module}.{qualname} changed in Thespian {getattr(thespian, '__version__', '?')}: "
        "re-check the patch in vsm_actors/actors/thespian_base.py, then update this fingerprint")
