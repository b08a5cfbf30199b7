"""Offline replay `route_counterfactual_v2` (reference §3.14.4): before a queued candidate gets any
live traffic, re-route the champion's recent work through it and estimate what would change.

Each trace is rebuilt into the task that produced it, checked against the candidate's trial safety
limits as if it were arriving now, and routed once on the champion and once on the candidate. A
route that moves, or that lands in the part of the genome the patch touched, is "impacted": its
historical outcome then says how much the candidate may help (the champion failed there) or hurt
(the champion succeeded there). One pass, constant work per trace: linear in the traces.

The checks deliberately differ from the live ones (reference §9.2 #25): `requires_approval` is not
checked, the token budget includes the trace being replayed (`>`), files are counted from the
trace, and Shadow trials use their traffic share like Canary/Probation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import Enum

from attrs import asdict, frozen

from ..control.routing import RoutingError, choose_child
from ..model.genome import GenomeError, OrganizationalGenome
from ..model.ids import TaskId
from ..model.patch import (
    AddChannel, AddChild, AddPromptComponent, AddRoutingRule, AddTool, Batch, GenomePatch, PromoteLeafToMetasystem,
    RemovePromptComponent, RemoveSubtree, RemoveTool, SetNodeStatus,
)
from ..model.records import StoredTrialRecord
from ..model.suggestion import GeneSuggestion, TrialMode
from ..model.task import RiskClass, StaticTaskPredicates, TaskPacket
from ..model.trace import TaskTrace
from .exposure import exposure_bucket, is_approved, within_traffic_share
from .fitness import DEFAULT_WEIGHTS, FitnessWeights, score_trace

OFFLINE_REPLAY_VERSION = "route_counterfactual_v2"
MAX_REPLAY_TRACE_EVALUATIONS = 16
MAX_REPLAY_REASONS = 8

# trace metadata keys the worker copies from the task that the router reads
_ROUTING_KEYS = frozenset({"required_capability", "requires_code_write", "target_child", "task_class",
                           "trial_approved"})
_TASK_METADATA_PREFIX = "task_metadata."
_RISK_BY_NAME = {"Low": RiskClass.Low, "low": RiskClass.Low, "High": RiskClass.High, "high": RiskClass.High,
                 "Critical": RiskClass.Critical, "critical": RiskClass.Critical}
_ELEVATED_RISK = (RiskClass.High, RiskClass.Critical)


class OfflineReplayTraceStatus(str, Enum):
    BaseGenomeMismatch = "BaseGenomeMismatch"
    SafetyRejected = "SafetyRejected"
    CandidateUnroutable = "CandidateUnroutable"
    UnchangedRoute = "UnchangedRoute"
    ChangedUnaffectedRoute = "ChangedUnaffectedRoute"
    AffectedRoute = "AffectedRoute"


@frozen(kw_only=True)
class OfflineReplayTraceEvaluation:
    """What replay concluded about one trace; fields in the reference's wire order."""

    trace_id: str
    task_id: str
    status: OfflineReplayTraceStatus
    champion_child_id: str | None = None
    candidate_child_id: str | None = None
    route_changed: bool = False
    candidate_node_affected: bool = False
    route_impacted: bool = False
    baseline_score: float = 0.0
    estimated_delta_score: float = 0.0
    reason: str = ""

    def to_wire(self) -> dict[str, object]:
        return {**asdict(self, recurse=False), "status": self.status.value}


@frozen(kw_only=True)
class CandidateReplaySummary:
    trace_count: int = 0
    base_genome_mismatch_count: int = 0
    eligible_trace_count: int = 0
    safety_rejected_count: int = 0
    champion_route_count: int = 0
    candidate_route_count: int = 0
    candidate_no_route_count: int = 0
    changed_route_count: int = 0
    # counts *impacted* routes (changed or touching the patch), as the reference does
    affected_route_count: int = 0
    baseline_score: float = 0.0
    estimated_delta_score: float = 0.0
    replay_score: float = 0.0
    reasons: tuple[str, ...] = ()
    trace_evaluations: tuple[OfflineReplayTraceEvaluation, ...] = ()


