"""Directive lineage: the tasks, routes, results and traces of one directive, rebuilt from events.

This is a read model: nothing stores it. It is folded from the events that carry the directive's
id (DirectiveAccepted, TaskMapped, TaskRouted, ...) plus the results and traces of the tasks those
events name, which the reference links to the task only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from attrs import frozen

from ..core.model.events import LedgerEvent, LedgerEventKind
from ..core.model.ids import DirectiveId, GenomeId, NodeId, TaskId

LINEAGE_KINDS = (
    LedgerEventKind.DirectiveAccepted, LedgerEventKind.TaskMapped, LedgerEventKind.TaskRouted,
    LedgerEventKind.TaskResultReceived, LedgerEventKind.TraceWritten,
)
TASK_OUTCOME_KINDS = (LedgerEventKind.TaskResultReceived, LedgerEventKind.TraceWritten)


@frozen(kw_only=True)
class TaskRoute:
    """One dispatch of a task to a child (trial and shadow copies are routes too)."""

    parent_node_id: NodeId | None
    child_node_id: NodeId | None
    genome_id: GenomeId | None
    reason: str | None
    is_trial_route: bool
    is_shadow_route: bool
    routed_at: datetime
    event_id: str


@frozen(kw_only=True)
class TaskOutcome:
    """A TaskResult as a controller received it."""

    produced_by: NodeId | None
    status: str | None
    summary: str | None
    error: str | None
    received_at: datetime
    event_id: str


@frozen(kw_only=True)
class TraceRef:
    trace_id: str | None
    node_id: NodeId | None
    outcome_score: float | None
    written_at: datetime
    event_id: str


@frozen(kw_only=True)
class LineageTask:
    task_id: TaskId
    title: str | None = None
    parent_task_id: TaskId | None = None
    mapped_by: NodeId | None = None
    mapped_at: datetime | None = None
    routes: tuple[TaskRoute, ...] = ()
    results: tuple[TaskOutcome, ...] = ()
    traces: tuple[TraceRef, ...] = ()

    @property
    def status(self) -> str:
        """The last result's status (`Completed`, `Failed`, ...), else `Routed` or `Mapped`."""
        if self.results and self.results[-1].status:
            return self.results[-1].status
        return "Routed" if self.routes else "Mapped"


@frozen(kw_only=True)
class DirectiveLineage:
    directive_id: DirectiveId
    title: str | None = None
    accepted_by: NodeId | None = None
    accepted_at: datetime | None = None
    # in the order the ledger first mentions each task
    tasks: tuple[LineageTask, ...] = ()
    event_ids: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the ledger knows nothing about the directive."""
        return not self.event_ids

    def task(self, task_id: str) -> LineageTask | None:
        return next((t for t in self.tasks if t.task_id == task_id), None)


def _get(payload: object, key: str) -> object:
    # payloads are plain JSON written by other processes: never assume their shape
    return payload.get(key) if isinstance(payload, dict) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _task_id(event: LedgerEvent) -> str | None:
    return event.task_id or _str(_get(event.payload, "task_id"))


def lineage_task_ids(events: Iterable[LedgerEvent]) -> list[str]:
    """Task ids the directive's own events name, first mention first."""
    seen: dict[str, None] = {}
    for event in events:
        task_id = _task_id(event)
        if task_id is not None and event.kind is not LedgerEventKind.DirectiveAccepted:
            seen.setdefault(task_id, None)
    return list(seen)


def build_lineage(directive_id: str, events: Iterable[LedgerEvent]) -> DirectiveLineage:
    """Fold events (oldest first) into a lineage; events of other kinds are ignored."""
    title = accepted_by = accepted_at = None
    tasks: dict[str, dict] = {}
    used: list[str] = []

    def task(task_id: str) -> dict:
        return tasks.setdefault(task_id, {"task_id": TaskId(task_id), "routes": [], "results": [], "traces": []})

    for event in events:
        payload, kind = event.payload, event.kind
        if kind is LedgerEventKind.DirectiveAccepted:
            if accepted_at is None:
                title, accepted_by, accepted_at = _str(_get(payload, "title")), event.node_id, event.created_at
            used.append(event.id)
            continue
        task_id = _task_id(event)
        if task_id is None or kind not in LINEAGE_KINDS:
            continue
        used.append(event.id)
        entry = task(task_id)
        if kind is LedgerEventKind.TaskMapped and "mapped_at" not in entry:
            entry.update(title=_str(_get(payload, "task_title")),
                         parent_task_id=_str(_get(payload, "parent_task_id")),
                         mapped_by=event.node_id or _str(_get(payload, "controller_node_id")),
                         mapped_at=event.created_at)
        elif kind is LedgerEventKind.TaskRouted:
            entry.setdefault("title", _str(_get(payload, "task_title")))
            entry["routes"].append(TaskRoute(
                parent_node_id=_str(_get(payload, "parent_node_id")),
                child_node_id=_str(_get(payload, "child_node_id")),
                genome_id=_str(_get(payload, "routed_genome_id")) or event.genome_id,
                reason=_str(_get(payload, "reason")),
                is_trial_route=_get(payload, "is_trial_route") is True,
                is_shadow_route=_get(payload, "is_shadow_route") is True,
                routed_at=event.created_at, event_id=event.id))
        elif kind is LedgerEventKind.TaskResultReceived:
            entry["results"].append(TaskOutcome(
                produced_by=_str(_get(payload, "produced_by")), status=_str(_get(payload, "status")),
                summary=_str(_get(payload, "summary")), error=_str(_get(payload, "error")),
                received_at=event.created_at, event_id=event.id))
        elif kind is LedgerEventKind.TraceWritten:
            score = _get(payload, "outcome_score")
            entry["traces"].append(TraceRef(
                trace_id=event.metadata.get("trace_id") or _str(_get(payload, "id")),
                node_id=event.node_id or _str(_get(payload, "assigned_node_id")),
                outcome_score=float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
                written_at=event.created_at, event_id=event.id))

    return DirectiveLineage(
        directive_id=DirectiveId(directive_id), title=title, accepted_by=accepted_by, accepted_at=accepted_at,
        tasks=tuple(LineageTask(**{**e, "routes": tuple(e["routes"]), "results": tuple(e["results"]),
                                   "traces": tuple(e["traces"])}) for e in tasks.values()),
        event_ids=tuple(used),
    )
