"""Queued-candidate selection `pareto_empirical_candidate_score_v1` (reference §3.14.5-§3.14.6).

Every queued candidate gets a scalar score and six objectives. The objectives decide which
candidates survive (the Pareto frontier: nobody else is at least as good on all six and better on
one); the scalar only orders the survivors, so a candidate cannot buy its way past a safer, simpler
rival with one large bonus. Environment pressure is added before the frontier is taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from attrs import evolve, field, frozen

from ..model.records import (
    CandidateObjectiveSnapshot, PopulationArchiveRecord, PopulationArchiveStatus, StoredTrialRecord, StoredTrialStatus,
)
from ..model.suggestion import GeneSuggestion, GeneSuggestionSource, GeneSuggestionSourceKind, TrialMode
from ..model.variants import Other, debug_name
from .costs import exposure_cost, node_cost, patch_complexity_cost, patch_kind_key  # noqa: F401 - re-exported
from .replay import CandidateReplaySummary

SELECTION_POLICY = "pareto_empirical_candidate_score_v1"

_SOURCE_SCORES = {
    GeneSuggestionSourceKind.AlgedonicSignal: ("algedonic_signal", 30.0),
    GeneSuggestionSourceKind.System3StarAudit: ("system3_star_audit", 24.0),
    GeneSuggestionSourceKind.System4FutureProbe: ("system4_future_probe", 18.0),
    GeneSuggestionSourceKind.System1ResourceBargain: ("system1_resource_bargain", 14.0),
    GeneSuggestionSourceKind.System2CoordinationSignal: ("system2_coordination_signal", 10.0),
}
_OTHER_SOURCE_SCORE = 5.0
_MODE_SCORES = {TrialMode.Shadow: 25.0, TrialMode.Canary: 20.0, TrialMode.Probation: 15.0, TrialMode.Direct: 5.0}
_HISTORY_STATUSES = frozenset({StoredTrialStatus.Promoted, StoredTrialStatus.Pruned, StoredTrialStatus.Archived})

@frozen(kw_only=True)
class CandidateEvaluation:
    trial_id: str
    score: float
    reasons: tuple[str, ...] = ()
    objectives: CandidateObjectiveSnapshot = CandidateObjectiveSnapshot()


# -- keys and costs ------------------------------------------------------------------------------

def source_key(source: GeneSuggestionSource) -> str:
    if isinstance(source, Other):
        return f"other:{source.value}"
    return _SOURCE_SCORES[GeneSuggestionSourceKind(source)][0]


def _source_score(source: GeneSuggestionSource) -> float:
    return _OTHER_SOURCE_SCORE if isinstance(source, Other) else _SOURCE_SCORES[GeneSuggestionSourceKind(source)][1]



def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _parse_metadata_float(text: str | None) -> float | None:
    if text is None or text != text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def rust_display(value: float) -> str:
    """A float as Rust's `{}` prints it: shortest round-trip digits, never an exponent, no `.0`."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _bounded_tasks_score(max_tasks: int, small: float, medium: float) -> float:
    return small if max_tasks <= 10 else medium if max_tasks <= 50 else 1.0


def _is_unbounded_direct(suggestion: GeneSuggestion) -> bool:
    limits = suggestion.safety_limits
    return (suggestion.trial_mode is TrialMode.Direct and not limits.requires_approval and limits.max_tasks is None
            and limits.max_traffic_share_basis_points is None)


def _suggestion_terms(record: StoredTrialRecord) -> list[tuple[str, float]]:
    s, limits = record.suggestion, record.suggestion.safety_limits
    terms = [(f"source={source_key(s.source)}", _source_score(s.source)),
             (f"mode={s.trial_mode.value.lower()}", _MODE_SCORES[s.trial_mode]),
             (f"evidence_count={len(s.evidence)}", 2.0 * min(len(s.evidence), 10))]
    if limits.requires_approval:
        terms.append(("requires_approval", 5.0))
    if limits.allowed_task_classes:
        terms.append((f"allowed_task_classes={len(limits.allowed_task_classes)}", 5.0))
    if limits.max_tasks is not None:
        terms.append((f"max_tasks={limits.max_tasks}", _bounded_tasks_score(limits.max_tasks, 8.0, 4.0)))
    if limits.max_token_budget is not None:
        terms.append((f"max_token_budget={limits.max_token_budget}", 4.0))
    if limits.max_files_touched is not None:
        terms.append((f"max_files_touched={limits.max_files_touched}", 4.0))
    bp = limits.max_traffic_share_basis_points
    if bp is not None:
        terms.append((f"traffic_share_basis_points={bp}",
                      10.0 if bp <= 1_000 else 6.0 if bp <= 2_500 else 2.0 if bp <= 10_000 else 0.0))
    if _is_unbounded_direct(s):
        terms.append(("unbounded_direct_penalty", -20.0))
    for key, sign in (("selection_priority", 1.0), ("selection_penalty", -1.0)):
        value = _parse_metadata_float(record.metadata.get(key))
        if value is not None:
            terms.append((f"metadata_{key}={rust_display(value)}", sign * value))
    return terms


