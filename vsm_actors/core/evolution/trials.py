"""Live mutation trials: which tasks a candidate may take, and when a trial is decided.

A trial exposes the candidate genome to part of a metasystem's work under the suggestion's
safety limits (§3.14.7 of the reference: approval, task/token/file limits, allowed classes,
exposure by canary bucket). Unlike the reference, which promotes when the *sum* of the trial's
trace scores passes a margin (so any candidate that does ordinary work well gets promoted), the
decision here compares the candidate's traces with the champion's on the same task classes over
the same period, and asks for a difference larger than its own noise: a candidate that is no
better is pruned, one that is simpler and no worse is promoted (parsimony). A trial whose task,
token or time limit is used up is decided on what it has, never left active.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum

from attrs import evolve, field, frozen

from ..control.routing import RoutingError, choose_child
from ..model.genes import TrialSettings
from ..model.genome import OrganizationalGenome
from ..model.genome import complexity_by_node
from ..model.records import StoredTrialRecord
from ..model.suggestion import TrialMode
from ..model.task import RiskClass, TaskPacket
from ..model.trace import TaskTrace
from .exposure import exposure_bucket
from .fitness import DEFAULT_WEIGHTS, FitnessWeights, score_trace

IDLE_TRIAL_TASKS = 200   # champion tasks a trial may see without taking one before it is decided
APPROVED_BY = "approved_by"          # record metadata: who approved the trial as a whole
MODE_KEYS = {TrialMode.Shadow: "shadow", TrialMode.Probation: "probation", TrialMode.Canary: "canary",
             TrialMode.Direct: "direct"}
# score a task the champion could not route at all is worth: a failed, unmerged trace
UNROUTED_BASELINE = -1.0 - DEFAULT_WEIGHTS.failed_task_penalty


class TrialDecision(str, Enum):
    Continue = "continue"
    Promote = "promote"
    Prune = "prune"


@frozen(kw_only=True)
class ActiveTrial:
    """One metasystem's running trial: its durable record, the candidate genome, and the
    evidence so far (candidate traces; champion scores per task class, for comparison)."""

    record: StoredTrialRecord
    candidate: OrganizationalGenome
    traces: tuple[TaskTrace, ...] = ()
    baseline: tuple[tuple[str, float, int | None], ...] = ()   # (task class, champion score, tokens)
    champion_seen: int = 0   # champion outcomes observed since the trial started

    @property
    def trial_id(self) -> str:
        return self.record.trial_id

    @property
    def limits(self):
        return self.record.suggestion.safety_limits


@frozen(kw_only=True)
class TrialRoute:
    """Where a trial task goes: `first_hop` is the controller's child in the candidate genome,
    `leaf_id` the leaf the candidate's routers reach below it (the actor the task is sent to)."""

    first_hop: str
    leaf_id: str
    reason: str
    tags: dict[str, str] = field(factory=dict)
    shadow: bool = False


@frozen(kw_only=True)
class TrialVerdict:
    decision: TrialDecision
    reason: str
    candidate_mean: float = 0.0
    baseline_mean: float = 0.0
    difference: float = 0.0
    standard_error: float = 0.0
    trace_count: int = 0
    total_score: float = 0.0
    complexity_delta: float = 0.0


def trial_approved(trial: ActiveTrial, task: TaskPacket) -> bool:
    sid = trial.trial_id
    value = task.metadata.get("trial_approved")
    return value in ("true", sid) or bool(trial.record.metadata.get(APPROVED_BY))


def limits_allow(trial: ActiveTrial, task: TaskPacket) -> str | None:
    """None when the suggestion's safety limits admit the task, else why not."""
    limits, record = trial.limits, trial.record
    if limits.requires_approval and not trial_approved(trial, task):
        return "trial requires approval"
    if limits.max_tasks is not None and record.routed_tasks >= limits.max_tasks:
        return "trial task limit reached"
    if limits.max_token_budget is not None and record.consumed_tokens >= limits.max_token_budget:
        return "trial token budget used up"
    files = task.metadata.get("estimated_files_touched")
    if limits.max_files_touched is not None and files and files.isdigit() and int(files) > limits.max_files_touched:
        return "task touches more files than the trial allows"
    if limits.allowed_task_classes and task.metadata.get("task_class") not in limits.allowed_task_classes:
        return "task class not in the trial's allowed classes"
    return None


def exposure_allows(trial: ActiveTrial, task: TaskPacket, *, shadow: bool) -> tuple[bool, int | None]:
    """(admitted, bucket): shadow trials never take the controlling route and vice versa."""
    mode = trial.record.suggestion.trial_mode
    if (mode is TrialMode.Shadow) != shadow:
        return False, None
    approved = trial_approved(trial, task)
    if task.risk in (RiskClass.High, RiskClass.Critical) and not approved:
        return False, None
    bp = trial.limits.max_traffic_share_basis_points
    bucket = exposure_bucket(task.id, trial.trial_id) if bp is not None else None
    if approved and bp is None:
        return True, None
    if mode is TrialMode.Direct:
        return True, bucket
    return (bucket is not None and bucket < min(bp, 10_000)), bucket


