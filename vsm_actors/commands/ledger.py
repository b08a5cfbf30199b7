"""`vsm ledger events|traces|trials|genomes|tree|export`: read what an organization recorded.

Every subcommand takes `--ledger PATH|URL` (default: $VSM_LEDGER, else ./vsm-ledger.sqlite). The
commands only read: a SQLite file that does not exist is bad input (exit 2), never created.

Event objects (`events -o jsonl`, `export`) carry `id`, `kind`, `kind_storage_key`, `created_at`,
`node_id`, `task_id`, `directive_id`, `genome_id`, `correlation_id`, `suggestion_id`, `payload`
and `metadata`. `kind` is the snake_case storage key for named kinds (`task_routed`) and the bare
name for open-ended ones (`Other("organization_started")` -> `organization_started`);
`kind_storage_key` is always the stored key (`task_routed`, `other:organization_started`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import click

from .. import codec
from ..core.model.events import LedgerEvent, LedgerEventKind, TraceWindow, kind_from_storage_key
from ..core.model.records import role_storage_key
from ..core.model.trace import TaskTrace
from ..core.model.variants import Other
from ..ledger import DEFAULT_LEDGER, MEMORY_URL, EventQuery, Ledger, LedgerError, open_ledger
from ..ledger._database import parse_target
from ..ledger.lineage import LINEAGE_KINDS, TASK_OUTCOME_KINDS, lineage_task_ids
from ..ledger.lineage_tree import DirectiveTree, build_directive_tree, render_tree
from ..ledger.query import kind_key
from .common import BadInput, emit_json, output_option

PAGE_SIZE = 500

ledger_option = click.option(
    "--ledger", "ledger_url", metavar="PATH|URL", default=None,
    help=f"Ledger to read: a SQLite path, sqlite:///PATH or postgresql://... "
         f"[default: $VSM_LEDGER, else ./{DEFAULT_LEDGER}]")


def ledger_location(url: str | None) -> str:
    if url is None:
        url = os.environ.get("VSM_LEDGER") or DEFAULT_LEDGER
    return url


@contextlib.contextmanager
def read_ledger(url: str | None) -> Iterator[Ledger]:
    """Open an existing ledger; a missing SQLite file or a database that cannot be opened is bad
    input (exit 2) with the location in the message."""
    location = ledger_location(url)
    if location != MEMORY_URL:
        try:
            target = parse_target(location)
        except LedgerError as exc:
            raise BadInput(f"{location}: {exc}") from None
        if target.engine == "sqlite" and target.database != ":memory:" and not os.path.isfile(target.database):
            raise BadInput(f"{target.database}: no such ledger file (pass --ledger PATH|URL or set VSM_LEDGER)")
    try:
        ledger = open_ledger(location, read_only=True)
    except LedgerError as exc:
        raise BadInput(f"{location}: cannot open the ledger: {exc}") from None
    try:
        yield ledger
    except LedgerError as exc:
        raise click.ClickException(f"{location}: {exc}") from None
    finally:
        ledger.close()


# -- event objects -----------------------------------------------------------------------------

def kind_name(event: LedgerEvent) -> str:
    return event.kind.value if isinstance(event.kind, Other) else event.storage_key


def event_data(event: LedgerEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": kind_name(event),
        "kind_storage_key": event.storage_key,
        "created_at": codec.format_timestamp(event.created_at),
        "node_id": event.node_id,
        "task_id": event.task_id,
        "directive_id": event.directive_id,
        "genome_id": event.genome_id,
        "correlation_id": event.correlation_id,
        "suggestion_id": event.suggestion_id,
        "payload": event.payload,
        "metadata": dict(event.metadata),
    }


def iter_events(ledger: Ledger, query: EventQuery, page_size: int = PAGE_SIZE) -> Iterator[LedgerEvent]:
    """Every event `query` matches, oldest first, read `page_size` at a time with the ledger's
    `after_id` cursor so memory stays flat however large the ledger is."""
    after: str | None = None
    while True:
        page = ledger.events(EventQuery(
            kinds=query.kinds, node_id=query.node_id, task_id=query.task_id, directive_id=query.directive_id,
            correlation_id=query.correlation_id, genome_id=query.genome_id, suggestion_id=query.suggestion_id,
            since=query.since, after_id=after, keep="oldest", limit=page_size))
        yield from page
        if len(page) < page_size:
            return
        after = page[-1].id


def _line(data: Any, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")


def _short(value: str | None, width: int = 8) -> str:
    return "-" if not value else value[:width]


def _parse_kind(text: str) -> LedgerEventKind | Other:
    """A kind as snake_case (`task_routed`), PascalCase (`TaskRouted`) or `other:<name>`. A bare
    unknown name means the open-ended kind of that name."""
    return kind_from_storage_key(kind_key(text))


@click.group("ledger")
def ledger_group() -> None:
    """Read the ledger: events, traces, trials, genome snapshots, directive trees, exports."""


@ledger_group.command("events")
@ledger_option
@click.option("--kind", "kinds", multiple=True, metavar="KIND",
              help="Only this kind (repeatable): task_routed, TaskRouted or an open kind's name.")
@click.option("--node", "node_id", metavar="ID", help="Only events linked to this node.")
@click.option("--task", "task_id", metavar="ID", help="Only events linked to this task.")
@click.option("--directive", "directive_id", metavar="ID", help="Only events linked to this directive.")
@click.option("--correlation", "correlation_id", metavar="ID", help="Only events with this correlation id.")
@click.option("--limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep the newest N matching events (0: all).")
@output_option
def events_cmd(ledger_url: str | None, kinds: tuple[str, ...], node_id: str | None, task_id: str | None,
               directive_id: str | None, correlation_id: str | None, limit: int, output: str) -> None:
    """Events, oldest first: one aligned line each, or one JSON object each with -o jsonl."""
    query = EventQuery(kinds=tuple(_parse_kind(k) for k in kinds), node_id=node_id, task_id=task_id,
                       directive_id=directive_id, correlation_id=correlation_id)
    with read_ledger(ledger_url) as ledger:
        events = (ledger.events(EventQuery(**{**_fields(query), "limit": limit})) if limit
                  else iter_events(ledger, query))
        if output == "json":
            emit_json([event_data(e) for e in events])
        elif output == "jsonl":
            for event in events:
                _line(event_data(event))
        else:
            for event in events:
                click.echo(f"{codec.format_timestamp(event.created_at):<27}  {kind_name(event):<26}  "
                           f"{event.node_id or '-':<22}  task {_short(event.task_id)}  "
                           f"directive {_short(event.directive_id)}  {event.id}")


def _fields(query: EventQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in (
        "kinds", "node_id", "task_id", "directive_id", "correlation_id", "genome_id", "suggestion_id", "since")}


# -- traces ------------------------------------------------------------------------------------

def trace_data(trace: TaskTrace) -> dict[str, Any]:
    data = codec.to_wire(trace)
    data["tokens"] = trace.token_total()
    data["total_score"] = trace.total_score()
    data["status"] = trace.metadata.get("status")
    return data


@ledger_group.command("traces")
@ledger_option
@click.option("--node", "node_id", metavar="ID",
              help="Only traces of this node's subtree (assigned to it or with it as a responsible ancestor).")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="Keep the newest N traces (0: all).")
@output_option
def traces_cmd(ledger_url: str | None, node_id: str | None, limit: int, output: str) -> None:
    """Task traces, oldest first, with tokens, latency and outcome."""
    window = TraceWindow(limit=limit or None)
    with read_ledger(ledger_url) as ledger:
        traces = (ledger.subtree_task_traces(node_id, window) if node_id
                  else ledger.recent_task_traces(window))
    if output != "text":
        emit_json([trace_data(t) for t in traces], lines=output == "jsonl")
        return
    for t in traces:
        click.echo(f"{codec.format_timestamp(t.started_at):<27}  {t.assigned_node_id:<22}  "
                   f"task {_short(t.task_id)}  tokens {t.input_tokens}+{t.output_tokens}={t.token_total():<7}  "
                   f"{t.latency_ms:>6} ms  {t.metadata.get('status', '-'):<10}  score {t.total_score():+.3f}  {t.id}")


# -- trials ------------------------------------------------------------------------------------

@ledger_group.command("trials")
@ledger_option
@click.option("--controller", "controller", metavar="ID", help="Only this controller's trials.")
@click.option("--limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep the N most recently updated trials (0: all).")
@output_option
def trials_cmd(ledger_url: str | None, controller: str | None, limit: int, output: str) -> None:
    """Trial records, most recently updated first."""
    with read_ledger(ledger_url) as ledger:
        records = ledger.trial_records(controller, limit or None)
    if output != "text":
        emit_json([codec.to_wire(r) for r in records], lines=output == "jsonl")
        return
    if not records:
        click.echo("no trials", err=True)
    for r in records:
        click.echo(f"{codec.format_timestamp(r.updated_at):<27}  {r.controller_node_id:<18}  "
                   f"{r.status.storage_key:<9}  {r.base_genome_id} -> {r.candidate_genome_id}  "
                   f"tasks {r.routed_tasks}  tokens {r.consumed_tokens}  score {r.total_score:+.3f}  {r.trial_id}")


# -- genomes -----------------------------------------------------------------------------------

@ledger_group.command("genomes")
@ledger_option
@click.option("--full", is_flag=True, help="Include each snapshot's whole genome (json/jsonl).")
@output_option
def genomes_cmd(ledger_url: str | None, full: bool, output: str) -> None:
    """Genome snapshots (newest first) and every controller's champion pointer."""
    with read_ledger(ledger_url) as ledger:
        snapshots = ledger.genome_snapshots()
        champions = ledger.champion_genome_ids()
    champion_of: dict[str, list[str]] = {}
    for controller, genome_id in sorted(champions.items()):
        champion_of.setdefault(genome_id, []).append(controller)
    known = {s.genome_id for s in snapshots}
    dangling = {c: g for c, g in champions.items() if g not in known}
    for controller, genome_id in sorted(dangling.items()):
        click.echo(f"warning: champion of {controller} is {genome_id}, which has no snapshot", err=True)
    rows = []
    for s in snapshots:
        row = {"genome_id": s.genome_id, "role": role_storage_key(s.role),
               "saved_at": codec.format_timestamp(s.saved_at),
               "root_node_id": s.genome.root_node_id, "nodes": len(s.genome.nodes),
               "parent_genome_ids": list(s.genome.lineage.parent_genome_ids),
               "champion_of": champion_of.get(s.genome_id, []), "metadata": dict(s.metadata)}
        if full:
            row["genome"] = codec.to_wire(s.genome)
        rows.append(row)
    if output == "json":
        emit_json({"champions": dict(sorted(champions.items())), "snapshots": rows})
    elif output == "jsonl":
        emit_json(rows, lines=True)
    else:
        click.echo("champions:" if champions else "champions: none")
        for controller, genome_id in sorted(champions.items()):
            click.echo(f"  {controller:<22}  {genome_id}{'  (no snapshot)' if controller in dangling else ''}")
        click.echo("snapshots:" if rows else "snapshots: none")
        for r in rows:
            champ = f"  champion of {', '.join(r['champion_of'])}" if r["champion_of"] else ""
            click.echo(f"  {r['saved_at']:<27}  {r['role']:<10}  {r['genome_id']:<36}  {r['nodes']} nodes{champ}")