def _history_terms(suggestion: GeneSuggestion, history: Sequence[StoredTrialRecord]) -> list[tuple[str, float]]:
    """How trials like this one (same source / mode / patch kind) actually scored per trace."""
    finished = [h for h in history if h.status in _HISTORY_STATUSES and h.trace_count > 0]
    key, kind = source_key(suggestion.source), patch_kind_key(suggestion.patch)
    terms = []
    for label, weight, alike in (
            ("history_same_source", 1.0, lambda h: source_key(h.suggestion.source) == key),
            ("history_same_mode", 0.75, lambda h: h.suggestion.trial_mode == suggestion.trial_mode),
            ("history_same_patch", 1.25, lambda h: patch_kind_key(h.suggestion.patch) == kind)):
        realized = [h.total_score / h.trace_count for h in finished if alike(h)]
        if realized:
            average = sum(realized) / len(realized)
            terms.append((f"{label}_avg={average:.3f}_n={len(realized)}", _clamp(average, -20.0, 20.0) * weight))
    return terms


def _safety(suggestion: GeneSuggestion) -> float:
    limits = suggestion.safety_limits
    safety = _MODE_SCORES[suggestion.trial_mode]
    safety += 10.0 if limits.requires_approval else 0.0
    safety += 6.0 if limits.allowed_task_classes else 0.0
    if limits.max_tasks is not None:
        safety += _bounded_tasks_score(limits.max_tasks, 10.0, 5.0)
    safety += 4.0 if limits.max_token_budget is not None else 0.0
    safety += 4.0 if limits.max_files_touched is not None else 0.0
    bp = limits.max_traffic_share_basis_points
    if bp is not None:
        safety += (10_000 - min(bp, 10_000)) / 500
    return safety - (30.0 if _is_unbounded_direct(suggestion) else 0.0)


def score_queued_candidate(record: StoredTrialRecord, history: Sequence[StoredTrialRecord],
                           replay: CandidateReplaySummary | None) -> CandidateEvaluation:
    """Scalar score and objectives of one queued candidate, before environment pressure.

    `history` is the controller's completed trials; only Promoted/Pruned/Archived ones with traces
    count. The replay label shows the replay's own estimate, the `:+x.x` suffix its clamped share.
    """
    s = record.suggestion
    history_terms = _history_terms(s, history)
    terms = _suggestion_terms(record) + history_terms
    replay_fit = 0.0
    if replay is not None and (replay.affected_route_count > 0 or replay.candidate_no_route_count > 0):
        terms.append((f"historical_replay_score={replay.estimated_delta_score:.3f}"
                      f"_affected_routes={replay.affected_route_count}"
                      f"_candidate_no_route={replay.candidate_no_route_count}",
                      _clamp(replay.estimated_delta_score, -20.0, 40.0)))
        replay_fit = _clamp(replay.estimated_delta_score, -40.0, 60.0) + replay.affected_route_count
    historical_fit = sum((delta for _, delta in history_terms), 0.0)
    objectives = CandidateObjectiveSnapshot(
        expected_value=_source_score(s.source) + 2.0 * min(len(s.evidence), 10) + historical_fit + replay_fit,
        safety=_safety(s), historical_fit=historical_fit, replay_fit=replay_fit,
        complexity_cost=patch_complexity_cost(s.patch), exposure_cost=exposure_cost(s),
    )
    return CandidateEvaluation(
        trial_id=record.trial_id, score=sum((delta for _, delta in terms), 0.0),
        reasons=tuple(f"{label}:{delta:+.1f}" for label, delta in terms if delta != 0.0), objectives=objectives,
    )


# -- environment pressure ------------------------------------------------------------------------

PRESSURE_SOURCES = ("algedonic", "audit", "resource_bargain", "system2", "future_probe", "other")
_PRESSURE_SOURCE = {
    GeneSuggestionSourceKind.AlgedonicSignal: "algedonic", GeneSuggestionSourceKind.System3StarAudit: "audit",
    GeneSuggestionSourceKind.System1ResourceBargain: "resource_bargain",
    GeneSuggestionSourceKind.System2CoordinationSignal: "system2",
    GeneSuggestionSourceKind.System4FutureProbe: "future_probe",
}
# (kind, scale, cap, weight by candidate source)
_PRESSURE_BONUSES = (
    ("risk", 0.8, 18.0, {"algedonic": 1.0, "audit": 0.85, "resource_bargain": 0.65, "system2": 0.50,
                         "future_probe": 0.25, "other": 0.20}),
    ("opportunity", 0.9, 16.0, {"future_probe": 1.0, "audit": 0.35, "system2": 0.30, "resource_bargain": 0.25,
                                "other": 0.50, "algedonic": 0.15}),
    ("feedback", 0.4, 8.0, {"resource_bargain": 0.75, "audit": 0.50, "system2": 0.40, "future_probe": 0.25,
                            "algedonic": 0.25, "other": 0.25}),
)


