"""Query values and the orderings every ledger backend shares.

The backends must return identical results, so everything that decides *which* rows a query
returns and in *what order* is defined once here: timestamps become integer microseconds (exact,
and ordered like the instants they name), limits are normalised, and event kinds are compared by
storage key.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from attrs import frozen

from ..core.model.events import (
    EventFilter, EventKind, LedgerEvent, LedgerEventKind, kind_from_storage_key, kind_storage_key,
)
from ..core.model.ids import GenomeId, SuggestionId
from ..core.model.variants import Other

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def timestamp_us(value: datetime) -> int:
    """Microseconds since the Unix epoch. A naive datetime is read as UTC, as the codec does, so
    the stored column and the stored JSON always name the same instant."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def effective_limit(limit: int | None) -> int | None:
    """None and 0 both mean "no limit" on every backend (the reference's SQLite read 0 as 1)."""
    if limit is None or limit == 0:
        return None
    if limit < 0:
        raise ValueError(f"a ledger query limit must be >= 0 or None, got {limit}")
    return limit


def kind_key(kind: EventKind | str) -> str:
    """Storage key of a kind given as an enum value, `Other`, its PascalCase name or its key."""
    if isinstance(kind, (LedgerEventKind, Other)):
        return kind_storage_key(kind)
    try:
        return LedgerEventKind(kind).storage_key
    except ValueError:
        # already a storage key; the round trip normalises `other:` spellings
        return kind_storage_key(kind_from_storage_key(kind))


Keep = Literal["newest", "oldest"]


@frozen(kw_only=True)
class EventQuery(EventFilter):
    """An `EventFilter` with the links the reference could not filter on, plus paging.

    All conditions are applied first; then `limit` keeps the newest (or, with `keep="oldest"`,
    the oldest) matching events; the result is always oldest to newest. Order is by `created_at`,
    ties broken by append order. `after_id` / `before_id` restrict to events strictly after /
    before that event in this order, so a reader pages forward with `after_id=<last seen>,
    keep="oldest"` or backward with `before_id=<first seen>`.
    """

    genome_id: GenomeId | None = None
    suggestion_id: SuggestionId | None = None
    after_id: str | None = None
    before_id: str | None = None
    keep: Keep = "newest"

    def matches(self, event: LedgerEvent) -> bool:
        if not super().matches(event):
            return False
        if self.genome_id is not None and event.genome_id != self.genome_id:
            return False
        return self.suggestion_id is None or event.suggestion_id == self.suggestion_id


LINK_FIELDS = ("node_id", "task_id", "directive_id", "correlation_id", "genome_id", "suggestion_id")
"""The event links a query can pin to one value; each is an indexed column in SQL."""


@frozen(kw_only=True)
class NormalizedQuery:
    """What a backend executes: kinds as storage keys, links as a dict, times as microseconds."""

    kind_keys: frozenset[str]
    links: dict[str, str]
    since_us: int | None
    limit: int | None
    keep: Keep
    after_id: str | None
    before_id: str | None


def normalize(filter: EventFilter | None) -> NormalizedQuery:
    f = filter if filter is not None else EventQuery()
    links = {name: getattr(f, name, None) for name in LINK_FIELDS}
    keep = getattr(f, "keep", "newest")
    if keep not in ("newest", "oldest"):
        raise ValueError(f"EventQuery.keep must be 'newest' or 'oldest', got {keep!r}")
    return NormalizedQuery(
        kind_keys=frozenset(kind_key(k) for k in f.kinds),
        links={k: v for k, v in links.items() if v is not None},
        since_us=None if f.since is None else timestamp_us(f.since),
        limit=effective_limit(f.limit),
        keep=keep,
        after_id=getattr(f, "after_id", None),
        before_id=getattr(f, "before_id", None),
    )
