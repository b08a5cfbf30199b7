"""Offline replay `route_counterfactual_v2` (reference §3.14.4) against hand-built traces."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from attrs import evolve

from vsm_actors.core.evolution.exposure import exposure_bucket
from vsm_actors.core.evolution.fitness import score_trace
from vsm_actors.core.evolution.replay import (
    MAX_REPLAY_TRACE_EVALUATIONS, OfflineReplayTraceStatus, affected_nodes, estimated_delta, replay_candidate,
    replay_metadata, replay_task_from_trace, trace_failed, trace_succeeded, unroutable_delta,
)
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.channel import ChannelConfig, VsmChannelType
from vsm_actors.core.model.genes import RoutingRule
from vsm_actors.core.model.genome import GenomeError, OrganizationalGenome
from vsm_actors.core.model.node import NodeLifecycleStatus, PromptComponent, PromptSection, ToolSpec, ViableNode
from vsm_actors.core.model.patch import (
    AddChannel, AddChild, AddPromptComponent, AddRoutingRule, AddTool, Batch, RemoveChannel, RemoveSubtree,
    SetNodeStatus, apply_patch,
)
from vsm_actors.core.model.records import StoredTrialRecord
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialMode, TrialSafetyLimits
from vsm_actors.core.model.task import RiskClass
from vsm_actors.core.model.trace import TaskTrace

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
REVIEWER = ViableNode.leaf("reviewer", "reviewer", LeafOperationSpec.reviewer())
EVERYTHING = TrialSafetyLimits(max_traffic_share_basis_points=10_000)


def champion(*coders: str) -> OrganizationalGenome:
    """g1: a root metasystem over coding leaves, in order."""
    g = OrganizationalGenome.with_root("g1", ViableNode.metasystem("root", "root"))
    for name in coders or ("coder",):
        g = g.add_child("root", ViableNode.leaf(name, name, LeafOperationSpec.coding()))
    return g


def trial(patch, base: OrganizationalGenome, *, mode=TrialMode.Canary, limits=EVERYTHING, sid="sugg-1"):
    """(record, candidate genome) for a queued trial of `patch` on `base`."""
    suggestion = GeneSuggestion(id=sid, suggested_by_node_id="root", target_node_id="root",
                                source=GeneSuggestionSourceKind.System3StarAudit, patch=patch, hypothesis="h",
                                trial_mode=mode, safety_limits=limits)
    candidate = evolve(apply_patch(base, patch), id="g2")
    return StoredTrialRecord.queued("root", base.id, candidate.id, suggestion, T0), candidate


def trace(n: int = 1, *, genome: str = "g1", node: str = "coder", metadata=None, **changes) -> TaskTrace:
    return TaskTrace(id=f"trace-{n}", task_id=f"task-{n}", genome_id=genome, assigned_node_id=node, started_at=T0,
                     metadata={"task_metadata.requires_code_write": "true", **(metadata or {})}, **changes)


def review_trace(n: int = 1, **changes) -> TaskTrace:
    return trace(n, metadata={"task_metadata.requires_code_write": "false", "required_capability": "review"},
                 **changes)


def replay(base, candidate, record, traces):
    return replay_candidate(base, candidate, "root", record, traces)


# -- outcome classification and deltas -----------------------------------------------------------

class TestDeltas:
    def test_failed_and_succeeded_are_exclusive(self):
        assert trace_failed(trace(merged=False)) and not trace_succeeded(trace(merged=False))
        assert trace_succeeded(trace(merged=True)) and not trace_failed(trace(merged=True))
        assert not trace_failed(trace()) and not trace_succeeded(trace())
        assert trace_failed(trace(merged=True, tests_passed=False))
        assert not trace_succeeded(trace(merged=True, human_override=True))

    def test_failed_trace_promises_a_gain(self):
        failed = trace(merged=False, outcome_score=-1.0)                       # score -6
        assert estimated_delta(failed) == pytest.approx(3 + 6 * 0.35 + 3)
        touched = evolve(failed, files_touched=("a.py",), tests_passed=False)
        assert estimated_delta(touched) == pytest.approx(3 + 6 * 0.35 + 3 + 1.5 + 0.5)

    def test_succeeded_trace_risks_a_loss(self):
        good = trace(merged=True, outcome_score=1.0)                            # score 11
        assert estimated_delta(good) == pytest.approx(-(1.5 + 11 * 0.15))
        tested = evolve(good, tests_run=("t",), files_touched=("a.py",))
        assert estimated_delta(tested) == pytest.approx(-(1.5 + 11 * 0.15) - 0.5 - 0.25)

    def test_neither_outcome(self):
        assert estimated_delta(trace(outcome_score=-2.0)) == pytest.approx(0.4)
        assert estimated_delta(trace(outcome_score=2.0)) == pytest.approx(0.25)

    def test_delta_is_clamped(self):
        disaster = trace(merged=False, reverted=True, post_merge_regression=True, human_override=True,
                         tests_passed=False, outcome_score=-100.0)
        assert estimated_delta(disaster) == 20.0

    def test_unroutable_delta(self):
        assert unroutable_delta(trace(merged=True, outcome_score=1.0), False) == 0.0
        assert unroutable_delta(trace(merged=True, outcome_score=1.0), True) == pytest.approx(-(2 + 11 * 0.2))
        assert unroutable_delta(trace(merged=False), True) == -1.0
        assert unroutable_delta(trace(), True) == -0.5


# -- the replayed task ---------------------------------------------------------------------------

class TestReplayTask:
    def test_defaults(self):
        t = replay_task_from_trace(TaskTrace(id="tr", task_id="tk", genome_id="g1", assigned_node_id="c",
                                             started_at=T0))
        assert (t.id, t.title, t.goal, t.risk, t.metadata) == (
            "tk", "replay trace tr", "Replay historical trace tr", RiskClass.Medium, {})

    def test_shape_from_metadata_and_outcome(self):
        t = replay_task_from_trace(TaskTrace(
            id="tr", task_id="tk", genome_id="g1", assigned_node_id="c", started_at=T0,
            files_touched=("a.py",), tests_run=("test_a",),
            metadata={"task_title": "T", "task_goal": "G", "task_risk": "high", "risk_class": "Low",
                      "task_metadata.task_class": "bugfix", "task_class": "direct", "target_child": "x",
                      "task_metadata.trial_approved": "copy", "trial_approved": "sugg-1", "unrelated": "v"}))
        assert (t.title, t.goal, t.risk) == ("T", "G", RiskClass.High)
        assert t.scope == t.static_predicates.likely_files == ("a.py",)
        assert t.static_predicates.test_targets == ("test_a",)
        # key-sorted, later wins: task_metadata.task_class > task_class; trial_approved > task_metadata.*
        assert t.metadata == {"task_class": "bugfix", "target_child": "x", "trial_approved": "sugg-1",
                              "requires_code_write": "true"}

    def test_code_write_default_needs_changes_and_no_capability(self):
        base = dict(id="tr", task_id="tk", genome_id="g1", assigned_node_id="c", started_at=T0)
        assert replay_task_from_trace(TaskTrace(**base, lines_added=3)).metadata == {"requires_code_write": "true"}
        named = replay_task_from_trace(TaskTrace(**base, lines_added=3, metadata={"required_capability": "review"}))
        assert named.metadata == {"required_capability": "review"}
        kept = replay_task_from_trace(TaskTrace(**base, files_touched=("a",),
                                                metadata={"requires_code_write": "false"}))
        assert kept.metadata == {"requires_code_write": "false"}

    def test_risk_class_fallback(self):
        t = replay_task_from_trace(trace(metadata={"risk_class": "Critical"}))
        assert t.risk is RiskClass.Critical
        assert replay_task_from_trace(trace(metadata={"task_risk": "weird"})).risk is RiskClass.Medium


def test_affected_nodes_per_patch_kind():
    channel = ChannelConfig(id="c", channel_type=VsmChannelType.Audit, from_="root", to="coder")
    rule = RoutingRule(id="r", node_id="root", target_child="reviewer")
    component = PromptComponent(id="p", text="t")
    assert affected_nodes(AddChild(parent_id="root", child=REVIEWER)) == {"reviewer"}
    assert affected_nodes(AddChannel(channel=channel)) == {"root", "coder"}
    assert affected_nodes(RemoveChannel(channel_id="c")) == frozenset()
    assert affected_nodes(AddRoutingRule(rule=rule)) == {"root", "reviewer"}
    assert affected_nodes(Batch(patches=(
        RemoveSubtree(node_id="a"), AddPromptComponent(node_id="b", section=PromptSection.DomainHints,
                                                       component=component),
        SetNodeStatus(node_id="c", status=NodeLifecycleStatus.Retired)))) == {"a", "b", "c"}


# -- counting ------------------------------------------------------------------------------------

class TestReplayCounts:
    def test_candidate_without_the_controller_is_an_error(self):
        base = champion()
        record, _ = trial(AddChild(parent_id="root", child=REVIEWER), base)
        lonely = OrganizationalGenome.with_root("g2", ViableNode.metasystem("elsewhere", "elsewhere"))
        with pytest.raises(GenomeError):
            replay(base, lonely, record, [trace()])

    def test_traces_of_another_genome_are_counted_and_skipped(self):
        base = champion()
        record, candidate = trial(AddChild(parent_id="root", child=REVIEWER), base)
        summary = replay(base, candidate, record, [trace(1, genome="g0"), trace(2)])
        assert (summary.trace_count, summary.base_genome_mismatch_count, summary.eligible_trace_count) == (2, 1, 1)
        first = summary.trace_evaluations[0]
        assert first.status is OfflineReplayTraceStatus.BaseGenomeMismatch
        assert first.reason == "trace belongs to a different base genome"

    def test_unchanged_route_leaves_the_estimate_alone(self):
        base = champion()
        record, candidate = trial(AddChild(parent_id="root", child=REVIEWER), base)
        summary = replay(base, candidate, record, [trace(merged=True, outcome_score=1.0)])
        assert (summary.champion_route_count, summary.candidate_route_count, summary.changed_route_count,
                summary.affected_route_count) == (1, 1, 0, 0)
        assert summary.baseline_score == pytest.approx(11.0)
        assert summary.estimated_delta_score == 0.0 and summary.reasons == ()
        only = summary.trace_evaluations[0]
        assert (only.status, only.reason) == (OfflineReplayTraceStatus.UnchangedRoute,
                                              "candidate preserves the champion route")

    def test_route_into_the_new_child_is_affected(self):
        base = champion()
        record, candidate = trial(AddChild(parent_id="root", child=REVIEWER), base)
        failed = review_trace(merged=False, outcome_score=-1.0)
        summary = replay(base, candidate, record, [failed])
        assert (summary.champion_route_count, summary.changed_route_count, summary.affected_route_count) == (0, 1, 1)
        assert summary.estimated_delta_score == summary.replay_score == pytest.approx(estimated_delta(failed))
        only = summary.trace_evaluations[0]
        assert only.status is OfflineReplayTraceStatus.AffectedRoute
        assert (only.champion_child_id, only.candidate_child_id, only.route_impacted) == (None, "reviewer", True)
        assert summary.reasons == (f"trace=trace-1 route=reviewer changed=true affected=true "
                                   f"delta={estimated_delta(failed):.3f}",)

    def test_changed_unaffected_and_affected_unchanged(self):
        base = champion("coder-a", "coder-b")
        record, candidate = trial(SetNodeStatus(node_id="coder-a", status=NodeLifecycleStatus.Retired), base)
        moved = replay(base, candidate, record, [trace()]).trace_evaluations[0]
        assert (moved.status, moved.champion_child_id, moved.candidate_child_id) == (
            OfflineReplayTraceStatus.ChangedUnaffectedRoute, "coder-a", "coder-b")
        record, candidate = trial(AddTool(node_id="coder-a", tool=ToolSpec(name="lint")), base)
        summary = replay(base, candidate, record, [trace()])
        touched = summary.trace_evaluations[0]
        assert (touched.status, touched.route_changed, touched.candidate_node_affected) == (
            OfflineReplayTraceStatus.AffectedRoute, False, True)
        assert (summary.changed_route_count, summary.affected_route_count) == (0, 1)   # impacted, not changed

    def test_unroutable_candidate(self):
        base = champion()
        record, candidate = trial(SetNodeStatus(node_id="coder", status=NodeLifecycleStatus.Retired), base)
        good = trace(merged=True, outcome_score=1.0)
        summary = replay(base, candidate, record, [good])
        assert (summary.candidate_no_route_count, summary.candidate_route_count, summary.champion_route_count) == (
            1, 0, 1)
        assert summary.estimated_delta_score == pytest.approx(unroutable_delta(good, True))
        only = summary.trace_evaluations[0]
        assert only.status is OfflineReplayTraceStatus.CandidateUnroutable
        assert only.reason.startswith("candidate could not route replay task: no routeable child")

    def test_evaluations_are_capped_at_16_and_reasons_at_8(self):
        base = champion()
        record, candidate = trial(AddChild(parent_id="root", child=REVIEWER), base)
        summary = replay(base, candidate, record, [review_trace(n, merged=False) for n in range(40)])
        assert summary.trace_count == summary.affected_route_count == 40
        assert len(summary.trace_evaluations) == MAX_REPLAY_TRACE_EVALUATIONS
        assert [e.trace_id for e in summary.trace_evaluations] == [f"trace-{n}" for n in range(16)]
        assert len(summary.reasons) == 8


class TestReplaySafety:
    def rejected(self, limits, traces, mode=TrialMode.Canary):
        base = champion()
        record, candidate = trial(AddChild(parent_id="root", child=REVIEWER), base, mode=mode, limits=limits)
        summary = replay(base, candidate, record, traces)
        return summary.safety_rejected_count, summary

    def test_task_limit_counts_routed_replays(self):
        count, summary = self.rejected(evolve(EVERYTHING, max_tasks=2), [trace(n) for n in range(5)])
        assert (count, summary.eligible_trace_count, summary.candidate_route_count) == (3, 2, 2)
        rejected = summary.trace_evaluations[2]
        assert (rejected.status, rejected.reason) == (OfflineReplayTraceStatus.SafetyRejected,
                                                      "trace exceeds candidate trial safety limits")
        assert rejected.baseline_score == score_trace(trace(2))

    def test_token_budget_includes_the_replayed_trace(self):
        traces = [trace(1, input_tokens=60), trace(2, input_tokens=40), trace(3, input_tokens=1)]
        count, summary = self.rejected(evolve(EVERYTHING, max_token_budget=100), traces)
        assert count == 1 and summary.trace_evaluations[2].status is OfflineReplayTraceStatus.SafetyRejected

    def test_files_classes_and_risk(self):
        assert self.rejected(evolve(EVERYTHING, max_files_touched=1), [trace(files_touched=("a", "b"))])[0] == 1
        classes = evolve(EVERYTHING, allowed_task_classes=("bugfix",))
        assert self.rejected(classes, [trace(1), trace(2, metadata={"task_class": "bugfix"})])[0] == 1
        assert self.rejected(EVERYTHING, [trace(metadata={"task_risk": "High"})])[0] == 1
        assert self.rejected(EVERYTHING, [trace(metadata={"task_risk": "Critical", "trial_approved": "true"})])[0] == 0

    def test_requires_approval_is_not_checked_offline(self):
        assert self.rejected(evolve(EVERYTHING, requires_approval=True), [trace()])[0] == 0

    def test_exposure_by_mode(self):
        assert self.rejected(TrialSafetyLimits(), [trace()], mode=TrialMode.Probation)[0] == 1
        assert self.rejected(TrialSafetyLimits(), [trace()], mode=TrialMode.Direct)[0] == 0
        assert self.rejected(TrialSafetyLimits(), [trace(metadata={"trial_approved": "sugg-1"})])[0] == 0
        bucket = exposure_bucket("task-1", "sugg-1")
        assert self.rejected(TrialSafetyLimits(max_traffic_share_basis_points=bucket), [trace()])[0] == 1
        shadow = TrialSafetyLimits(max_traffic_share_basis_points=bucket + 1)
        assert self.rejected(shadow, [trace()], mode=TrialMode.Shadow)[0] == 0


def test_replay_metadata():
    base = champion()
    record, candidate = trial(AddChild(parent_id="root", child=REVIEWER), base)
    summary = replay(base, candidate, record, [trace(1, genome="g0"), review_trace(2, merged=False)])
    meta = replay_metadata(summary)
    assert meta["offline_replay_version"] == "route_counterfactual_v2"
    assert {k: meta[k] for k in ("replay_trace_count", "replay_base_genome_mismatch_count",
                                 "replay_eligible_trace_count", "replay_safety_rejected_count",
                                 "replay_affected_route_count")} == {
        "replay_trace_count": "2", "replay_base_genome_mismatch_count": "1", "replay_eligible_trace_count": "1",
        "replay_safety_rejected_count": "0", "replay_affected_route_count": "1"}
    assert meta["replay_score"] == meta["replay_estimated_delta_score"] == f"{summary.estimated_delta_score:.3f}"
    evaluations = json.loads(meta["replay_trace_evaluations"])
    assert [e["status"] for e in evaluations] == ["BaseGenomeMismatch", "AffectedRoute"]
    assert list(evaluations[1]) == ["trace_id", "task_id", "status", "champion_child_id", "candidate_child_id",
                                    "route_changed", "candidate_node_affected", "route_impacted", "baseline_score",
                                    "estimated_delta_score", "reason"]
    assert evaluations[1]["champion_child_id"] is None


def test_replay_is_linear_in_the_traces():
    """10,000 traces replay in one pass: doubling the traces at most roughly doubles the time."""
    base = champion("coder-a", "coder-b")
    record, candidate = trial(Batch(patches=(AddChild(parent_id="root", child=REVIEWER),
                                             SetNodeStatus(node_id="coder-a", status=NodeLifecycleStatus.Retired))),
                              base)
    traces = [(review_trace(n, merged=False) if n % 3 == 0 else trace(n, merged=True)) for n in range(10_000)]

    def timed(count: int) -> float:
        started = time.perf_counter()
        summary = replay(base, candidate, record, traces[:count])
        assert summary.trace_count == count
        return time.perf_counter() - started

    timed(1_000)  # warm-up
    small, large = min(timed(5_000) for _ in range(2)), min(timed(10_000) for _ in range(2))
    assert large < 5.0
    assert large < small * 3.5
