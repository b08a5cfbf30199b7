"""The path a directive took through the organization, as a tree of nodes with usage rolled up.

A read model for `vsm ledger tree`, built from plain lists of events (and optionally traces), so
it is pure and testable without a ledger:

- the shape comes from TaskRouted events (`parent_node_id` -> `child_node_id`, per task); a node
  a trace names but no route reached is hung under its `responsible_ancestor_ids`;
- usage (input/output tokens, latency) comes from TraceWritten payloads, or from `traces` given
  explicitly (those win, by trace id); each node's `total` covers its whole subtree. Latency is
  the *sum* of the traces' `latency_ms` (work done), not wall-clock time;
- a task's status at a node is the status of the TaskResultReceived its parent logged for that
  task (the parent is the one that receives the child's result), else `Routed`;
- the directive status comes from the results its accepting (root) node received.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from attrs import field, frozen, mutable

from ..codec import format_timestamp
from ..core.model.events import LedgerEvent, LedgerEventKind
from ..core.model.trace import TaskTrace

_K = LedgerEventKind


@frozen
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    traces: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.latency_ms + other.latency_ms, self.traces + other.traces)

    def as_data(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "tokens": self.tokens,
                "latency_ms": self.latency_ms, "traces": self.traces}


@frozen(kw_only=True)
class NodeTask:
    """One task as it reached one node."""

    task_id: str
    title: str | None
    status: str  # Completed, Failed, ... or Routed when no result came back


@mutable(kw_only=True)
class NodeBranch:
    node_id: str
    tasks: list[NodeTask] = field(factory=list)
    usage: Usage = Usage()  # traces assigned to this node itself
    children: list[NodeBranch] = field(factory=list)

    @property
    def total(self) -> Usage:
        total = self.usage
        for child in self.children:
            total = total + child.total
        return total

    @property
    def status(self) -> str | None:
        """`Completed` when every task here has that status, `Completed 2, Failed 1` when mixed,
        None when no task was routed to this node (the root)."""
        if not self.tasks:
            return None
        counts: dict[str, int] = {}
        for t in self.tasks:
            counts[t.status] = counts.get(t.status, 0) + 1
        if len(counts) == 1:
            return next(iter(counts))
        return ", ".join(f"{s} {n}" for s, n in counts.items())

    def as_data(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "status": self.status,
            "tasks": [{"task_id": t.task_id, "title": t.title, "status": t.status} for t in self.tasks],
            "usage": self.usage.as_data(),
            "total": self.total.as_data(),
            "children": [c.as_data() for c in self.children],
        }


@frozen(kw_only=True)
class DirectiveTree:
    directive_id: str
    title: str | None
    status: str
    accepted_at: str | None
    root: NodeBranch | None

    @property
    def total(self) -> Usage:
        return self.root.total if self.root is not None else Usage()

    def as_data(self) -> dict[str, Any]:
        return {"directive_id": self.directive_id, "title": self.title, "status": self.status,
                "accepted_at": self.accepted_at, "total": self.total.as_data(),
                "root": None if self.root is None else self.root.as_data()}


def _get(payload: object, key: str) -> object:
    return payload.get(key) if isinstance(payload, dict) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _task_id(event: LedgerEvent) -> str | None:
    return event.task_id or _str(_get(event.payload, "task_id"))


def _trace_info(event: LedgerEvent) -> tuple[str | None, str | None, tuple[str, ...], Usage]:
    p = event.payload
    ancestors = _get(p, "responsible_ancestor_ids")
    return (
        event.metadata.get("trace_id") or _str(_get(p, "id")),
        _str(_get(p, "assigned_node_id")) or event.node_id,
        tuple(a for a in ancestors if isinstance(a, str)) if isinstance(ancestors, list) else (),
        Usage(_int(_get(p, "input_tokens")), _int(_get(p, "output_tokens")), _int(_get(p, "latency_ms")), 1),
    )


DONE_STATUSES = ("Completed", "Noop")
# the first of these present decides a directive that did not fully complete
_FAILURE_ORDER = ("Failed", "Rejected", "NeedsHuman")


def directive_status(root_statuses: list[str], *, has_tasks: bool) -> str:
    """`completed`, `failed`, `rejected`, `needs_human`, `running` (a task has no result yet) or
    `accepted` (nothing was mapped)."""
    if not has_tasks:
        return "accepted"
    if "Routed" in root_statuses or not root_statuses:
        return "running"
    for status in _FAILURE_ORDER:
        if status in root_statuses:
            return "needs_human" if status == "NeedsHuman" else status.lower()
    if all(s in DONE_STATUSES for s in root_statuses):
        return "completed"
    return "unknown"


def build_directive_tree(
    directive_id: str, events: Iterable[LedgerEvent], traces: Iterable[TaskTrace] = (),
) -> DirectiveTree:
    """Fold a directive's events, oldest first, into its node tree: its own events plus the
    results and traces of its tasks (which the ledger links to the task only), as
    `Ledger.directive_lineage` gathers them. Other kinds are ignored; events of other
    directives' tasks are not filtered out, so pass only what belongs to the directive."""
    title = root_id = accepted_at = None
    parent_of: dict[str, str] = {}
    order: dict[str, None] = {}  # nodes in first-mention order: children print in routing order
    routed: dict[str, dict[str, tuple[str, str | None]]] = {}  # node -> task -> (parent, title)
    results: dict[tuple[str, str], str] = {}  # (receiving node, task) -> last status
    usage: dict[str, Usage] = {}
    trace_usage: dict[str, tuple[str, tuple[str, ...], Usage]] = {}
    task_titles: dict[str, str] = {}
    mapped_tasks: dict[str, None] = {}

    def mention(node: str) -> None:
        order.setdefault(node, None)

    for event in events:
        kind, payload = event.kind, event.payload
        if kind is _K.DirectiveAccepted:
            if accepted_at is None:
                title, root_id = _str(_get(payload, "title")), event.node_id
                accepted_at = event.created_at
                if root_id:
                    mention(root_id)
            continue
        task_id = _task_id(event)
        if task_id is None:
            continue
        if kind is _K.TaskMapped:
            mapped_tasks.setdefault(task_id, None)
            t = _str(_get(payload, "task_title"))
            if t:
                task_titles.setdefault(task_id, t)
        elif kind is _K.TaskRouted:
            if _get(payload, "is_shadow_route") is True:
                continue  # a shadow copy is not the path the directive took
            parent, child = _str(_get(payload, "parent_node_id")) or event.node_id, _str(_get(payload, "child_node_id"))
            if not child or not parent or child == parent:
                continue
            mention(parent)
            mention(child)
            parent_of.setdefault(child, parent)
            t = _str(_get(payload, "task_title"))
            if t:
                task_titles.setdefault(task_id, t)
            routed.setdefault(child, {}).setdefault(task_id, (parent, t))
            mapped_tasks.setdefault(task_id, None)
        elif kind is _K.TaskResultReceived:
            status = _str(_get(payload, "status"))
            if event.node_id and status:
                results[(event.node_id, task_id)] = status
        elif kind is _K.TraceWritten:
            trace_id, node, ancestors, u = _trace_info(event)
            if node:
                trace_usage[trace_id or event.id] = (node, ancestors, u)

    for trace in traces:
        trace_usage[trace.id] = (trace.assigned_node_id, tuple(trace.responsible_ancestor_ids), Usage(
            trace.input_tokens, trace.output_tokens, trace.latency_ms, 1))

    for node, ancestors, u in trace_usage.values():
        usage[node] = usage.get(node, Usage()) + u
        # a node no route reached: hang it (and its unknown ancestors) under its responsible chain
        chain = [node, *ancestors]  # immediate parent first, root last
        for child, parent in zip(chain, chain[1:]):
            parent_of.setdefault(child, parent)
        for n in reversed(chain):
            mention(n)

    if root_id is None:
        tops = [n for n in order if n not in parent_of]
        root_id = tops[0] if tops else None

    branches = {n: NodeBranch(node_id=n, usage=usage.get(n, Usage())) for n in order}
    for node, tasks in routed.items():
        branches[node].tasks = [
            NodeTask(task_id=t, title=title_ or task_titles.get(t), status=results.get((parent, t), "Routed"))
            for t, (parent, title_) in tasks.items()]
    attached: set[str] = set()
    for node in order:
        parent = parent_of.get(node)
        if parent is None or node == root_id:
            continue
        # refuse cycles: never hang a node under one of its own descendants
        p, seen = parent, {node}
        while p is not None and p not in seen:
            seen.add(p)
            p = parent_of.get(p)
        if p is not None:
            continue
        branches[parent].children.append(branches[node])
        attached.add(node)
    root = branches.get(root_id) if root_id is not None else None
    if root is not None:
        # every node left unattached tops a part with no path to the root (a foreign root, a cut
        # cycle): show it directly under the root rather than dropping its usage
        above_root, p = set(), parent_of.get(root_id)
        while p is not None and p not in above_root:
            above_root.add(p)
            p = parent_of.get(p)
        for node in order:
            if node != root_id and node not in attached and node not in above_root:
                root.children.append(branches[node])

    root_statuses = [s for (n, _t), s in results.items() if n == root_id]
    pending = [t for t in mapped_tasks if root is not None and _is_top_level(t, root)
               and (root_id, t) not in results]
    status = directive_status(root_statuses + ["Routed"] * len(pending), has_tasks=bool(mapped_tasks))
    return DirectiveTree(directive_id=directive_id, title=title, status=status,
                         accepted_at=None if accepted_at is None else format_timestamp(accepted_at), root=root)


