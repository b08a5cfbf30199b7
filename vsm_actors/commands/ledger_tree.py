"""`vsm ledger traces` and `vsm ledger tree`: what a directive's tasks did, where, at what cost,
and why each failed one failed (the error text of its result). Registered on the `ledger`
group of `ledger.py`; see there for the ledger option and the id rules.
"""

from __future__ import annotations

from typing import Any

import click

from .. import codec
from ..core.model.events import LedgerEvent, LedgerEventKind, TraceWindow
from ..core.model.trace import TaskTrace
from ..core.model.variants import Other
from ..ledger import EventQuery, Ledger
from ..ledger.lineage import LINEAGE_KINDS, TASK_OUTCOME_KINDS, lineage_task_ids
from ..ledger.lineage_tree import DirectiveTree, build_directive_tree
from ..views import tree as tree_view
from ..views.costs import Pricing
from ..views.event_lines import result_error, trace_lines
from . import ledger_ids as ids
from .common import emit_json, output_option
from .ledger import ledger_group, ledger_location, ledger_option, pricing_for, read_ledger


# -- traces ------------------------------------------------------------------------------------

def trace_data(trace: TaskTrace, pricing: Pricing | None = None, error: str | None = None) -> dict[str, Any]:
    data = codec.to_wire(trace)
    data["tokens"] = trace.token_total()
    data["total_score"] = trace.total_score()
    data["status"] = trace.metadata.get("status")
    data["cost"] = pricing.trace_cost(trace) if pricing is not None else None
    data["error"] = error
    return data


def trace_errors(ledger: Ledger, traces: list[TaskTrace]) -> dict[str, str]:
    """Trace id -> the error text of the result its node produced, for traces that did not
    complete (the trace itself records the status, the result event the error)."""
    out = {}
    for t in traces:
        if t.metadata.get("status", "Completed") in ("Completed", "Noop"):
            continue
        error = result_error(ledger.events(EventQuery(task_id=t.task_id, kinds=(LedgerEventKind.TaskResultReceived,))),
                             t.assigned_node_id)
        if error:
            out[t.id] = error
    return out


def _in_subtree(trace: TaskTrace, node_id: str | None) -> bool:
    return node_id is None or trace.assigned_node_id == node_id or node_id in trace.responsible_ancestor_ids


@ledger_group.command("traces")
@ledger_option
@click.option("--node", "node_id", metavar="ID",
              help="Only traces of this node's subtree (assigned to it or with it as a responsible ancestor).")
@click.option("--task", "task_id", metavar="ID", help="Only traces of this task (any unique part of its id).")
@click.option("--trace", "trace_id", metavar="ID", help="Only this trace (any unique part of its id).")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="Keep the newest N traces (0: all).")
@output_option
def traces_cmd(ledger_url: str | None, node_id: str | None, task_id: str | None, trace_id: str | None, limit: int,
               output: str) -> None:
    """Task traces, oldest first, with tokens, cost, latency and outcome, and the error text of
    each failed task."""
    window = TraceWindow(limit=limit or None)
    location = ledger_location(ledger_url)
    with read_ledger(ledger_url) as ledger:
        node_id = ids.resolve(ledger, "node", node_id, location)
        task_id = ids.resolve(ledger, "task", task_id, location)
        trace_id = ids.resolve(ledger, "trace", trace_id, location)
        if trace_id is not None or task_id is not None:
            wanted = [trace_id] if trace_id is not None else [
                e.metadata.get("trace_id") for e in ledger.events(EventQuery(
                    task_id=task_id, kinds=(LedgerEventKind.TraceWritten,)))]
            found = {t.id: t for t in (ledger.get_trace(w) for w in wanted if w) if t is not None}
            traces = sorted((t for t in found.values() if (task_id is None or t.task_id == task_id)
                             and _in_subtree(t, node_id)), key=lambda t: (t.started_at, t.id))
            traces = traces[-limit:] if limit else traces
        else:
            traces = (ledger.subtree_task_traces(node_id, window) if node_id
                      else ledger.recent_task_traces(window))
        errors, pricing = trace_errors(ledger, traces), pricing_for(ledger, warn=output == "text")
        if output != "text":
            emit_json([trace_data(t, pricing, errors.get(t.id)) for t in traces], lines=output == "jsonl")
            return
        tasks = ids.short_ids(ledger, "task", (t.task_id for t in traces))
        trace_ids = ids.short_ids(ledger, "trace", (t.id for t in traces))
        for t in traces:
            for line in trace_lines(t, tasks, trace_ids, pricing, errors.get(t.id)):
                click.echo(line)
    if not traces:
        click.echo("no traces match", err=True)


# -- tree --------------------------------------------------------------------------------------

ROUTING_FAILED = Other("task_routing_failed")


def directive_events(ledger: Ledger, directive_id: str) -> list[LedgerEvent]:
    """The directive's own lineage events plus the results, traces and routing failures of its
    tasks, which the ledger links to the task only (as `Ledger.directive_lineage` gathers them)."""
    linked = ledger.events(EventQuery(directive_id=directive_id, kinds=(*LINEAGE_KINDS, ROUTING_FAILED)))
    by_id = {e.id: e for e in linked}
    for task_id in lineage_task_ids(linked):
        for event in ledger.events(EventQuery(task_id=task_id, kinds=(*TASK_OUTCOME_KINDS, ROUTING_FAILED))):
            by_id.setdefault(event.id, event)
    return sorted(by_id.values(), key=lambda e: e.created_at)


