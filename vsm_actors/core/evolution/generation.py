"""The deterministic generation `system3_deterministic_ga_v1` (reference §3.15): elite parents from
the completed trials, offspring from pluggable operators, each offspring a bounded canary suggestion.

An operator is any callable `OperatorInput -> list[Offspring]`; the planner asks them in order
while capacity remains. The reference's three structural operators are here; the specialization
operators that read task-class clusters live in operators.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from attrs import evolve, frozen

from ..model.genome import GenomeError, OrganizationalGenome
from ..model.ids import IdFactory, NodeId, SuggestionId
from ..model.node import NodeLifecycleStatus, PromptComponent, PromptOrigin, PromptSection
from ..model.patch import AddPromptComponent, Batch, GenomePatch, PatchError, SetNodeStatus, apply_patch
from ..model.records import (
    PARETO_ARCHIVE_STATUSES, EvolutionGenerationRecord, EvolutionPolicy, PopulationArchiveRecord,
    StoredTrialRecord, StoredTrialStatus,
)
from ..model.suggestion import (
    DEFAULT_FAILURE_METRICS, DEFAULT_SUCCESS_METRICS, GeneSuggestion, MeasurementPlan, TrialMode, TrialSafetyLimits,
)
from ..model.trace import TaskTrace
from ..model.validation import validate_genome
from ..model.variants import Other
from .fitness import DEFAULT_WEIGHTS, score_trace

GENERATION_SOURCE = Other("system3_evolution_generation")
SELECTION_POLICY = "elite_empirical_score_plus_trace_pressure_v1"
PARSIMONY_TAG = "evolution_parsimony_guardrail"
PARSIMONY_TEXT = (
    "Prefer the smallest task, context and authority bundle that satisfies the acceptance criteria; "
    "split work or retrieve more context only when the expected reliability gain outweighs the added "
    "coordination and token cost."
)
ELITE_STATUSES = frozenset({StoredTrialStatus.Promoted, StoredTrialStatus.Pruned})


@frozen(kw_only=True)
class OperatorInput:
    """What every operator sees: the champion, the controller's recent traces and the elite."""

    controller_node_id: NodeId
    champion: OrganizationalGenome
    policy: EvolutionPolicy
    recent_traces: tuple[TaskTrace, ...]
    elite_parents: tuple[StoredTrialRecord, ...]
    generation: int


@frozen(kw_only=True)
class Offspring:
    """One proposed mutation. No parent ids means it descends from the whole elite (as the
    reference's trace-pressure operators do); `safety_limits` can only tighten the policy's."""

    operator: str
    patch: GenomePatch
    hypothesis: str
    evidence: tuple[str, ...]
    parent_trial_ids: tuple[SuggestionId, ...] = ()
    safety_limits: TrialSafetyLimits | None = None


Operator = Callable[[OperatorInput], Sequence[Offspring]]


@frozen(kw_only=True)
class GenerationPlan:
    record: EvolutionGenerationRecord
    offspring: tuple[GeneSuggestion, ...]


def applies_cleanly(champion: OrganizationalGenome, patch: GenomePatch) -> bool:
    """The patch applies to the champion (ids derived from names, as candidates are built) and
    the result is a valid genome."""
    try:
        return not validate_genome(apply_patch(champion, patch))
    except (PatchError, GenomeError, KeyError):
        return False


# -- elite parents -----------------------------------------------------------------------------------

def elite_parents(controller_node_id: str, completed: Sequence[StoredTrialRecord],
                  archive: Sequence[PopulationArchiveRecord], elite_count: int) -> tuple[StoredTrialRecord, ...]:
    """Promoted or pruned trials of this controller, best parent score first (newest on ties)."""
    archived: dict[str, PopulationArchiveRecord] = {}
    for entry in archive:
        # the most recently updated frontier entry speaks for the trial
        if entry.status in PARETO_ARCHIVE_STATUSES:
            known = archived.get(entry.trial_id)
            if known is None or entry.updated_at >= known.updated_at:
                archived[entry.trial_id] = entry

    def score(record: StoredTrialRecord) -> float:
        entry = archived.get(record.trial_id)
        return entry.selection_score if entry is not None else record.total_score

    candidates = [r for r in completed if r.status in ELITE_STATUSES and r.controller_node_id == controller_node_id]
    candidates.sort(key=lambda r: (score(r), r.updated_at), reverse=True)
    return tuple(candidates[:max(elite_count, 0)])


