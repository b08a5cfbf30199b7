"""`vsm ledger timeline DIRECTIVE`: each task's interval at each node, as a Gantt chart.

An interval opens when a node's parent routes the task to it (`task_routed`) and closes when
the parent receives the task's result (`task_result_received`); the accepting (root) node's
interval runs from `directive_accepted` to the last result it receives. A task with no result
yet is open (`running`) up to `now`. Leaf rows carry the tokens and cost of their trace.
Pure functions over ledger records; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from attrs import frozen

from ..codec import format_timestamp
from ..core.model.events import LedgerEvent, LedgerEventKind
from ..core.model.trace import TaskTrace
from .costs import Pricing, format_cost
from .event_lines import FAILED_STATUSES, one_line
from .short_ids import ShortIds

_K = LedgerEventKind
BAR_WIDTH = 48
FULL, FAILED, OPEN = "█", "x", "░"


@frozen(kw_only=True)
class Interval:
    node_id: str
    task_id: str | None  # None: the accepting node's span of the whole directive
    title: str | None
    depth: int
    start: datetime
    end: datetime | None  # None: no result yet
    status: str
    tokens: int | None = None
    cost: float | None = None
    error: str | None = None

    def offset_ms(self, origin: datetime) -> float:
        return (self.start - origin).total_seconds() * 1000

    def duration_ms(self, now: datetime) -> float:
        return ((self.end or now) - self.start).total_seconds() * 1000

    def as_data(self, origin: datetime, now: datetime) -> dict[str, Any]:
        return {"node_id": self.node_id, "task_id": self.task_id, "title": self.title, "depth": self.depth,
                "status": self.status, "start": format_timestamp(self.start),
                "end": None if self.end is None else format_timestamp(self.end),
                "offset_ms": round(self.offset_ms(origin), 3), "duration_ms": round(self.duration_ms(now), 3),
                "tokens": self.tokens, "cost": self.cost, "error": self.error}


@frozen(kw_only=True)
class Timeline:
    directive_id: str
    title: str | None
    origin: datetime | None
    now: datetime
    intervals: tuple[Interval, ...]

    @property
    def span_ms(self) -> float:
        if self.origin is None or not self.intervals:
            return 0.0
        ends = [(i.end or self.now) for i in self.intervals]
        return max((max(ends) - self.origin).total_seconds() * 1000, 0.0)

    def as_data(self) -> dict[str, Any]:
        origin = self.origin or self.now
        return {"directive_id": self.directive_id, "title": self.title,
                "start": None if self.origin is None else format_timestamp(self.origin),
                "span_ms": round(self.span_ms, 3),
                "intervals": [i.as_data(origin, self.now) for i in self.intervals]}


def _get(payload: object, key: str) -> object:
    return payload.get(key) if isinstance(payload, dict) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def build_timeline(directive_id: str, events: Iterable[LedgerEvent], traces: Iterable[TaskTrace] = (), *,
                   now: datetime, pricing: Pricing | None = None) -> Timeline:
    """Fold a directive's events (its own and its tasks' results and traces, oldest first)."""
    title = root = accepted_at = None
    routes: list[tuple[str, str, str, datetime, str | None]] = []  # (parent, child, task, at, title)
    # (receiving node, task) -> [(at, status, error, produced_by)]
    results: dict[tuple[str, str], list[tuple[datetime, str | None, str | None, str | None]]] = {}
    parent_of: dict[str, str] = {}
    for event in events:
        p, kind = event.payload, event.kind
        if kind is _K.DirectiveAccepted and accepted_at is None:
            title, root, accepted_at = _str(_get(p, "title")), event.node_id, event.created_at
            continue
        task = event.task_id or _str(_get(p, "task_id"))
        if task is None:
            continue
        if kind is _K.TaskRouted and _get(p, "is_shadow_route") is not True:
            parent, child = _str(_get(p, "parent_node_id")) or event.node_id, _str(_get(p, "child_node_id"))
            if parent and child and parent != child:
                routes.append((parent, child, task, event.created_at, _str(_get(p, "task_title"))))
                parent_of.setdefault(child, parent)
        elif kind is _K.TaskResultReceived and event.node_id:
            results.setdefault((event.node_id, task), []).append(
                (event.created_at, _str(_get(p, "status")), _str(_get(p, "error")), _str(_get(p, "produced_by"))))
    usage = {(t.assigned_node_id, t.task_id): t for t in traces}

    def depth(node: str) -> int:
        d, seen = 0, {node}
        while node in parent_of and parent_of[node] not in seen:
            node = parent_of[node]
            seen.add(node)
            d += 1
        return d

    def routed_below(node: str) -> set[str]:
        return {task for parent, _c, task, _a, _t in routes if parent == node}

    intervals = []
    for parent, child, task, at, task_title in routes:
        got = [r for r in results.get((parent, task), []) if r[0] >= at]
        end, status, error, by = got[0] if got else (None, None, None, None)
        if by not in (None, child):
            error = None  # passed up from below: shown once, where it was produced
        trace = usage.get((child, task))
        cost = pricing.trace_cost(trace) if pricing is not None and trace is not None else None
        intervals.append(Interval(node_id=child, task_id=task, title=task_title, depth=depth(child), start=at,
                                  end=end, status=status or ("running" if end is None else "-"),
                                  tokens=trace.token_total() if trace is not None else None, cost=cost, error=error))
    if root is not None and accepted_at is not None:
        at_root = [r for (node, _t), rs in results.items() if node == root for r in rs]
        top = routed_below(root)
        answered = {t for (node, t) in results if node == root}
        end = max((r[0] for r in at_root), default=None) if top <= answered and at_root else None
        statuses = [r[1] for r in at_root if r[1]]
        status = (next((s for s in statuses if s in FAILED_STATUSES), None) or (statuses[-1] if statuses else None)
                  or ("running" if end is None else "-"))
        # an error the root itself produced (no child to show it: the task could not be routed)
        own = [r[2] for (node, t), rs in results.items() if node == root and t not in routed_below(root)
               for r in rs if r[2]]
        root_interval = Interval(node_id=root, task_id=None, title=title, depth=0, start=accepted_at, end=end,
                                 status=status if end is not None else "running", error=own[0] if own else None)
        intervals.insert(0, root_interval)
    intervals.sort(key=lambda i: (i.start, i.depth))
    return Timeline(directive_id=directive_id, title=title, origin=accepted_at or (intervals[0].start if intervals
                                                                                    else None),
                    now=now, intervals=tuple(intervals))


def format_ms(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 10:
        return f"{value:.0f} ms"
    return f"{value:.1f} ms"


def _bar(start_ms: float, end_ms: float, span: float, width: int, char: str) -> str:
    if span <= 0:
        return char * width
    a = min(int(math.floor(start_ms / span * width)), width - 1)
    b = max(min(int(math.ceil(end_ms / span * width)), width), a + 1)
    return " " * a + char * (b - a) + " " * (width - b)


def render_timeline(timeline: Timeline, *, task: ShortIds, directive: ShortIds, width: int = BAR_WIDTH) -> list[str]:
    """Header, a time axis, then one line per interval: node (indented by depth), task, status,
    start offset, duration, the bar, and tokens and cost for leaf work; failed intervals get an
    `error` line."""
    title = f' "{timeline.title}"' if timeline.title else ""
    span = timeline.span_ms
    lines = [f"directive {directive(timeline.directive_id)}{title}  span {format_ms(span)}"]
    if not timeline.intervals or timeline.origin is None:
        lines.append("(no tasks recorded)")
        return lines
    origin, now = timeline.origin, timeline.now
    names = ["  " * i.depth + i.node_id for i in timeline.intervals]
    tasks = ["directive" if i.task_id is None else task(i.task_id) for i in timeline.intervals]
    nw, tw = max(map(len, names)), max(map(len, tasks))
    sw = max(len(i.status) for i in timeline.intervals)
    left = nw + 2 + tw + 2 + sw + 2 + 9 + 2 + 9 + 2  # the columns before each bar
    axis_end = format_ms(span)
    lines.append(" " * left + "|" + "0".ljust(width - len(axis_end)) + axis_end + "|")
    for name, task_text, i in zip(names, tasks, timeline.intervals):
        off, dur = i.offset_ms(origin), i.duration_ms(now)
        char = OPEN if i.end is None else FAILED if i.status in FAILED_STATUSES else FULL
        usage = "" if i.tokens is None else f"  tokens {i.tokens}  cost {format_cost(i.cost)}"
        lines.append(f"{name:<{nw}}  {task_text:<{tw}}  {i.status:<{sw}}  {'+' + format_ms(off):>9}  "
                     f"{format_ms(dur):>9}  |{_bar(off, off + dur, span, width, char)}|{usage}")
        if i.error:
            lines.append(f"{'':<{nw}}  error: {one_line(i.error, 200)}")
    lines.append(f"{FULL} completed  {FAILED} failed  {OPEN} running (no result yet)")
    return lines
