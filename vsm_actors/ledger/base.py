"""The `Ledger` interface: the empirical record every event, trace and evolution state goes to.

Synchronous on purpose: the ledger actor (the single writer) calls it from inside a Thespian
handler, where there is no event loop. Every backend passes one contract suite
(`tests/ledger/test_contract.py`), so the semantics below hold everywhere:

- `append_events` is one transaction: all events are stored, or none (a duplicate id anywhere
  in the batch, or one that cannot be serialised, stores nothing).
- Event queries filter first, then keep the newest `limit`, returned oldest to newest, ordered
  by `created_at` with ties in append order. A limit of None or 0 means "no limit".
- Traces and every record kind are upserts by id. Traces are ordered by (`started_at`, id).
- Record lists order ties by id, so a query names one answer on every backend.

Errors::

    LedgerError                   anything the ledger could not do
    ├── LedgerSerializationError  a value could not be encoded, or a stored row decoded
    └── LedgerStorageError        the database refused or failed
        ├── LedgerConflictError   an event id that is already stored (or twice in one batch)
        └── LedgerFullError       the disk or database is full; freeing space lets writes resume
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import Callable

from ..core.model.events import EventFilter, LedgerEvent, TraceWindow
from ..core.model.genome import OrganizationalGenome
from ..core.model.ids import GenomeId, NodeId
from ..core.model.records import (
    EvolutionGenerationRecord, GenomeSnapshot, GenomeSnapshotRole, GenomeSnapshotRoleKind,
    PopulationArchiveRecord, StoredTrialRecord,
)
from ..core.model.trace import TaskTrace
from .lineage import LINEAGE_KINDS, TASK_OUTCOME_KINDS, DirectiveLineage, build_lineage, lineage_task_ids
from .query import EventQuery


class LedgerError(Exception):
    """The ledger could not do what was asked; the message says what and where."""


class LedgerSerializationError(LedgerError):
    def __init__(self, message: str) -> None:
        super().__init__(f"ledger serialization error: {message}")


class LedgerStorageError(LedgerError):
    def __init__(self, message: str) -> None:
        super().__init__(f"ledger storage error: {message}")


class LedgerConflictError(LedgerStorageError):
    """An event id was appended twice; the whole batch was refused."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"duplicate event id {event_id!r}: the batch was not stored")