# -- the reference operators ---------------------------------------------------------------------

def add_prompt_parsimony_guardrail(inp: OperatorInput) -> list[Offspring]:
    traces, policy = inp.recent_traces, inp.policy
    if len(traces) < max(policy.min_pressure_traces, 1) or not inp.champion.has_node(inp.controller_node_id):
        return []
    average = sum(t.token_total() for t in traces) // len(traces)
    if average < policy.high_average_token_threshold:
        return []
    prompt = inp.champion.node(inp.controller_node_id).prompt
    components = (*prompt.behavior_rules, *prompt.domain_hints, *prompt.codebase_conventions,
                  *prompt.negative_constraints, *((prompt.output_contract,) if prompt.output_contract else ()))
    if any(c.active and PARSIMONY_TAG in c.tags for c in components):
        return []
    component = PromptComponent(id=f"evolution-parsimony-{inp.generation}", text=PARSIMONY_TEXT,
                                tags=("evolution", PARSIMONY_TAG), origin=PromptOrigin.Mutation, active=True)
    patch = AddPromptComponent(node_id=inp.controller_node_id, section=PromptSection.BehaviorRules, component=component)
    return [Offspring(operator="add_prompt_parsimony_guardrail", patch=patch,
                      hypothesis="High average token use justifies trialing a parsimony guardrail.",
                      evidence=(f"average_tokens={average}",))]


def retire_low_fitness_child(inp: OperatorInput) -> list[Offspring]:
    genome, policy = inp.champion, inp.policy
    if not genome.has_node(inp.controller_node_id):
        return []
    children = [c for c in genome.children(inp.controller_node_id) if c.status is not NodeLifecycleStatus.Retired]
    if len(children) <= 1:
        return []
    worst: tuple[float, str, int] | None = None
    for child in children:
        scores = [score_trace(t, DEFAULT_WEIGHTS) for t in inp.recent_traces if t.assigned_node_id == child.id]
        if len(scores) < policy.retirement_min_tasks or not scores:
            continue
        average = sum(scores) / len(scores)
        if worst is None or average < worst[0]:
            worst = (average, child.id, len(scores))
    if worst is None or worst[0] > policy.retirement_average_score_below:
        return []
    average, child_id, count = worst
    return [Offspring(
        operator="retire_low_fitness_child",
        patch=SetNodeStatus(node_id=child_id, status=NodeLifecycleStatus.Retired),
        hypothesis="A child has sustained poor rolling direct fitness; trial retiring it from routing.",
        evidence=(f"candidate_child={child_id}", f"child_task_count={count}", f"child_average_score={average:.3f}"),
    )]


def recombine_elite_parent_patches(inp: OperatorInput) -> list[Offspring]:
    parents = inp.elite_parents
    for i, left in enumerate(parents):
        for right in parents[i + 1:]:
            patch = Batch(patches=(left.suggestion.patch, right.suggestion.patch))
            if applies_cleanly(inp.champion, patch):
                return [Offspring(
                    operator="recombine_elite_parent_patches", patch=patch,
                    hypothesis="Compatible elite parent patches can be trialed together as a recombined offspring.",
                    evidence=(f"left_parent={left.trial_id}", f"right_parent={right.trial_id}"),
                    parent_trial_ids=(left.trial_id, right.trial_id),
                )]
    return []


REFERENCE_OPERATORS: tuple[Operator, ...] = (
    add_prompt_parsimony_guardrail, retire_low_fitness_child, recombine_elite_parent_patches,
)


# -- the planner ---------------------------------------------------------------------------------

def _tighter(requested: int | None, bound: int) -> int:
    return bound if requested is None else min(requested, bound)


