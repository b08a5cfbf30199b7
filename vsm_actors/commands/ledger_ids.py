"""Ids in `vsm ledger` commands: what a filter value names, and what a view shortens against.

A filter value (`--directive`, `--task`, `--node`, `--event`, `--trace`, `--trial`,
`--genome`, `--correlation`) is an exact id, or any part of one (the short id a text view
printed, a suffix, a node name's word): it must name exactly one id of that kind in the ledger.
Several is bad input (exit 2) listing them; none is bad input (exit 2) saying so. A value that
resolves but leaves nothing to show is not an error: the command says "no ... match" on stderr
and exits 0.

Directives, tasks, correlation ids and traces are named by the recency rule
(`views/short_ids.py` says why): the exact id; else, of the ids containing the value, the one
first recorded last, unless another of them was also recorded in the near window before that
first record (`ledger_id_order`: the 2,000 events, or 1,000 traces, before it), which makes the
value ambiguous. A view shortens these columns over the ids shown, every id recorded from the
near window before the oldest of them on, and a sample of the older ones, at a width the
ledger's count of such ids calls for (`window_basis`); so a printed id is contained in no id
recorded since that window opened but its own, and the rule picks it whatever older ids contain
it. All through indexes: the cost follows how far back the ids shown lie, not the ledger's size.

Nodes, genomes and trials (few, and mostly names) keep the whole-ledger rule: shortened over
every id of the kind, resolved among every id containing the value; so do traces on ledgers that
are not SQL (whose event columns are scanned into a `ScannedOrder`). Event ids are shortened
over the events shown (a ledger has millions), so `--event` resolves among the events the
command's other filters select.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import peewee as pw

from ..core.model.events import EventKind, LedgerEventKind, TraceWindow, kind_from_storage_key, kind_storage_key
from ..core.model.variants import Other
from ..ledger import EventQuery, Ledger, PeeweeLedger, describe_ledger
from ..ledger.query import kind_key
from ..views.short_ids import MIN_LENGTH, ShortIds, is_opaque, matching, shorten, width_for
from .common import BadInput
from . import ledger_id_order as order_of

# what -> (event column, plural for messages)
EVENT_COLUMNS = {"directive": "directive_id", "task": "task_id", "node": "node_id", "genome": "genome_id",
                 "correlation": "correlation_id", "event": "id"}
PLURAL = {"directive": "directives", "task": "tasks", "node": "nodes", "genome": "genomes",
          "correlation": "correlation ids", "event": "events", "trace": "traces", "trial": "trials"}
SHOW_CANDIDATES = 12
RECENT_COLUMNS = ("directive", "task", "correlation")  # event columns named by the recency rule (and traces)


def _distinct(ledger: PeeweeLedger, field: pw.Field, contains: str | None) -> list[str]:
    query = field.model.select(field).where(field.is_null(False)).distinct()
    if contains is not None:
        query = query.where(order_of.contains(ledger, field, contains))
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


def record_order(ledger: Ledger | None, what: str) -> order_of.Order | None:
    """The recorded order of kind `what`, for the kinds the recency rule names (None: the
    whole-ledger rule)."""
    if what == "trace" and isinstance(ledger, PeeweeLedger):
        return order_of.TraceOrder(ledger)
    if what not in RECENT_COLUMNS or ledger is None:
        return None
    if isinstance(ledger, PeeweeLedger):
        return order_of.EventColumnOrder(ledger, EVENT_COLUMNS[what])
    return order_of.ScannedOrder([getattr(e, EVENT_COLUMNS[what]) for e in ledger.events(EventQuery())])


def by_recency(order: order_of.Order, value: str) -> list[str]:
    """What `value` names by the recency rule: [the id], [] for nothing, or every id containing
    it when that is ambiguous."""
    if order.exists(value):
        return [value]
    needle = value.strip()
    if not needle:
        return []
    spans = order.recent_matches(needle)
    if not spans:
        return []
    newest = max(spans, key=lambda c: spans[c].key)
    opens = order.boundary(spans[newest].first)
    if all(span.last < opens for c, span in spans.items() if c != newest):
        return [newest]
    return order.all_matches(needle)  # ambiguous: list them all, old ones too


def _describe(location: str) -> str:
    return describe_ledger(location)  # never a password


def resolve(ledger: Ledger, what: str, value: str | None, location: str, *,
            within: Sequence[str] | None = None) -> str | None:
    """The one full id of kind `what` that `value` names (None passes through). `within`
    restricts the candidates (for `--event`: the events the other filters select)."""
    if value is None:
        return None
    order = record_order(ledger, what) if within is None else None
    if order is not None:
        found = by_recency(order, value)
    else:
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


def window_basis(ledger: Ledger | None, what: str, shown: Iterable[str | None], *,
                 to_end: bool = False) -> tuple[list[str], int]:
    """What a column of `what` ids is shortened over, and how wide its window is at least. The
    ids: those shown, and for the recency kinds every id recorded from the near window before
    the oldest of them on (with `to_end`, also before the ledger's newest record: a view that
    will show ids yet to come) plus a sample of the older ones; for the other kinds every id of
    that kind in the ledger; for events none but those shown. The width: `width_for` the number
    of ids of the kind the ledger holds (estimated from the near window's density)."""
    ids = list(dict.fromkeys(i for i in shown if i))
    if ledger is None or what == "event":
        return ids, MIN_LENGTH
    order = record_order(ledger, what)
    if order is None:
        return ids + candidates(ledger, what), MIN_LENGTH
    return basis_over(order, ids, to_end=to_end)


def basis_over(order: order_of.Order, ids: list[str], *, to_end: bool = False) -> tuple[list[str], int]:
    """`window_basis` for the ids shown of a kind recorded in `order`."""
    # names and short ids print whole and resolve as exact ids: only opaque ones need a window
    firsts = [s.first for s in order.spans(i for i in ids if is_opaque(i)).values()]
    if to_end:
        firsts.append(order.end())
    if not firsts:
        return ids, MIN_LENGTH
    since = order.boundary(min(firsts))
    near, low, end = order.near(since), order.low(), order.end()
    # the sample only widens the window, as reading every id would: see views/short_ids.py
    count = len(near) * (end - low) // max(1, end - since) if low is not None and low < since else len(near)
    return [*ids, *near, *order.sample(since, low)], width_for(count)


def short_ids(ledger: Ledger | None, what: str, shown: Iterable[str | None]) -> ShortIds:
    """The window for a column of `what` ids (`window_basis`)."""
    order = record_order(ledger, what)
    if order is None:
        return shorten(*window_basis(ledger, what, shown))
    return shorten_over(order, list(dict.fromkeys(i for i in shown if i)))


def shorten_over(order: order_of.Order, shown: list[str]) -> ShortIds:
    """`short_ids` for the ids `shown` of a kind recorded in `order`."""
    ids, width = basis_over(order, shown)
    basis = set(ids)
    while True:
        short = shorten(ids, width)
        # a fragment that is the whole id of an older record would name that record (an exact
        # id comes first): one indexed look-up, and such records join the basis (rarely any)
        taken = [i for i in order.spans({short(s) for s in shown} - basis) if i not in basis]
        if not taken:
            return short
        ids += taken
        basis.update(taken)


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

