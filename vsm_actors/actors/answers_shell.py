"""A root's answers to its clients: one ending event and one reply per directive, kept a while
so that a ledger actor dying with them does not leave a client waiting (supervisor_restarts).

A mixin of NodeActor (it uses the node's events, record and ledger address).
"""

from __future__ import annotations

from collections import OrderedDict

from .protocol import DirectiveDone
from .protocol_control import LedgerMoved, SettleDirectives

RECENT_ANSWERS = 256  # directive answers a root keeps until a newer ledger actor could need them


class DirectiveAnswers:
    recent_answers: OrderedDict  # directive id -> (reply_to, ending, answer); set by NodeActor

    def answer(self, waiting: dict, correlation_id: str, events: list, error: str | None = None) -> None:
        """The directive's one answer: its ending event, then (once stored) the client's reply."""
        results = tuple(waiting["results"])
        if waiting["directive_id"]:  # not an envelope a client delivered on a channel
            events.append(self.events.directive_ended(waiting["directive_id"], correlation_id, results, error,
                                                  waiting.get("accepted_at")))
        done = DirectiveDone(directive_id=waiting["directive_id"], correlation_id=correlation_id, results=results,
                             error=error)
        if waiting["directive_id"]:  # kept a while: the ledger actor carrying the answer may die with it
            self.recent_answers[waiting["directive_id"]] = (waiting["reply_to"], events[-1], done)
            if len(self.recent_answers) > RECENT_ANSWERS:
                self.recent_answers.popitem(last=False)
        self.record(events, then=done, to=waiting["reply_to"])

    def receiveMsg_LedgerMoved(self, msg: LedgerMoved, sender) -> None:
        """A new ledger actor: what the dead one had not committed is lost unacknowledged, and the
        answers it was to send after committing are settled again, from the ledger."""
        self.ledger = msg.ledger
        if self.recent_answers:
            answers = tuple(self.recent_answers.values())
            since = min(ending.created_at for _, ending, _ in answers)  # each stored ending is this or newer
            self.tell(self.ledger, SettleDirectives(candidates=answers, resend=True, since=since))
