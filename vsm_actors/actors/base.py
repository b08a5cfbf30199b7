"""What every vsm actor shares: a send that can prove messages survive pickling, and handler
guards that turn exceptions into logged failures instead of Thespian's retry-then-poison."""

from __future__ import annotations

import logging
import os
import pickle

from thespian.actors import ActorTypeDispatcher

log = logging.getLogger("vsm.actors")

# On simpleSystemBase messages pass by reference; this makes tests fail on anything the TCP
# base could not pickle (thespian.md pitfall 6).
PICKLE_CHECK = os.environ.get("VSM_PICKLE_CHECK") == "1"


class VsmActor(ActorTypeDispatcher):
    """`receiveMsg_<Type>` dispatch as ActorTypeDispatcher does it (message MRO first), resolved
    once per (actor class, message type) instead of walking both MROs with hasattr per message,
    which cost more than some handlers. Handlers never return SUPER here."""

    def receiveMessage(self, message, sender):
        key = (type(self), type(message))
        handler = _HANDLERS.get(key)
        if handler is None:
            handler = _HANDLERS[key] = _resolve(*key)
        return handler(self, message, sender)

    def tell(self, address, message) -> None:
        if address is None:
            return
        if PICKLE_CHECK:
            message = pickle.loads(pickle.dumps(message))
        self.send(address, message)

    def receiveUnrecognizedMessage(self, message, sender) -> None:
        # Thespian system messages we do not handle (e.g. ActorExitRequest) land here too.
        if type(message).__module__.startswith("thespian"):
            return
        log.warning("%s ignored unexpected message %s", type(self).__name__, type(message).__name__)


_HANDLERS: dict[tuple[type, type], object] = {}


def _resolve(actor_cls: type, message_cls: type):
    for klass in message_cls.__mro__:
        handler = getattr(actor_cls, "receiveMsg_" + klass.__name__, None)
        if handler is not None:
            return handler
    return actor_cls.receiveUnrecognizedMessage