# -- the patch and the trace ---------------------------------------------------------------------

def affected_nodes(patch: GenomePatch) -> frozenset[str]:
    """Nodes whose routing the patch may change: a route landing on one of them is impacted.

    AddRoutingRule (our gene, not the reference's) affects the rule's node and its target child;
    RemoveChannel and RemoveRoutingRule name no node, so only a changed route counts for them.
    """
    if isinstance(patch, Batch):
        return frozenset().union(*(affected_nodes(p) for p in patch.patches))
    if isinstance(patch, AddChild):
        return frozenset({patch.child.id})
    if isinstance(patch, AddChannel):
        return frozenset(n for n in (patch.channel.from_, patch.channel.to) if n is not None)
    if isinstance(patch, AddRoutingRule):
        return frozenset({patch.rule.node_id, patch.rule.target_child})
    if isinstance(patch, (PromoteLeafToMetasystem, RemoveSubtree, AddPromptComponent, RemovePromptComponent,
                          AddTool, RemoveTool, SetNodeStatus)):
        return frozenset({patch.node_id})
    return frozenset()


def replay_task_from_trace(trace: TaskTrace) -> TaskPacket:
    """The task as the router saw it, rebuilt from what the worker wrote onto the trace."""
    meta = trace.metadata
    routing: dict[str, str] = {}
    # key-sorted so that a later key wins deterministically: `task_metadata.K` beats a direct
    # `required_capability`/`target_child`/`task_class`, a direct `trial_approved` beats its copy
    for key in sorted(meta):
        if key.startswith(_TASK_METADATA_PREFIX):
            routing[key[len(_TASK_METADATA_PREFIX):]] = meta[key]
        elif key in _ROUTING_KEYS:
            routing[key] = meta[key]
    if "required_capability" not in routing and (trace.files_touched or trace.lines_added or trace.lines_deleted):
        routing.setdefault("requires_code_write", "true")
    risk_name = meta.get("task_risk", meta.get("risk_class"))
    return TaskPacket(
        id=TaskId(trace.task_id),
        title=meta.get("task_title", f"replay trace {trace.id}"),
        goal=meta.get("task_goal", f"Replay historical trace {trace.id}"),
        scope=trace.files_touched,
        risk=_RISK_BY_NAME.get(risk_name, RiskClass.Medium) if risk_name is not None else RiskClass.Medium,
        static_predicates=StaticTaskPredicates(likely_files=trace.files_touched, test_targets=trace.tests_run),
        metadata=routing,
    )


def trace_failed(trace: TaskTrace) -> bool:
    return (trace.merged is False or trace.reverted is True or trace.post_merge_regression is True
            or trace.human_override is True or trace.tests_passed is False or trace.review_passed is False)


def trace_succeeded(trace: TaskTrace) -> bool:
    return (trace.merged is True and trace.reverted is not True and trace.post_merge_regression is not True
            and trace.human_override is not True and trace.tests_passed is not False
            and trace.review_passed is not False)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def estimated_delta(trace: TaskTrace, weights: FitnessWeights = DEFAULT_WEIGHTS, *,
                    score: float | None = None) -> float:
    """Expected score change if the candidate takes this (impacted) task, in [-12, 20].

    Positive when the champion failed there (rerouting bad work should help), negative when it
    succeeded (the candidate risks good work). `score` saves recomputing `score_trace`.
    """
    s = score_trace(trace, weights) if score is None else score
    failed, succeeded = trace_failed(trace), trace_succeeded(trace)
    if failed:
        delta = 3.0 + min(max(-s, 0.0), 30.0) * 0.35
        if trace.merged is False or trace.reverted is True:
            delta += 3.0
        if trace.post_merge_regression is True or trace.human_override is True:
            delta += 3.0
        if trace.tests_passed is False or trace.review_passed is False:
            delta += 1.5
    elif succeeded:
        delta = -(1.5 + min(max(s, 0.0), 30.0) * 0.15)
        if trace.tests_run or trace.review_passed is True:
            delta -= 0.5
    elif s < 0:
        delta = min(-s, 15.0) * 0.2
    else:
        delta = 0.25
    if failed and trace.files_touched:
        delta += 0.5
    if succeeded and trace.files_touched:
        delta -= 0.25
    return _clamp(delta, -12.0, 20.0)