def pressure_source(source: GeneSuggestionSource) -> str:
    """The pressure key a suggestion source answers to (`other` for every `Other(..)`)."""
    return "other" if isinstance(source, Other) else _PRESSURE_SOURCE[GeneSuggestionSourceKind(source)]


def _per_source(pressure: float | Mapping[str, float]) -> dict[str, float]:
    # a bare number is the reference's source-agnostic total: the same pressure for every source
    if isinstance(pressure, (int, float)):
        return dict.fromkeys(PRESSURE_SOURCES, float(pressure))
    return dict(pressure)


@frozen
class EnvironmentPressure:
    """Recent environment pressure (§3.12), as it bears on candidates of each suggestion source.

    The reference summarises pressure as one number per kind, whatever the candidate; what varies
    by source is only the *weight* of that pressure (§3.14.6), chosen by the candidate's own
    source. So each map here holds, under a source key, the pressure a candidate of that source
    faces, and the bonus is `min(pressure[key] × scale × weight[key], cap)` with the same key on
    both sides; pressures are never summed across sources. Passing a number instead of a map gives
    the reference's case (that number under every key); a missing key means no pressure.
    """

    event_count: int = 0
    risk: dict[str, float] = field(factory=dict, converter=_per_source)
    opportunity: dict[str, float] = field(factory=dict, converter=_per_source)
    feedback: dict[str, float] = field(factory=dict, converter=_per_source)
    max_severity: int = 0
    homeostat_count: int = 0
    reasons: tuple[str, ...] = ()

    def for_source(self, key: str) -> tuple[float, float, float]:
        """(risk, opportunity, feedback) a candidate of source `key` faces."""
        return self.risk.get(key, 0.0), self.opportunity.get(key, 0.0), self.feedback.get(key, 0.0)


def _is_bounded(suggestion: GeneSuggestion) -> bool:
    limits = suggestion.safety_limits
    return (limits.requires_approval or limits.max_tasks is not None or limits.max_token_budget is not None
            or limits.max_traffic_share_basis_points is not None or suggestion.trial_mode is TrialMode.Shadow)


def apply_environment_pressure(evaluation: CandidateEvaluation, pressure: EnvironmentPressure,
                               suggestion: GeneSuggestion) -> CandidateEvaluation:
    """Add the pressure bonuses (expected value and score) and, under risk, the bounded-safety bonus.

    Nothing without at least one event. Reasons carry the pressure (or the safety bonus), with no
    `:+x.x` suffix.
    """
    if pressure.event_count < 1:
        return evaluation
    key = pressure_source(suggestion.source)
    o = evaluation.objectives
    score, expected, safety, reasons = evaluation.score, o.expected_value, o.safety, list(evaluation.reasons)
    for (kind, scale, cap, weights), value in zip(_PRESSURE_BONUSES, pressure.for_source(key)):
        bonus = min(value * scale * weights[key], cap)
        if bonus > 0:
            score, expected = score + bonus, expected + bonus
            reasons.append(f"environment_{kind}_pressure={value:.3f}")
    risk = pressure.risk.get(key, 0.0)
    if risk > 0 and _is_bounded(suggestion):
        bonus = min(0.3 * risk, 8.0)
        score, safety = score + bonus, safety + bonus
        reasons.append(f"environment_bounded_safety_bonus={bonus:.3f}")
    return evolve(evaluation, score=score, reasons=tuple(reasons),
                  objectives=evolve(o, expected_value=expected, safety=safety))


def pressure_metadata(pressure: EnvironmentPressure, suggestion: GeneSuggestion) -> dict[str, str]:
    """The `environment_*` metadata keys (§3.12), with the pressures this candidate faced."""
    risk, opportunity, feedback = pressure.for_source(pressure_source(suggestion.source))
    meta = {"environment_signal_count": str(pressure.event_count), "environment_risk_pressure": f"{risk:.3f}",
            "environment_opportunity_pressure": f"{opportunity:.3f}",
            "environment_feedback_pressure": f"{feedback:.3f}",
            "environment_max_severity": str(pressure.max_severity),
            "three_four_homeostat_count": str(pressure.homeostat_count)}
    if pressure.reasons:
        meta["environment_pressure_reasons"] = "|".join(pressure.reasons)
    return meta


