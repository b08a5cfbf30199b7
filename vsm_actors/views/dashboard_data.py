"""What the web dashboard (`vsm dashboard`) shows, as JSON-ready data: the organization tree,
the directives table, one directive's timeline, the trials and the fitness series.

The page polls every second while an organization runs, so the figures that cover the whole
ledger are a fold that only ever reads what is new: `DashboardFold.feed` takes event rows in
ledger order (the events' autoincrement `seq`) and keeps, per directive, a summary line, and per
node, running sums. Each figure is the CLI's own view over those rows:

- per node tasks, failures, tokens and cost: `stats.compute_stats` over each batch of new traces,
  summed (its counts and costs add up; its percentiles do not, and the tree shows none);
- per node state (idle / busy with which task / paused / retired) and queue depth:
  `status.status_data` over the events of the directives still in flight (a finished directive
  leaves no node busy, so its events can go) and every pause and resume;
- a directive is finished when the node that accepted it has a result for every task it routed
  (shadow routes aside), as `timeline.build_timeline` closes the accepting node's interval; its
  status is the first failed status among those results, else the last one;
- short ids: `short_ids.GrowingShortIds` over every directive id seen, so a printed id is also a
  search value that finds that directive.

Pure: no I/O. `dashboard/source.py` reads the ledger and feeds the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from attrs import field, mutable

from .. import codec
from ..core.model.events import LedgerEvent
from ..core.model.genome import OrganizationalGenome
from ..core.model.records import GenomeSnapshot, PopulationArchiveRecord, StoredTrialRecord
from ..core.model.trace import TaskTrace
from ..files.genome_diff import diff_genomes
from ..timestamps import format_timestamp
from .costs import Pricing
from .event_lines import FAILED_STATUSES, one_line
from .plots import Series
from .short_ids import GrowingShortIds, ShortIds, matching, shorten
from .stats import compute_stats
from .status import status_data
from .timeline import build_timeline
from .tree import failures

RUNNING = "running"
# the rows `DashboardFold.feed` takes: the event's indexed columns, the decoded event when its kind
# is one of PAYLOAD_NAMES (else None: decoding is most of what reading costs, and most rows need
# only their columns), and a handle the reader can decode the row from later
Row = tuple  # (seq, kind storage key, created_us, node_id, task_id, directive_id, LedgerEvent | None, handle)
PAUSE_NAMES = frozenset({"algedonic_subtree_paused", "algedonic_subtree_resumed"})
PAYLOAD_NAMES = frozenset({"directive_accepted", "task_result_received", "trace_written", "organization_started",
                           *PAUSE_NAMES})
# events `status_data` reads, by name (storage key without "other:")
STATUS_NAMES = frozenset({"task_routed", "trace_written", "task_queued", "directive_accepted",
                          "task_result_received"})
# node states come from the newest in-flight directives only: a batch of thousands sent at once
# would otherwise decode every one of their events on every poll
LIVE_DIRECTIVES = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def name_of(kind: str) -> str:
    return kind.removeprefix("other:")


def may_be_shadow_route(kind: str, stored_json: str) -> bool:
    """Whether a stored `task_routed` row must be decoded to tell if it is a shadow route (stored
    JSON is compact and key-sorted, so the test spares decoding every route)."""
    return kind == "task_routed" and '"is_shadow_route":true' in stored_json


def at_us(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def _iso(us: int | None) -> str | None:
    return None if us is None else format_timestamp(at_us(us))


def _payload(event: LedgerEvent | None) -> dict[str, Any]:
    return event.payload if event is not None and isinstance(event.payload, dict) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@mutable(kw_only=True)
class _Directive:
    """One directive's line in the table; while it is in flight, also what settles it."""

    id: str
    title: str | None = None
    task_class: str | None = None
    root: str | None = None
    accepted_us: int | None = None
    status: str = RUNNING
    error: str | None = None
    finished_us: int | None = None
    tasks: int = 0
    search: str = ""
    # in flight only (None once finished): routes (node, task, shadow), results (node, task, at,
    # status, error), the rows status_data needs (seq, event or handle), and the task ids seen
    routes: list | None = field(factory=list)
    results: list | None = field(factory=list)
    live: list | None = field(factory=list)
    task_ids: set | None = field(factory=set)

    def index(self) -> None:
        self.search = " ".join(s for s in (self.id, self.title, self.task_class) if s).lower()


