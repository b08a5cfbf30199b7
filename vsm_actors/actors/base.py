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
