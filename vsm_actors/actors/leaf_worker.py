"""Provider calls that wait on the outside world, run off the actor's thread.

In process (`simpleSystemBase`) every actor shares one thread: a leaf blocked in a 1 s `command`,
`codex` or `openai` call holds up the whole organization, so leaves never work at once. A leaf whose
provider says it blocks (`providers.runs_off_thread`) hands the call to a thread of its own and
returns; the outcome comes back to the actor as a message. A thread may not `send` into the
simple base (it is not thread-safe, and an actor system idle in `listen` would not notice), so the
message is the actor's own wakeup: while a call is out the leaf polls it every `POLL` (a few ms,
well under any provider's latency) and finishes the task in its own thread when it is done.

Calls run one at a time per leaf, in the order they came (a leaf works on one task at a time; its
parent queues the rest). Deterministic providers (echo, scripted, world) stay in the handler, so a
simulation is the same run after run. On the multiprocess base every leaf has a process of its
own and calls its provider in the handler, as before.

Threads are daemons: an organization shut down with a call still out does not wait for it (a
command's process group dies with it: `_posix.die_with_parent`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta

POLL = timedelta(milliseconds=5)
POLL_PAYLOAD = "vsm.poll-provider-calls"


class _Call:
    __slots__ = ("fn", "resume", "value", "error", "seconds", "done")

    def __init__(self, fn: Callable[[], object], resume: Callable[[object, BaseException | None, float], None]):
        self.fn, self.resume = fn, resume
        self.value, self.error, self.seconds = None, None, 0.0
        self.done = threading.Event()

    def run(self) -> None:
        t0 = time.perf_counter()
        try:
            self.value = self.fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the actor, which decides
            self.error = exc
        self.seconds = time.perf_counter() - t0
        self.done.set()


class OffThreadCalls:
    """Mixin for NodeActor (which provides node_id and wakeupAfter)."""

    _calls: deque | None = None   # the running call first, then those waiting for it
    _poll_armed = False

    @property
    def calls_out(self) -> int:
        return len(self._calls) if self._calls else 0

    def call_off_thread(self, fn: Callable[[], object],
                        resume: Callable[[object, BaseException | None, float], None]) -> None:
        """Run `fn()` on a worker thread; `resume(value, error, seconds)` runs later in the actor."""
        if self._calls is None:
            self._calls = deque()
        call = _Call(fn, resume)
        self._calls.append(call)
        if len(self._calls) == 1:
            self._start(call)
        self._arm_poll()

    def poll_calls(self) -> None:
        """The wakeup handler: finish every call that is done (in order), start the next one."""
        self._poll_armed = False
        calls = self._calls
        while calls and calls[0].done.is_set():
            call = calls.popleft()
            if calls:
                self._start(calls[0])
            call.resume(call.value, call.error, call.seconds)
        if calls:
            self._arm_poll()

    def _start(self, call: _Call) -> None:
        threading.Thread(target=call.run, daemon=True, name=f"vsm-provider-{self.node_id}").start()

    def _arm_poll(self) -> None:
        if not self._poll_armed:
            self._poll_armed = True
            self.wakeupAfter(POLL, payload=POLL_PAYLOAD)
