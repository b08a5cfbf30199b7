"""Candidate scoring, environment pressure and Pareto selection (reference §3.14.3 step 4-6, §3.14.5-6)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from attrs import evolve
from hypothesis import given
from hypothesis import strategies as st

from vsm_actors.core.evolution.replay import CandidateReplaySummary
from vsm_actors.core.evolution.selection import (
    CandidateEvaluation, EnvironmentPressure, apply_environment_pressure, archive_records, dominates, exposure_cost,
    node_cost, pareto_frontier, patch_complexity_cost, score_queued_candidate, select_candidate, winner_metadata,
)
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.channel import ChannelConfig, VsmChannelType
from vsm_actors.core.model.genes import RoutingRule
from vsm_actors.core.model.node import (
    NodeLifecycleStatus, PermissionSpec, PromptComponent, PromptGenome, PromptSection, ToolSpec, ViableNode,
)
from vsm_actors.core.model.patch import (
    AddChannel, AddChild, AddPromptComponent, AddRoutingRule, AddTool, Batch, PromoteLeafToMetasystem, RemoveChannel,
    RemovePromptComponent, RemoveRoutingRule, RemoveSubtree, RemoveTool, SetNodeStatus,
)
from vsm_actors.core.model.records import (
    CandidateObjectiveSnapshot, PopulationArchiveStatus, StoredTrialRecord, StoredTrialStatus,
)
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialMode, TrialSafetyLimits
from vsm_actors.core.model.variants import Other

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
AUDIT = GeneSuggestionSourceKind.System3StarAudit
# the reviewer preset, as the System 3* audit builds it (reference §3.13)
REVIEW_LEAF = ViableNode.leaf("review-probation-leaf", "review-probation-leaf", LeafOperationSpec.reviewer(),
                              status=NodeLifecycleStatus.Probation)
ADD_REVIEWER = AddChild(parent_id="root", child=REVIEW_LEAF)
WORKED_LIMITS = TrialSafetyLimits(max_tasks=10, max_traffic_share_basis_points=10_000)


def suggestion(sid: str = "sugg-1", *, source=AUDIT, mode=TrialMode.Canary, patch=ADD_REVIEWER, evidence=(),
               limits=WORKED_LIMITS) -> GeneSuggestion:
    return GeneSuggestion(id=sid, suggested_by_node_id="root", target_node_id="root", source=source, patch=patch,
                          evidence=evidence, hypothesis="h", trial_mode=mode, safety_limits=limits)


def record(s: GeneSuggestion | None = None, *, started_at=T0, **changes) -> StoredTrialRecord:
    s = s or suggestion()
    return StoredTrialRecord.queued("root", "g1", f"cand-{s.id}", s, started_at, **changes)


def score(s: GeneSuggestion | None = None, history=(), replay=None, **changes) -> CandidateEvaluation:
    return score_queued_candidate(record(s, **changes), list(history), replay)


# -- the scalar score ----------------------------------------------------------------------------

def test_worked_example():
    """Canary, System3StarAudit, max_tasks 10, bp 10,000, AddChild of a default reviewer leaf."""
    e = score()
    assert e.score == 54.0
    assert e.reasons == ("source=system3_star_audit:+24.0", "mode=canary:+20.0", "max_tasks=10:+8.0",
                         "traffic_share_basis_points=10000:+2.0")
    assert e.objectives == CandidateObjectiveSnapshot(expected_value=24, safety=30, historical_fit=0, replay_fit=0,
                                                      complexity_cost=11, exposure_cost=120)


@pytest.mark.parametrize(("source", "reason"), [
    (GeneSuggestionSourceKind.AlgedonicSignal, "source=algedonic_signal:+30.0"),
    (GeneSuggestionSourceKind.System4FutureProbe, "source=system4_future_probe:+18.0"),
    (GeneSuggestionSourceKind.System1ResourceBargain, "source=system1_resource_bargain:+14.0"),
    (GeneSuggestionSourceKind.System2CoordinationSignal, "source=system2_coordination_signal:+10.0"),
    (Other("system3_evolution_generation"), "source=other:system3_evolution_generation:+5.0"),
])
def test_source_terms(source, reason):
    assert score(suggestion(source=source)).reasons[0] == reason


@pytest.mark.parametrize(("mode", "reason"), [
    (TrialMode.Shadow, "mode=shadow:+25.0"), (TrialMode.Probation, "mode=probation:+15.0"),
    (TrialMode.Direct, "mode=direct:+5.0"),
])
def test_mode_terms(mode, reason):
    assert score(suggestion(mode=mode)).reasons[1] == reason


def test_limit_terms():
    limits = TrialSafetyLimits(requires_approval=True, allowed_task_classes=("a", "b"), max_tasks=50,
                               max_token_budget=100_000, max_files_touched=3, max_traffic_share_basis_points=1_000)
    e = score(suggestion(evidence=tuple("e" * 12), limits=limits))
    assert e.reasons[2:] == ("evidence_count=12:+20.0", "requires_approval:+5.0", "allowed_task_classes=2:+5.0",
                             "max_tasks=50:+4.0", "max_token_budget=100000:+4.0", "max_files_touched=3:+4.0",
                             "traffic_share_basis_points=1000:+10.0")
    assert e.score == 24 + 20 + 20 + 5 + 5 + 4 + 4 + 4 + 10
    assert e.objectives.expected_value == 24 + 20
    assert e.objectives.safety == 20 + 10 + 6 + 5 + 4 + 4 + 18
    assert e.objectives.exposure_cost == 10.0


@pytest.mark.parametrize(("max_tasks", "bp", "tasks_term", "share_term"), [
    (10, 2_500, 8.0, 6.0), (11, 2_501, 4.0, 2.0), (51, 10_001, 1.0, 0.0),
])
def test_thresholds(max_tasks, bp, tasks_term, share_term):
    e = score(suggestion(limits=TrialSafetyLimits(max_tasks=max_tasks, max_traffic_share_basis_points=bp)))
    assert e.score == 24 + 20 + tasks_term + share_term
    assert (f"traffic_share_basis_points={bp}:+0.0" in e.reasons) is False   # zero deltas are skipped


def test_unbounded_direct_penalty():
    e = score(suggestion(mode=TrialMode.Direct, limits=TrialSafetyLimits()))
    assert e.reasons == ("source=system3_star_audit:+24.0", "mode=direct:+5.0", "unbounded_direct_penalty:-20.0")
    assert (e.score, e.objectives.safety, e.objectives.exposure_cost) == (9.0, -25.0, 140.0)


def test_metadata_priority_and_penalty():
    e = score(metadata={"selection_priority": "3", "selection_penalty": "1.5"})
    assert e.reasons[-2:] == ("metadata_selection_priority=3:+3.0", "metadata_selection_penalty=1.5:-1.5")
    assert e.score == 54 + 3 - 1.5
    assert score(metadata={"selection_priority": "high", "selection_penalty": " 2"}).score == 54


def finished(sid: str, *, total: float, traces: int, status=StoredTrialStatus.Pruned, **kw) -> StoredTrialRecord:
    return evolve(record(suggestion(sid, **kw)), status=status, total_score=total, trace_count=traces)


def test_history_terms():
    history = [
        finished("h-1", total=12.0, traces=2),                                             # all three alike
        finished("h-2", total=-8.0, traces=4, mode=TrialMode.Probation, status=StoredTrialStatus.Promoted),
        finished("h-3", total=100.0, traces=1, status=StoredTrialStatus.Rejected),          # not counted
        finished("h-4", total=100.0, traces=0),                                             # no evidence
    ]
    e = score(history=history)
    assert e.reasons[4:] == ("history_same_source_avg=2.000_n=2:+2.0", "history_same_mode_avg=6.000_n=1:+4.5",
                             "history_same_patch_avg=2.000_n=2:+2.5")
    assert e.objectives.historical_fit == 2.0 + 4.5 + 2.5
    assert e.objectives.expected_value == 24 + 9.0
    assert e.score == 54 + 9.0


def test_history_average_is_clamped():
    e = score(history=[finished("h-1", total=90.0, traces=3, status=StoredTrialStatus.Archived)])
    assert e.objectives.historical_fit == 20 * 1.0 + 20 * 0.75 + 20 * 1.25


def test_replay_term_only_when_routes_are_impacted():
    quiet = CandidateReplaySummary(trace_count=5, estimated_delta_score=30.0)
    assert score(replay=quiet).score == 54
    loud = CandidateReplaySummary(affected_route_count=2, estimated_delta_score=50.0, replay_score=50.0)
    e = score(replay=loud)
    assert e.reasons[-1] == "historical_replay_score=50.000_affected_routes=2_candidate_no_route=0:+40.0"
    assert (e.score, e.objectives.replay_fit, e.objectives.expected_value) == (94.0, 50.0 + 2, 24 + 52.0)
    unroutable = CandidateReplaySummary(candidate_no_route_count=1, estimated_delta_score=-50.0)
    e = score(replay=unroutable)
    assert (e.score, e.objectives.replay_fit) == (34.0, -40.0)


# -- costs ---------------------------------------------------------------------------------------

def test_node_cost_counts_tools_prompt_permissions_and_children():
    node = ViableNode.leaf("n", "n", LeafOperationSpec.coding(), tools=(ToolSpec(name="a"), ToolSpec(name="b")),
                           prompt=PromptGenome(behavior_rules=(PromptComponent(id="r", text="x"),),
                                               output_contract=PromptComponent(id="o", text="y")),
                           permissions=PermissionSpec(allowed_paths=("src",), denied_tools=("rm",),
                                                      denied_paths=("x",)))
    assert node_cost(node) == 1 + 4 + 2 + 1.5
    assert node_cost(REVIEW_LEAF) == 1


def test_patch_complexity_costs():
    component = PromptComponent(id="p", text="x" * 750)
    channel = ChannelConfig(id="c", channel_type=VsmChannelType.Audit, from_="root", to="coder")
    costs = [
        (PromoteLeafToMetasystem(node_id="n", extracted_child_name="x"), 15), (RemoveSubtree(node_id="n"), 4),
        (AddChannel(channel=channel), 6), (RemoveChannel(channel_id="c"), 2),
        (AddPromptComponent(node_id="n", section=PromptSection.DomainHints, component=component), 2 + 750 / 500),
        (RemovePromptComponent(node_id="n", component_id="p"), 1),
        (AddTool(node_id="n", tool=ToolSpec(name="t", permissions=("read", "write"))), 4 + 2),
        (RemoveTool(node_id="n", tool_name="t"), 1),
        (SetNodeStatus(node_id="n", status=NodeLifecycleStatus.Retired), 1),
        (AddRoutingRule(rule=RoutingRule(id="r", node_id="root", target_child="c")), 3),
        (RemoveRoutingRule(rule_id="r"), 1),
        (Batch(patches=(ADD_REVIEWER, RemoveSubtree(node_id="n"))), 11 + 4 + 2),
    ]
    assert [(type(p).__name__, patch_complexity_cost(p)) for p, _ in costs] == [
        (type(p).__name__, c) for p, c in costs]


@pytest.mark.parametrize(("mode", "limits", "cost"), [
    (TrialMode.Shadow, TrialSafetyLimits(), 0 + 20 + 10),
    (TrialMode.Canary, TrialSafetyLimits(max_traffic_share_basis_points=250, max_tasks=5, max_token_budget=9,
                                         requires_approval=True), 2.5),
    (TrialMode.Probation, TrialSafetyLimits(max_tasks=5, max_token_budget=9), 100 + 10),
    (TrialMode.Direct, TrialSafetyLimits(max_traffic_share_basis_points=10, requires_approval=True), 100 + 20 + 10),
])
def test_exposure_cost(mode, limits, cost):
    assert exposure_cost(suggestion(mode=mode, limits=limits)) == cost


# -- environment pressure ------------------------------------------------------------------------

class TestEnvironmentPressure:
    def test_no_events_no_bonus(self):
        e = score()
        assert apply_environment_pressure(e, EnvironmentPressure(0, risk=50), suggestion()) == e

    def test_risk_weighted_by_the_candidates_source(self):
        """§3.12 worked example: risk 12 from one homeostat signal; an audit candidate weighs risk 0.85."""
        e = apply_environment_pressure(score(), EnvironmentPressure(1, risk=12.0), suggestion())
        assert e.objectives.expected_value == pytest.approx(24 + 12 * 0.8 * 0.85)
        assert e.objectives.safety == pytest.approx(30 + 3.6)
        assert e.score == pytest.approx(54 + 8.16 + 3.6)
        assert e.reasons[-2:] == ("environment_risk_pressure=12.000", "environment_bounded_safety_bonus=3.600")

    def test_caps(self):
        s = suggestion(source=GeneSuggestionSourceKind.AlgedonicSignal)
        e = apply_environment_pressure(score(s), EnvironmentPressure(3, 100.0, 100.0, 100.0), s)
        # risk 100·0.8·1.0 → cap 18; opportunity 100·0.9·0.15 = 13.5; feedback → cap 8; safety → cap 8
        assert e.score == pytest.approx(score(s).score + 18 + 13.5 + 8 + 8)

    def test_opportunity_and_feedback(self):
        s = suggestion(source=GeneSuggestionSourceKind.System4FutureProbe)
        e = apply_environment_pressure(score(s), EnvironmentPressure(2, opportunity=10.0, feedback=5.0), s)
        assert e.score == pytest.approx(score(s).score + 9.0 + 5 * 0.4 * 0.25)
        assert e.objectives.safety == score(s).objectives.safety           # no risk: no safety bonus
        assert e.reasons[-2:] == ("environment_opportunity_pressure=10.000", "environment_feedback_pressure=5.000")

    def test_unbounded_candidates_get_no_safety_bonus(self):
        s = suggestion(mode=TrialMode.Direct, limits=TrialSafetyLimits())
        e = apply_environment_pressure(score(s), EnvironmentPressure(1, risk=10.0), s)
        assert e.objectives.safety == score(s).objectives.safety

    def test_a_number_is_the_same_pressure_for_every_source(self):
        assert EnvironmentPressure(1, risk=2).risk == dict.fromkeys(
            ("algedonic", "audit", "resource_bargain", "system2", "future_probe", "other"), 2.0)

    def test_pressure_is_read_under_the_candidates_own_source(self):
        only_probes = EnvironmentPressure(1, risk={"future_probe": 10.0})
        audit = apply_environment_pressure(score(), only_probes, suggestion())
        assert audit == score()
        probe = suggestion(source=GeneSuggestionSourceKind.System4FutureProbe)
        assert apply_environment_pressure(score(probe), only_probes, probe).score == pytest.approx(
            score(probe).score + 10 * 0.8 * 0.25 + 3.0)


# -- dominance, frontier, selection --------------------------------------------------------------

def evaluation(tid: str, score_: float = 0.0, **objectives) -> CandidateEvaluation:
    return CandidateEvaluation(trial_id=tid, score=score_, objectives=CandidateObjectiveSnapshot(**objectives))


def test_dominance():
    base = CandidateObjectiveSnapshot(expected_value=10, safety=10, complexity_cost=5, exposure_cost=5)
    assert dominates(evolve(base, safety=11), base) and not dominates(base, evolve(base, safety=11))
    assert dominates(evolve(base, complexity_cost=4), base)          # costs: smaller is better
    assert not dominates(base, base)                                  # no strict improvement
    assert not dominates(evolve(base, safety=11, exposure_cost=6), base)
    assert dominates(evaluation("a", expected_value=1), evaluation("b"))


def test_frontier_ordering_and_statuses():
    cheap = (record(suggestion("c-cheap")), evaluation("c-cheap", 50, complexity_cost=1))
    rich_old = (record(suggestion("b-rich-old")), evaluation("b-rich-old", 60, expected_value=9, complexity_cost=5))
    rich_new = (record(suggestion("a-rich-new"), started_at=T0 + timedelta(seconds=1)),
                evaluation("a-rich-new", 60, expected_value=9, complexity_cost=5))
    twin = (record(suggestion("a-twin")), evaluation("a-twin", 60, expected_value=9, complexity_cost=5))
    dominated = (record(suggestion("d")), evaluation("d", 99, expected_value=1, complexity_cost=5))
    evaluated = [cheap, rich_old, dominated, rich_new, twin]
    assert pareto_frontier([e for _, e in evaluated]) == (0, 1, 3, 4)
    selection = select_candidate(evaluated)
    # score first (the dominated 99 never competes), then older started_at, then smaller id
    assert selection.frontier_ids == ("a-twin", "b-rich-old", "a-rich-new", "c-cheap")
    assert selection.winner == twin
    assert selection.statuses == {
        "a-twin": PopulationArchiveStatus.SelectedForTrial, "b-rich-old": PopulationArchiveStatus.ParetoFrontier,
        "a-rich-new": PopulationArchiveStatus.ParetoFrontier, "c-cheap": PopulationArchiveStatus.ParetoFrontier,
        "d": PopulationArchiveStatus.Dominated}


def test_nothing_to_select():
    assert select_candidate([]) is None


def test_archive_records_and_winner_metadata():
    s1 = suggestion("sugg-1")
    s2 = suggestion("sugg-2", mode=TrialMode.Direct, source=Other("x"), limits=TrialSafetyLimits())
    evaluated = [(record(s1), score(s1)), (record(s2), score(s2))]
    selection = select_candidate(evaluated)
    replay_meta = {"sugg-1": {"offline_replay_version": "route_counterfactual_v2", "replay_score": "0.000"}}
    pressure = EnvironmentPressure(1, risk=2.0, max_severity=4, reasons=("environment_signal a",))
    archive = archive_records(selection, evaluated, replay_meta, T0, pressure=pressure)
    assert [(a.trial_id, a.status) for a in archive] == [
        ("sugg-1", PopulationArchiveStatus.SelectedForTrial), ("sugg-2", PopulationArchiveStatus.Dominated)]
    first, second = archive
    assert (first.selection_policy, first.selection_score, first.pareto_frontier_size, first.archived_at) == (
        "pareto_empirical_candidate_score_v1", 54.0, 1, T0)
    assert first.objectives == evaluated[0][1].objectives
    assert first.metadata["selection_reasons"] == "|".join(evaluated[0][1].reasons)
    assert (first.metadata["trial_mode"], first.metadata["suggestion_source"]) == ("Canary", "System3StarAudit")
    assert second.metadata["suggestion_source"] == 'Other("x")' and "replay_score" not in second.metadata
    assert first.metadata["environment_risk_pressure"] == "2.000"
    assert first.metadata["environment_pressure_reasons"] == "environment_signal a"
    meta = winner_metadata(selection, replay_meta["sugg-1"])
    assert meta == {
        "selection_policy": "pareto_empirical_candidate_score_v1", "selection_score": "54.000",
        "selection_reasons": "source=system3_star_audit:+24.0|mode=canary:+20.0|max_tasks=10:+8.0"
                             "|traffic_share_basis_points=10000:+2.0",
        "pareto_frontier_size": "1",
        "candidate_objectives": "expected_value=24.000;safety=30.000;historical_fit=0.000;replay_fit=0.000;"
                                "complexity_cost=11.000;exposure_cost=120.000",
        "offline_replay_version": "route_counterfactual_v2", "replay_score": "0.000"}


_objective = st.integers(min_value=-3, max_value=3).map(float)
_snapshots = st.builds(CandidateObjectiveSnapshot, expected_value=_objective, safety=_objective,
                       historical_fit=_objective, replay_fit=_objective, complexity_cost=_objective,
                       exposure_cost=_objective)


@given(st.lists(st.tuples(_snapshots, st.integers(-5, 5)), min_size=1, max_size=12))
def test_frontier_is_never_empty_and_never_dominated(candidates):
    evaluated = [(record(suggestion(f"t-{i}"), started_at=T0 + timedelta(seconds=i % 3)),
                  CandidateEvaluation(trial_id=f"t-{i}", score=float(points), objectives=objectives))
                 for i, (objectives, points) in enumerate(candidates)]
    evaluations = [e for _, e in evaluated]
    frontier = pareto_frontier(evaluations)
    assert frontier
    for i in frontier:
        assert not any(dominates(other, evaluations[i]) for other in evaluations)
    for i in set(range(len(evaluations))) - set(frontier):
        assert any(dominates(evaluations[j], evaluations[i]) for j in frontier)
    selection = select_candidate(evaluated)
    assert selection.winner[0].trial_id == selection.frontier_ids[0]
    assert len(selection.statuses) == len(evaluated)
    assert max(evaluations[i].score for i in frontier) == selection.winner[1].score
