"""One metasystem's evolution as a decider: a state folded from what it observed and recorded, and
functions `(state, input, ctx) -> (state, Effects)` that the node actor interprets.

The state holds the champion, the active trial, the queue, the completed trials, the archive and
a window of the subtree's traces; every change it makes comes back as Effects: ledger events,
records to store (trial records, archive records, generation records, snapshots, the champion),
and the structural changes the organization must make (spawn a candidate's nodes, stop them,
adopt a promoted patch). A simulation and a live organization run the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from attrs import evolve, field, frozen

from ..control.environment import PRESSURE_WINDOW, is_pressure_event
from ..model.events import LedgerEvent, LedgerEventKind, ToJson
from ..model.genes import TrialSettings
from ..model.genome import OrganizationalGenome
from ..model.ids import IdFactory
from ..model.patch import GenomePatch
from ..model.records import (
    EvolutionPolicy, PopulationArchiveRecord, PopulationArchiveStatus, StoredTrialDecision, StoredTrialRecord,
    StoredTrialStatus,
)
from ..model.suggestion import GeneSuggestion
from ..model.trace import TaskTrace
from ..model.variants import Other
from .audit import AuditInput, Auditor, RoutingFailure
from .candidates import (
    CandidateError, ChampionWrite, build_candidate, is_duplicate, queued_records, rebase, rejected_record,
)
from .fitness import DEFAULT_WEIGHTS, FitnessWeights, score_trace
from .trials import (
    APPROVED_BY, ActiveTrial, TrialDecision, TrialVerdict, candidate_only_nodes, evaluate_trial,
    record_baseline, record_trial_trace, task_class_of_trace, trial_metadata_from_verdict,
)

WINDOW = 500           # traces a metasystem keeps in mind (audit window, replay, generation)
FAILURE_WINDOW = 200   # routing failures likewise
BASELINE_WINDOW = 1000


@frozen(kw_only=True)
class Ctx:
    now: Callable[[], datetime]
    new_id: IdFactory
    to_json: ToJson
    settings: TrialSettings = TrialSettings()
    weights: FitnessWeights = DEFAULT_WEIGHTS
    policy: EvolutionPolicy = EvolutionPolicy()


@frozen(kw_only=True)
class StartCandidate:
    trial_id: str
    candidate: OrganizationalGenome
    nodes: tuple[str, ...]


@frozen(kw_only=True)
class EndCandidate:
    trial_id: str
    nodes: tuple[str, ...]


@frozen(kw_only=True)
class AdoptPatch:
    """Promotion: apply the trial's patch to the live champion (the organization's actors follow)."""

    trial_id: str
    patch: GenomePatch
    candidate: OrganizationalGenome
    nodes: tuple[str, ...]   # candidate-only nodes whose actors become the champion's


@frozen(kw_only=True)
class Effects:
    events: tuple[LedgerEvent, ...] = ()
    records: tuple[object, ...] = ()
    structure: tuple[object, ...] = ()   # StartCandidate / EndCandidate / AdoptPatch

    def __add__(self, other: Effects) -> Effects:
        if not (other.events or other.records or other.structure):
            return self
        if not (self.events or self.records or self.structure):
            return other
        return Effects(events=self.events + other.events, records=self.records + other.records,
                       structure=self.structure + other.structure)


NOTHING = Effects()


@frozen(kw_only=True)
class EvolutionState:
    controller_id: str
    champion: OrganizationalGenome
    active: ActiveTrial | None = None
    queued: tuple[StoredTrialRecord, ...] = ()
    candidates: dict[str, OrganizationalGenome] = field(factory=dict)   # queued trial id -> candidate
    completed: tuple[StoredTrialRecord, ...] = ()
    archive: tuple[PopulationArchiveRecord, ...] = ()
    generation: int = 0
    observed: tuple[TaskTrace, ...] = ()
    routing_failures: tuple[RoutingFailure, ...] = ()
    since_audit: int = 0
    frozen_reason: str | None = None
    environment: tuple[LedgerEvent, ...] = ()   # the latest pressure events at this node (selection)

    @property
    def records(self) -> tuple[StoredTrialRecord, ...]:
        active = (self.active.record,) if self.active else ()
        return (*self.queued, *active, *self.completed)


def _event(ctx: Ctx, state: EvolutionState, kind, payload, **links) -> LedgerEvent:
    return LedgerEvent(id=ctx.new_id(), kind=kind, created_at=ctx.now(), node_id=state.controller_id,
                       genome_id=links.pop("genome_id", state.champion.id), payload=payload, **links)


def _trial_event(ctx: Ctx, state: EvolutionState, kind, record: StoredTrialRecord, **extra) -> LedgerEvent:
    payload = {"trial_id": record.trial_id, "status": record.status.storage_key,
               "base_genome_id": record.base_genome_id, "candidate_genome_id": record.candidate_genome_id,
               "trial_mode": record.suggestion.trial_mode.value, "routed_tasks": record.routed_tasks,
               "trace_count": record.trace_count, "consumed_tokens": record.consumed_tokens,
               "total_score": record.total_score, **extra}
    return _event(ctx, state, kind, payload, suggestion_id=record.trial_id)


# -- observation ---------------------------------------------------------------------------------

def observe_trace(state: EvolutionState, trace: TaskTrace, ctx: Ctx) -> tuple[EvolutionState, Effects]:
    return observe_traces(state, (trace,), ctx)


def observe_traces(state: EvolutionState, traces: Sequence[TaskTrace], ctx: Ctx) -> tuple[EvolutionState, Effects]:
    """Traces from the subtree (one result's worth): into the window, and each into the active
    trial as candidate evidence (its own traces) or as the champion's outcome to compare with."""
    if not traces:
        return state, NOTHING
    observed = (*state.observed, *traces)[-WINDOW:] if len(state.observed) + len(traces) > WINDOW \
        else (*state.observed, *traces)
    state = evolve(state, observed=observed, since_audit=state.since_audit + len(traces))
    effects = NOTHING
    for trace in traces:
        if state.active is None:
            break
        state, more = _trial_observes(state, trace, ctx)
        effects += more
    return state, effects


def _trial_observes(state: EvolutionState, trace: TaskTrace, ctx: Ctx) -> tuple[EvolutionState, Effects]:
    trial = state.active
    if trial.trial_id in trace.related_suggestion_ids:
        trial = record_trial_trace(trial, trace, ctx.now(), ctx.weights)
        event = _trial_event(ctx, state, LedgerEventKind.TrialTraceRecorded, trial.record, trace_id=trace.id,
                             task_id=trace.task_id, score=score_trace(trace, ctx.weights))
        state = evolve(state, active=trial)
        state, effects = decide_trial(state, ctx)
        return state, Effects(events=(event,)) + effects
    if trace.genome_id == state.champion.id and not trace.related_suggestion_ids:
        baseline = trial.baseline[-(BASELINE_WINDOW - 1):]
        trial = record_baseline(evolve(trial, baseline=baseline), task_class_of_trace(trace),
                                score_trace(trace, ctx.weights), trace.token_total())
        state = evolve(state, active=trial)
    return decide_trial(state, ctx, time_only=True)


def observe_environment(state: EvolutionState, event: LedgerEvent) -> EvolutionState:
    """An environment or 3-4 homeostat event recorded at this node: pressure for the next selection."""
    if not is_pressure_event(event):
        return state
    return evolve(state, environment=(*state.environment[-(PRESSURE_WINDOW - 1):], event))


def observe_routing_failure(state: EvolutionState, failure: RoutingFailure) -> EvolutionState:
    failures = (*state.routing_failures[-(FAILURE_WINDOW - 1):], failure)
    trial = state.active
    if trial is not None:  # the champion could not serve this work at all: worth a failure
        from .trials import UNROUTED_BASELINE
        trial = record_baseline(trial, failure.task_class, UNROUTED_BASELINE)
    return evolve(state, routing_failures=failures, since_audit=state.since_audit + 1, active=trial)


def routed_to_trial(state: EvolutionState, trial: ActiveTrial, ctx: Ctx, task_id: str, leaf_id: str) -> tuple[EvolutionState, Effects]:
    record = evolve(trial.record, routed_tasks=trial.record.routed_tasks + 1, updated_at=ctx.now())
    trial = evolve(trial, record=record)
    event = _trial_event(ctx, state, LedgerEventKind.TrialTaskRouted, record, task_id=task_id, leaf_id=leaf_id)
    return evolve(state, active=trial), Effects(events=(event,))


# -- audit and suggestions ---------------------------------------------------------------------

def run_audit(state: EvolutionState, auditor: Auditor, ctx: Ctx, policy=None,
              source_channel: str = "Audit") -> tuple[EvolutionState, Effects]:
    children = state.champion.node(state.controller_id).children
    started = _event(ctx, state, LedgerEventKind.AuditStarted, {"node_id": state.controller_id,
                                                                "child_count": len(children)})
    subtree = set(state.champion.subtree_ids(state.controller_id))
    traces = tuple(t for t in state.observed if t.assigned_node_id in subtree and t.genome_id == state.champion.id)
    outcome = auditor.audit(AuditInput(genome=state.champion, controller_node_id=state.controller_id, traces=traces,
                                       routing_failures=state.routing_failures, policy=policy), ctx.new_id)
    effects = Effects(events=(started,))
    state = evolve(state, since_audit=0)
    for reason in outcome.rejected:
        effects += Effects(events=(_event(ctx, state, Other("audit_suggestion_rejected"),
                                          {"node_id": state.controller_id, "reason": reason}),))
    for suggestion in outcome.suggestions:
        state, more = ingest_suggestion(state, suggestion, ctx, source_channel=source_channel)
        effects += more
    completed = _event(ctx, state, LedgerEventKind.AuditCompleted, ctx.to_json(outcome.report),
                       metadata={"suggestion_count": str(len(outcome.suggestions)), "source_channel": source_channel,
                                 "rejected_count": str(len(outcome.rejected))})
    return state, effects + Effects(events=(completed,))


def ingest_suggestion(state: EvolutionState, suggestion: GeneSuggestion, ctx: Ctx, *,
                      source_channel: str = "GeneSuggestion", payload_type: str = "vsm.gene_suggestion") -> tuple[EvolutionState, Effects]:
    """GeneSuggestionCreated, then a durable queued candidate (or a rejection, or nothing for a duplicate)."""
    if not any(e.startswith("source_channel=") for e in suggestion.evidence):
        suggestion = evolve(suggestion, evidence=(*suggestion.evidence, f"source_channel={source_channel}"))
    created = _event(ctx, state, LedgerEventKind.GeneSuggestionCreated, ctx.to_json(suggestion),
                     suggestion_id=suggestion.id,
                     metadata={"source_channel": source_channel, "source_payload_type": payload_type})
    state, effects = queue_candidate(state, suggestion, ctx)
    return state, Effects(events=(created,)) + effects


def queue_candidate(state: EvolutionState, suggestion: GeneSuggestion, ctx: Ctx,
                    metadata: dict[str, str] | None = None) -> tuple[EvolutionState, Effects]:
    champion = state.champion
    if is_duplicate(suggestion, champion.id, state.records):
        skipped = _event(ctx, state, Other("candidate_duplicate_skipped"), {"trial_id": suggestion.id},
                         suggestion_id=suggestion.id)
        return state, Effects(events=(skipped,))
    now = ctx.now()
    try:
        candidate = build_candidate(champion, suggestion, ctx.new_id())
    except CandidateError as exc:
        record = rejected_record(state.controller_id, champion, suggestion, str(exc), now)
        event = _trial_event(ctx, state, LedgerEventKind.TrialRejected, record, reason=str(exc))
        return evolve(state, completed=(*state.completed, record)), Effects(events=(event,), records=(record,))
    record, snapshot = queued_records(state.controller_id, champion, candidate, suggestion, now)
    if metadata:
        record = evolve(record, metadata={**record.metadata, **metadata})
    event = _trial_event(ctx, state, LedgerEventKind.TrialQueued, record)
    state = evolve(state, queued=(*state.queued, record), candidates={**state.candidates, record.trial_id: candidate})
    return state, Effects(events=(event,), records=(ChampionWrite(genome=champion), snapshot, record))


def approve(state: EvolutionState, trial_id: str, by: str, ctx: Ctx) -> tuple[EvolutionState, Effects]:
    """A person (or the simulation) approves a trial as a whole: its tasks need no per-task approval."""
    if state.active is not None and state.active.trial_id == trial_id:
        record = evolve(state.active.record, metadata={**state.active.record.metadata, APPROVED_BY: by},
                        updated_at=ctx.now())
        state = evolve(state, active=evolve(state.active, record=record))
    elif any(r.trial_id == trial_id for r in state.queued):
        queued = tuple(evolve(r, metadata={**r.metadata, APPROVED_BY: by}) if r.trial_id == trial_id else r
                       for r in state.queued)
        record = next(r for r in queued if r.trial_id == trial_id)
        state = evolve(state, queued=queued)
    else:
        return state, NOTHING
    event = _trial_event(ctx, state, Other("trial_approved"), record, approved_by=by)
    return state, Effects(events=(event,), records=(record,))


# -- decisions -----------------------------------------------------------------------------------

def decide_trial(state: EvolutionState, ctx: Ctx, *, time_only: bool = False,
                 force: bool = False) -> tuple[EvolutionState, Effects]:
    trial = state.active
    if trial is None:
        return state, NOTHING
    verdict = evaluate_trial(trial, state.champion, ctx.settings, ctx.now(), ctx.weights)
    if time_only and verdict.decision is TrialDecision.Continue:
        return state, NOTHING
    if time_only and verdict.trace_count and verdict.decision is not TrialDecision.Continue \
            and "limit" not in verdict.reason and "budget" not in verdict.reason:
        return state, NOTHING  # a champion trace alone decides only when a limit ran out
    if force and verdict.decision is TrialDecision.Continue:
        verdict = evolve(verdict, decision=TrialDecision.Promote if verdict.difference > 0 and verdict.trace_count
                         else TrialDecision.Prune, reason=f"forced: {verdict.reason}")
    if verdict.decision is TrialDecision.Promote:
        return promote(state, ctx, verdict)
    if verdict.decision is TrialDecision.Prune:
        return prune(state, ctx, verdict)
    return state, NOTHING


def _finish(state: EvolutionState, ctx: Ctx, status: StoredTrialStatus, decision: StoredTrialDecision | None,
            verdict: TrialVerdict | None, extra: dict[str, str]) -> tuple[EvolutionState, StoredTrialRecord, list]:
    trial = state.active
    now = ctx.now()
    meta = {**trial.record.metadata, **(trial_metadata_from_verdict(verdict) if verdict else {}), **extra}
    record = evolve(trial.record, status=status, decision=decision, updated_at=now, completed_at=now,
                    total_score=verdict.total_score if verdict else trial.record.total_score, metadata=meta)
    archive_status = {StoredTrialStatus.Promoted: PopulationArchiveStatus.Promoted,
                      StoredTrialStatus.Pruned: PopulationArchiveStatus.Pruned}.get(status, PopulationArchiveStatus.Archived)
    archive, records = [], [record]
    for entry in state.archive:
        if entry.trial_id == record.trial_id:
            entry = evolve(entry, status=archive_status, updated_at=now)
            records.append(entry)
        archive.append(entry)
    state = evolve(state, active=None, completed=(*state.completed[-199:], record), archive=tuple(archive[-500:]))
    return state, record, records


def promote(state: EvolutionState, ctx: Ctx, verdict: TrialVerdict | None = None) -> tuple[EvolutionState, Effects]:
    trial = state.active
    candidate = rebase(trial.record.suggestion.patch, state.champion, trial.record.suggestion, trial.candidate.id) \
        if trial.record.base_genome_id != state.champion.id else trial.candidate
    if candidate is None:
        return prune(state, ctx, verdict, reason="patch no longer applies to the current champion")
    nodes = candidate_only_nodes(state.champion, candidate)
    state, record, records = _finish(state, ctx, StoredTrialStatus.Promoted, StoredTrialDecision.Promote, verdict, {})
    decided = _trial_event(ctx, state, LedgerEventKind.TrialDecisionRecorded, record, decision="promote",
                           reason=verdict.reason if verdict else "promoted on request")
    promoted = _trial_event(ctx, state, LedgerEventKind.TrialPromoted, record, new_champion_genome_id=candidate.id)
    state = evolve(state, champion=candidate)
    return state, Effects(events=(decided, promoted), records=(*records, ChampionWrite(genome=candidate)),
                          structure=(AdoptPatch(trial_id=record.trial_id, patch=record.suggestion.patch,
                                                candidate=candidate, nodes=nodes),))


def prune(state: EvolutionState, ctx: Ctx, verdict: TrialVerdict | None = None,
          reason: str | None = None) -> tuple[EvolutionState, Effects]:
    trial = state.active
    nodes = candidate_only_nodes(state.champion, trial.candidate)
    extra = {"prune_reason": reason} if reason else {}
    state, record, records = _finish(state, ctx, StoredTrialStatus.Pruned, StoredTrialDecision.Prune, verdict, extra)
    why = reason or (verdict.reason if verdict else "pruned on request")
    decided = _trial_event(ctx, state, LedgerEventKind.TrialDecisionRecorded, record, decision="prune", reason=why)
    pruned = _trial_event(ctx, state, LedgerEventKind.TrialPruned, record, reason=why)
    return state, Effects(events=(decided, pruned), records=tuple(records),
                          structure=(EndCandidate(trial_id=record.trial_id, nodes=nodes),))


def freeze(state: EvolutionState, reason: str, ctx: Ctx) -> tuple[EvolutionState, Effects]:
    """The algedonic freeze: the active trial ends as frozen, and no new trial starts until thawed."""
    state = evolve(state, frozen_reason=reason)
    if state.active is None:
        return state, NOTHING
    nodes = candidate_only_nodes(state.champion, state.active.candidate)
    now = ctx.now()
    record = state.active.record.mark_frozen(reason, now)
    state = evolve(state, active=None, completed=(*state.completed[-199:], record))
    event = _trial_event(ctx, state, LedgerEventKind.TrialFrozen, record, reason=reason)
    return state, Effects(events=(event,), records=(record,),
                          structure=(EndCandidate(trial_id=record.trial_id, nodes=nodes),))


def thaw(state: EvolutionState) -> EvolutionState:
    return evolve(state, frozen_reason=None)


def champion_changed(state: EvolutionState, champion: OrganizationalGenome, ctx: Ctx) -> tuple[EvolutionState, Effects]:
    """Another metasystem's promotion (or a live patch) moved the champion: the active trial's
    candidate is the same patch on the new champion, or the trial ends when it no longer applies."""
    if champion.id == state.champion.id:
        return state, NOTHING
    state = evolve(state, champion=champion)
    trial = state.active
    if trial is None:
        return state, NOTHING
    candidate = rebase(trial.record.suggestion.patch, champion, trial.record.suggestion, trial.candidate.id)
    if candidate is None:
        return prune(state, ctx, reason="patch no longer applies to the current champion")
    return evolve(state, active=evolve(trial, candidate=candidate)), NOTHING


def trial_seq_key(record: StoredTrialRecord) -> tuple:
    return (record.started_at, record.trial_id)


def records_sorted(records: Sequence[StoredTrialRecord]) -> list[StoredTrialRecord]:
    return sorted(records, key=trial_seq_key)
