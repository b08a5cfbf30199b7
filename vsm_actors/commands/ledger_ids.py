"""Ids in `vsm ledger` commands: what a filter value names, and what a view shortens against.

A filter value (`--directive`, `--task`, `--node`, `--event`, `--trace`, `--trial`,
`--genome`, `--correlation`) is an exact id, or any part of one (the short id a text view
printed, a suffix, a node name's word): it must name exactly one id of that kind in the ledger.
Several is bad input (exit 2) listing them; none is bad input (exit 2) saying so. A value that
resolves but leaves nothing to show is not an error: the command says "no ... match" on stderr
and exits 0.

Text views shorten each id column over the ids shown together with every id of that kind the
ledger holds (`short_ids`), so a printed id names one record in the whole ledger, not just on
the screen. Event ids are the exception: they are shortened over the events shown (a ledger has
millions), so `--event` resolves among the events the command's other filters select.

On SQLite and PostgreSQL the candidates come from one DISTINCT query over an indexed column;
other ledgers are scanned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import peewee as pw

from ..core.model.events import EventKind, LedgerEventKind, TraceWindow, kind_from_storage_key, kind_storage_key
from ..core.model.variants import Other
from ..ledger import EventQuery, Ledger, PeeweeLedger, describe_ledger
from ..ledger.query import kind_key
from ..views.short_ids import ShortIds, matching, shorten
from .common import BadInput

# what -> (event column, plural for messages)
EVENT_COLUMNS = {"directive": "directive_id", "task": "task_id", "node": "node_id", "genome": "genome_id",
                 "correlation": "correlation_id", "event": "id"}
PLURAL = {"directive": "directives", "task": "tasks", "node": "nodes", "genome": "genomes",
          "correlation": "correlation ids", "event": "events", "trace": "traces", "trial": "trials"}
SHOW_CANDIDATES = 12


def _contains(ledger: PeeweeLedger, field: pw.Field, value: str) -> pw.Expression:
    finder = pw.fn.instr if ledger.target.engine == "sqlite" else pw.fn.strpos
    return finder(pw.fn.lower(field), value.lower()) > 0


def _distinct(ledger: PeeweeLedger, field: pw.Field, contains: str | None) -> list[str]:
    query = field.model.select(field).where(field.is_null(False)).distinct()
    if contains is not None:
        query = query.where(_contains(ledger, field, contains))
    return ledger._read("listing ids", lambda: [row[0] for row in query.tuples()])


def event_column(ledger: Ledger, column: str, contains: str | None = None) -> list[str]:
    """Distinct values of an event column (optionally only those containing `contains`)."""
    if isinstance(ledger, PeeweeLedger):
        return _distinct(ledger, getattr(ledger.m.Event, column), contains)
    values = dict.fromkeys(getattr(e, column) for e in ledger.events(EventQuery()))
    return [v for v in values if v and (contains is None or contains.lower() in v.lower())]


def candidates(ledger: Ledger, what: str, contains: str | None = None) -> list[str]:
    """Every id of kind `what` the ledger holds (containing `contains`, when given)."""
    def keep(values: Iterable[str | None]) -> list[str]:
        return [v for v in dict.fromkeys(values) if v and (contains is None or contains.lower() in v.lower())]

    if what == "trace":
        if isinstance(ledger, PeeweeLedger):
            return _distinct(ledger, ledger.m.Trace.id, contains)
        return keep(t.id for t in ledger.recent_task_traces(TraceWindow(limit=None)))
    if what == "trial":
        return keep(r.trial_id for r in ledger.trial_records())
    found = event_column(ledger, EVENT_COLUMNS[what], contains)
    if what == "node":
        found += keep(n for s in ledger.genome_snapshots() for n in s.genome.nodes)
    elif what == "genome":
        found += keep(s.genome_id for s in ledger.genome_snapshots())
        found += keep(g for r in ledger.trial_records() for g in (r.base_genome_id, r.candidate_genome_id))
    return list(dict.fromkeys(found))


def _describe(location: str) -> str:
    return describe_ledger(location)  # never a password


def resolve(ledger: Ledger, what: str, value: str | None, location: str, *,
            within: Sequence[str] | None = None) -> str | None:
    """The one full id of kind `what` that `value` names (None passes through). `within`
    restricts the candidates (for `--event`: the events the other filters select)."""
    if value is None:
        return None
    pool = candidates(ledger, what, contains=value) if within is None else [
        c for c in within if value.lower() in c.lower()]
    found = matching(value, pool)
    option = f"--{what}"
    if len(found) == 1:
        return found[0]
    if not found:
        raise BadInput(f"{option} {value}: no {what} in {_describe(location)} matches {value!r}")
    listed = "\n".join(f"  {c}" for c in found[:SHOW_CANDIDATES])
    more = f"\n  ... and {len(found) - SHOW_CANDIDATES} more" if len(found) > SHOW_CANDIDATES else ""
    raise BadInput(f"{option} {value}: matches {len(found)} {PLURAL[what]} in {_describe(location)}; "
                   f"give more of the id:\n{listed}{more}")


def short_ids(ledger: Ledger | None, what: str, shown: Iterable[str | None]) -> ShortIds:
    """The window for a column of `what` ids: over the ids shown and, for every kind but
    events, every id of that kind in the ledger."""
    ids = list(shown)
    if ledger is not None and what != "event":
        ids += candidates(ledger, what)
    return shorten(ids)


# -- kinds -----------------------------------------------------------------------------------------

def recorded_kinds(ledger: Ledger) -> list[str]:
    """Storage keys of every kind the ledger holds."""
    if isinstance(ledger, PeeweeLedger):
        return sorted(_distinct(ledger, ledger.m.Event.kind, None))
    return sorted({e.storage_key for e in ledger.events(EventQuery())})


def _display(key: str) -> str:
    return key.removeprefix("other:")


# open kinds the runtime itself records: a filter for one of them is valid on any ledger
RUNTIME_KINDS = frozenset(Other(name) for name in (
    "directive_completed", "directive_failed", "organization_started", "organization_stopped",
    "run_interrupted", "node_restarted", "node_hung", "node_restart_intensity_exceeded",
    "ledger_writer_restarted", "ledger_record_rejected", "result_without_directive",
    "future_probe_environment_signal", "algedonic_subtree_paused", "algedonic_subtree_resumed"))


def parse_kinds(ledger: Ledger, texts: Sequence[str]) -> tuple[EventKind, ...]:
    """`--kind` values as kinds: a named kind (`task_routed`, `TaskRouted`), an open kind the
    runtime writes (`RUNTIME_KINDS`) or one the ledger has recorded. Anything else is bad input listing the valid
    kinds."""
    out: list[EventKind] = []
    recorded: list[str] | None = None
    for text in texts:
        kind = kind_from_storage_key(kind_key(text.strip()))
        if isinstance(kind, LedgerEventKind):
            out.append(kind)
            continue
        if kind in RUNTIME_KINDS or ledger.events(EventQuery(kinds=(kind,), limit=1)):
            out.append(kind)  # one the runtime writes is valid before it has happened
            continue
        if recorded is None:
            recorded = recorded_kinds(ledger)
        named = [kind_storage_key(k) for k in LedgerEventKind]
        opened = sorted({_display(k) for k in recorded if k.startswith("other:")})
        hint = f"\nopen kinds recorded in this ledger: {', '.join(opened)}" if opened else ""
        raise BadInput(f"--kind {text}: unknown event kind; valid kinds: {', '.join(named)}{hint}")
    return tuple(out)

