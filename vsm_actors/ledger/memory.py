"""`MemoryLedger`: the in-memory twin of the SQL store, for tests and throwaway simulations.

It keeps the same rows as the SQL store (JSON text plus index columns, see `_rows`) and answers
every query with the same semantics; the contract suite holds it to that. Writes encode every
value before touching any state, so a failing batch leaves nothing behind, as a rolled-back
transaction would.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from ..core.model.events import EventFilter, LedgerEvent, TraceWindow
from ..core.model.genome import OrganizationalGenome
from ..core.model.ids import GenomeId, NodeId
from ..core.model.records import (
    COMPLETED_TRIAL_STATUSES, PARETO_ARCHIVE_STATUSES, EvolutionGenerationRecord, GenomeSnapshot,
    GenomeSnapshotRole, PopulationArchiveRecord, StoredTrialRecord, StoredTrialStatus, role_storage_key,
)
from ..core.model.trace import TaskTrace
from . import _rows
from ._compact import unpack_blob
from ._rows import Row
from .base import Ledger, LedgerConflictError, LedgerError, champion_snapshot, utc_now
from .query import effective_limit, normalize, timestamp_us

T = TypeVar("T")

_COMPLETED = frozenset(s.storage_key for s in COMPLETED_TRIAL_STATUSES)
_PARETO = frozenset(s.storage_key for s in PARETO_ARCHIVE_STATUSES)


def _take(rows: Iterable[Row], key: Callable[[Row], Any], *, descending: bool, limit: int | None) -> list[Row]:
    ordered = sorted(rows, key=key, reverse=descending)
    lim = effective_limit(limit)
    return ordered if lim is None else ordered[:lim]


class MemoryLedger(Ledger):
    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._closed = False
        self._seq = 0
        # events sorted by (created_us, seq): newest-N queries scan backwards from the end
        self._event_keys: list[tuple[int, int]] = []
        self._event_rows: dict[tuple[int, int], Row] = {}
        self._event_pos: dict[str, tuple[int, int]] = {}
        self._blobs: dict[str, bytes] = {}  # long texts of events, by key (`_compact`)
        self._traces: dict[str, Row] = {}
        self._snapshots: dict[str, Row] = {}
        self._champions: dict[str, tuple[str, int]] = {}
        self._trials: dict[str, Row] = {}
        self._archive: dict[str, Row] = {}
        self._generations: dict[tuple[str, int], Row] = {}

    @contextmanager
    def _guard(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise LedgerError("the in-memory ledger is closed")
            yield

    # -- events --------------------------------------------------------------------------------

    def append_events(self, events: Sequence[LedgerEvent]) -> None:
        rows = [_rows.event_row(e) for e in events]
        blobs = _rows.take_blobs(rows)
        with self._guard():
            seen: set[str] = set()
            for row in rows:
                if row["id"] in self._event_pos or row["id"] in seen:
                    raise LedgerConflictError(row["id"])
                seen.add(row["id"])
            self._blobs.update((b["key"], b["body"]) for b in blobs)
            for row in rows:
                self._seq += 1
                key = (row["created_us"], self._seq)
                insort(self._event_keys, key)
                self._event_rows[key] = row
                self._event_pos[row["id"]] = key

    def events(self, filter: EventFilter | None = None) -> list[LedgerEvent]:
        q = normalize(filter)
        with self._guard():
            keys = self._event_keys
            lo, hi = 0, len(keys)
            if q.since_us is not None:
                lo = bisect_left(keys, (q.since_us, -1))
            if q.after_id is not None:
                lo = max(lo, bisect_right(keys, self._cursor(q.after_id, "after_id")))
            if q.before_id is not None:
                hi = min(hi, bisect_left(keys, self._cursor(q.before_id, "before_id")))
            indexes = range(hi - 1, lo - 1, -1) if q.keep == "newest" else range(lo, hi)
            found: list[Row] = []
            for i in indexes:
                row = self._event_rows[keys[i]]
                if q.kind_keys and row["kind"] not in q.kind_keys:
                    continue
                if any(row[name] != value for name, value in q.links.items()):
                    continue
                found.append(row)
                if q.limit is not None and len(found) == q.limit:
                    break
        if q.keep == "newest":
            found.reverse()
        return self._decode_events(found)

    def _decode_events(self, rows: list[Row]) -> list[LedgerEvent]:
        with self._guard():
            texts = {k: unpack_blob(self._blobs[k]) for k in _rows.referenced_blob_keys(rows) if k in self._blobs}
        return [_rows.decode_event(row, texts) for row in rows]

    def _cursor(self, event_id: str, name: str) -> tuple[int, int]:
        try:
            return self._event_pos[event_id]
        except KeyError:
            raise LedgerError(f"{name} names an event that is not in the ledger: {event_id!r}") from None

    def get_event(self, event_id: str) -> LedgerEvent | None:
        with self._guard():
            key = self._event_pos.get(event_id)
            row = None if key is None else self._event_rows[key]
        return None if row is None else self._decode_events([row])[0]

    # -- traces --------------------------------------------------------------------------------

    def write_traces(self, traces: Sequence[TaskTrace]) -> None:
        rows = []
        for trace in _rows.dedupe_last(list(traces), key=lambda t: t.id):
            row = _rows.trace_row(trace)
            row["subjects"] = frozenset(_rows.trace_subject_ids(trace))
            rows.append(row)
        with self._guard():
            for row in rows:
                self._traces[row["id"]] = row

    def get_trace(self, trace_id: str) -> TaskTrace | None:
        with self._guard():
            row = self._traces.get(trace_id)
        return None if row is None else self._trace(row)

    def recent_task_traces(self, window: TraceWindow | None = None) -> list[TaskTrace]:
        return self._window(window, lambda row: True)

    def subtree_task_traces(self, node_id: str, window: TraceWindow | None = None) -> list[TaskTrace]:
        return self._window(window, lambda row: node_id in row["subjects"])

    def _window(self, window: TraceWindow | None, keep: Callable[[Row], bool]) -> list[TaskTrace]:
        window = window if window is not None else TraceWindow()
        since = None if window.since is None else timestamp_us(window.since)
        with self._guard():
            rows = [r for r in self._traces.values() if (since is None or r["started_us"] >= since) and keep(r)]
        newest = _take(rows, lambda r: (r["started_us"], r["id"]), descending=True, limit=window.limit)
        return [self._trace(r) for r in reversed(newest)]

    @staticmethod
    def _trace(row: Row) -> TaskTrace:
        return _rows.decode(row["trace_json"], TaskTrace, f"trace {row['id']!r}")

    # -- genome snapshots and champion pointers ------------------------------------------------

    def save_genome_snapshot(self, snapshot: GenomeSnapshot) -> None:
        row = _rows.snapshot_row(snapshot)
        with self._guard():
            self._snapshots[row["genome_id"]] = row

    def get_genome_snapshot(self, genome_id: str) -> GenomeSnapshot | None:
        with self._guard():
            row = self._snapshots.get(genome_id)
        return None if row is None else self._snapshot(row)

    def genome_snapshots(
        self, limit: int | None = None, role: GenomeSnapshotRole | None = None,
    ) -> list[GenomeSnapshot]:
        wanted = None if role is None else role_storage_key(role)
        with self._guard():
            rows = [r for r in self._snapshots.values() if wanted is None or r["role"] == wanted]
        return [self._snapshot(r) for r in
                _take(rows, lambda r: (r["saved_us"], r["genome_id"]), descending=True, limit=limit)]

    @staticmethod
    def _snapshot(row: Row) -> GenomeSnapshot:
        return _rows.decode(row["snapshot_json"], GenomeSnapshot, f"genome snapshot {row['genome_id']!r}")

    def set_champion_genome(
        self, controller_node_id: str, genome: OrganizationalGenome, *,
        saved_at: datetime | None = None, metadata: dict[str, str] | None = None,
    ) -> GenomeSnapshot:
        now = self.clock()
        snapshot = champion_snapshot(genome, saved_at or now, metadata)
        row = _rows.snapshot_row(snapshot)
        with self._guard():
            self._snapshots[row["genome_id"]] = row
            self._champions[controller_node_id] = (genome.id, timestamp_us(now))
        return snapshot

    def set_champion_genome_id(self, controller_node_id: str, genome_id: str) -> None:
        with self._guard():
            self._champions[controller_node_id] = (genome_id, timestamp_us(self.clock()))

    def get_champion_genome_id(self, controller_node_id: str) -> GenomeId | None:
        with self._guard():
            entry = self._champions.get(controller_node_id)
        return None if entry is None else GenomeId(entry[0])

    def champion_genome_ids(self) -> dict[NodeId, GenomeId]:
        with self._guard():
            return {NodeId(c): GenomeId(g) for c, (g, _) in sorted(self._champions.items())}

    # -- trials --------------------------------------------------------------------------------

    def write_trial_record(self, record: StoredTrialRecord) -> None:
        row = _rows.trial_row(record)
        with self._guard():
            self._trials[row["trial_id"]] = row

    def get_trial_record(self, trial_id: str) -> StoredTrialRecord | None:
        with self._guard():
            row = self._trials.get(trial_id)
        return None if row is None else self._trial(row)

    def get_active_trial_record(self, controller_node_id: str) -> StoredTrialRecord | None:
        found = self._trial_rows(controller_node_id, {StoredTrialStatus.Active.storage_key}, "updated_us", True, 1)
        return found[0] if found else None

    def queued_trial_records(self, controller_node_id: str, limit: int | None = None) -> list[StoredTrialRecord]:
        return self._trial_rows(controller_node_id, {StoredTrialStatus.Queued.storage_key}, "started_us", False, limit)

    def completed_trial_records(self, controller_node_id: str, limit: int | None = None) -> list[StoredTrialRecord]:
        return self._trial_rows(controller_node_id, _COMPLETED, "updated_us", True, limit)

    def trial_records(self, controller_node_id: str | None = None, limit: int | None = None) -> list[StoredTrialRecord]:
        return self._trial_rows(controller_node_id, None, "updated_us", True, limit)

    def _trial_rows(self, controller: str | None, statuses: set[str] | frozenset[str] | None,
                    order: str, descending: bool, limit: int | None) -> list[StoredTrialRecord]:
        with self._guard():
            rows = [r for r in self._trials.values()
                    if (controller is None or r["controller_node_id"] == controller)
                    and (statuses is None or r["status"] in statuses)]
        return [self._trial(r) for r in
                _take(rows, lambda r: (r[order], r["trial_id"]), descending=descending, limit=limit)]

    @staticmethod
    def _trial(row: Row) -> StoredTrialRecord:
        return _rows.decode(row["record_json"], StoredTrialRecord, f"trial record {row['trial_id']!r}")

    # -- population archive and evolution generations --------------------------------------------

    def write_population_archive_record(self, record: PopulationArchiveRecord) -> None:
        row = _rows.archive_row(record)
        with self._guard():
            self._archive[row["trial_id"]] = row

    def get_population_archive_record(self, trial_id: str) -> PopulationArchiveRecord | None:
        with self._guard():
            row = self._archive.get(trial_id)
        return None if row is None else self._archived(row)

    def population_archive_records(
        self, controller_node_id: str, limit: int | None = None,
    ) -> list[PopulationArchiveRecord]:
        return self._archive_rows(controller_node_id, None, limit)

    def pareto_archive_records(
        self, controller_node_id: str, limit: int | None = None,
    ) -> list[PopulationArchiveRecord]:
        return self._archive_rows(controller_node_id, _PARETO, limit)

    def _archive_rows(
        self, controller: str, statuses: frozenset[str] | None, limit: int | None,
    ) -> list[PopulationArchiveRecord]:
        with self._guard():
            rows = [r for r in self._archive.values() if r["controller_node_id"] == controller
                    and (statuses is None or r["status"] in statuses)]
        return [self._archived(r) for r in
                _take(rows, lambda r: (r["updated_us"], r["trial_id"]), descending=True, limit=limit)]

    @staticmethod
    def _archived(row: Row) -> PopulationArchiveRecord:
        return _rows.decode(row["record_json"], PopulationArchiveRecord,
                            f"population archive record {row['trial_id']!r}")

    def write_evolution_generation_record(self, record: EvolutionGenerationRecord) -> None:
        row = _rows.generation_row(record)
        with self._guard():
            self._generations[(row["controller_node_id"], row["generation"])] = row

    def latest_evolution_generation_record(self, controller_node_id: str) -> EvolutionGenerationRecord | None:
        found = self.evolution_generation_records(controller_node_id, 1)
        return found[0] if found else None

    def evolution_generation_records(
        self, controller_node_id: str, limit: int | None = None,
    ) -> list[EvolutionGenerationRecord]:
        with self._guard():
            rows = [r for (c, _), r in self._generations.items() if c == controller_node_id]
        return [_rows.decode(r["record_json"], EvolutionGenerationRecord, f"evolution generation {r['generation']}")
                for r in _take(rows, lambda r: r["generation"], descending=True, limit=limit)]

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Refuse further use, as a closed durable ledger does; the data is dropped."""
        with self._lock:
            self._closed = True
            for store in (self._event_keys, self._event_rows, self._event_pos, self._traces, self._snapshots,
                          self._champions, self._trials, self._archive, self._generations):
                store.clear()
