"""`vsm status`: the running organization (its supervisor's reply) beside what the ledger recorded
since it booted, per node and for the whole: one source each, one view.

Per node: kind, state (idle / busy with which task since when / paused / retired), tasks done and
failed, tokens, queue depth, and, when the genome declares budgets, the tokens left in the
current epoch (views/budgets.py). For the organization: genome and what changed since boot, uptime,
provider(s), ledger, directives in flight. Pure: the command gathers the inputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..core.control.budgets import BudgetPlan
from ..core.control.resources import epoch_key
from ..core.model.events import LedgerEvent
from ..core.model.genome import OrganizationalGenome
from ..core.model.node import NodeLifecycleStatus
from ..core.model.trace import TaskTrace
from .budgets import remaining_now


def _name(event: LedgerEvent) -> str:
    return event.storage_key.removeprefix("other:")


def status_data(genome: OrganizationalGenome, *, pids: dict, restarts: dict, events: Sequence[LedgerEvent],
                traces: Iterable[TaskTrace], now: datetime, started_at: datetime | None,
                boot_genome: OrganizationalGenome | None, providers: dict[str, str], ledger: str,
                changes: Sequence[str] = ()) -> dict[str, Any]:
    """The status as plain data (`-o json` prints it as is)."""
    traces = [t for t in traces if started_at is None or t.started_at >= started_at]
    done, failed, tokens = Counter(), Counter(), Counter()
    traced = set()
    for trace in traces:
        traced.add(trace.task_id)
        ok = trace.merged is not False and trace.reverted is not True
        (done if ok else failed)[trace.assigned_node_id] += 1
        tokens[trace.assigned_node_id] += trace.token_total()
    busy: dict[str, tuple[str, datetime]] = {}
    queued: dict[str, set[str]] = {}
    paused: dict[str, bool] = {}
    accepted, answered = set(), set()
    for event in events:
        name, payload = _name(event), event.payload if isinstance(event.payload, dict) else {}
        if name == "task_routed":
            child = payload.get("child_node_id")
            queued.get(event.node_id, set()).discard(event.task_id)
            if child in genome.nodes and genome.node(child).is_leaf and event.task_id not in traced:
                busy[child] = (event.task_id, event.created_at)
        elif name == "trace_written":
            if busy.get(event.node_id, ("",))[0] == event.task_id:
                busy.pop(event.node_id, None)
        elif name == "task_queued":
            queued.setdefault(event.node_id, set()).add(event.task_id)
        elif name in ("algedonic_subtree_paused", "algedonic_subtree_resumed"):
            paused[payload.get("target_node_id", "")] = name.endswith("paused")
        elif name == "directive_accepted":
            accepted.add(event.directive_id)
        elif name in ("directive_completed", "directive_failed") or (
                name == "task_result_received" and event.node_id == genome.root_node_id):  # older ledgers
            answered.add(event.directive_id)
    plan = BudgetPlan.of_genome(genome)
    left = remaining_now(events, epoch_key(now), {n: b.tokens_per_epoch for n, b in plan.budgets.items()
                                                  if b.tokens_per_epoch is not None}) if plan.active else {}
    nodes = []
    for node_id in genome.subtree_ids(genome.root_node_id):
        node = genome.node(node_id)
        if node.status is NodeLifecycleStatus.Retired:
            state = "retired"
        elif any(p and t in genome.nodes and node_id in genome.subtree_ids(t) for t, p in paused.items()):
            state = "paused"
        elif node_id in busy:
            task, since = busy[node_id]
            state = f"busy {task[-6:]} since {since.strftime('%H:%M:%S')}"
        else:
            state = "idle"
        nodes.append({"node_id": node_id, "name": node.name, "kind": "leaf" if node.is_leaf else "metasystem",
                      "depth": genome.depth(node_id),
                      "state": state, "done": done[node_id], "failed": failed[node_id], "tokens": tokens[node_id],
                      "queue": len(queued.get(node_id, ())), "pid": pids.get(node_id),
                      "restarts": restarts.get(node_id, 0), "provider": providers.get(node_id, ""),
                      "budget_left": left.get(node_id)})
    lineage = genome.lineage.parent_genome_ids
    return {
        "genome": {"name": lineage[0] if lineage else genome.id, "id": genome.id, "version": len(lineage) + 1,
                   "boot_genome_id": boot_genome.id if boot_genome else genome.id,
                   "changed_since_boot": list(changes)},
        "uptime_seconds": round((now - started_at).total_seconds(), 1) if started_at else None,
        "providers": sorted(set(providers.values())), "ledger": ledger,
        "directives_in_flight": len(accepted - answered), "nodes": nodes,
    }


def render_status(data: dict[str, Any]) -> str:
    g = data["genome"]
    budgets = any(n.get("budget_left") is not None for n in data["nodes"])  # the column only when declared
    changes = [c for c in g["changed_since_boot"] if " channel " not in c and c != "~ genome lineage"]
    channels = len(g["changed_since_boot"]) - len(changes) - ("~ genome lineage" in g["changed_since_boot"])
    if channels:
        changes.append(f"~ {channels} channel{'s' if channels > 1 else ''}")
    lines = [f"genome {g['name']} v{g['version']} (id {g['id']}; booted on {g['boot_genome_id']})",
             *(f"  changed since boot: {c}" for c in changes),
             f"uptime {_duration(data['uptime_seconds'])}  providers {', '.join(data['providers']) or '-'}  "
             f"ledger {data['ledger']}  directives in flight {data['directives_in_flight']}",
             f"{'node':<32} {'kind':<10} {'state':<26} {'done':>5} {'failed':>6} {'tokens':>8}"
             f"{' budget left' if budgets else ''} {'queue':>5}  pid"]
    for n in data["nodes"]:
        label = ("  " * n["depth"] + n["name"])[:32]
        restarts = f" (restarted {n['restarts']}x)" if n["restarts"] else ""
        left = (f" {'-' if n.get('budget_left') is None else format(n['budget_left'], ','):>11}") if budgets else ""
        lines.append(f"{label:<32} {n['kind']:<10} {n['state']:<26} {n['done']:>5} {n['failed']:>6} "
                     f"{n['tokens']:>8}{left} {n['queue']:>5}  {n['pid'] or '-'}{restarts}")
    lines.extend(_supervision_lines(data.get("supervision")))
    return "\n".join(lines)


def _supervision_lines(supervision: dict[str, Any] | None) -> list[str]:
    """Only what needs attention: nodes no longer restarted, frames refused (someone is probing)."""
    if not supervision:
        return []
    lines = []
    if supervision.get("given_up"):
        lines.append(f"given up (restarted too often; `vsm resume NODE`): {', '.join(supervision['given_up'])}")
    if supervision.get("supervisor_restarts"):
        lines.append(f"supervisor replaced {supervision['supervisor_restarts']} time(s); now pid "
                     f"{supervision.get('supervisor_pid')}")
    if supervision.get("rejected_frames"):
        by = ", ".join(f"{k} {v}" for k, v in supervision.get("rejected_frames_by_process", {}).items() if v)
        lines.append(f"refused {supervision['rejected_frames']} unsigned or forged frames ({by})")
    return lines


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
