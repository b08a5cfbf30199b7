"""Per-actor runtime services: ids, clock, and the codec hook for ledger payloads.

Production uses time-ordered UUIDs and the wall clock; deterministic runs use counters prefixed
by the actor's node id (unique across actors without coordination) and a stepping clock.
"""

from __future__ import annotations

import os
import time
import weakref
from datetime import datetime, timezone

from .. import codec
from ..core.model.ids import SequentialIds, SteppingClock
from ..core.model.task import TaskResult


class TimeOrderedIds:
    """Production id factory: RFC 9562 version-7 UUID text (48-bit Unix milliseconds first).

    Why not uuid4: every id lands in B-tree indexes of the ledger, and random keys scatter each
    commit over whole indexes (appends ~3x slower at the batch sizes the ledger actor sees);
    time-first keys append at the right edge, and sort by creation time as a bonus.

    After the timestamp and version come a 26-bit counter (random start, so one factory's ids
    are monotonic within a millisecond) and 48 random bits fixed per factory: the counter fills
    rand_a and the low bits after the variant, the random bits the last group. Uniqueness across
    factories, processes and machines rests on those 74 random bits. A forked child re-draws
    them, so a factory copied by fork() never repeats its parent's ids. Text for the timestamp
    and the random group is cached: an id costs about 0.35 us.
    """

    _live: weakref.WeakSet[TimeOrderedIds] = weakref.WeakSet()

    def __init__(self) -> None:
        self._seed()
        TimeOrderedIds._live.add(self)

    def _seed(self) -> None:
        self._tail = "-" + os.urandom(6).hex()
        self._counter = int.from_bytes(os.urandom(4), "big") & _COUNTER_MASK
        self._ms = -1
        self._high = -1
        self._head = ""

    def __call__(self) -> str:
        # about twenty ids a directive: only the counter's low 14 bits change from one id to the
        # next, so the text before them is rebuilt when the millisecond or the high bits move
        ms = time.time_ns() // 1_000_000
        c = self._counter = (self._counter + 1) & _COUNTER_MASK
        if ms != self._ms or c >> 14 != self._high:
            self._advance(ms, c >> 14)
        return self._head + _HEX[0x80 | (c >> 8) & 0x3F] + _HEX[c & 0xFF] + self._tail

    def _advance(self, ms: int, high: int) -> None:
        self._ms, self._high = ms, high
        h = f"{ms:012x}"
        self._head = f"{h[:8]}-{h[8:]}-7{high:03x}-"


_COUNTER_MASK = (1 << 26) - 1
_HEX = [f"{i:02x}" for i in range(256)]


def _reseed_after_fork() -> None:
    for factory in list(TimeOrderedIds._live):
        factory._seed()


os.register_at_fork(after_in_child=_reseed_after_fork)


_RESULT_WIRE: dict[int, tuple[TaskResult, object]] = {}


def _shared_result_wire(result: TaskResult) -> object:
    """A result travels up unchanged through every level, and each level records it: in one
    process they share one wire form (also marshalled once to the ledger writer, by reference).
    Holding the result keeps its id from being reused while it is cached; payloads are never
    mutated."""
    hit = _RESULT_WIRE.get(id(result))
    if hit is not None and hit[0] is result:
        return hit[1]
    if len(_RESULT_WIRE) >= 512:
        _RESULT_WIRE.clear()
    data = codec.to_wire(result)
    _RESULT_WIRE[id(result)] = (result, data)
    return data


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Services:
    def __init__(self, owner: str, deterministic: bool) -> None:
        if deterministic:
            self.new_id = SequentialIds(owner)
            self.now = SteppingClock()
        else:
            self.new_id = TimeOrderedIds()
            self.now = utc_now

    @staticmethod
    def to_json(value: object) -> object:
        """Ledger payload form: wire data (keys are sorted when the event is stored)."""
        if type(value) is TaskResult:
            return _shared_result_wire(value)
        return codec.to_wire(value)

    @staticmethod
    def to_json_text(value: object) -> str:
        """Prompt input form: pretty JSON in field declaration order."""
        return codec.dumps_pretty(value)
