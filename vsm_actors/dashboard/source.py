"""The dashboard's one reader of the ledger: it follows the ledger by event `seq` (append order:
a ledger has one writer, its ledger actor, so no lower `seq` commits after a higher one is seen,
and an event stamped earlier but committed late is still read, once), feeds the new rows to the fold of
`views/dashboard_data.py`, and caches each answer on the ledger position it was computed at, so
polling an idle ledger costs one indexed query.

Requests arrive on the server's worker threads; one lock serialises them (the fold is not
thread-safe, and a reader is fast enough that there is nothing to gain from two at once). The
ledger is opened read-only by the command (`open_ledger(..., read_only=True)`): nothing here can
write, on SQLite (a `mode=ro` connection) or PostgreSQL (read-only transactions).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from ..commands.ledger import pricing_for
from ..commands.ledger_tree import directive_events, stored_traces
from ..core.model.events import LedgerEvent, LedgerEventKind, TraceWindow
from ..core.model.genome import OrganizationalGenome
from ..ledger import EventQuery, Ledger, LedgerError, PeeweeLedger
from ..views import dashboard_data as views
from ..views.plots import KINDS, series

T = TypeVar("T")
PAGE = 5000  # rows per read while catching up: bounded memory, few round trips
CACHE_ENTRIES = 256  # answers kept (search strings are the user's: they must not grow it forever)


class NotFound(LookupError):
    """The id names nothing (or several things); the message says which."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class LedgerSource:
    def __init__(self, ledger: Ledger, location: str, *, clock: Callable[[], datetime] = utc_now) -> None:
        if not isinstance(ledger, PeeweeLedger):
            raise LedgerError("the dashboard reads SQLite and PostgreSQL ledgers (not memory://)")
        self.ledger, self.location, self.clock = ledger, location, clock
        self.fold = views.DashboardFold()
        self._lock = threading.Lock()
        self._champions: dict[str, str] | None = None
        self.pricing = pricing_for(ledger, warn=False)
        self._cache: dict[Any, tuple[Any, Any]] = {}
        self._plot_lock = threading.Lock()
        self._plots: dict[Any, tuple[int, Any]] = {}

    # -- following the ledger --------------------------------------------------------------------

    def _rows(self, after: int) -> list[views.Row]:
        """The next rows after ledger position `after`: columns for all, the decoded event only
        for rows the fold reads the payload of (the ledger's own decoder: stored events are
        compacted, their long texts kept apart)."""
        rows = self.ledger.stored_rows_after(after, PAGE)
        roots = {r["directive_id"]: r["node_id"] for r in rows if r["kind"] == "directive_accepted"}
        wanted = [r for r in rows if self._wanted(r, roots)]
        decoded = dict(zip((r["seq"] for r in wanted), self._decode(wanted))) if wanted else {}
        return [(r["seq"], r["kind"], r["created_us"], r["node_id"], r["task_id"], r["directive_id"],
                 decoded.get(r["seq"]), r) for r in rows]

    def _wanted(self, row: dict, roots: dict[str, str]) -> bool:
        """Whether the fold reads this row's payload: a result only where it settles a directive
        (at the node that accepted it, while in flight), a route only if it may be a shadow."""
        kind = row["kind"]
        if kind == "task_result_received":
            d = self.fold.directives.get(row["directive_id"])
            if d is not None and d.live is None:
                return False
            root = roots.get(row["directive_id"]) or (d.root if d is not None else None)
            return root is None or root == row["node_id"]
        return views.name_of(kind) in views.PAYLOAD_NAMES or views.may_be_shadow_route(kind, row["event_json"])

    def _decode(self, rows: list[dict]) -> list[LedgerEvent]:
        return self.ledger.decode_rows(rows)

    def _sync(self) -> None:
        champions = self.ledger.champion_genome_ids()
        if champions != self._champions:  # a promotion: prices and the tree follow the new champion
            self._champions = champions
            self.pricing = pricing_for(self.ledger, warn=False)
        while True:
            rows = self._rows(self.fold.last_seq)
            self.fold.feed(rows, self.pricing)
            if len(rows) < PAGE:
                return

    def sync(self) -> int:
        """Read what was appended since the last call; the ledger position reached."""
        with self._lock:
            self._sync()
            return self.fold.last_seq

    def warm(self) -> int:
        """Read the whole ledger and build the first answers now (a first read of a large ledger
        takes seconds; better before the URL is printed than on the first page)."""
        self.tree()
        self.directives(limit=1)
        return self.fold.last_seq

    def _cached(self, key: Any, compute: Callable[[], T]) -> T:
        """`compute()` once per ledger position (and champion) for `key`."""
        stamp = (self.fold.last_seq, tuple(sorted((self._champions or {}).items())))
        hit = self._cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = compute()
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache.clear()
        self._cache[key] = (stamp, value)
        return value

    def _read(self, compute: Callable[[], T], key: Any = None) -> T:
        with self._lock:
            self._sync()
            return compute() if key is None else self._cached(key, compute)

    # -- views -----------------------------------------------------------------------------------

    def champion(self) -> OrganizationalGenome | None:
        """The newest champion (as the CLI prices by), else the genome the organization booted."""
        if self.pricing.fallback is not None:
            return self.pricing.fallback
        return self.pricing.genome(self.fold.boot_genome_id)

    def tree(self) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            rows = self.fold.live_rows()
            undecoded = [handle for _seq, handle in rows if not isinstance(handle, LedgerEvent)]
            decoded = iter(self._decode(undecoded) if undecoded else ())
            live = [handle if isinstance(handle, LedgerEvent) else next(decoded) for _seq, handle in rows]
            boot = self.pricing.genome(self.fold.boot_genome_id)
            return views.tree_data(self.fold, self.champion(), live, now=self.clock(), ledger=self.location,
                                   boot_genome=boot)
        return self._read(compute, "tree")

    def directives(self, *, q: str = "", status: str = "", limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return self._read(lambda: views.directives_page(self.fold, q=q, status=status, limit=limit, offset=offset),
                          ("directives", q, status, limit, offset))

    def resolve_directive(self, value: str) -> str:
        found = self.fold.find_directive(value)
        if len(found) != 1:
            raise NotFound(f"directive {value!r}: " + ("no such directive" if not found
                                                         else f"matches {len(found)} directives; give more of the id"))
        return found[0]

    def timeline(self, value: str) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            directive_id = self.resolve_directive(value)
            events = directive_events(self.ledger, directive_id)
            traces = stored_traces(self.ledger, events)
            row = views.directive_row(self.fold.directives[directive_id], self.fold.short)
            return views.timeline_data(directive_id, events, traces, now=self.clock(), pricing=self.pricing, row=row)
        return self._read(compute, ("timeline", value))

    def trials(self) -> dict[str, Any]:
        return self._read(lambda: views.trials_data(self.ledger.trial_records()), "trials")

    def trial(self, value: str) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            records = self.ledger.trial_records()
            found = [r for r in records if r.trial_id == value] or [r for r in records if value in r.trial_id]
            if len(found) != 1:
                raise NotFound(f"trial {value!r}: " + ("no such trial" if not found
                                                       else f"matches {len(found)} trials; give more of the id"))
            record = found[0]
            return views.trial_detail(record, self.ledger.get_population_archive_record(record.trial_id),
                                      self.ledger.get_genome_snapshot(record.base_genome_id),
                                      self.ledger.get_genome_snapshot(record.candidate_genome_id))
        return self._read(compute, ("trial", value))

    def plot(self, kind: str, bucket_seconds: float = 1.0) -> dict[str, Any]:
        """A `vsm ledger plot` series. Every trace is read: a full scan, cached per ledger position
        (the page asks for it far less often than for the tree)."""
        if kind not in KINDS:
            raise NotFound(f"plot {kind!r}: one of {', '.join(KINDS)}")

        seq = self.sync()
        key = ("plot", kind, bucket_seconds)
        # outside the fold's lock: seconds on a large ledger, and the tree must not wait for it
        with self._plot_lock:
            hit = self._plots.get(key)
            if hit is not None and hit[0] == seq:
                return hit[1]
            traces = self.ledger.recent_task_traces(TraceWindow(limit=None))
            events = self.ledger.events(EventQuery(kinds=(LedgerEventKind.EvolutionGenerationCreated,
                                                          LedgerEventKind.TrialPromoted)))
            value = views.series_data(series(kind, traces, events, bucket_seconds))
            if len(self._plots) >= CACHE_ENTRIES:
                self._plots.clear()
            self._plots[key] = (seq, value)
            return value