# -- tree --------------------------------------------------------------------------------------

def directive_events(ledger: Ledger, directive_id: str) -> list[LedgerEvent]:
    """The directive's own lineage events plus the results and traces of its tasks, which the
    ledger links to the task only (as `Ledger.directive_lineage` gathers them)."""
    linked = ledger.events(EventQuery(directive_id=directive_id, kinds=LINEAGE_KINDS))
    by_id = {e.id: e for e in linked}
    for task_id in lineage_task_ids(linked):
        for event in ledger.events(EventQuery(task_id=task_id, kinds=TASK_OUTCOME_KINDS)):
            by_id.setdefault(event.id, event)
    return sorted(by_id.values(), key=lambda e: e.created_at)


def directive_tree(ledger: Ledger, directive_id: str) -> DirectiveTree:
    events = directive_events(ledger, directive_id)
    traces = []
    for event in events:
        trace_id = event.metadata.get("trace_id") if event.kind is LedgerEventKind.TraceWritten else None
        stored = ledger.get_trace(trace_id) if trace_id else None
        if stored is not None:
            traces.append(stored)  # the stored trace wins over the event's copy (traces are upserts)
    return build_directive_tree(directive_id, events, traces)


@ledger_group.command("tree")
@ledger_option
@click.option("--directive", "directive_id", metavar="ID", help="Only this directive.")
@click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True,
              help="The newest N directives (0: all), printed oldest first.")