def bounded_suggestion(offspring: Offspring, *, controller_node_id: str, policy: EvolutionPolicy, generation: int,
                       parent_ids: tuple[str, ...], new_id: IdFactory) -> GeneSuggestion:
    """§3.15 step 4: a canary suggestion no larger than the policy's probation bounds."""
    requested = offspring.safety_limits or TrialSafetyLimits()
    limits = evolve(
        requested,
        max_tasks=_tighter(requested.max_tasks, policy.probation_max_tasks),
        max_token_budget=_tighter(requested.max_token_budget, policy.probation_token_budget),
        max_traffic_share_basis_points=_tighter(requested.max_traffic_share_basis_points,
                                                policy.canary_traffic_share_basis_points),
    )
    measurement = MeasurementPlan(
        window_tasks=limits.max_tasks,
        success_metrics=(*DEFAULT_SUCCESS_METRICS, "marginal_subtree_fitness"),
        failure_metrics=(*DEFAULT_FAILURE_METRICS, "coordination_overhead"),
    )
    prefix = [f"evolution_generation={generation}", f"evolution_operator={offspring.operator}"]
    if parent_ids:
        prefix.append(f"evolution_parent_trial_ids={','.join(parent_ids)}")
    return GeneSuggestion.new(
        controller_node_id, controller_node_id, GENERATION_SOURCE, offspring.patch, offspring.hypothesis, new_id,
        evidence=(*prefix, *offspring.evidence), trial_mode=TrialMode.Canary, safety_limits=limits,
        measurement_plan=measurement,
    )


def plan_generation(
    *, controller_node_id: str, champion: OrganizationalGenome, policy: EvolutionPolicy,
    completed: Sequence[StoredTrialRecord], archive: Sequence[PopulationArchiveRecord], queued_count: int,
    recent_traces: Sequence[TaskTrace], generation: int, now: datetime, new_id: IdFactory,
    operators: Sequence[Operator] = REFERENCE_OPERATORS,
) -> GenerationPlan | None:
    """Offspring for one generation and its record, or None when there is no room or no idea."""
    capacity = min(max(policy.population_size - queued_count, 0), policy.max_offspring_per_generation)
    if capacity <= 0:
        return None
    elite = elite_parents(controller_node_id, completed, archive, policy.elite_count)
    elite_ids = tuple(r.trial_id for r in elite)
    inp = OperatorInput(controller_node_id=NodeId(controller_node_id), champion=champion, policy=policy,
                        recent_traces=tuple(recent_traces), elite_parents=elite, generation=generation)
    chosen: list[Offspring] = []
    for operator in operators:
        if len(chosen) >= capacity:
            break
        for child in operator(inp):
            if len(chosen) >= capacity:
                break
            # two operators can reach the same patch (a redundant specialist is also a twin)
            if any(child.patch == c.patch for c in chosen):
                continue
            chosen.append(child)
    if not chosen:
        return None
    offspring = tuple(
        bounded_suggestion(c, controller_node_id=controller_node_id, policy=policy, generation=generation,
                           parent_ids=c.parent_trial_ids or elite_ids, new_id=new_id)
        for c in chosen)
    counts: dict[str, int] = {}
    for c in chosen:
        counts[c.operator] = counts.get(c.operator, 0) + 1
    record = EvolutionGenerationRecord(
        controller_node_id=NodeId(controller_node_id), generation=generation, champion_genome_id=champion.id,
        created_at=now, updated_at=now, policy=policy.name, parent_trial_ids=elite_ids,
        offspring_trial_ids=tuple(s.id for s in offspring), mutation_operator_counts=counts,
        metadata={"selection_policy": SELECTION_POLICY, "recent_trace_count": str(len(recent_traces)),
                  "queued_candidate_count": str(queued_count)},
    )
    return GenerationPlan(record=record, offspring=offspring)


def suggestion_operator(suggestion: GeneSuggestion) -> str:
    """The operator that made a generation's suggestion ("unknown" for any other suggestion)."""
    for entry in suggestion.evidence:
        if entry.startswith("evolution_operator="):
            return entry[len("evolution_operator="):]
    return "unknown"