def descend(genome: OrganizationalGenome, node_id: str, task: TaskPacket,
            paused: frozenset[str] = frozenset()) -> tuple[str, str, str]:
    """(first hop, leaf, reason): the candidate's routers followed from `node_id` down to a leaf."""
    decision = choose_child(genome, node_id, task, paused)
    first, current, reason = decision.child_id, decision.child_id, decision.reason
    while genome.node(current).is_metasystem:
        current = choose_child(genome, current, task, paused).child_id
    return first, current, reason


def choose_trial_route(trial: ActiveTrial | None, controller_id: str, task: TaskPacket, *,
                       workers: frozenset[str], shadow: bool = False,
                       champion: OrganizationalGenome | None = None) -> TrialRoute | None:
    """The candidate's route for `task`, or None when the trial may not take it. `workers` are
    the leaves that have actors: a candidate's route must end at one."""
    if trial is None or limits_allow(trial, task) is not None:
        return None
    admitted, bucket = exposure_allows(trial, task, shadow=shadow)
    if not admitted:
        return None
    candidate = trial.candidate
    if not candidate.has_node(controller_id) or not candidate.node(controller_id).is_metasystem:
        return None
    try:
        first, leaf, reason = descend(candidate, controller_id, task)
    except RoutingError:
        return None
    if leaf not in workers:
        return None
    if champion is not None and leaf in champion.nodes:
        # a route the champion would take too measures the champion, not the candidate
        try:
            if descend(champion, controller_id, task)[1] == leaf:
                return None
        except (RoutingError, KeyError):
            pass
    sid = trial.trial_id
    suggestion = trial.record.suggestion
    tags = {"trial_id": sid, "related_suggestion_id": sid, "candidate_genome_id": candidate.id,
            "trial_mode": MODE_KEYS[suggestion.trial_mode], "trial_route_role": "shadow" if shadow else "control",
            "trial_controller_node_id": controller_id}
    if shadow:
        tags["trial_shadow"] = "true"
    bp = trial.limits.max_traffic_share_basis_points
    if bp is not None:
        tags["trial_exposure_basis_points"] = str(bp)
        if bucket is not None:
            tags["trial_exposure_bucket"] = str(bucket)
    prefix = "shadow trial" if shadow else "trial"
    return TrialRoute(first_hop=first, leaf_id=leaf, reason=f"{prefix} {sid}: {reason}", tags=tags, shadow=shadow)


def mark_routed(trial: ActiveTrial, now: datetime) -> ActiveTrial:
    return evolve(trial, record=evolve(trial.record, routed_tasks=trial.record.routed_tasks + 1, updated_at=now))


def record_trial_trace(trial: ActiveTrial, trace: TaskTrace, now: datetime,
                       weights: FitnessWeights = DEFAULT_WEIGHTS) -> ActiveTrial:
    """Fold one candidate trace into the trial (traces of other trials are ignored)."""
    if trial.trial_id not in trace.related_suggestion_ids:
        return trial
    traces = (*trial.traces, trace)
    record = evolve(trial.record, consumed_tokens=trial.record.consumed_tokens + trace.token_total(),
                    trace_count=len(traces), total_score=trial.record.total_score + score_trace(trace, weights),
                    updated_at=now)
    return evolve(trial, record=record, traces=traces)


def record_baseline(trial: ActiveTrial, task_class: str, score: float, tokens: int | None = None) -> ActiveTrial:
    """A champion outcome on work the trial could compare with (kept per task class); tokens are
    None for work the champion could not route."""
    return evolve(trial, baseline=(*trial.baseline, (task_class, score, tokens)), champion_seen=trial.champion_seen + 1)


def limits_exhausted(trial: ActiveTrial, settings: TrialSettings, now: datetime) -> str | None:
    limits, record = trial.limits, trial.record
    max_tasks = limits.max_tasks if limits.max_tasks is not None else settings.max_trial_tasks
    if max_tasks is not None and record.routed_tasks >= max_tasks and record.trace_count >= record.routed_tasks:
        return f"task limit {max_tasks} reached"
    if limits.max_token_budget is not None and record.consumed_tokens >= limits.max_token_budget:
        return f"token budget {limits.max_token_budget} used up"
    if record.routed_tasks == 0 and trial.champion_seen >= IDLE_TRIAL_TASKS:
        return f"no eligible work in {IDLE_TRIAL_TASKS} tasks"
    if settings.max_trial_seconds is not None and now - record.started_at >= timedelta(seconds=settings.max_trial_seconds):
        return f"time limit {settings.max_trial_seconds}s reached"
    return None


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        return 0.0, 0.0
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, var


def task_class_of_trace(trace: TaskTrace) -> str:
    meta = trace.metadata
    return meta.get("task_metadata.task_class") or meta.get("task_class") or ""


def complexity(genome: OrganizationalGenome) -> float:
    """Parsimony pressure of a whole genome: nodes plus what each owns (children, tools, prompt
    components, channels)."""
    return len(genome.nodes) + sum(complexity_by_node(genome).values())


