"""The order in which a ledger recorded the ids of one kind, read through indexes: what
`ledger_ids` needs to shorten ids against the ids recorded near them, and to resolve a filter
value by the recency rule (`ledger_ids`), without reading every id of the kind.

Three orders, one interface:

- `EventColumnOrder`: ids of an event column (directives, tasks, correlation ids). A position is
  an event's `seq` (append order, the primary key); an id's span runs from the first to the last
  event naming it (found through the column's index); the near window before a position is the
  `NEAR_EVENTS` events before it;
- `TraceOrder`: trace ids. A trace is one row: its position is its `started_us` (the
  `(started_us, id)` index), newer by `(started_us, id)`; the near window is the `NEAR_TRACES`
  traces started before it;
- `ScannedOrder`: an event column's values held in memory (ledgers that are not SQL, and tests).

Every read is an index seek or a range ending at the newest row, so its cost follows how far back
the ids asked about lie, not the size of the ledger; only a value found nowhere in the last
`LOOKBACK` events, or ambiguous, is looked for in the whole column (what the whole-ledger rule
always did). Read only, through `ledger_events`' columns (a table, or from schema 3 a view over
the packed rows: hence no aggregate over all of it) and the trace table; SQLite and PostgreSQL
(peewee expressions; the substring function is the one engine-specific part).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import peewee as pw
from attrs import frozen

from ..ledger import PeeweeLedger

NEAR_EVENTS = 2000
LOOKBACK = 32_000  # events scanned back, at most, before reading a column's whole index
NEAR_TRACES = 1000
SAMPLE = 256
_CHUNK = 500  # ids per IN (...): well under any engine's limit on bound parameters


@frozen
class Span:
    """Where an id was recorded: `key` orders ids by recency (greater is newer), `first` and
    `last` are the positions of its first and last record."""

    key: Any
    first: int
    last: int


def contains(ledger: PeeweeLedger, field: pw.Field, needle: str) -> pw.Expression:
    """`field` contains `needle`, case-insensitively (the filter rule of `short_ids.matching`)."""
    finder = pw.fn.instr if ledger.target.engine == "sqlite" else pw.fn.strpos
    return finder(pw.fn.lower(field), needle.lower()) > 0


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _distinct(values: Iterable[Any]) -> list[str]:
    return [v for v in dict.fromkeys(values) if v]


class EventColumnOrder:
    def __init__(self, ledger: PeeweeLedger, column: str) -> None:
        self.ledger, self.E = ledger, ledger.m.Event
        self.field: pw.Field = getattr(self.E, column)

    def _read(self, query: pw.Query) -> list[tuple]:
        return self.ledger._read("reading ids", lambda: list(query.tuples()))

    def exists(self, value: str) -> bool:
        return bool(self._read(self.E.select(self.E.seq).where(self.field == value).limit(1)))

    def spans(self, ids: Iterable[str]) -> dict[str, Span]:
        ids, E, out = _distinct(ids), self.E, {}
        for chunk in _chunks(ids):
            query = (E.select(self.field, pw.fn.MIN(E.seq), pw.fn.MAX(E.seq))
                     .where(self.field.in_(list(chunk))).group_by(self.field))
            out.update({i: Span(first, first, last) for i, first, last in self._read(query)})
        return out

    def boundary(self, first: int) -> int:
        return first - NEAR_EVENTS

    def end(self) -> int:
        # ORDER BY ... LIMIT 1, not MAX: `ledger_events` may be a view joining each row to its
        # strings (schema 3), over which an aggregate joins every row first
        rows = self._read(self.E.select(self.E.seq).order_by(self.E.seq.desc()).limit(1))
        return (rows[0][0] if rows else 0) + 1

    def near(self, since: int) -> list[str]:
        # DISTINCT over an ordered subquery keeps SQLite on the primary key range: a bare
        # DISTINCT would read the column's whole index instead
        rows = self.E.select(self.field).where(self.E.seq >= since).order_by(self.E.seq).alias("recent")
        query = pw.Select(from_list=[rows], columns=[getattr(rows.c, self.field.column_name)]).distinct()
        return _distinct(r[0] for r in self._read(query.bind(self.E._meta.database)))

    def low(self) -> int | None:
        rows = self._read(self.E.select(self.E.seq).order_by(self.E.seq).limit(1))
        return rows[0][0] if rows else None

    def sample(self, before: int, low: int | None, size: int | None = None) -> list[str]:
        """Ids of events at `size` evenly spaced positions from `low` to `before`: the whole
        ledger's ids seen through a few primary key lookups."""
        size = SAMPLE if size is None else size
        if low is None or low >= before or size <= 0:
            return []
        step = max(1, (before - low) // size)
        probes = list(range(low, before, step))[:size]
        return _distinct(r[0] for chunk in _chunks(probes) for r in self._read(
            self.E.select(self.field).where(self.E.seq.in_(list(chunk)))))

    def recent_matches(self, needle: str) -> dict[str, Span]:
        """The spans of the ids containing `needle` recorded from the near window of the one
        recorded last on (all that the recency rule weighs), or of every one."""
        E, match = self.E, contains(self.ledger, self.field, needle)
        end, back = self.end(), NEAR_EVENTS
        while back <= LOOKBACK:  # back from the newest event, over growing ranges
            latest = self._read(E.select(self.field).where((E.seq >= end - back) & match)
                                .order_by(E.seq.desc()).limit(1))
            if latest:
                since = self.boundary(self.spans([latest[0][0]])[latest[0][0]].first)
                if end - since > LOOKBACK:
                    break
                return self.spans(r[0] for r in self._read(E.select(self.field).where((E.seq >= since) & match)))
            back *= 4
        # far back or nowhere: every match with its span, in one read of the column's index
        # (what the whole-ledger rule always read)
        query = E.select(self.field, pw.fn.MIN(E.seq), pw.fn.MAX(E.seq)).where(match).group_by(self.field)
        return {i: Span(first, first, last) for i, first, last in self._read(query)}

    def all_matches(self, needle: str) -> list[str]:
        query = self.E.select(self.field).where(contains(self.ledger, self.field, needle)).distinct()
        return _distinct(r[0] for r in self._read(query))


class TraceOrder:
    def __init__(self, ledger: PeeweeLedger) -> None:
        self.ledger, self.T = ledger, ledger.m.Trace

    def _read(self, query: pw.Query) -> list[tuple]:
        return self.ledger._read("reading trace ids", lambda: list(query.tuples()))

    def exists(self, value: str) -> bool:
        return bool(self._read(self.T.select(self.T.id).where(self.T.id == value).limit(1)))

    def spans(self, ids: Iterable[str]) -> dict[str, Span]:
        ids, T, out = _distinct(ids), self.T, {}
        for chunk in _chunks(ids):
            # ids compared in Python, not SQL: one order whatever the engine's collation
            rows = self._read(T.select(T.id, T.started_us).where(T.id.in_(list(chunk))))
            out.update({i: Span((started, i), started, started) for i, started in rows})
        return out

    def boundary(self, first: int) -> int:
        rows = self._read(self.T.select(self.T.started_us).where(self.T.started_us < first)
                          .order_by(self.T.started_us.desc()).limit(1).offset(NEAR_TRACES - 1))
        return rows[0][0] if rows else -(2 ** 63)

    def end(self) -> int:
        rows = self._read(self.T.select(pw.fn.MAX(self.T.started_us)))
        return (rows[0][0] or 0) + 1

    def near(self, since: int) -> list[str]:
        return _distinct(r[0] for r in self._read(
            self.T.select(self.T.id).where(self.T.started_us >= since).order_by(self.T.started_us)))

    def low(self) -> int | None:
        return self._read(self.T.select(pw.fn.MIN(self.T.started_us)))[0][0]  # alone: with MAX it would scan

    def sample(self, before: int, low: int | None, size: int | None = None) -> list[str]:
        """The first trace started at or after each of `size` evenly spaced instants from `low`
        to `before`: one statement, an index seek per instant."""
        T = self.T
        size = SAMPLE if size is None else size
        if low is None or low >= before or size <= 0:
            return []
        step = max(1, (before - low) // size)
        probes = pw.ValuesList([(at,) for at in range(low, before, step)][:size]).cte("probes", columns=("at",))
        first = (T.select(T.id).where((T.started_us >= probes.c.at) & (T.started_us < before))
                 .order_by(T.started_us).limit(1))
        query = pw.Select(from_list=[probes], columns=[first]).with_cte(probes).bind(T._meta.database)
        return _distinct(r[0] for r in self._read(query))

    def recent_matches(self, needle: str) -> dict[str, Span]:
        T, match = self.T, contains(self.ledger, self.T.id, needle)
        # both reads walk the (started_us, id) index alone, back from the newest trace
        latest = self._read(T.select(T.started_us).where(match).order_by(T.started_us.desc()).limit(1))
        if not latest:
            return {}
        rows = self._read(T.select(T.id, T.started_us).where((T.started_us >= self.boundary(latest[0][0])) & match))
        return {i: Span((started, i), started, started) for i, started in rows}

    def all_matches(self, needle: str) -> list[str]:
        return _distinct(r[0] for r in self._read(
            self.T.select(self.T.id).where(contains(self.ledger, self.T.id, needle))))


class ScannedOrder:
    """`EventColumnOrder` over a column's values in record order, held in memory: for ledgers
    that are not SQL (read whole anyway), and the reference the SQL orders are tested against.
    Positions count from `start` (1, like `seq`)."""

    def __init__(self, values: Sequence[str | None], start: int = 1) -> None:
        self.start, self.values = start, list(values)
        self._spans: dict[str, Span] = {}
        for n, value in enumerate(self.values, start):
            if value:
                first = self._spans[value].first if value in self._spans else n
                self._spans[value] = Span(first, first, n)

    def exists(self, value: str) -> bool:
        return value in self._spans

    def spans(self, ids: Iterable[str]) -> dict[str, Span]:
        return {i: self._spans[i] for i in _distinct(ids) if i in self._spans}

    def boundary(self, first: int) -> int:
        return first - NEAR_EVENTS

    def end(self) -> int:
        return self.start + len(self.values)

    def low(self) -> int | None:
        return self.start if self.values else None

    def near(self, since: int) -> list[str]:
        return _distinct(self.values[max(0, since - self.start):])

    def sample(self, before: int, low: int | None, size: int | None = None) -> list[str]:
        size = SAMPLE if size is None else size
        if low is None or low >= before or size <= 0:
            return []
        step = max(1, (before - low) // size)
        return _distinct(self.values[at - self.start] for at in list(range(low, before, step))[:size])

    def recent_matches(self, needle: str) -> dict[str, Span]:
        return {i: self._spans[i] for i in self.all_matches(needle)}  # all of them: the rule needs no fewer

    def all_matches(self, needle: str) -> list[str]:
        low = needle.lower()
        return [i for i in self._spans if low in i.lower()]


Order = EventColumnOrder | TraceOrder | ScannedOrder
