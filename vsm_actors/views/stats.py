"""`vsm ledger stats`: tasks, failures, tokens, cost and latency percentiles, grouped by node,
task class or genome, from the task traces (the record of every task a leaf executed).

- `by="node"`: a row per node. A leaf's row counts the traces assigned to it; a metasystem's
  counts its whole subtree (every trace naming it among the responsible ancestors), as `vsm
  ledger traces --node` does, so rows of one branch overlap and only the total row is a sum.
- `by="class"`: the task's `task_class` (directive metadata, `--class`), "(none)" without one.
- `by="genome"`: the genome the trace ran under.

A failure is a trace whose status is not Completed or Noop. Latency is the trace's
`latency_ms`; p50 and p95 are nearest-rank percentiles. Pure functions; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from attrs import field, frozen, mutable

from ..core.model.trace import TaskTrace
from .costs import Cost, Pricing, format_cost
from .short_ids import ShortIds

GROUPINGS = ("node", "class", "genome")
OK_STATUSES = ("Completed", "Noop")
NO_CLASS = "(none)"
CLASS_KEYS = ("task_metadata.task_class", "task_class")


def percentile(values: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile (q in 0..100) of `values`; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def task_class(trace: TaskTrace) -> str:
    for key in CLASS_KEYS:
        value = trace.metadata.get(key)
        if value:
            return value
    return NO_CLASS


def failed(trace: TaskTrace) -> bool:
    return trace.metadata.get("status", "Completed") not in OK_STATUSES


@mutable(kw_only=True)
class _Acc:
    tasks: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Cost = Cost()
    latencies: list[int] = field(factory=list)

    def add(self, trace: TaskTrace, cost: float | None) -> None:
        self.tasks += 1
        self.failures += failed(trace)
        self.input_tokens += trace.input_tokens
        self.output_tokens += trace.output_tokens
        self.cost = self.cost.add(cost)
        self.latencies.append(trace.latency_ms)


@frozen(kw_only=True)
class StatsRow:
    key: str
    scope: str  # node rows: "leaf" (its own traces) or "subtree"; other groupings: the grouping
    tasks: int
    failures: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    unpriced: int
    p50_ms: int | None
    p95_ms: int | None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_data(self, by: str) -> dict[str, Any]:
        return {by if by != "class" else "task_class": self.key, "scope": self.scope, "tasks": self.tasks,
                "failures": self.failures, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "tokens": self.tokens, "cost": self.cost, "unpriced_tasks": self.unpriced,
                "p50_latency_ms": self.p50_ms, "p95_latency_ms": self.p95_ms}


def _row(key: str, scope: str, acc: _Acc) -> StatsRow:
    return StatsRow(key=key, scope=scope, tasks=acc.tasks, failures=acc.failures, input_tokens=acc.input_tokens,
                    output_tokens=acc.output_tokens, cost=acc.cost.value, unpriced=acc.cost.unpriced,
                    p50_ms=percentile(acc.latencies, 50), p95_ms=percentile(acc.latencies, 95))


@frozen(kw_only=True)
class Stats:
    by: str
    rows: tuple[StatsRow, ...]
    total: StatsRow

    def as_data(self) -> dict[str, Any]:
        return {"by": self.by, "rows": [r.as_data(self.by) for r in self.rows], "total": self.total.as_data(self.by)}


def compute_stats(traces: Iterable[TaskTrace], by: str = "node", pricing: Pricing | None = None,
                  node_order: Sequence[str] = (), top: str | None = None) -> Stats:
    """Group `traces` by `by` (see the module docstring). Node rows follow `node_order` (the
    genome's tree order) and then first appearance; other rows sort by key. With `top`, node
    rows stop at that node (its ancestors get none)."""
    if by not in GROUPINGS:
        raise ValueError(f"stats group by one of {', '.join(GROUPINGS)}, not {by!r}")
    groups: dict[str, _Acc] = {}
    leaves: set[str] = set()
    total = _Acc()
    for trace in traces:
        cost = pricing.trace_cost(trace) if pricing is not None else None
        total.add(trace, cost)
        if by == "node":
            leaves.add(trace.assigned_node_id)
            chain = [trace.assigned_node_id, *trace.responsible_ancestor_ids]
            if top is not None and top in chain:
                chain = chain[:chain.index(top) + 1]
            keys = dict.fromkeys(chain)
        elif by == "class":
            keys = {task_class(trace): None}
        else:
            keys = {trace.genome_id: None}
        for key in keys:
            groups.setdefault(key, _Acc()).add(trace, cost)
    if by == "node":
        rank = {n: i for i, n in enumerate(node_order)}
        first = {k: i for i, k in enumerate(groups)}
        order = sorted(groups, key=lambda k: (rank.get(k, len(rank)), first[k]))
    else:
        order = sorted(groups)
    rows = tuple(_row(k, ("leaf" if k in leaves else "subtree") if by == "node" else by, groups[k]) for k in order)
    return Stats(by=by, rows=rows, total=_row("total", "all", total))


def render_stats(stats: Stats, genome_ids: ShortIds | None = None) -> list[str]:
    """An aligned table: one line per group and a total line."""
    label = {"node": "node", "class": "task class", "genome": "genome"}[stats.by]

    def key(row: StatsRow) -> str:
        if stats.by == "genome" and genome_ids is not None and row is not stats.total:
            return genome_ids(row.key)
        return row.key

    def ms(value: int | None) -> str:
        return "-" if value is None else f"{value}"

    header = (label, "scope", "tasks", "failed", "fail%", "tokens", "cost", "p50 ms", "p95 ms")
    body = []
    for row in (*stats.rows, stats.total):
        rate = f"{100 * row.failures / row.tasks:.1f}" if row.tasks else "-"
        cost = format_cost(row.cost) + ("*" if row.cost is not None and row.unpriced else "")
        body.append((key(row), row.scope if stats.by == "node" else "", str(row.tasks), str(row.failures), rate,
                     str(row.tokens), cost, ms(row.p50_ms), ms(row.p95_ms)))
    show_scope = stats.by == "node"
    columns = [i for i in range(len(header)) if show_scope or i != 1]
    widths = {i: max(len(header[i]), *(len(r[i]) for r in body)) for i in columns}

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(cells[i].ljust(widths[i]) if i < 2 else cells[i].rjust(widths[i]) for i in columns).rstrip()

    lines = [fmt(header)]
    lines += [fmt(r) for r in body[:-1]]
    lines.append("  ".join("-" * widths[i] for i in columns))
    lines.append(fmt(body[-1]))
    if any(r.cost is not None and r.unpriced for r in (*stats.rows, stats.total)):
        lines.append("* some tasks ran on a model without a price (genome metadata price_per_1k_tokens.<model>)")
    elif all(r.cost is None for r in (*stats.rows, stats.total)) and stats.total.tasks:
        lines.append("cost: no prices; set genome metadata price_per_1k_tokens.<model> (see `vsm ledger stats -h`)")
    return lines
