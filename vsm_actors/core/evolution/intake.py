"""Suggestions that arrive on channels rather than from this metasystem's own audit: an audit
report (from a child or an audit node, reference §3.13) and a 3-4 homeostat signal (§3.12), one
bounded suggestion per patch they carry. Like every suggestion they are queued, never applied."""

from __future__ import annotations

from ..model.events import LedgerEvent, LedgerEventKind
from ..model.ids import IdFactory
from ..model.payloads import ThreeFourHomeostatBalance, ThreeFourHomeostatSignal
from ..model.suggestion import (
    DEFAULT_FAILURE_METRICS, DEFAULT_SUCCESS_METRICS, DEFAULT_WINDOW_TASKS, GeneSuggestion, GeneSuggestionSourceKind, MeasurementPlan,
    TrialMode, TrialSafetyLimits,
)

from .audit import suggestions_from_report
from .controller import NOTHING, Ctx, Effects, EvolutionState, _event, ingest_suggestion, observe_environment


def _name(value) -> str:
    return str(getattr(value, "value", value))  # an enum member or an Other(..) kind


def suggestions_from_homeostat(signal: ThreeFourHomeostatSignal, source_channel: str, new_id: IdFactory,
                               correlation_id: str | None = None) -> tuple[GeneSuggestion, ...]:
    hypothesis = (f"Three-Four homeostat recommends a bounded adaptation: {signal.recommendation} "
                  f"Present: {signal.present_summary} Future: {signal.future_summary}")
    evidence = [f"source_channel={source_channel}", f"three_four_kind={_name(signal.kind)}",
                f"three_four_balance={_name(signal.balance)}"]
    if signal.severity is not None:
        evidence.append(f"severity={signal.severity}")
    if correlation_id:
        evidence.append(f"correlation_id={correlation_id}")
    if signal.present_summary:
        evidence.append(f"present_summary={signal.present_summary}")
    if signal.future_summary:
        evidence.append(f"future_summary={signal.future_summary}")
    evidence += [f"recommendation={signal.recommendation}", *signal.evidence]
    limits = TrialSafetyLimits(max_tasks=10, max_token_budget=100_000, max_traffic_share_basis_points=1_000,
                               requires_approval=(signal.severity or 1) >= 7
                               or signal.balance is ThreeFourHomeostatBalance.Conflict)
    plan = MeasurementPlan(window_tasks=DEFAULT_WINDOW_TASKS,
                           success_metrics=(*DEFAULT_SUCCESS_METRICS, "three_four_homeostat_expected_value"),
                           failure_metrics=(*DEFAULT_FAILURE_METRICS, "present_operational_regression"))
    return tuple(GeneSuggestion.new(signal.system_4_node_id, signal.target_node_id,
                                    GeneSuggestionSourceKind.System4FutureProbe, patch, hypothesis, new_id,
                                    evidence=tuple(evidence), trial_mode=TrialMode.Canary, safety_limits=limits,
                                    measurement_plan=plan)
                 for patch in signal.suggested_patches)


def ingest_audit_report(state: EvolutionState, report, ctx: Ctx, *, suggested_by: str, source_channel: str = "Audit",
                        correlation_id: str | None = None) -> tuple[EvolutionState, Effects]:
    """An audit report from a child or an audit node: AuditCompleted, then each patch as a queued candidate."""
    suggestions = suggestions_from_report(report, suggested_by, source_channel, ctx.new_id, correlation_id)
    completed = _event(ctx, state, LedgerEventKind.AuditCompleted, ctx.to_json(report), correlation_id=correlation_id,
                       metadata={"source_channel": source_channel, "suggestion_count": str(len(suggestions))})
    effects = Effects(events=(completed,))
    for suggestion in suggestions:
        state, more = ingest_suggestion(state, suggestion, ctx, source_channel=source_channel,
                                        payload_type="vsm.audit_report")
        effects += more
    return state, effects


def ingest_homeostat(state: EvolutionState, signal, event: LedgerEvent, ctx: Ctx, *, source_channel: str,
                     correlation_id: str | None = None) -> tuple[EvolutionState, Effects]:
    """A recorded 3-4 homeostat signal: pressure, and each patch it carries as a queued candidate."""
    state = observe_environment(state, event)
    effects = NOTHING
    for suggestion in suggestions_from_homeostat(signal, source_channel, ctx.new_id, correlation_id):
        state, more = ingest_suggestion(state, suggestion, ctx, source_channel=source_channel,
                                        payload_type="vsm.three_four_homeostat_signal")
        effects += more
    return state, effects
