"""`vsm ledger events|trials|genomes|export`: read what an organization recorded. `traces` and
`tree` live in `ledger_tree.py`, `stats`, `timeline` and `tail` in `ledger_views.py`, all on
the `ledger` group defined here.

Every subcommand takes `--ledger PATH|URL` (default: $VSM_LEDGER, else ./vsm-ledger.sqlite). The
commands only read: a SQLite file that does not exist is bad input (exit 2), never created.

Text views print short ids (`views/short_ids.py`), and every id a text view prints works as a
filter: `--directive`, `--task`, `--node`, `--event`, `--trace`, `--trial`, `--genome` take a
full id or any part of one that names exactly one (`ledger_ids.py`); an ambiguous value or one
naming nothing is bad input (exit 2); filters that match no events say so on stderr (exit 0).
An unknown `--kind` is bad input listing the valid kinds. Costs come from the genome's price
table (`views/costs.py`).

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
from ..core.model.events import LedgerEvent
from ..core.model.records import role_storage_key
from ..ledger import DEFAULT_LEDGER, MEMORY_URL, EventQuery, Ledger, LedgerError, open_ledger
from ..ledger._database import mask_url, parse_target
from ..views.costs import Pricing, price_problems
from ..views.event_lines import EventColumns, event_line
from ..views.event_lines import kind_name as _kind_name
from . import ledger_ids as ids
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
    shown = mask_url(location)  # a PostgreSQL password never reaches a message
    if location != MEMORY_URL:
        try:
            target = parse_target(location)
        except LedgerError as exc:
            raise BadInput(f"{shown}: {exc}") from None
        if target.engine == "sqlite" and target.database != ":memory:" and not os.path.isfile(target.database):
            raise BadInput(f"{target.database}: no such ledger file (pass --ledger PATH|URL or set VSM_LEDGER)")
    try:
        ledger = open_ledger(location, read_only=True)
    except LedgerError as exc:
        raise BadInput(f"{shown}: cannot open the ledger: {exc}") from None
    try:
        yield ledger
    except LedgerError as exc:
        raise click.ClickException(f"{shown}: {exc}") from None
    finally:
        ledger.close()


# -- event objects -----------------------------------------------------------------------------

kind_name = _kind_name


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


def pricing_for(ledger: Ledger, *, warn: bool = True) -> Pricing:
    """Prices by the genome each trace ran under, else the newest champion's."""
    champions = [ledger.get_genome_snapshot(g) for g in set(ledger.champion_genome_ids().values())]
    newest = max((c for c in champions if c is not None), key=lambda c: c.saved_at, default=None)
    fallback = newest.genome if newest is not None else None
    if warn and fallback is not None:
        for problem in price_problems(fallback):
            click.echo(f"warning: genome {fallback.id}: {problem}", err=True)

    def lookup(genome_id: str):
        snapshot = ledger.get_genome_snapshot(genome_id)
        return None if snapshot is None else snapshot.genome
    return Pricing(lookup, fallback)


@click.group("ledger")
def ledger_group() -> None:
    """Read the ledger: events, traces, trials, genome snapshots, directive trees, stats,
    timelines, exports; follow it with tail.

    Text views print short ids; each one works as a filter (--directive, --task, --node, ...),
    as does any unique part of an id. Costs use the genome's metadata price_per_1k_tokens.<model>."""


def filter_options(fn):
    """--node, --task, --directive, --correlation, --genome: events linked to one of each."""
    for name, what in (("genome", "genome"), ("correlation", "correlation id"), ("directive", "directive"),
                       ("task", "task"), ("node", "node")):
        fn = click.option(f"--{name}", f"{name}_id", metavar="ID",
                          help=f"Only events linked to this {what}: its id or any unique part of it "
                               "(the short id a text view prints).")(fn)
    return click.option("--kind", "kinds", multiple=True, metavar="KIND",
                        help="Only this kind (repeatable): task_routed, TaskRouted or a recorded open kind's "
                             "name; an unknown kind lists the valid ones.")(fn)


def event_query(ledger: Ledger, location: str, kinds: tuple[str, ...], **given: str | None) -> EventQuery:
    """The query the filter options ask for, each value resolved to the one full id it names."""
    resolved = {f"{what}_id": ids.resolve(ledger, what, given.get(f"{what}_id"), location)
                for what in ("node", "task", "directive", "correlation", "genome")}
    return EventQuery(kinds=ids.parse_kinds(ledger, kinds), **resolved)


def event_columns(ledger: Ledger | None, shown: dict[str, list[str | None]]) -> EventColumns:
    """Short-id windows for the event, task and directive ids shown (`shown[what]`)."""
    return EventColumns(**{what: ids.short_ids(ledger, what, shown[what]) for what in ("event", "task", "directive")})


@ledger_group.command("events")
@ledger_option
@filter_options
@click.option("--event", "event_id", metavar="ID",
              help="Only this event (its id or a unique part of it among the events the other filters select).")