def unroutable_delta(trace: TaskTrace, champion_had_route: bool, weights: FitnessWeights = DEFAULT_WEIGHTS, *,
                     score: float | None = None) -> float:
    """Cost of work the candidate cannot route at all; nothing lost if the champion could not either."""
    if not champion_had_route:
        return 0.0
    if trace_succeeded(trace):
        s = score_trace(trace, weights) if score is None else score
        return -(2.0 + min(max(s, 0.0), 30.0) * 0.2)
    return -1.0 if trace_failed(trace) else -0.5


# -- one replay ------------------------------------------------------------------------------------

def replay_safety_allows(suggestion: GeneSuggestion, task: TaskPacket, trace: TaskTrace, *,
                         routed_tasks: int, consumed_tokens: int) -> bool:
    """Would the candidate's trial limits have admitted this trace's task at this point of the replay?"""
    limits = suggestion.safety_limits
    if limits.max_tasks is not None and routed_tasks >= limits.max_tasks:
        return False
    if limits.max_token_budget is not None and consumed_tokens + trace.token_total() > limits.max_token_budget:
        return False
    if limits.max_files_touched is not None and len(trace.files_touched) > limits.max_files_touched:
        return False
    if limits.allowed_task_classes and task.metadata.get("task_class") not in limits.allowed_task_classes:
        return False
    approved = is_approved(task.metadata, suggestion.id)
    if task.risk in _ELEVATED_RISK and not approved:
        return False
    if approved or suggestion.trial_mode is TrialMode.Direct:
        return True
    return within_traffic_share(exposure_bucket(task.id, suggestion.id), limits.max_traffic_share_basis_points)


def _route(genome: OrganizationalGenome, controller_node_id: str, task: TaskPacket) -> str | None:
    try:
        return choose_child(genome, controller_node_id, task).child_id
    except (RoutingError, GenomeError):
        return None


