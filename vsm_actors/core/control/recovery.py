"""Which directives a dead root leaves unanswered, and the failure each of them gets.

A root keeps its clients' directives in memory until their results come back. When its process
dies, that memory goes: every directive it had accepted and not yet answered would wait for its
client's timeout, and one whose `directive_accepted` was still held back in the dead process is
not even in the ledger. So the supervisor (for directives it forwarded) and the booting client
(for those it sent straight to the root) name the directives that may be in doubt, and the ledger
actor — after committing everything it was given before — answers, from the ledger, each one
that has no `directive_completed` or `directive_failed`: with a failure that says why. No
directive is left unanswered, and none is answered twice by the runtime. (Its tasks may still be
running below; a result that comes back later is recorded as `result_without_directive`.)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from ..model.events import LedgerEvent, LedgerEventKind
from .ledger_events import ENDING_KINDS

ROOT_RESTARTED = ("the organization's root restarted while this directive was in flight; "
                  "it was not finished: send it again")

SUPERVISOR_RESTARTED = ("the organization's supervisor died while this directive was in flight and was "
                        "restarted; the directive was not finished: send it again")


def is_answered(events: Iterable[LedgerEvent]) -> bool:
    return any(e.kind in ENDING_KINDS for e in events)


def stored_answer(events: Sequence[LedgerEvent], decode: Callable[[dict], object]) -> tuple | None:
    """(correlation id, results, error) of the answer the ledger holds for a directive (its
    ending, and the results its root received for the tasks the ending names), or None when it
    has no ending yet. For a client whose answer died in flight with the process that was to
    send it: the same answer again, which the client takes once."""
    ending = next((e for e in reversed(events) if e.kind in ENDING_KINDS), None)
    if ending is None:
        return None
    wanted = list(ending.payload.get("task_ids") or ())
    received = {e.task_id: e for e in events
                if e.kind is LedgerEventKind.TaskResultReceived and e.node_id == ending.node_id}
    results = tuple(decode(received[t].payload) for t in wanted if t in received)
    error = ending.payload.get("error") if ending.payload.get("status") != "Completed" else None
    if error is None and len(results) < len(wanted):
        error = "the directive's results are not all in the ledger"
    return ending.correlation_id or correlation_of(events, ending.directive_id), results, error


def correlation_of(events: Sequence[LedgerEvent], directive_id: str) -> str:
    """The correlation the root opened for the directive (its `directive_accepted`), else its id."""
    for event in events:
        if event.correlation_id:
            return event.correlation_id
    return directive_id


class RecentSubmissions:
    """Directive id -> who waits for it, for the newest `capacity` directives the supervisor
    forwarded: enough to answer whatever a root had in flight, bounded however long it runs."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._waiting: OrderedDict[str, tuple[object, datetime]] = OrderedDict()

    def add(self, directive_id: str, reply_to: object, at: datetime) -> None:
        self._waiting[directive_id] = (reply_to, at)
        if len(self._waiting) > self.capacity:
            self._waiting.popitem(last=False)

    def take_all(self) -> tuple[list[tuple[str, object]], datetime | None]:
        """Everything forwarded so far (the in-doubt set of a root that just died), forgotten
        here, and when the oldest of it was forwarded (no ending of any of it is older)."""
        taken, self._waiting = self._waiting, OrderedDict()
        oldest = min((at for _, at in taken.values()), default=None)
        return [(d, reply_to) for d, (reply_to, _) in taken.items()], oldest
