"""Choosing the next trial (replay, Pareto selection, archive) and planning a generation.

Activation follows the reference's `start_next_queued_trial`: candidates whose base is no longer
the champion are rejected first, the rest are replayed against the champion's recent traces,
scored, put on a Pareto frontier, and the best frontier member starts; every evaluated candidate
gets a population-archive record (kept current when its trial ends, controller._finish).
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import evolve

from ..model.events import LedgerEventKind
from ..model.records import EvolutionGenerationRecord, StoredTrialRecord
from .candidates import ChampionWrite
from ..control.environment import PressureSummary, summarize_pressure
from .controller import NOTHING, Ctx, Effects, EvolutionState, StartCandidate, _event, _trial_event, queue_candidate
from .generation import plan_generation, suggestion_operator
from .operators import ALL_OPERATORS
from .replay import replay_candidate, replay_metadata
from .selection import (
    EnvironmentPressure, apply_environment_pressure, archive_records, score_queued_candidate, select_candidate,
    winner_metadata,
)
from .fitness import score_trace
from .trials import APPROVED_BY, UNROUTED_BASELINE, ActiveTrial, candidate_only_nodes, task_class_of_trace

REPLAY_TRACES = 200


def pressure_from(summary: PressureSummary) -> EnvironmentPressure:
    """The reference's source-agnostic summary: the same pressure for every candidate source."""
    return EnvironmentPressure(event_count=summary.event_count, risk=summary.risk_pressure,
                               opportunity=summary.opportunity_pressure, feedback=summary.feedback_pressure,
                               max_severity=summary.max_severity, homeostat_count=summary.homeostat_count,
                               reasons=summary.reasons)


def start_next_trial(state: EvolutionState, ctx: Ctx, *, pressure: EnvironmentPressure | None = None,
                     auto_approve: str | None = None) -> tuple[EvolutionState, Effects]:
    if state.active is not None or state.frozen_reason is not None or not state.queued:
        return state, NOTHING
    champion, now = state.champion, ctx.now()
    environment = summarize_pressure(state.environment)
    if pressure is None and environment.event_count:
        pressure = pressure_from(environment)
    events, records, completed = [], [], list(state.completed)
    evaluated, replays = [], {}
    replay_set = [t for t in state.observed if t.genome_id == champion.id][-REPLAY_TRACES:]
    keep = []
    for record in state.queued:
        candidate = state.candidates.get(record.trial_id)
        reason = None
        if record.base_genome_id != champion.id:
            reason = f"base genome superseded by current champion {champion.id}"
        elif candidate is None:
            reason = f"candidate genome snapshot missing: {record.candidate_genome_id}"
        if reason is not None:
            rejected = record.mark_rejected(reason, now)
            completed.append(rejected)
            records.append(rejected)
            events.append(_trial_event(ctx, state, LedgerEventKind.TrialRejected, rejected, reason=reason))
            continue
        summary = replay_candidate(champion, candidate, state.controller_id, record, replay_set, ctx.weights)
        evaluation = score_queued_candidate(record, state.completed, summary)
        if pressure is not None:
            evaluation = apply_environment_pressure(evaluation, pressure, record.suggestion)
        replays[record.trial_id] = replay_metadata(summary)
        evaluated.append((record, evaluation))
        keep.append(record)
    state = evolve(state, queued=tuple(keep), completed=tuple(completed[-200:]),
                   candidates={k: v for k, v in state.candidates.items() if any(r.trial_id == k for r in keep)})
    selection = select_candidate(evaluated)
    if selection is None:
        return state, Effects(events=tuple(events), records=tuple(records))
    archive = archive_records(selection, evaluated, replays, now)
    winner = selection.winner[0]
    meta = {**winner.metadata, **winner_metadata(selection, replays.get(winner.trial_id, {}))}
    if auto_approve and winner.suggestion.safety_limits.requires_approval:
        meta[APPROVED_BY] = auto_approve
    meta.update(environment.metadata())
    active = evolve(winner.mark_active(now), metadata=meta)
    candidate = state.candidates[winner.trial_id]
    # what the champion did with this kind of work before the trial: its traces, and a failure for
    # each task it could not route at all (otherwise a trial that takes all of a class has nothing
    # of the champion's on that class to be compared with)
    baseline = tuple((task_class_of_trace(t), score_trace(t, ctx.weights), t.token_total()) for t in replay_set
                     if not t.related_suggestion_ids) + tuple(
        (f.task_class, UNROUTED_BASELINE, None) for f in state.routing_failures)
    trial = ActiveTrial(record=active, candidate=candidate, baseline=baseline[-1000:])
    state = evolve(state, active=trial, queued=tuple(r for r in state.queued if r.trial_id != winner.trial_id),
                   candidates={k: v for k, v in state.candidates.items() if k != winner.trial_id},
                   archive=(*state.archive, *archive)[-500:])
    started = _trial_event(ctx, state, LedgerEventKind.TrialStarted, active, selection_policy=meta.get("selection_policy", ""),
                           selection_score=meta.get("selection_score", ""), candidate_objectives=meta.get("candidate_objectives", ""),
                           pareto_frontier_size=len(selection.frontier_ids), evaluated=len(evaluated),
                           patch=ctx.to_json(active.suggestion.patch), environment_pressure=environment.to_json())
    nodes = candidate_only_nodes(champion, candidate)
    return state, Effects(events=(*events, started), records=(*records, ChampionWrite(genome=champion), *archive, active),
                          structure=(StartCandidate(trial_id=active.trial_id, candidate=candidate, nodes=nodes),))


def run_generation(state: EvolutionState, ctx: Ctx, operators: Sequence | None = None) -> tuple[EvolutionState, Effects]:
    """One deterministic generation: offspring become queued candidates, then the record."""
    generation = state.generation + 1
    kwargs = {"operators": operators if operators is not None else ALL_OPERATORS}
    plan = plan_generation(
        controller_node_id=state.controller_id, champion=state.champion, policy=ctx.policy,
        completed=state.completed, archive=state.archive, queued_count=len(state.queued),
        recent_traces=[t for t in state.observed if t.genome_id == state.champion.id][-max(ctx.policy.recent_trace_limit, 1):],
        generation=generation, now=ctx.now(), new_id=ctx.new_id, **kwargs)
    if plan is None:
        return state, NOTHING
    effects = NOTHING
    queued_ids = []
    for suggestion in plan.offspring:
        created = _event(ctx, state, LedgerEventKind.GeneSuggestionCreated, ctx.to_json(suggestion),
                         suggestion_id=suggestion.id,
                         metadata={"source_channel": "Audit", "source_payload_type": "vsm.evolution_generation"})
        before = len(state.queued)
        state, more = queue_candidate(state, suggestion, ctx, metadata={
            "evolution_generation": str(generation), "evolution_policy": ctx.policy.name,
            "evolution_operator": suggestion_operator(suggestion)})
        if len(state.queued) > before:
            queued_ids.append(suggestion.id)
        effects += Effects(events=(created,)) + more
    record: EvolutionGenerationRecord = plan.record
    state = evolve(state, generation=generation)
    event = _event(ctx, state, LedgerEventKind.EvolutionGenerationCreated, ctx.to_json(record),
                   metadata={"generation": str(generation), "offspring": str(len(plan.offspring)),
                             "queued": str(len(queued_ids))})
    return state, effects + Effects(events=(event,), records=(record,))


def trial_records(state: EvolutionState) -> tuple[StoredTrialRecord, ...]:
    return state.records