def evaluate_trial(trial: ActiveTrial, champion: OrganizationalGenome, settings: TrialSettings, now: datetime,
                   weights: FitnessWeights = DEFAULT_WEIGHTS, confidence_z: float = 2.0,
                   parsimony_tolerance: float = 1.0) -> TrialVerdict:
    scores = [score_trace(t, weights) for t in trial.traces]
    classes = {task_class_of_trace(t) for t in trial.traces}
    compared = [b for b in trial.baseline if b[0] in classes] or list(trial.baseline)
    base = [b[1] for b in compared]
    exhausted = limits_exhausted(trial, settings, now)
    n = len(scores)
    c_mean, c_var = _mean_var(scores)
    b_mean, b_var = _mean_var(base) if base else (UNROUTED_BASELINE, 0.0)
    se = math.sqrt(c_var / n + (b_var / len(base) if len(base) > 1 else c_var / max(n, 1))) if n else 0.0
    diff = c_mean - b_mean
    delta_c = complexity(trial.candidate) - complexity(champion)
    verdict = dict(candidate_mean=c_mean, baseline_mean=b_mean, difference=diff, standard_error=se,
                   trace_count=n, total_score=sum(scores), complexity_delta=delta_c)
    min_traces = max(settings.min_tasks_before_decision, 3)
    if n < min_traces:
        if exhausted:
            return TrialVerdict(decision=TrialDecision.Prune, reason=f"{exhausted} with {n} traces", **verdict)
        return TrialVerdict(decision=TrialDecision.Continue, reason=f"{n} of {min_traces} traces", **verdict)
    if delta_c > 0:
        # a bigger organization must earn its keep: better by the margin beyond its noise
        if diff - confidence_z * se >= settings.promote_margin:
            return TrialVerdict(decision=TrialDecision.Promote, reason=(
                f"candidate beats champion by {diff:.3f} per task (se {se:.3f})"), **verdict)
        if diff + confidence_z * se < settings.promote_margin or exhausted:
            why = exhausted or "candidate cannot beat the champion"
            return TrialVerdict(decision=TrialDecision.Prune, reason=(
                f"{why}: difference {diff:.3f} per task (se {se:.3f})"), **verdict)
        return TrialVerdict(decision=TrialDecision.Continue, reason="evidence still inconclusive", **verdict)
    # as simple or simpler: promoted when not worse, judged once its exposure is complete
    if diff + confidence_z * se < -parsimony_tolerance:
        return TrialVerdict(decision=TrialDecision.Prune, reason=(
            f"simpler candidate is worse by {-diff:.3f} per task (se {se:.3f})"), **verdict)
    if exhausted:
        if diff >= -parsimony_tolerance:
            return TrialVerdict(decision=TrialDecision.Promote, reason=(
                f"{exhausted}: simpler candidate no worse ({diff:+.3f} per task)"), **verdict)
        saving = token_saving(trial.traces, compared, confidence_z)
        if saving is not None and diff + se >= -parsimony_tolerance:
            # within one standard error of "no worse", and certainly cheaper: parsimony wins the tie
            return TrialVerdict(decision=TrialDecision.Promote, reason=(
                f"{exhausted}: simpler candidate within noise ({diff:+.3f} per task, se {se:.3f}) "
                f"and cheaper by {saving:.0f} tokens per task"), **verdict)
        return TrialVerdict(decision=TrialDecision.Prune, reason=(
            f"{exhausted}: simpler candidate worse by {-diff:.3f} per task"), **verdict)
    return TrialVerdict(decision=TrialDecision.Continue, reason="simpler candidate: gathering evidence", **verdict)


def token_saving(traces: Sequence[TaskTrace], compared: Sequence[tuple], confidence_z: float) -> float | None:
    """Tokens per task the candidate saves against the champion on the same work, when the saving
    is beyond `confidence_z` standard errors and at least a tenth of what the champion spends;
    None otherwise."""
    mine = [float(t.token_total()) for t in traces]
    theirs = [float(b[2]) for b in compared if len(b) > 2 and b[2] is not None]
    if len(mine) < 2 or len(theirs) < 2:
        return None
    (m_mean, m_var), (t_mean, t_var) = _mean_var(mine), _mean_var(theirs)
    saving = t_mean - m_mean
    se = math.sqrt(m_var / len(mine) + t_var / len(theirs))
    return saving if saving >= 0.1 * t_mean and saving - confidence_z * se > 0 else None


def candidate_only_nodes(champion: OrganizationalGenome, candidate: OrganizationalGenome) -> tuple[str, ...]:
    """Nodes a candidate adds: they get actors for the trial and lose them when it ends."""
    return tuple(n for n in candidate.nodes if n not in champion.nodes)


def trial_metadata_from_verdict(verdict: TrialVerdict) -> Mapping[str, str]:
    return {"decision_reason": verdict.reason, "candidate_mean_score": f"{verdict.candidate_mean:.3f}",
            "baseline_mean_score": f"{verdict.baseline_mean:.3f}", "score_difference": f"{verdict.difference:.3f}",
            "score_standard_error": f"{verdict.standard_error:.3f}",
            "complexity_delta": f"{verdict.complexity_delta:.3f}"}
