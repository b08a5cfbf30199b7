"""Ledger events: the kinds, their storage keys, the event record, and the query filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from attrs import evolve, field, fields, frozen

from .ids import DirectiveId, GenomeId, NodeId, SuggestionId, TaskId
from .messages import MessageEnvelope
from .storage_keys import StorageKeyed, open_from_storage_key, open_storage_key
from .trace import TaskTrace
from .variants import Other


class LedgerEventKind(StorageKeyed):
    ControllerStarted = "ControllerStarted"
    WorkerStarted = "WorkerStarted"
    MessageReceived = "MessageReceived"
    MessagePublished = "MessagePublished"
    DirectiveAccepted = "DirectiveAccepted"
    TaskMapped = "TaskMapped"
    TaskRouted = "TaskRouted"
    TaskResultReceived = "TaskResultReceived"
    TraceWritten = "TraceWritten"
    AlgedonicSignalReceived = "AlgedonicSignalReceived"
    AuditStarted = "AuditStarted"
    AuditCompleted = "AuditCompleted"
    GeneSuggestionCreated = "GeneSuggestionCreated"
    GenomePatchApplied = "GenomePatchApplied"
    TrialQueued = "TrialQueued"
    TrialStarted = "TrialStarted"
    TrialTaskRouted = "TrialTaskRouted"
    TrialTraceRecorded = "TrialTraceRecorded"
    TrialDecisionRecorded = "TrialDecisionRecorded"
    TrialPromoted = "TrialPromoted"
    TrialPruned = "TrialPruned"
    TrialRejected = "TrialRejected"
    TrialFrozen = "TrialFrozen"
    EvolutionGenerationCreated = "EvolutionGenerationCreated"


EventKind = LedgerEventKind | Other


def kind_storage_key(kind: EventKind) -> str:
    """`task_routed` for a named kind, `other:<name>` for an open-ended one."""
    key = _NAMED_KEYS.get(kind) if type(kind) is LedgerEventKind else None
    return key if key is not None else open_storage_key(kind if isinstance(kind, Other) else LedgerEventKind(kind))


_NAMED_KEYS = {kind: open_storage_key(kind) for kind in LedgerEventKind}  # every event is keyed on the hot path


def kind_from_storage_key(key: str) -> EventKind:
    """Inverse of `kind_storage_key`; an unknown key without the prefix reads as `Other(key)`."""
    return open_from_storage_key(key, LedgerEventKind)


JsonValue = object
"""Plain JSON data: dict (str keys), list, str, int, float, bool or None."""

ToJson = Callable[[object], JsonValue]
"""Turns a core object into JSON data (the codec's unstructure); injected so `core` stays codec-free."""


@frozen(kw_only=True)
class LedgerEvent:
    id: str
    kind: EventKind
    created_at: datetime
    genome_id: GenomeId | None = None
    node_id: NodeId | None = None
    task_id: TaskId | None = None
    directive_id: DirectiveId | None = None
    suggestion_id: SuggestionId | None = None
    correlation_id: str | None = None
    # JSON data, never a core object: every ledger backend must hand back what was appended
    payload: JsonValue
    metadata: dict[str, str] = field(factory=dict)

    @classmethod
    def new(cls, kind: EventKind, payload: JsonValue, *, id: str, created_at: datetime, **links: object) -> LedgerEvent:
        return cls(id=id, kind=kind, created_at=created_at, payload=payload, **links)

    @classmethod
    def for_message(
        cls, kind: EventKind, envelope: MessageEnvelope, *, id: str, created_at: datetime, to_json: ToJson,
    ) -> LedgerEvent:
        """The whole envelope as payload, linked to its target (else its source) node."""
        node = envelope.target_node_id if envelope.target_node_id is not None else envelope.source_node_id
        return cls(
            id=id, kind=kind, created_at=created_at, node_id=node, correlation_id=envelope.correlation_id,
            payload=to_json(envelope),
            metadata={"payload_type": envelope.payload_type, "channel_type": envelope.channel_type.value},
        )

    @classmethod
    def for_trace(cls, trace: TaskTrace, *, id: str, created_at: datetime, to_json: ToJson, **links: object) -> LedgerEvent:
        return cls(
            id=id, kind=LedgerEventKind.TraceWritten, created_at=created_at, genome_id=trace.genome_id,
            node_id=trace.assigned_node_id, task_id=trace.task_id, payload=to_json(trace),
            metadata={"trace_id": trace.id}, **links,
        )

    @property
    def storage_key(self) -> str:
        return kind_storage_key(self.kind)

    def with_node(self, node_id: str | None) -> LedgerEvent:
        return evolve(self, node_id=node_id)

    def with_genome(self, genome_id: str | None) -> LedgerEvent:
        return evolve(self, genome_id=genome_id)

    def with_task(self, task_id: str | None) -> LedgerEvent:
        return evolve(self, task_id=task_id)

    def with_directive(self, directive_id: str | None) -> LedgerEvent:
        return evolve(self, directive_id=directive_id)

    def with_suggestion(self, suggestion_id: str | None) -> LedgerEvent:
        return evolve(self, suggestion_id=suggestion_id)

    def with_correlation(self, correlation_id: str | None) -> LedgerEvent:
        return evolve(self, correlation_id=correlation_id)

    def with_metadata(self, **entries: str) -> LedgerEvent:
        return evolve(self, metadata={**self.metadata, **entries})


@frozen(kw_only=True)
class EventFilter:
    """Which events a query wants. Empty `kinds` means any kind; a set link must match exactly."""

    kinds: tuple[EventKind, ...] = ()
    node_id: NodeId | None = None
    task_id: TaskId | None = None
    directive_id: DirectiveId | None = None
    correlation_id: str | None = None
    since: datetime | None = None
    limit: int | None = None

    def matches(self, event: LedgerEvent) -> bool:
        """Every condition but `limit`, which applies to the filtered, time-ordered result."""
        if self.kinds and event.kind not in self.kinds:
            return False
        for name in ("node_id", "task_id", "directive_id", "correlation_id"):
            wanted = getattr(self, name)
            if wanted is not None and getattr(event, name) != wanted:
                return False
        return self.since is None or event.created_at >= self.since


DEFAULT_TRACE_WINDOW_LIMIT = 100


@frozen(kw_only=True)
class TraceWindow:
    """Recent traces: started at or after `since`, the newest `limit` of them."""

    since: datetime | None = None
    limit: int | None = DEFAULT_TRACE_WINDOW_LIMIT

    def admits(self, trace: TaskTrace) -> bool:
        return self.since is None or trace.started_at >= self.since



# Events cross processes by pickle (LedgerWrite on the multiprocess base), many thousands a second; attrs'
# generic slots __getstate__ builds a dict per event, a plain field tuple is cheaper to make and read.
_EVENT_FIELDS = tuple(a.name for a in fields(LedgerEvent))


def _restore_event(*fields) -> LedgerEvent:
    return LedgerEvent(**dict(zip(_EVENT_FIELDS, fields)))


def _reduce_event(self: LedgerEvent) -> tuple:
    return _restore_event, tuple(getattr(self, name) for name in _EVENT_FIELDS)


LedgerEvent.__reduce__ = _reduce_event  # type: ignore[method-assign]
