"""The ids a leaf has started, within a bounded window: at-most-once execution without growing forever.

A duplicate delivery (a retried handler, a redelivered AMQP message, a restarted parent resending)
arrives soon after the original, so remembering the newest `capacity` ids catches it, while a
leaf that ran a million tasks holds ten thousand ids, not a million (~125 bytes each). An id older
than the window is not remembered; its task's completion is in the ledger, which a restarted
parent reads before it resends anything.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_CAPACITY = 10_000


class SeenIds:
    """A set of the newest `capacity` ids added (oldest forgotten first)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, item: str) -> None:
        self._ids[item] = None
        self._ids.move_to_end(item)
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
