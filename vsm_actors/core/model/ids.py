"""Identifier types and the injectable id/clock sources the core relies on.

Ids are plain strings on the wire (the reference's newtypes serialise as bare strings), so here
they are `NewType`s over `str`: zero cost, and still self-describing in signatures.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Callable, NewType

NodeId = NewType("NodeId", str)
GenomeId = NewType("GenomeId", str)
TaskId = NewType("TaskId", str)
DirectiveId = NewType("DirectiveId", str)
MessageId = NewType("MessageId", str)
SuggestionId = NewType("SuggestionId", str)
PatchId = NewType("PatchId", str)
TraceId = NewType("TraceId", str)
ChannelId = NewType("ChannelId", str)
MutationId = NewType("MutationId", str)

IdFactory = Callable[[], str]
"""Returns a fresh unique id string each call (UUIDv7 text in production, a counter in tests)."""

Clock = Callable[[], datetime]
"""Returns the current UTC time as an aware datetime."""

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class SequentialIds:
    """Deterministic id factory: `prefix-1`, `prefix-2`, ... (simulations and tests)."""

    def __init__(self, prefix: str = "id", start: int = 1) -> None:
        self._prefix = prefix
        self._counter = itertools.count(start)

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"


class SteppingClock:
    """Deterministic clock: starts at `start` and advances `step` on every reading."""

    def __init__(self, start: datetime = EPOCH, step: timedelta = timedelta(milliseconds=1)) -> None:
        self._now = start
        self._step = step

    def __call__(self) -> datetime:
        now = self._now
        self._now = now + self._step
        return now