def directives_events(ledger: Ledger, accepted: list[LedgerEvent]) -> dict[str, list[LedgerEvent]]:
    """`directive_events` of many directives at once, from their `directive_accepted` events: one
    read of the ledger from the oldest acceptance on (a directive's events all follow it), split
    by directive as `directive_events` gathers them. The newest directives are the ledger's tail,
    so this reads what they wrote and what ran beside them, not one query per directive."""
    if not accepted:
        return {}
    since = min(e.created_at for e in accepted)
    window = ledger.events(EventQuery(since=since, kinds=(*LINEAGE_KINDS, *TASK_OUTCOME_KINDS, ROUTING_FAILED)))
    by_task: dict[str, list[LedgerEvent]] = {}
    linked: dict[str, list[LedgerEvent]] = {e.directive_id: [] for e in accepted}
    for event in window:
        if event.task_id is not None and (event.kind in TASK_OUTCOME_KINDS or event.kind == ROUTING_FAILED):
            by_task.setdefault(event.task_id, []).append(event)
        if event.directive_id in linked and (event.kind in LINEAGE_KINDS or event.kind == ROUTING_FAILED):
            linked[event.directive_id].append(event)
    out = {}
    for directive_id, events in linked.items():
        by_id = {e.id: e for e in events}
        for task_id in lineage_task_ids(events):
            for event in by_task.get(task_id, ()):
                by_id.setdefault(event.id, event)
        out[directive_id] = sorted(by_id.values(), key=lambda e: e.created_at)
    return out


def traces_since(ledger: Ledger, events_of: dict[str, list[LedgerEvent]]) -> dict[str, TaskTrace]:
    """The stored traces the directives' `trace_written` events name, read in one window."""
    starts = [e.created_at for events in events_of.values() for e in events]
    if not starts:
        return {}
    return {t.id: t for t in ledger.recent_task_traces(TraceWindow(since=min(starts), limit=None))}


def stored_traces(ledger: Ledger, events: list[LedgerEvent], known: dict[str, TaskTrace] | None = None,
                  ) -> list[TaskTrace]:
    """The stored traces the `trace_written` events name (they win over the events' copies:
    traces are upserts)."""
    traces = []
    for event in events:
        trace_id = event.metadata.get("trace_id") if event.kind is LedgerEventKind.TraceWritten else None
        stored = None if not trace_id else known[trace_id] if known and trace_id in known else ledger.get_trace(trace_id)
        if stored is not None:
            traces.append(stored)
    return traces


def directive_tree(ledger: Ledger, directive_id: str) -> DirectiveTree:
    events = directive_events(ledger, directive_id)
    return build_directive_tree(directive_id, events, stored_traces(ledger, events))


@ledger_group.command("tree")
@ledger_option
@click.option("--directive", "directive_id", metavar="ID",
              help="Only this directive: its id or any unique part of it (the short id views print).")
@click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True,
              help="The newest N directives (0: all), printed oldest first.")
@output_option
def tree_cmd(ledger_url: str | None, directive_id: str | None, limit: int, output: str) -> None:
    """Each directive's path through the organization, with tokens, cost and latency rolled up
    per node (a node's figures include its subtree), each task's status, and the error text of
    every failed task under the node that produced it."""
    location = ledger_location(ledger_url)
    with read_ledger(ledger_url) as ledger:
        if directive_id is not None:
            directives = [ids.resolve(ledger, "directive", directive_id, location)]
            events_of = {directives[0]: directive_events(ledger, directives[0])}
        else:
            accepted = ledger.events(EventQuery(kinds=(LedgerEventKind.DirectiveAccepted,), limit=limit))
            directives = list(dict.fromkeys(e.directive_id for e in accepted if e.directive_id))
            events_of = directives_events(ledger, [e for e in accepted if e.directive_id])
        known = traces_since(ledger, events_of)
        pricing = pricing_for(ledger, warn=output == "text")
        shown = []
        for d in directives:
            events = events_of[d]
            traces = stored_traces(ledger, events, known)
            shown.append((build_directive_tree(d, events, traces), tree_view.node_costs(events, traces, pricing),
                          tree_view.failures(events)))
        if output == "text":
            directive_ids = ids.short_ids(ledger, "directive", directives)
            task_ids = ids.short_ids(ledger, "task", (f.task_id for _t, _c, fs in shown for f in fs))
    if output in ("json", "jsonl"):
        emit_json([tree_view.tree_data(*item) for item in shown], lines=output == "jsonl")
        return
    for i, (tree, costs, failed) in enumerate(shown):
        if i:
            click.echo("")
        click.echo("\n".join(tree_view.render_tree(tree, directive=directive_ids, task=task_ids, costs=costs,
                                                   failed=failed)))
    if not shown:
        click.echo("no directives", err=True)