@mutable
class _NodeSum:
    scope: str = "leaf"
    tasks: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    priced: int = 0
    unpriced: int = 0

    def as_data(self) -> dict[str, Any]:
        return {"scope": self.scope, "tasks": self.tasks, "failures": self.failures,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "tokens": self.input_tokens + self.output_tokens, "cost": self.cost if self.priced else None,
                "unpriced_tasks": self.unpriced}


class DashboardFold:
    """The whole-ledger figures, grown by `feed` with each batch of new rows."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.events = 0
        self.started_us: int | None = None
        self.boot_genome_id: str | None = None
        self.directives: dict[str, _Directive] = {}
        self.order: list[_Directive] = []  # first seen first
        self.in_flight: dict[str, None] = {}
        self.failed = 0
        self._short = GrowingShortIds()
        self._new_ids: list[str] = []
        self.nodes: dict[str, _NodeSum] = {}
        self.total = _NodeSum(scope="all")
        self._traces_seen: set[str] = set()
        self._pauses: list[tuple[int, LedgerEvent]] = []

    # -- folding -------------------------------------------------------------------------------

    def feed(self, rows: Iterable[Row], pricing: Pricing | None = None) -> None:
        traces: list[TaskTrace] = []
        new_ids: list[str] = []
        for seq, kind, created_us, node_id, task_id, directive_id, event, handle in rows:
            self.last_seq = max(self.last_seq, seq)
            self.events += 1
            name = name_of(kind)
            if name == "trace_written":
                trace = codec.from_wire(event.payload, TaskTrace)
                if trace.id not in self._traces_seen:  # an upsert: the first copy already counted
                    self._traces_seen.add(trace.id)
                    traces.append(trace)
            elif name == "organization_started":
                self.started_us = created_us
                self.boot_genome_id = _str(_payload(event).get("genome_id"))
                for waiting in self.in_flight:  # a restart: what the old processes did keeps no node busy
                    self.directives[waiting].live = []
            elif name in PAUSE_NAMES:
                self._pauses.append((seq, event))
            if directive_id is None:
                continue
            d = self.directives.get(directive_id)
            if d is None:
                d = self.directives[directive_id] = _Directive(id=directive_id)
                d.index()
                self.order.append(d)
                self.in_flight[directive_id] = None
                new_ids.append(directive_id)
            if d.live is None:
                continue  # finished: later events (a late trace) change nothing shown
            if name in STATUS_NAMES:
                d.live.append((seq, event if event is not None else handle))
            if task_id:
                d.task_ids.add(task_id)
            if name == "directive_accepted" and d.accepted_us is None:
                p = _payload(event)
                meta = p.get("metadata") if isinstance(p.get("metadata"), dict) else {}
                d.title, d.task_class, d.root, d.accepted_us = (_str(p.get("title")), _str(meta.get("task_class")),
                                                                node_id, created_us)
                d.index()
                self._settle(d)
            elif name == "task_routed":
                d.routes.append((node_id, task_id, _payload(event).get("is_shadow_route") is True))
            elif name == "task_result_received":
                p = _payload(event)  # empty when the reader left it undecoded: not at the root
                d.results.append((node_id, task_id, created_us, _str(p.get("status")), _str(p.get("error"))))
                if node_id is not None and node_id == d.root:
                    self._settle(d)
        self._new_ids += new_ids
        if traces:
            self._add_stats(traces, pricing)

    def _settle(self, d: _Directive) -> None:
        if d.root is None:
            return
        at_root = [(task, at, status, error) for node, task, at, status, error in d.results if node == d.root]
        if not at_root:
            return
        routed = {task for node, task, shadow in d.routes if node == d.root and task and not shadow}
        if not routed <= {task for task, *_rest in at_root}:
            return
        failed = [(s, e) for _t, _a, s, e in at_root if s in FAILED_STATUSES]
        status, error = failed[0] if failed else at_root[-1][2:]
        d.status = status or "-"
        d.error = one_line(error, 300) if error else None
        d.finished_us = max(at for _t, at, _s, _e in at_root)
        d.tasks = len(d.task_ids)
        d.routes = d.results = d.live = d.task_ids = None
        self.in_flight.pop(d.id, None)
        self.failed += d.status in FAILED_STATUSES

    def _add_stats(self, traces: list[TaskTrace], pricing: Pricing | None) -> None:
        stats = compute_stats(traces, "node", pricing)
        for row in (*stats.rows, stats.total):
            acc = self.total if row is stats.total else self.nodes.setdefault(row.key, _NodeSum())
            if row is not stats.total and row.scope == "subtree":
                acc.scope = "subtree"
            acc.tasks += row.tasks
            acc.failures += row.failures
            acc.input_tokens += row.input_tokens
            acc.output_tokens += row.output_tokens
            acc.cost += row.cost or 0.0
            acc.priced += row.tasks - row.unpriced
            acc.unpriced += row.unpriced

    # -- reading -------------------------------------------------------------------------------

    @property
    def short(self) -> GrowingShortIds:
        """Short directive ids, widened for the ids seen since the last call. A batch larger
        than what is known (the first read of a ledger) is shortened in one pass: adding ids one
        by one checks each against every fragment given out."""
        if self._new_ids:
            new, self._new_ids = self._new_ids, []
            if len(new) > len(self.directives) - len(new):
                self._short = GrowingShortIds(self.directives)
            else:
                self._short.add(new)
        return self._short

    def live_rows(self) -> list[tuple[int, Any]]:
        """What node states are computed from, in ledger order: (seq, the event, or the handle of
        a row fed undecoded)."""
        newest = list(self.in_flight)[-LIVE_DIRECTIVES:]
        rows = [r for d in newest for r in (self.directives[d].live or ())]
        return sorted([*rows, *self._pauses], key=lambda r: r[0])

    def find_directive(self, value: str) -> list[str]:
        """Directive ids `value` names: an exact id, else every id containing it."""
        if value in self.directives:
            return [value]
        return matching(value, self.directives)

    def counts(self) -> dict[str, int]:
        return {"total": len(self.order), "in_flight": len(self.in_flight), "failed": self.failed,
                "completed": len(self.order) - len(self.in_flight) - self.failed}


# -- views -------------------------------------------------------------------------------------

def tree_data(fold: DashboardFold, genome: OrganizationalGenome | None, live_events: Sequence[LedgerEvent], *,
              now: datetime, ledger: str, boot_genome: OrganizationalGenome | None = None) -> dict[str, Any]:
    """The champion's tree with each node's kind, state, tasks, failures, tokens and cost (a
    metasystem's figures cover its subtree, as in `vsm ledger stats`)."""
    head = {"seq": fold.last_seq, "events": fold.events, "ledger": ledger, "updated_at": format_timestamp(now),
            "started_at": _iso(fold.started_us), "directives": fold.counts(), "totals": fold.total.as_data()}
    if genome is None:
        return {**head, "genome": None, "nodes": []}
    changes = [c.render() for c in diff_genomes(boot_genome, genome)] if boot_genome is not None else []
    status = status_data(genome, pids={}, restarts={}, events=live_events, traces=(), now=now,
                         started_at=at_us(fold.started_us), boot_genome=boot_genome, providers={}, ledger=ledger,
                         changes=changes)
    nodes = []
    for row in status["nodes"]:
        node = genome.node(row["node_id"])
        kind = node.leaf_operation.kind
        figures = fold.nodes.get(row["node_id"], _NodeSum(scope="leaf" if node.is_leaf else "subtree")).as_data()
        nodes.append({"node_id": row["node_id"], "name": row["name"], "parent_id": node.parent_id,
                      "depth": row["depth"], "kind": row["kind"], "state": row["state"], "queue": row["queue"],
                      "lifecycle": node.status.value, "model": f"{node.model.provider}/{node.model.model}",
                      "operation": None if kind is None or not node.is_leaf else str(getattr(kind, "value", kind)),
                      **figures})
    return {**head, "genome": status["genome"], "nodes": nodes}


def _status_matches(status: str, wanted: str) -> bool:
    if wanted == "failed":
        return status in FAILED_STATUSES
    return status.lower() == wanted


def directive_row(d: _Directive, short: ShortIds | GrowingShortIds) -> dict[str, Any]:
    end = d.finished_us
    return {"id": d.id, "short_id": short(d.id), "title": d.title, "task_class": d.task_class, "node_id": d.root,
            "status": d.status, "accepted_at": _iso(d.accepted_us), "finished_at": _iso(end),
            "duration_ms": None if end is None or d.accepted_us is None else round((end - d.accepted_us) / 1000, 3),
            "tasks": d.tasks if d.task_ids is None else len(d.task_ids), "error": d.error}


def directives_page(fold: DashboardFold, *, q: str = "", status: str = "", limit: int = 100,
                    offset: int = 0) -> dict[str, Any]:
    """Newest first; `q` is a case-insensitive part of the id, title or task class, `status` a
    status (`running`, `completed`, `failed` for any failed status, or an exact one)."""
    needle, wanted = q.strip().lower(), status.strip().lower()
    rows, matched = [], 0
    for d in reversed(fold.order):
        if (needle and needle not in d.search) or (wanted and not _status_matches(d.status, wanted)):
            continue
        if offset <= matched < offset + limit:
            rows.append(directive_row(d, fold.short))
        matched += 1
        if not (needle or wanted) and matched >= offset + limit:
            matched = len(fold.order)  # unfiltered: every directive matches, no need to look further
            break
    return {"seq": fold.last_seq, "total": len(fold.order), "matched": matched, "offset": offset, "limit": limit,
            "rows": rows}


def timeline_data(directive_id: str, events: Sequence[LedgerEvent], traces: Sequence[TaskTrace], *,
                  now: datetime, pricing: Pricing | None, row: dict[str, Any] | None) -> dict[str, Any]:
    """`vsm ledger timeline -o json` plus short task ids, the directive's table row and its
    failures with their error text."""
    timeline = build_timeline(directive_id, events, traces, now=now, pricing=pricing)
    data = timeline.as_data()
    short = shorten(i.task_id for i in timeline.intervals)
    for interval in data["intervals"]:
        interval["short_task_id"] = short(interval["task_id"]) if interval["task_id"] else None
    data["directive"] = row
    data["failures"] = [f.as_data() for f in failures(events)]
    return data


# -- trials and fitness ------------------------------------------------------------------------

def trial_row(record: StoredTrialRecord, short: ShortIds) -> dict[str, Any]:
    s = record.suggestion
    return {"trial_id": record.trial_id, "short_id": short(record.trial_id), "controller": record.controller_node_id,
            "status": record.status.storage_key, "mode": s.trial_mode.value, "base_genome_id": record.base_genome_id,
            "candidate_genome_id": record.candidate_genome_id, "routed_tasks": record.routed_tasks,
            "traces": record.trace_count, "tokens": record.consumed_tokens, "score": round(record.total_score, 3),
            "decision": record.decision.storage_key if record.decision else None,
            "reason": record.metadata.get("decision_reason") or record.metadata.get("rejection_reason") or "",
            "hypothesis": s.hypothesis, "started_at": format_timestamp(record.started_at),
            "updated_at": format_timestamp(record.updated_at)}


def trials_data(records: Sequence[StoredTrialRecord]) -> dict[str, Any]:
    short = shorten(r.trial_id for r in records)
    return {"trials": [trial_row(r, short) for r in records]}


def trial_detail(record: StoredTrialRecord, archive: PopulationArchiveRecord | None, base: GenomeSnapshot | None,
                 candidate: GenomeSnapshot | None) -> dict[str, Any]:
    """A trial's row, its gene (patch, evidence, limits), the genome diff from base to candidate
    (null when a snapshot is missing) and the Pareto objectives it was selected on."""
    data = trial_row(record, shorten([record.trial_id]))
    s = record.suggestion
    diff = (None if base is None or candidate is None
            else [{**c.as_data(), "text": c.render()} for c in diff_genomes(base.genome, candidate.genome)])
    data.update({"patch": codec.to_wire(s.patch), "evidence": list(s.evidence), "source": s.source.value,
                 "safety_limits": codec.to_wire(s.safety_limits), "metadata": dict(record.metadata),
                 "diff": diff, "missing_snapshots": [g for g, snap in ((record.base_genome_id, base),
                                                                       (record.candidate_genome_id, candidate))
                                                     if snap is None]})
    if archive is not None:
        data["objectives"] = codec.to_wire(archive.objectives)
        data["selection"] = {"policy": archive.selection_policy, "score": archive.selection_score,
                             "pareto_frontier_size": archive.pareto_frontier_size,
                             "status": archive.status.value}
    else:
        data["objectives"] = data["selection"] = None
    return data


def series_data(series: Series) -> dict[str, Any]:
    """A `views.plots` series as the page draws it (an inline SVG, client side)."""
    return {"title": series.title, "x_label": series.x_label, "y_label": series.y_label, "x": list(series.x),
            "lines": {k: list(v) for k, v in series.lines.items()},
            "marks": [{"x": x, "label": label} for x, label in series.marks]}