def _reachable(root: NodeBranch) -> set[str]:
    seen, stack = set(), [root]
    while stack:
        b = stack.pop()
        if b.node_id not in seen:
            seen.add(b.node_id)
            stack.extend(b.children)
    return seen


def _is_top_level(task_id: str, root: NodeBranch) -> bool:
    """A task the root routed itself (its result comes back to the root)."""
    return any(t.task_id == task_id for child in root.children for t in child.tasks)


def render_tree(tree: DirectiveTree) -> list[str]:
    """The text form: a header line, then one line per node with box-drawing branches."""
    total = tree.total
    title = f' "{tree.title}"' if tree.title is not None else ""
    lines = [f"directive {tree.directive_id}{title}  {tree.status}  tokens {total.tokens}  "
             f"latency {total.latency_ms} ms"]
    if tree.root is None:
        lines.append("└── (no routes or traces recorded)")
        return lines

    def walk(branch: NodeBranch, prefix: str, last: bool) -> None:
        t = branch.total
        status = f"  {branch.status}" if branch.status else ""
        lines.append(f"{prefix}{'└── ' if last else '├── '}{branch.node_id}{status}  "
                     f"[tokens {t.tokens}, {t.latency_ms} ms]")
        inner = prefix + ("    " if last else "│   ")
        for i, child in enumerate(branch.children):
            walk(child, inner, i == len(branch.children) - 1)

    walk(tree.root, "", True)
    return lines