def replay_candidate(champion: OrganizationalGenome, candidate: OrganizationalGenome, controller_node_id: str,
                     record: StoredTrialRecord, traces: Sequence[TaskTrace],
                     weights: FitnessWeights = DEFAULT_WEIGHTS) -> CandidateReplaySummary:
    """Replay `traces` (oldest first) through `candidate`; raises GenomeError if it lacks the controller."""
    candidate.node(controller_node_id)
    suggestion = record.suggestion
    patched = affected_nodes(suggestion.patch)
    mismatched = rejected = eligible = champion_routes = candidate_routes = no_route = changed_routes = impacted = 0
    routed_tasks = consumed_tokens = 0
    baseline_total = delta_total = 0.0
    reasons: list[str] = []
    evaluations: list[OfflineReplayTraceEvaluation] = []

    def keep(trace: TaskTrace, status: OfflineReplayTraceStatus, reason: str, **fields: object) -> None:
        if len(evaluations) < MAX_REPLAY_TRACE_EVALUATIONS:
            evaluations.append(OfflineReplayTraceEvaluation(
                trace_id=trace.id, task_id=trace.task_id, status=status, reason=reason, **fields))

    for trace in traces:
        if trace.genome_id != record.base_genome_id:
            mismatched += 1
            keep(trace, OfflineReplayTraceStatus.BaseGenomeMismatch, "trace belongs to a different base genome")
            continue
        task = replay_task_from_trace(trace)
        baseline = score_trace(trace, weights)
        if not replay_safety_allows(suggestion, task, trace, routed_tasks=routed_tasks,
                                    consumed_tokens=consumed_tokens):
            rejected += 1
            keep(trace, OfflineReplayTraceStatus.SafetyRejected, "trace exceeds candidate trial safety limits",
                 baseline_score=baseline)
            continue
        eligible += 1
        baseline_total += baseline
        champion_child = _route(champion, controller_node_id, task)
        champion_routes += champion_child is not None
        try:
            candidate_child = choose_child(candidate, controller_node_id, task).child_id
        except (RoutingError, GenomeError) as exc:
            no_route += 1
            delta = unroutable_delta(trace, champion_child is not None, weights, score=baseline)
            delta_total += delta
            keep(trace, OfflineReplayTraceStatus.CandidateUnroutable, f"candidate could not route replay task: {exc}",
                 champion_child_id=champion_child, baseline_score=baseline, estimated_delta_score=delta)
            continue
        candidate_routes += 1
        routed_tasks += 1
        consumed_tokens += trace.token_total()
        changed = champion_child is None or champion_child != candidate_child
        affected = candidate_child in patched
        changed_routes += changed
        delta = 0.0
        if changed or affected:
            delta = estimated_delta(trace, weights, score=baseline)
            impacted += 1
            delta_total += delta
            if len(reasons) < MAX_REPLAY_REASONS:
                reasons.append(f"trace={trace.id} route={candidate_child} changed={_flag(changed)} "
                               f"affected={_flag(affected)} delta={delta:.3f}")
        status = (OfflineReplayTraceStatus.AffectedRoute if affected else
                  OfflineReplayTraceStatus.ChangedUnaffectedRoute if changed else
                  OfflineReplayTraceStatus.UnchangedRoute)
        keep(trace, status, "candidate route changes or touches the patched subtree" if changed or affected
             else "candidate preserves the champion route",
             champion_child_id=champion_child, candidate_child_id=candidate_child, route_changed=changed,
             candidate_node_affected=affected, route_impacted=changed or affected, baseline_score=baseline,
             estimated_delta_score=delta)

    return CandidateReplaySummary(
        trace_count=len(traces), base_genome_mismatch_count=mismatched, eligible_trace_count=eligible,
        safety_rejected_count=rejected, champion_route_count=champion_routes, candidate_route_count=candidate_routes,
        candidate_no_route_count=no_route, changed_route_count=changed_routes, affected_route_count=impacted,
        baseline_score=baseline_total, estimated_delta_score=delta_total, replay_score=delta_total,
        reasons=tuple(reasons), trace_evaluations=tuple(evaluations),
    )


def _flag(value: bool) -> str:
    return "true" if value else "false"


def replay_metadata(summary: CandidateReplaySummary) -> dict[str, str]:
    """The `replay_*` keys written onto archive records and the selected trial (§3.14.3)."""
    s = summary
    return {
        "offline_replay_version": OFFLINE_REPLAY_VERSION,
        "replay_trace_count": str(s.trace_count),
        "replay_base_genome_mismatch_count": str(s.base_genome_mismatch_count),
        "replay_eligible_trace_count": str(s.eligible_trace_count),
        "replay_safety_rejected_count": str(s.safety_rejected_count),
        "replay_champion_route_count": str(s.champion_route_count),
        "replay_candidate_route_count": str(s.candidate_route_count),
        "replay_candidate_no_route_count": str(s.candidate_no_route_count),
        "replay_changed_route_count": str(s.changed_route_count),
        "replay_affected_route_count": str(s.affected_route_count),
        "replay_baseline_score": f"{s.baseline_score:.3f}",
        "replay_estimated_delta_score": f"{s.estimated_delta_score:.3f}",
        "replay_score": f"{s.replay_score:.3f}",
        "replay_trace_evaluations": json.dumps([e.to_wire() for e in s.trace_evaluations], separators=(",", ":")),
    }