class LedgerFullError(LedgerStorageError):
    """The database or its disk is full. Nothing of the failed batch was stored."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Ledger(ABC):
    """Durable (or, for `MemoryLedger`, process-lifetime) record of one organization.

    Subclasses implement the abstract primitives; the convenience methods here are defined on
    top of them so their semantics cannot drift between backends.
    """

    #: Reads the time for values the ledger stamps itself (champion pointers, snapshots saved by
    #: `set_champion_genome`). Simulations inject a deterministic clock.
    clock: Callable[[], datetime]

    # -- events --------------------------------------------------------------------------------

    @abstractmethod
    def append_events(self, events: Sequence[LedgerEvent]) -> None:
        """Store a batch in one transaction (the ledger actor's group commit)."""

    def append_event(self, event: LedgerEvent) -> None:
        self.append_events((event,))

    @abstractmethod
    def events(self, filter: EventFilter | None = None) -> list[LedgerEvent]:
        """Matching events, oldest first; see `EventQuery` for the extra filters and paging.

        Raises `LedgerError` if `after_id` / `before_id` name an event that is not stored."""

    def recent_events(self, filter: EventFilter | None = None) -> list[LedgerEvent]:
        """The reference's name for `events`."""
        return self.events(filter)

    @abstractmethod
    def get_event(self, event_id: str) -> LedgerEvent | None: ...

    def directive_lineage(self, directive_id: str) -> DirectiveLineage:
        """The tasks, routes, results and traces of one directive."""
        linked = self.events(EventQuery(directive_id=directive_id, kinds=LINEAGE_KINDS))
        by_id = {e.id: e for e in linked}
        # results and traces are linked to their task only (reference §2.2), so fetch them by task
        for task_id in lineage_task_ids(linked):
            for event in self.events(EventQuery(task_id=task_id, kinds=TASK_OUTCOME_KINDS)):
                by_id.setdefault(event.id, event)
        ordered = sorted(by_id.values(), key=lambda e: e.created_at)  # stable: keeps ledger order
        return build_lineage(directive_id, ordered)

    # -- traces --------------------------------------------------------------------------------

    @abstractmethod
    def write_traces(self, traces: Sequence[TaskTrace]) -> None:
        """Upsert by trace id, in one transaction; within a batch the last copy of an id wins."""

    def write_task_trace(self, trace: TaskTrace) -> None:
        self.write_traces((trace,))

    def write_batch(self, events: Sequence[LedgerEvent], traces: Sequence[TaskTrace]) -> None:
        """Events and traces together; durable backends commit them in one transaction."""
        self.append_events(events)
        self.write_traces(traces)

    @abstractmethod
    def get_trace(self, trace_id: str) -> TaskTrace | None: ...

    @abstractmethod
    def recent_task_traces(self, window: TraceWindow | None = None) -> list[TaskTrace]:
        """Traces started at or after `window.since`, the newest `window.limit`, oldest first."""

    @abstractmethod
    def subtree_task_traces(self, node_id: str, window: TraceWindow | None = None) -> list[TaskTrace]:
        """Like `recent_task_traces`, restricted to traces assigned to `node_id` or having it
        among their responsible ancestors. The restriction applies before the limit."""

    # -- genome snapshots and champion pointers ------------------------------------------------

    @abstractmethod
    def save_genome_snapshot(self, snapshot: GenomeSnapshot) -> None:
        """Upsert by genome id."""

    @abstractmethod
    def get_genome_snapshot(self, genome_id: str) -> GenomeSnapshot | None: ...

    @abstractmethod
    def genome_snapshots(
        self, limit: int | None = None, role: GenomeSnapshotRole | None = None,
    ) -> list[GenomeSnapshot]:
        """Newest `saved_at` first (ties by genome id, descending)."""

    @abstractmethod
    def set_champion_genome(
        self, controller_node_id: str, genome: OrganizationalGenome, *,
        saved_at: datetime | None = None, metadata: dict[str, str] | None = None,
    ) -> GenomeSnapshot:
        """Save `genome` as a Champion snapshot and point the controller at it, in one
        transaction, so a crash never leaves a pointer to a snapshot that was not written."""

    @abstractmethod
    def set_champion_genome_id(self, controller_node_id: str, genome_id: str) -> None:
        """Point the controller at a genome id (whether or not its snapshot exists)."""

    @abstractmethod
    def get_champion_genome_id(self, controller_node_id: str) -> GenomeId | None: ...

    @abstractmethod
    def champion_genome_ids(self) -> dict[NodeId, GenomeId]:
        """Every controller's champion pointer."""

    def get_champion_genome(self, controller_node_id: str) -> OrganizationalGenome | None:
        """The champion genome, or None if the pointer or its snapshot is missing."""
        genome_id = self.get_champion_genome_id(controller_node_id)
        if genome_id is None:
            return None
        snapshot = self.get_genome_snapshot(genome_id)
        return None if snapshot is None else snapshot.genome

    # -- trials --------------------------------------------------------------------------------

    @abstractmethod
    def write_trial_record(self, record: StoredTrialRecord) -> None:
        """Upsert by trial id."""

    @abstractmethod
    def get_trial_record(self, trial_id: str) -> StoredTrialRecord | None: ...

    @abstractmethod
    def get_active_trial_record(self, controller_node_id: str) -> StoredTrialRecord | None:
        """The controller's Active record with the newest `updated_at` (ties: greatest id)."""

    @abstractmethod
    def queued_trial_records(self, controller_node_id: str, limit: int | None = None) -> list[StoredTrialRecord]:
        """Queued records, first queued first (`started_at` ascending, ties by id)."""

    @abstractmethod
    def completed_trial_records(self, controller_node_id: str, limit: int | None = None) -> list[StoredTrialRecord]:
        """Promoted, pruned, rejected, frozen or archived records, newest `updated_at` first."""

    @abstractmethod
    def trial_records(self, controller_node_id: str | None = None, limit: int | None = None) -> list[StoredTrialRecord]:
        """Every record (of one controller, or all), newest `updated_at` first."""

    # -- population archive and evolution generations --------------------------------------------

    @abstractmethod
    def write_population_archive_record(self, record: PopulationArchiveRecord) -> None:
        """Upsert by trial id."""

    @abstractmethod
    def get_population_archive_record(self, trial_id: str) -> PopulationArchiveRecord | None: ...

    @abstractmethod
    def population_archive_records(
        self, controller_node_id: str, limit: int | None = None,
    ) -> list[PopulationArchiveRecord]:
        """All the controller's archive records, newest `updated_at` first."""

    @abstractmethod
    def pareto_archive_records(
        self, controller_node_id: str, limit: int | None = None,
    ) -> list[PopulationArchiveRecord]:
        """Records on the Pareto front (frontier, selected for trial, promoted), newest first."""

    @abstractmethod
    def write_evolution_generation_record(self, record: EvolutionGenerationRecord) -> None:
        """Upsert by (controller, generation)."""

    @abstractmethod
    def latest_evolution_generation_record(self, controller_node_id: str) -> EvolutionGenerationRecord | None: ...

    @abstractmethod
    def evolution_generation_records(
        self, controller_node_id: str, limit: int | None = None,
    ) -> list[EvolutionGenerationRecord]:
        """Highest generation first."""

    # -- lifecycle -----------------------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release the connection. Safe to call twice."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def write_state(ledger: Ledger, item: object, champion_key: str | None = None) -> None:
    """Store one durable evolution item: a (key, genome) champion pair, a trial, archive or
    generation record, or a genome snapshot."""
    if isinstance(item, tuple):
        key, genome = item
        ledger.set_champion_genome(key, genome)
    elif isinstance(item, StoredTrialRecord):
        ledger.write_trial_record(item)
    elif isinstance(item, PopulationArchiveRecord):
        ledger.write_population_archive_record(item)
    elif isinstance(item, EvolutionGenerationRecord):
        ledger.write_evolution_generation_record(item)
    elif isinstance(item, GenomeSnapshot):
        ledger.save_genome_snapshot(item)
    else:
        raise TypeError(f"not a ledger state item: {type(item).__name__}")


def champion_snapshot(
    genome: OrganizationalGenome, saved_at: datetime, metadata: dict[str, str] | None,
) -> GenomeSnapshot:
    return GenomeSnapshot.new(genome, GenomeSnapshotRoleKind.Champion, saved_at, metadata=dict(metadata or {}))
