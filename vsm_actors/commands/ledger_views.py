"""`vsm ledger stats|timeline|tail|budgets`: figures per node, class or genome; one directive's
tasks as a Gantt chart; new events as they are recorded; budgets per node and epoch. Registered on the `ledger` group of
`ledger.py` (ledger option, id rules and price table are described there)."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta, timezone

import click

from ..core.model.events import LedgerEvent, TraceWindow
from ..core.model.genome import OrganizationalGenome
from ..ledger import EventQuery, Ledger, describe_ledger
from ..views.event_lines import EventColumns, event_line
from ..views.short_ids import GrowingShortIds
from ..views.stats import GROUPINGS, compute_stats, render_stats, task_class
from ..views.timeline import BAR_WIDTH, build_timeline, render_timeline
from ..views.budgets import budget_rows, render_budgets
from ..ledger.evolution_state import BUDGET_KINDS, BUDGET_MARK_KINDS
from . import ledger_ids as ids
from .common import emit_json, output_option
from .ledger import (
    PAGE_SIZE, event_data, event_query, filter_options, iter_events, ledger_group, ledger_location, ledger_option,
    pricing_for, read_ledger,
)
from .ledger_tree import directive_events, stored_traces
from .run import install_signal_shutdown

EXIT_INTERRUPTED = 130


def tree_order(genome: OrganizationalGenome | None) -> list[str]:
    """Node ids depth first from the root, children in genome order."""
    if genome is None:
        return []
    out, stack = [], [genome.root_node_id]
    while stack:
        node = stack.pop()
        if node in genome.nodes and node not in out:
            out.append(node)
            stack.extend(reversed(genome.nodes[node].children))
    return out


# -- stats -------------------------------------------------------------------------------------

@ledger_group.command("stats")
@ledger_option
@click.option("--by", "by", type=click.Choice(GROUPINGS), default="node", show_default=True,
              help="One row per node (a metasystem's row covers its subtree), task class or genome.")
@click.option("--node", "node_id", metavar="ID", help="Only traces of this node's subtree.")
@click.option("--genome", "genome_id", metavar="ID", help="Only traces run under this genome.")
@click.option("--class", "task_class_", metavar="NAME", help="Only tasks of this task class.")
@click.option("--limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only the newest N traces (0: all).")
@output_option
def stats_cmd(ledger_url: str | None, by: str, node_id: str | None, genome_id: str | None,
              task_class_: str | None, limit: int, output: str) -> None:
    """Tasks, failures, tokens, cost and p50/p95 latency, from the task traces.

    Cost is tokens times the price of the node's model, from the genome's metadata:
    `price_per_1k_tokens.<model>` (or `price_per_1k_input_tokens.<model>` and
    `price_per_1k_output_tokens.<model>`; `<provider>/<model>` wins over `<model>`), in the
    unit the table is written in."""
    location = ledger_location(ledger_url)
    with read_ledger(ledger_url) as ledger:
        node_id = ids.resolve(ledger, "node", node_id, location)
        genome_id = ids.resolve(ledger, "genome", genome_id, location)
        window = TraceWindow(limit=limit or None)
        traces = ledger.subtree_task_traces(node_id, window) if node_id else ledger.recent_task_traces(window)
        traces = [t for t in traces if (genome_id is None or t.genome_id == genome_id)
                  and (task_class_ is None or task_class(t) == task_class_)]
        pricing = pricing_for(ledger, warn=output == "text")
        stats = compute_stats(traces, by, pricing, node_order=tree_order(pricing.fallback), top=node_id)
        genomes = ids.short_ids(ledger, "genome", (r.key for r in stats.rows)) if by == "genome" else None
    if output == "json":
        emit_json(stats.as_data())
    elif output == "jsonl":
        emit_json([r.as_data(by) for r in (*stats.rows, stats.total)], lines=True)
    else:
        for line in render_stats(stats, genomes):
            click.echo(line)
    if not traces:
        click.echo("no traces match" if node_id or genome_id or task_class_ else "no traces", err=True)


# -- timeline ----------------------------------------------------------------------------------

@ledger_group.command("timeline")
@click.argument("directive")
@ledger_option
@click.option("--width", type=click.IntRange(min=10, max=400), default=BAR_WIDTH, show_default=True,
              help="Characters of the chart's time axis.")
@output_option
def timeline_cmd(directive: str, ledger_url: str | None, width: int, output: str) -> None:
    """One directive's tasks as a Gantt chart: each task's interval at each node, from the
    route that sent it there to the result its parent received. DIRECTIVE is its id or any
    unique part of it (the short id `vsm ledger tree` prints)."""
    location = ledger_location(ledger_url)
    with read_ledger(ledger_url) as ledger:
        directive_id = ids.resolve(ledger, "directive", directive, location)
        events = directive_events(ledger, directive_id)
        traces = stored_traces(ledger, events)
        pricing = pricing_for(ledger, warn=output == "text")
        timeline = build_timeline(directive_id, events, traces, now=datetime.now(timezone.utc), pricing=pricing)
        if output == "text":
            task_ids = ids.short_ids(ledger, "task", (i.task_id for i in timeline.intervals))
            directive_ids = ids.short_ids(ledger, "directive", [directive_id])
    if output == "json":
        emit_json(timeline.as_data())
    elif output == "jsonl":
        emit_json(timeline.as_data()["intervals"], lines=True)
    else:
        for line in render_timeline(timeline, task=task_ids, directive=directive_ids, width=width):
            click.echo(line)


# -- tail --------------------------------------------------------------------------------------

TAIL_SLACK = timedelta(seconds=2)  # events may be committed out of created_at order by this much


class _Follower:
    """Reads the events recorded since the last poll, oldest first, each once. Events are
    ordered by `created_at`, but a batch committed late can hold events a little older than
    ones already read, so each poll rereads the last `TAIL_SLACK` and skips what it printed."""

    def __init__(self, ledger: Ledger, query: EventQuery) -> None:
        self.ledger, self.query = ledger, query
        self.since: datetime | None = None
        self.printed: dict[str, datetime] = {}

    def start(self, backlog: int) -> list[LedgerEvent]:
        fields = {n: getattr(self.query, n) for n in ("kinds", "node_id", "task_id", "directive_id",
                                                      "correlation_id", "genome_id")}
        shown = self.ledger.events(EventQuery(**fields, limit=backlog)) if backlog else []
        newest = self.ledger.events(EventQuery(limit=1))
        self.since = newest[-1].created_at - TAIL_SLACK if newest else None
        if newest:  # everything up to now counts as seen, whether shown or not
            for event in self.ledger.events(EventQuery(**fields, since=self.since)):
                self.printed[event.id] = event.created_at
        return shown

    def poll(self) -> list[LedgerEvent]:
        fields = {n: getattr(self.query, n) for n in ("kinds", "node_id", "task_id", "directive_id",
                                                      "correlation_id", "genome_id")}
        out, after = [], None
        while True:
            page = self.ledger.events(EventQuery(**fields, since=self.since, after_id=after, keep="oldest",
                                                 limit=PAGE_SIZE))
            out += [e for e in page if e.id not in self.printed]
            if len(page) < PAGE_SIZE:
                break
            after = page[-1].id
        for event in out:
            self.printed[event.id] = event.created_at
        if self.printed:
            newest = max(self.printed.values())
            self.since = newest - TAIL_SLACK
            self.printed = {i: at for i, at in self.printed.items() if at >= self.since}
        return out


@ledger_group.command("tail")
@ledger_option
@filter_options
@click.option("-n", "--lines", "backlog", type=click.IntRange(min=0), default=10, show_default=True,
              help="Start with the last N matching events (0: only new ones).")
@click.option("--interval", type=click.FloatRange(min=0.05), default=0.5, show_default=True,
              help="Seconds between polls of the ledger.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None,
              help="Stop following after this many seconds (exit 0) [default: until interrupted].")
@click.option("-o", "--output", "output", type=click.Choice(["text", "jsonl"]), default="text", show_default=True,
              help="Output format: aligned lines, or one JSON object per event.")
def tail_cmd(ledger_url: str | None, kinds: tuple[str, ...], backlog: int, interval: float, timeout: float | None,
             output: str, **given: str | None) -> None:
    """Follow new events as they are recorded (the `events` line or object of each), until
    interrupted (exit 130) or --timeout. Short ids widen when a new id needs more characters."""
    location = ledger_location(ledger_url)
    install_signal_shutdown()
    deadline = None if timeout is None else time.monotonic() + timeout
    with read_ledger(ledger_url) as ledger:
        query = event_query(ledger, location, kinds, **given)
        follower = _Follower(ledger, query)
        pricing = pricing_for(ledger, warn=output == "text")
        columns = None
        try:
            batch = follower.start(backlog)
            if deadline is None:  # on stderr, so the output stays the events alone
                click.echo(f"vsm ledger tail: following {describe_ledger(location)}; Ctrl-C stops",
                           err=True)
            if output == "text":
                # over the ids recorded near the backlog and the ledger's end, which new ids follow
                columns = {what: GrowingShortIds(*ids.window_basis(
                    ledger, what, (getattr(e, f"{what}_id") for e in batch), to_end=True))
                    for what in ("task", "directive")}
                columns["event"] = GrowingShortIds(e.id for e in batch)
            while True:
                _print(batch, columns, pricing)
                if deadline is not None and time.monotonic() >= deadline:
                    return
                time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic())))
                batch = follower.poll()
        except KeyboardInterrupt:
            sys.stdout.flush()
            sys.exit(EXIT_INTERRUPTED)


def _print(events: list[LedgerEvent], columns: dict[str, GrowingShortIds] | None, pricing) -> None:
    if not events:
        return
    if columns is None:
        for event in events:
            sys.stdout.write(json.dumps(event_data(event), ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        columns["event"].add(e.id for e in events)
        columns["task"].add(e.task_id for e in events)
        columns["directive"].add(e.directive_id for e in events)
        view = EventColumns(event=columns["event"].window, task=columns["task"].window,
                            directive=columns["directive"].window)
        for event in events:
            click.echo(event_line(event, view, pricing))
    sys.stdout.flush()


# -- budgets -----------------------------------------------------------------------------------

@ledger_group.command("budgets")
@ledger_option
@click.option("--node", "node_id", metavar="ID", help="Only this node: its id or any unique part of it.")
@click.option("-o", "--output", "output", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format for data written to stdout.")
def budgets_cmd(ledger_url: str | None, node_id: str | None, output: str) -> None:
    """Per node and epoch: the token budget it declares, what its parent approved, what its
    subtree used, what remains, what it granted its children, and its tasks against the message
    budget. Folded from each node's events as the running node folds them; `!` marks a node that
    ran out (and raised an algedonic pain signal) in that epoch."""
    location = ledger_location(ledger_url)
    with read_ledger(ledger_url) as ledger:
        node_id = ids.resolve(ledger, "node", node_id, location)
        marks = list(iter_events(ledger, EventQuery(kinds=BUDGET_MARK_KINDS, node_id=node_id)))
        first: dict[str, datetime] = {}
        for event in marks:  # each node's spending is read from its first epoch on, not the whole ledger
            if event.node_id and event.node_id not in first:
                first[event.node_id] = event.created_at.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        events = [e for n, since in sorted(first.items())
                  for e in iter_events(ledger, EventQuery(kinds=BUDGET_KINDS, node_id=n, since=since))]
        genome = pricing_for(ledger, warn=False).fallback
    order = tree_order(genome)
    rows = budget_rows(events, order=order, node_id=node_id)
    if output == "json":
        return emit_json(rows)
    depth = {n: genome.depth(n) for n in order} if genome is not None else {}
    for line in render_budgets(rows, depth):
        click.echo(line)
