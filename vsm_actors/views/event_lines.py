"""Text lines for ledger events and task traces: one line each, with status and outcome.

Every id column is cut by its own `ShortIds` (see `short_ids`), so the ids printed are unique
among those shown and each works as a filter (`--task`, `--directive`, `--event`, `--trace`).
Node ids are names and print whole. Pure functions over ledger records; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import frozen

from ..codec import format_timestamp
from ..core.model.events import LedgerEvent, LedgerEventKind
from ..core.model.trace import TaskTrace
from ..core.model.variants import Other
from .costs import Pricing, format_cost
from .short_ids import ShortIds

_K = LedgerEventKind
OUTCOME_WIDTH = 120
FAILED_STATUSES = ("Failed", "Rejected", "NeedsHuman")


def kind_name(event: LedgerEvent) -> str:
    """`task_routed` for a named kind, the bare name for an open one (`organization_started`)."""
    return event.kind.value if isinstance(event.kind, Other) else event.storage_key


def _get(payload: object, key: str) -> object:
    return payload.get(key) if isinstance(payload, dict) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def one_line(text: str | None, width: int = OUTCOME_WIDTH) -> str:
    """Whitespace collapsed to single spaces, cut to `width` with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def event_status(event: LedgerEvent) -> str:
    """What the event says happened, in a word: accepted, mapped, routed, a result's or a
    trace's status (Completed, Failed, ...), a trial's status, or "-"."""
    p, kind = event.payload, event.kind
    if kind is _K.DirectiveAccepted:
        return "accepted"
    if kind is _K.TaskMapped:
        return "mapped"
    if kind is _K.TaskRouted:
        if _get(p, "is_shadow_route") is True:
            return "shadow"
        return "trial" if _get(p, "is_trial_route") is True else "routed"
    if kind is _K.TraceWritten:
        return _text(_get(_get(p, "metadata"), "status")) or "-"
    status = _text(_get(p, "status"))
    if status:
        return status
    if _text(_get(p, "error")):
        return "failed"
    return "-"


def event_outcome(event: LedgerEvent, pricing: Pricing | None = None) -> str:
    """One line of what came of it: a result's error (or summary), a route's target and
    reason, a trace's tokens, cost, latency and score, a trial's decision, ..."""
    p, kind = event.payload, event.kind
    if kind is _K.DirectiveAccepted:
        return one_line(f'"{_text(_get(p, "title")) or _text(_get(p, "body")) or ""}"')
    if kind is _K.TaskMapped:
        return one_line(f'"{_text(_get(p, "task_title")) or ""}"')
    if kind is _K.TaskRouted:
        reason = _text(_get(p, "reason"))
        return one_line(f"-> {_get(p, 'child_node_id') or '?'}" + (f": {reason}" if reason else ""))
    if kind is _K.TaskResultReceived:
        detail = _text(_get(p, "error")) or _text(_get(p, "summary")) or ""
        by = _text(_get(p, "produced_by"))
        return one_line((f"by {by}: " if by else "") + detail)
    if kind is _K.TraceWritten:
        i, o = _int(_get(p, "input_tokens")), _int(_get(p, "output_tokens"))
        node = _text(_get(p, "assigned_node_id")) or event.node_id or ""
        cost = pricing.usage_cost(_text(_get(p, "genome_id")) or event.genome_id, node, i, o) if pricing else None
        score = _get(p, "outcome_score")
        score_text = f"  score {score:+.3f}" if isinstance(score, (int, float)) and not isinstance(score, bool) else ""
        return f"tokens {i}+{o}={i + o}  cost {format_cost(cost)}  {_int(_get(p, 'latency_ms'))} ms{score_text}"
    error = _text(_get(p, "error"))
    if error:
        return one_line(f"error: {error}")
    decision, reason = _text(_get(p, "decision")), _text(_get(p, "reason"))
    if decision or reason:
        return one_line(" ".join(x for x in (decision, reason and f"({reason})" if decision else reason) if x))
    base, candidate = _text(_get(p, "base_genome_id")), _text(_get(p, "candidate_genome_id"))
    new = _text(_get(p, "new_champion_genome_id"))
    if base and (candidate or new):
        return one_line(f"{base} -> {candidate or new}")
    hypothesis = _text(_get(p, "hypothesis"))
    return one_line(hypothesis) if hypothesis else ""


@frozen(kw_only=True)
class EventColumns:
    """The short-id windows of an event listing's id columns."""

    event: ShortIds = ShortIds()
    task: ShortIds = ShortIds()
    directive: ShortIds = ShortIds()

    @property
    def widths(self) -> tuple[int, int, int]:
        return self.event.width, self.task.width, self.directive.width


def event_line(event: LedgerEvent, columns: EventColumns, pricing: Pricing | None = None) -> str:
    ew, tw, dw = columns.widths
    return (f"{format_timestamp(event.created_at):<27}  {kind_name(event):<26}  {event.node_id or '-':<22}  "
            f"task {columns.task(event.task_id):<{tw}}  directive {columns.directive(event.directive_id):<{dw}}  "
            f"event {columns.event(event.id):<{ew}}  {event_status(event):<10}  {event_outcome(event, pricing)}"
            ).rstrip()


# -- traces --------------------------------------------------------------------------------------

def trace_status(trace: TaskTrace) -> str:
    return trace.metadata.get("status", "-")


def result_error(results: Iterable[LedgerEvent], node_id: str) -> str | None:
    """The error text of the task result `node_id` produced, among a task's result events."""
    fallback = None
    for event in results:
        if event.kind is not _K.TaskResultReceived:
            continue
        error = _text(_get(event.payload, "error"))
        if error is None:
            continue
        if _get(event.payload, "produced_by") == node_id:
            return error
        fallback = fallback or error
    return fallback


def trace_lines(trace: TaskTrace, task: ShortIds, trace_ids: ShortIds, pricing: Pricing | None = None,
                error: str | None = None) -> list[str]:
    """A trace's line, and an indented `error:` line under a failed one."""
    cost = pricing.trace_cost(trace) if pricing else None
    line = (f"{format_timestamp(trace.started_at):<27}  {trace.assigned_node_id:<22}  "
            f"task {task(trace.task_id):<{task.width}}  "
            f"tokens {trace.input_tokens}+{trace.output_tokens}={trace.token_total():<7}  "
            f"cost {format_cost(cost):<9}  {trace.latency_ms:>6} ms  {trace_status(trace):<10}  "
            f"score {trace.total_score():+.3f}  trace {trace_ids(trace.id)}")
    lines = [line]
    if error or trace_status(trace) in FAILED_STATUSES:
        lines.append(f"    error: {one_line(error, 200) if error else '(no error text recorded)'}")
    return lines

