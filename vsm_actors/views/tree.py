"""`vsm ledger tree` text and data: a directive's path through the organization, with tokens,
cost and latency rolled up per node and the error text of every failed task.

Built on `ledger.lineage_tree.DirectiveTree` (the shape, statuses and usage); this module adds
what people need to read it: short ids, cost per node (`costs`), and errors, each shown under
the node that produced it (a result passed up unchanged is not repeated at every level). Pure
functions over ledger records; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from attrs import frozen

from ..core.model.events import LedgerEvent, LedgerEventKind
from ..core.model.trace import TaskTrace
from ..ledger.lineage_tree import DirectiveTree, NodeBranch
from .costs import Cost, Pricing, format_cost
from .event_lines import FAILED_STATUSES, one_line
from .short_ids import ShortIds

_K = LedgerEventKind


@frozen(kw_only=True)
class Failure:
    """A task result with an error, as the node above received it."""

    task_id: str
    received_by: str | None
    produced_by: str | None
    status: str | None
    error: str

    def as_data(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "node_id": self.produced_by, "received_by": self.received_by,
                "status": self.status, "error": self.error}


def _get(payload: object, key: str) -> object:
    return payload.get(key) if isinstance(payload, dict) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def failures(events: Iterable[LedgerEvent]) -> list[Failure]:
    """Every result with an error text (or a failed status) among a directive's events, plus
    tasks that could not be routed (`task_routing_failed`), oldest first."""
    out: list[Failure] = []
    seen: set[tuple[str, str | None, str]] = set()

    def add(failure: Failure) -> None:
        key = (failure.task_id, failure.produced_by, failure.error)
        if key not in seen:  # the same result passed up through each level above
            seen.add(key)
            out.append(failure)

    for event in events:
        p = event.payload
        task = event.task_id or _str(_get(p, "task_id"))
        if task is None:
            continue
        if event.kind is _K.TaskResultReceived:
            status, error = _str(_get(p, "status")), _str(_get(p, "error"))
            if error or status in FAILED_STATUSES:
                add(Failure(task_id=task, received_by=event.node_id, produced_by=_str(_get(p, "produced_by")),
                            status=status, error=error or _str(_get(p, "summary")) or "(no error text)"))
        elif event.storage_key == "other:task_routing_failed" and _str(_get(p, "error")):
            add(Failure(task_id=task, received_by=event.node_id, produced_by=event.node_id,
                        status="Failed", error=_str(_get(p, "error")) or ""))
    return out


def node_costs(events: Iterable[LedgerEvent], traces: Iterable[TaskTrace], pricing: Pricing) -> dict[str, Cost]:
    """Each node's own cost (the traces assigned to it): stored traces win over the copies in
    `trace_written` events, by trace id, as the tree's usage does."""
    usage: dict[str, tuple[str, str | None, int, int]] = {}
    for event in events:
        if event.kind is not _K.TraceWritten:
            continue
        p = event.payload
        node = _str(_get(p, "assigned_node_id")) or event.node_id
        trace_id = event.metadata.get("trace_id") or _str(_get(p, "id")) or event.id
        if node:
            usage[trace_id] = (node, _str(_get(p, "genome_id")) or event.genome_id,
                               _int(_get(p, "input_tokens")), _int(_get(p, "output_tokens")))
    for trace in traces:
        usage[trace.id] = (trace.assigned_node_id, trace.genome_id, trace.input_tokens, trace.output_tokens)
    out: dict[str, Cost] = {}
    for node, genome, i, o in usage.values():
        out[node] = out.get(node, Cost()).add(pricing.usage_cost(genome, node, i, o))
    return out


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _total_cost(branch: NodeBranch, costs: dict[str, Cost]) -> Cost:
    total = costs.get(branch.node_id, Cost())
    for child in branch.children:
        total = total + _total_cost(child, costs)
    return total


def _nodes(branch: NodeBranch | None) -> set[str]:
    seen, stack = set(), [branch] if branch is not None else []
    while stack:
        b = stack.pop()
        seen.add(b.node_id)
        stack.extend(b.children)
    return seen


def render_tree(tree: DirectiveTree, *, directive: ShortIds, task: ShortIds, costs: dict[str, Cost],
                failed: list[Failure]) -> list[str]:
    """The text form: a header line, then one line per node with box-drawing branches, and an
    `error` line under each node whose work failed."""
    total = tree.total
    cost = _total_cost(tree.root, costs) if tree.root is not None else Cost()
    title = f' "{tree.title}"' if tree.title is not None else ""
    lines = [f"directive {directive(tree.directive_id)}{title}  {tree.status}  tokens {total.tokens}  "
             f"cost {format_cost(cost.value)}  latency {total.latency_ms} ms"]
    in_tree = _nodes(tree.root)
    shown: set[int] = set()

    def errors_at(node: str, parent: str | None) -> list[str]:
        out = []
        for n, f in enumerate(failed):
            if n in shown:
                continue
            here = f.produced_by == node or (f.produced_by not in in_tree and f.received_by == parent)
            if here:
                shown.add(n)
                out.append(f"error (task {task(f.task_id)}): {one_line(f.error, 200)}")
        return out

    if tree.root is None:
        lines.append("└── (no routes or traces recorded)")
    else:
        def walk(branch: NodeBranch, parent: str | None, prefix: str, last: bool) -> None:
            t = branch.total
            status = f"  {branch.status}" if branch.status else ""
            lines.append(f"{prefix}{'└── ' if last else '├── '}{branch.node_id}{status}  "
                         f"[tokens {t.tokens}, {t.latency_ms} ms, cost {format_cost(_total_cost(branch, costs).value)}]")
            inner = prefix + ("    " if last else "│   ")
            bar = "│   " if branch.children else ""
            lines.extend(f"{inner}{bar}{text}" for text in errors_at(branch.node_id, parent))
            for i, child in enumerate(branch.children):
                walk(child, branch.node_id, inner, i == len(branch.children) - 1)

        walk(tree.root, None, "", True)
    # whatever no node line took (a result from a node the tree does not show)
    lines.extend(f"    error (task {task(f.task_id)}): {one_line(f.error, 200)}"
                 for n, f in enumerate(failed) if n not in shown)
    return lines


def tree_data(tree: DirectiveTree, costs: dict[str, Cost], failed: list[Failure]) -> dict[str, Any]:
    """`DirectiveTree.as_data()` plus `cost` (own) and `total_cost` (subtree) on every node, the
    directive's `cost` and its `failures`."""
    data = tree.as_data()

    def add(node: dict[str, Any], branch: NodeBranch) -> None:
        node["cost"] = costs.get(branch.node_id, Cost()).value
        node["total_cost"] = _total_cost(branch, costs).value
        for child_data, child in zip(node["children"], branch.children):
            add(child_data, child)

    if tree.root is not None and data.get("root") is not None:
        add(data["root"], tree.root)
    data["cost"] = _total_cost(tree.root, costs).value if tree.root is not None else None
    data["failures"] = [f.as_data() for f in failed]
    return data