@click.option("--limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep the newest N matching events (0: all).")
@output_option
def events_cmd(ledger_url: str | None, kinds: tuple[str, ...], event_id: str | None, limit: int, output: str,
               **given: str | None) -> None:
    """Events, oldest first: one aligned line each (time, kind, node, task, directive, event,
    status, outcome), or one JSON object each with -o jsonl."""
    location = ledger_location(ledger_url)
    with read_ledger(ledger_url) as ledger:
        query = event_query(ledger, location, kinds, **given)
        if event_id is not None:
            within = [e for e in (ledger.get_event(i) for i in ids.candidates(ledger, "event", event_id))
                      if e is not None and query.matches(e)]
            found = ids.resolve(ledger, "event", event_id, location, within=[e.id for e in within])
            events: Any = [e for e in within if e.id == found]
        elif limit:
            events = ledger.events(EventQuery(**{**_fields(query), "limit": limit}))
        else:
            events = iter_events(ledger, query)
        count = 0
        if output == "json":
            rows = [event_data(e) for e in events]
            count = len(rows)
            emit_json(rows)
        elif output == "jsonl":
            for event in events:
                _line(event_data(event))
                count += 1
        else:
            # short ids need every id shown first: a first pass reads only the ids, the second
            # prints, up to the last event the first saw (a live ledger grows meanwhile)
            seen: dict[str, list[str | None]] = {"event": [], "task": [], "directive": []}
            for event in events if isinstance(events, list) else iter_events(ledger, query):
                seen["event"].append(event.id)
                seen["task"].append(event.task_id)
                seen["directive"].append(event.directive_id)
            columns, pricing = event_columns(ledger, seen), pricing_for(ledger)
            last = seen["event"][-1] if seen["event"] else None
            for event in events if isinstance(events, list) else iter_events(ledger, query):
                click.echo(event_line(event, columns, pricing))
                count += 1
                if event.id == last:
                    break
    if not count:
        click.echo("no events match", err=True)


def _fields(query: EventQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in (
        "kinds", "node_id", "task_id", "directive_id", "correlation_id", "genome_id", "suggestion_id", "since")}


# -- trials ------------------------------------------------------------------------------------

@ledger_group.command("trials")
@ledger_option
@click.option("--controller", "controller", metavar="ID", help="Only this controller's trials.")
@click.option("--trial", "trial_id", metavar="ID", help="Only this trial (any unique part of its id).")
@click.option("--limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep the N most recently updated trials (0: all).")
@output_option
def trials_cmd(ledger_url: str | None, controller: str | None, trial_id: str | None, limit: int,
               output: str) -> None:
    """Trial records, most recently updated first."""
    location = ledger_location(ledger_url)
    with read_ledger(ledger_url) as ledger:
        controllers = list(dict.fromkeys(r.controller_node_id for r in ledger.trial_records()))
        if controllers:
            controller = ids.resolve(ledger, "node", controller, location, within=controllers)
        trial_id = ids.resolve(ledger, "trial", trial_id, location)
        records = ledger.trial_records(controller, None if trial_id else limit or None)
        if trial_id is not None:
            records = [r for r in records if r.trial_id == trial_id]
        if output == "text":
            trials = ids.short_ids(ledger, "trial", (r.trial_id for r in records))
            genomes = ids.short_ids(ledger, "genome", (g for r in records for g in (r.base_genome_id,
                                                                                   r.candidate_genome_id)))
    if output != "text":
        emit_json([codec.to_wire(r) for r in records], lines=output == "jsonl")
        return
    if not records:
        click.echo("no trials" if trial_id is None and controller is None else "no trials match", err=True)
    for r in records:
        click.echo(f"{codec.format_timestamp(r.updated_at):<27}  {r.controller_node_id:<18}  "
                   f"{r.status.storage_key:<9}  {genomes(r.base_genome_id)} -> {genomes(r.candidate_genome_id)}  "
                   f"tasks {r.routed_tasks}  tokens {r.consumed_tokens}  score {r.total_score:+.3f}  "
                   f"trial {trials(r.trial_id)}")


# -- genomes -----------------------------------------------------------------------------------

@ledger_group.command("genomes")
@ledger_option
@click.option("--genome", "genome_id", metavar="ID", help="Only this snapshot (any unique part of its id).")
@click.option("--full", is_flag=True, help="Include each snapshot's whole genome (json/jsonl).")
@output_option
def genomes_cmd(ledger_url: str | None, genome_id: str | None, full: bool, output: str) -> None:
    """Genome snapshots (newest first) and every controller's champion pointer."""
    with read_ledger(ledger_url) as ledger:
        genome_id = ids.resolve(ledger, "genome", genome_id, ledger_location(ledger_url))
        snapshots = [s for s in ledger.genome_snapshots() if genome_id is None or s.genome_id == genome_id]
        champions = ledger.champion_genome_ids()
        short = ids.short_ids(ledger, "genome", [*champions.values(), *(s.genome_id for s in snapshots)])
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
            click.echo(f"  {controller:<22}  {short(genome_id)}{'  (no snapshot)' if controller in dangling else ''}")
        click.echo("snapshots:" if rows else "snapshots: none")
        width = max((len(short(r["genome_id"])) for r in rows), default=0)
        for r in rows:
            champ = f"  champion of {', '.join(r['champion_of'])}" if r["champion_of"] else ""
            click.echo(f"  {r['saved_at']:<27}  {r['role']:<10}  {short(r['genome_id']):<{width}}  "
                       f"{r['nodes']} nodes{champ}")


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