@output_option
def tree_cmd(ledger_url: str | None, directive_id: str | None, limit: int, output: str) -> None:
    """Each directive's path through the organization, with tokens and latency rolled up per node
    (a node's figures include its subtree) and each task's status."""
    with read_ledger(ledger_url) as ledger:
        if directive_id is not None:
            ids = [directive_id]
            if not ledger.events(EventQuery(directive_id=directive_id, limit=1)):
                raise BadInput(f"{ledger_location(ledger_url)}: no events for directive {directive_id}")
        else:
            accepted = ledger.events(EventQuery(kinds=(LedgerEventKind.DirectiveAccepted,), limit=limit))
            ids = list(dict.fromkeys(e.directive_id for e in accepted if e.directive_id))
        trees = [directive_tree(ledger, d) for d in ids]
    if output == "json":
        emit_json([t.as_data() for t in trees])
    elif output == "jsonl":
        emit_json([t.as_data() for t in trees], lines=True)
    else:
        for i, tree in enumerate(trees):
            if i:
                click.echo("")
            click.echo("\n".join(render_tree(tree)))
        if not trees:
            click.echo("no directives", err=True)


# -- export ------------------------------------------------------------------------------------

@ledger_group.command("export")
@ledger_option
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Write here (atomically) instead of stdout.")
def export_cmd(ledger_url: str | None, out: str | None) -> None:
    """Every event, oldest first, as JSON lines (the `events -o jsonl` objects), read page by
    page so memory stays flat. Events only: each trace's content is in its `trace_written`
    event; use `traces`, `trials` and `genomes -o json --full` for the other records."""
    with read_ledger(ledger_url) as ledger:
        if out is None:
            for event in iter_events(ledger, EventQuery()):
                _line(event_data(event))
            return
        tmp = f"{out}.tmp-{os.getpid()}"
        count = 0
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                for event in iter_events(ledger, EventQuery()):
                    _line(event_data(event), fh)
                    count += 1
            os.replace(tmp, out)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise BadInput(f"{out}: cannot write: {exc.strerror or exc}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    click.echo(f"{out}: {count} events", err=True)
