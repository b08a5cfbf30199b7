"""Read back what an evolving metasystem needs after a restart (core.evolution.restore)."""

from __future__ import annotations

from datetime import timedelta

from ..core.evolution.controller import WINDOW
from ..core.evolution.restore import StoredEvolution
from ..core.model.events import LedgerEventKind, TraceWindow
from ..core.control.budgets import MARK_EVENTS
from ..core.control.commands import COMMAND_EVENT, RELAY_EVENT
from ..core.control.coordination import SIGNAL_EVENT, WINDOW as COORDINATION_WINDOW
from ..core.control.environment import PRESSURE_EVENTS, PRESSURE_WINDOW
from ..core.control.probes import WINDOW_EVENT
from ..core.model.variants import Other
from .base import Ledger
from .query import EventQuery

PRESSURE_KINDS = tuple(Other(name) for name in sorted(PRESSURE_EVENTS))
PAUSE_KINDS = (Other("algedonic_subtree_paused"), Other("algedonic_subtree_resumed"))
# what else a metasystem folds at boot (core.control.coordination, core.control.commands)
COORDINATION_KINDS = (Other(SIGNAL_EVENT),)
POLICY_KINDS = (Other(COMMAND_EVENT), Other(RELAY_EVENT))
# a node's budget account (core.control.budgets): its marks, and the spending of the epoch
BUDGET_MARK_KINDS = tuple(Other(name) for name in MARK_EVENTS)
BUDGET_KINDS = (*BUDGET_MARK_KINDS, LedgerEventKind.TaskResultReceived, LedgerEventKind.TraceWritten)
# System 4 probes (core.control.probes): each probe's latest closed window is its baseline
PROBE_KINDS = (Other(WINDOW_EVENT),)
PROBE_WINDOWS = 20


def load_evolution(ledger: Ledger, controller_id: str) -> StoredEvolution:
    active = ledger.get_active_trial_record(controller_id)
    active_candidate = None
    if active is not None:
        snapshot = ledger.get_genome_snapshot(active.candidate_genome_id)
        active_candidate = snapshot.genome if snapshot is not None else None
    queued = tuple(ledger.queued_trial_records(controller_id, limit=50))
    candidates = {}
    for record in queued:
        snapshot = ledger.get_genome_snapshot(record.candidate_genome_id)
        if snapshot is not None:
            candidates[record.trial_id] = snapshot.genome
    latest = ledger.latest_evolution_generation_record(controller_id)
    return StoredEvolution(
        active=active, active_candidate=active_candidate, queued=queued, candidates=candidates,
        completed=tuple(reversed(ledger.completed_trial_records(controller_id, limit=200))),
        archive=tuple(reversed(ledger.population_archive_records(controller_id, limit=500))),
        generation=latest.generation if latest is not None else 0,
        observed=tuple(ledger.subtree_task_traces(controller_id, TraceWindow(limit=WINDOW))),
        environment=tuple(ledger.events(EventQuery(node_id=controller_id, kinds=PRESSURE_KINDS, limit=PRESSURE_WINDOW))),
    )


def load_pauses(ledger: Ledger, metasystems) -> dict:
    """Each metasystem's latest algedonic pause and resume events, oldest first (its pause state),
    followed by its latest System 2 signals and every command and System 5 relay it recorded
    (the states of coordination_shell), then the events of its latest budget epoch (the
    supervisor passes every node, leaves too, when the genome declares budgets), then its System
    4 probes' latest closed windows; each fold skips the others' events."""
    out = {}
    for node_id in metasystems:
        events = (*ledger.events(EventQuery(node_id=node_id, kinds=PAUSE_KINDS, limit=500)),
                  *ledger.events(EventQuery(node_id=node_id, kinds=COORDINATION_KINDS, limit=COORDINATION_WINDOW)),
                  *ledger.events(EventQuery(node_id=node_id, kinds=POLICY_KINDS)), *load_budget(ledger, node_id),
                  *ledger.events(EventQuery(node_id=node_id, kinds=PROBE_KINDS, limit=PROBE_WINDOWS)))
        if events:
            out[node_id] = events
    return out


def load_budget(ledger: Ledger, node_id: str) -> tuple:
    """The node's events since the start of the hour before its latest budget mark (a result
    that comes back after the hour turned still counts in it; older epochs are history the fold
    skips): what `Book.fold` rebuilds the account from. Nothing when it never kept one."""
    latest = ledger.events(EventQuery(node_id=node_id, kinds=BUDGET_MARK_KINDS, limit=1))
    if not latest:
        return ()
    since = latest[-1].created_at.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return tuple(ledger.events(EventQuery(node_id=node_id, kinds=BUDGET_KINDS, since=since)))