# -- the frontier and the winner -----------------------------------------------------------------

def _objectives(x: CandidateEvaluation | CandidateObjectiveSnapshot) -> CandidateObjectiveSnapshot:
    return x.objectives if isinstance(x, CandidateEvaluation) else x


def dominates(a: CandidateEvaluation | CandidateObjectiveSnapshot,
              b: CandidateEvaluation | CandidateObjectiveSnapshot) -> bool:
    """A is no worse on every objective and strictly better on at least one."""
    a, b = _objectives(a), _objectives(b)
    gains = ((a.expected_value, b.expected_value), (a.safety, b.safety), (a.historical_fit, b.historical_fit),
             (a.replay_fit, b.replay_fit), (b.complexity_cost, a.complexity_cost), (b.exposure_cost, a.exposure_cost))
    return all(x >= y for x, y in gains) and any(x > y for x, y in gains)


def pareto_frontier(evaluations: Sequence[CandidateEvaluation | CandidateObjectiveSnapshot]) -> tuple[int, ...]:
    """Indices (input order) of the evaluations no other evaluation dominates; candidates with
    identical objectives do not dominate each other, so both stay."""
    return tuple(i for i, e in enumerate(evaluations)
                 if not any(dominates(other, e) for j, other in enumerate(evaluations) if j != i))


@frozen(kw_only=True)
class Selection:
    winner: tuple[StoredTrialRecord, CandidateEvaluation]
    frontier_ids: tuple[str, ...]            # selection order: the winner first
    statuses: dict[str, PopulationArchiveStatus]

    @property
    def frontier_size(self) -> int:
        return len(self.frontier_ids)


def select_candidate(evaluated: Sequence[tuple[StoredTrialRecord, CandidateEvaluation]]) -> Selection | None:
    """The frontier ordered by score (higher first), then older `started_at`, then smaller trial id."""
    if not evaluated:
        return None
    frontier = sorted((evaluated[i] for i in pareto_frontier([e for _, e in evaluated])),
                      key=lambda pair: (-pair[1].score, pair[0].started_at, pair[0].trial_id))
    winner = frontier[0]
    members = {record.trial_id for record, _ in frontier}
    statuses = {record.trial_id: PopulationArchiveStatus.ParetoFrontier if record.trial_id in members
                else PopulationArchiveStatus.Dominated for record, _ in evaluated}
    statuses[winner[0].trial_id] = PopulationArchiveStatus.SelectedForTrial
    return Selection(winner=winner, frontier_ids=tuple(record.trial_id for record, _ in frontier), statuses=statuses)


def objectives_text(o: CandidateObjectiveSnapshot) -> str:
    return (f"expected_value={o.expected_value:.3f};safety={o.safety:.3f};historical_fit={o.historical_fit:.3f};"
            f"replay_fit={o.replay_fit:.3f};complexity_cost={o.complexity_cost:.3f};"
            f"exposure_cost={o.exposure_cost:.3f}")


def archive_records(selection: Selection, evaluated: Sequence[tuple[StoredTrialRecord, CandidateEvaluation]],
                    replay_meta_by_trial: Mapping[str, Mapping[str, str]], now: datetime, *,
                    pressure: EnvironmentPressure | None = None) -> list[PopulationArchiveRecord]:
    """One population-archive record per evaluated candidate, in `evaluated` order."""
    out = []
    for record, evaluation in evaluated:
        s = record.suggestion
        meta = {"selection_reasons": "|".join(evaluation.reasons), "trial_mode": debug_name(s.trial_mode),
                "suggestion_source": debug_name(s.source),
                **(pressure_metadata(pressure, s) if pressure is not None else {}),
                **replay_meta_by_trial.get(record.trial_id, {})}
        out.append(PopulationArchiveRecord.for_trial(
            record, selection.statuses[record.trial_id], selection_policy=SELECTION_POLICY,
            selection_score=evaluation.score, pareto_frontier_size=selection.frontier_size, now=now,
            objectives=evaluation.objectives, metadata=meta))
    return out


def winner_metadata(selection: Selection, replay_meta: Mapping[str, str], *,
                    pressure: EnvironmentPressure | None = None) -> dict[str, str]:
    """Keys annotating the selected trial's record (§3.14.3 step 6)."""
    record, evaluation = selection.winner
    return {"selection_policy": SELECTION_POLICY, "selection_score": f"{evaluation.score:.3f}",
            "selection_reasons": "|".join(evaluation.reasons), "pareto_frontier_size": str(selection.frontier_size),
            "candidate_objectives": objectives_text(evaluation.objectives),
            **(pressure_metadata(pressure, record.suggestion) if pressure is not None else {}),
            **replay_meta}
