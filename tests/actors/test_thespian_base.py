"""Our one speed patch to Thespian's in-process base selects exactly what Thespian would."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st
from thespian.system.simpleSystemBase import WakeupManager
from thespian.system.timing import ExpirationTimer
from thespian.system.utilis import partition

from vsm_actors.actors.thespian_base import fast_wakeup_scan, start_system


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
