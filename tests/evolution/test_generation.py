"""The deterministic generation `system3_deterministic_ga_v1` (reference §3.15; §8 evolution.rs #19-20)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from attrs import evolve

from vsm_actors.core.evolution.generation import (
    GENERATION_SOURCE, PARSIMONY_TAG, REFERENCE_OPERATORS, Offspring, OperatorInput, applies_cleanly,
    elite_parents, plan_generation, suggestion_operator,
)
from vsm_actors.core.evolution.operators import ALL_OPERATORS
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.ids import SequentialIds
from vsm_actors.core.model.node import (
    NodeLifecycleStatus, PromptComponent, PromptOrigin, PromptSection, ToolSpec, ViableNode,
)
from vsm_actors.core.model.patch import AddPromptComponent, AddTool, Batch, SetNodeStatus, apply_patch
from vsm_actors.core.model.records import (
    EvolutionPolicy, PopulationArchiveRecord, PopulationArchiveStatus, StoredTrialRecord, StoredTrialStatus,
)
from vsm_actors.core.model.suggestion import GeneSuggestion, TrialMode, TrialSafetyLimits
from vsm_actors.core.model.trace import TaskTrace
from vsm_actors.core.model.validation import validate_genome
from vsm_actors.core.model.variants import Other

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
POLICY = EvolutionPolicy()


def genome(*children: str) -> OrganizationalGenome:
    g = OrganizationalGenome.with_root("genome-1", ViableNode.metasystem("root", "root"))
    for name in children or ("coder",):
        g = g.add_child("root", ViableNode.leaf(name, name, LeafOperationSpec.coding()))
    return g


_trace_ids = SequentialIds("trace")


def trace(node: str = "coder", **changes) -> TaskTrace:
    base = TaskTrace.started("task", "genome-1", node, new_id=_trace_ids, started_at=T0)
    return evolve(base, **changes)


def pressure_traces(n: int = 5) -> list[TaskTrace]:
    """Reference test 19: merged, tests passed, outcome 2, 150k input + 10k output tokens."""
    return [trace(merged=True, tests_passed=True, outcome_score=2.0, input_tokens=150_000, output_tokens=10_000)
            for _ in range(n)]


def failing_traces(n: int = 5, node: str = "coder") -> list[TaskTrace]:
    return [trace(node, merged=False, tests_passed=False, outcome_score=-8.0) for _ in range(n)]


def plan(champion=None, *, traces=(), completed=(), archive=(), queued=0, generation=1, policy=POLICY,
         operators=REFERENCE_OPERATORS, ids=None):
    return plan_generation(
        controller_node_id="root", champion=champion or genome(), policy=policy, completed=completed,
        archive=archive, queued_count=queued, recent_traces=traces, generation=generation, now=T0,
        new_id=ids or SequentialIds("sugg"), operators=operators)


def trial(trial_id: str, patch, status=StoredTrialStatus.Promoted, score=0.0, updated=0, controller="root"):
    suggestion = GeneSuggestion(id=trial_id, suggested_by_node_id="root", target_node_id="root",
                                source=Other("test"), patch=patch, hypothesis="h")
    record = StoredTrialRecord.active(controller, "genome-0", f"cand-{trial_id}", suggestion, T0)
    return evolve(record, status=status, total_score=score, updated_at=T0 + timedelta(seconds=updated))


def archived(trial_id: str, score: float, status=PopulationArchiveStatus.SelectedForTrial, updated=0):
    return PopulationArchiveRecord(
        trial_id=trial_id, controller_node_id="root", base_genome_id="genome-0", candidate_genome_id="c",
        status=status, archived_at=T0, updated_at=T0 + timedelta(seconds=updated), selection_policy="p",
        selection_score=score, pareto_frontier_size=1)


def tool(name: str) -> AddTool:
    return AddTool(node_id="coder", tool=ToolSpec(name=name))


# -- reference tests (§8 evolution.rs) ---------------------------------------------------------------

def test_generation_adds_structural_prompt_guardrail_from_token_pressure():
    result = plan(traces=pressure_traces())
    assert result is not None
    operators = [suggestion_operator(s) for s in result.offspring]
    assert "add_prompt_parsimony_guardrail" in operators
    assert result.record.generation == 1
    assert len(result.record.offspring_trial_ids) == len(result.offspring)
    [guardrail] = result.offspring
    patch = guardrail.patch
    assert isinstance(patch, AddPromptComponent) and patch.node_id == "root"
    assert patch.section is PromptSection.BehaviorRules
    assert patch.component.id == "evolution-parsimony-1"
    assert patch.component.tags == ("evolution", PARSIMONY_TAG)
    assert patch.component.origin is PromptOrigin.Mutation and patch.component.active
    assert guardrail.hypothesis == "High average token use justifies trialing a parsimony guardrail."
    assert guardrail.evidence == ("evolution_generation=1", "evolution_operator=add_prompt_parsimony_guardrail",
                                  "average_tokens=160000")


@pytest.mark.parametrize("operators", [REFERENCE_OPERATORS, ALL_OPERATORS])
def test_generation_does_not_create_semantic_review_or_test_roles_from_pressure(operators):
    result = plan(traces=failing_traces(), operators=operators)
    assert result is None


# -- bounded canary suggestions (step 4) and the record (step 5) -------------------------------------

def test_offspring_is_a_bounded_canary_suggestion():
    [s] = plan(traces=pressure_traces()).offspring
    assert s.suggested_by_node_id == s.target_node_id == "root"
    assert s.source == GENERATION_SOURCE == Other("system3_evolution_generation")
    assert s.trial_mode is TrialMode.Canary
    assert s.safety_limits == TrialSafetyLimits(max_tasks=10, max_token_budget=100_000,
                                                max_traffic_share_basis_points=1_000)
    assert not s.safety_limits.requires_approval
    plan_ = s.measurement_plan
    assert plan_.window_tasks == 10
    assert plan_.success_metrics == ("accepted_task_value", "regression_rate", "marginal_subtree_fitness")
    assert plan_.failure_metrics == ("token_cost", "revert_rate", "coordination_overhead")


def test_generation_record_counts_operators_and_notes_its_inputs():
    result = plan(traces=pressure_traces(7), queued=2, generation=3)
    record = result.record
    assert record.controller_node_id == "root" and record.champion_genome_id == "genome-1"
    assert record.policy == "system3_deterministic_ga_v1"
    assert record.created_at == record.updated_at == T0
    assert record.mutation_operator_counts == {"add_prompt_parsimony_guardrail": 1}
    assert record.offspring_trial_ids == tuple(s.id for s in result.offspring) == ("sugg-1",)
    assert record.metadata == {"selection_policy": "elite_empirical_score_plus_trace_pressure_v1",
                               "recent_trace_count": "7", "queued_candidate_count": "2"}
    assert result.offspring[0].patch.component.id == "evolution-parsimony-3"


@pytest.mark.parametrize("queued, population, max_offspring", [(6, 6, 4), (9, 6, 4), (0, 6, 0)])
def test_no_capacity_means_no_plan(queued, population, max_offspring):
    policy = evolve(POLICY, population_size=population, max_offspring_per_generation=max_offspring)
    assert plan(traces=pressure_traces(), queued=queued, policy=policy) is None


def test_capacity_caps_the_offspring():
    def many(inp: OperatorInput):
        return [Offspring(operator="many", patch=tool(f"t{i}"), hypothesis="h", evidence=()) for i in range(10)]

    assert len(plan(operators=[many]).offspring) == 4
    assert len(plan(operators=[many], queued=4).offspring) == 2
    policy = evolve(POLICY, max_offspring_per_generation=1)
    result = plan(operators=[many, many], policy=policy)
    assert len(result.offspring) == 1 and result.record.mutation_operator_counts == {"many": 1}


def test_operators_are_asked_in_order_and_identical_patches_count_once():
    seen: list[str] = []

    def first(inp):
        seen.append("first")
        return [Offspring(operator="first", patch=tool("x"), hypothesis="h", evidence=("e=1",))]

    def second(inp):
        seen.append("second")
        return [Offspring(operator="second", patch=tool("x"), hypothesis="h", evidence=()),
                Offspring(operator="second", patch=tool("y"), hypothesis="h", evidence=())]

    result = plan(operators=[first, second])
    assert seen == ["first", "second"]
    assert [suggestion_operator(s) for s in result.offspring] == ["first", "second"]
    assert result.record.mutation_operator_counts == {"first": 1, "second": 1}
    assert result.offspring[0].evidence[-1] == "e=1"


def test_operator_limits_can_only_tighten_the_policy():
    def limited(inp):
        return [Offspring(operator="limited", patch=tool("x"), hypothesis="h", evidence=(),
                          safety_limits=TrialSafetyLimits(max_tasks=3, max_token_budget=10**9,
                                                          allowed_task_classes=("migration",),
                                                          requires_approval=True))]

    [s] = plan(operators=[limited]).offspring
    assert s.safety_limits == TrialSafetyLimits(max_tasks=3, max_token_budget=100_000,
                                                max_traffic_share_basis_points=1_000,
                                                allowed_task_classes=("migration",), requires_approval=True)
    assert s.measurement_plan.window_tasks == 3


def test_operator_input_carries_the_generation_context():
    captured = []
    parents = [trial("p1", tool("a"), score=1.0)]

    def spy(inp):
        captured.append(inp)
        return []

    assert plan(traces=pressure_traces(2), completed=parents, generation=5, operators=[spy]) is None
    [inp] = captured
    assert inp.controller_node_id == "root" and inp.generation == 5 and inp.policy == POLICY
    assert len(inp.recent_traces) == 2 and [p.trial_id for p in inp.elite_parents] == ["p1"]


def test_suggestion_operator_reads_the_first_operator_entry():
    s = GeneSuggestion(id="s", suggested_by_node_id="root", target_node_id="root", source=Other("x"),
                       patch=tool("a"), hypothesis="h",
                       evidence=("a=1", "evolution_operator=one", "evolution_operator=two"))
    assert suggestion_operator(s) == "one"
    assert suggestion_operator(evolve(s, evidence=("a=1",))) == "unknown"


# -- elite parents (step 2) ---------------------------------------------------------------------------

def test_elite_parents_rank_by_archive_score_else_total_score():
    completed = [
        trial("promoted-low", tool("a"), score=1.0),
        trial("pruned-archived", tool("b"), status=StoredTrialStatus.Pruned, score=-10.0),
        trial("rejected", tool("c"), status=StoredTrialStatus.Rejected, score=99.0),
        trial("frozen", tool("d"), status=StoredTrialStatus.Frozen, score=99.0),
        trial("promoted-high", tool("e"), score=5.0),
        trial("other-controller", tool("f"), score=50.0, controller="team"),
    ]
    archive = [archived("pruned-archived", 7.0),
               archived("promoted-low", 100.0, status=PopulationArchiveStatus.Dominated)]
    elite = elite_parents("root", completed, archive, elite_count=4)
    assert [r.trial_id for r in elite] == ["pruned-archived", "promoted-high", "promoted-low"]
    assert [r.trial_id for r in elite_parents("root", completed, archive, elite_count=2)] == \
        ["pruned-archived", "promoted-high"]


def test_elite_ties_break_on_the_newest_update_and_archive_status_matters():
    completed = [trial("old", tool("a"), score=2.0, updated=1), trial("new", tool("b"), score=2.0, updated=5)]
    assert [r.trial_id for r in elite_parents("root", completed, [], 4)] == ["new", "old"]
    for status in (PopulationArchiveStatus.ParetoFrontier, PopulationArchiveStatus.Promoted,
                   PopulationArchiveStatus.SelectedForTrial):
        ranked = elite_parents("root", completed, [archived("old", 9.0, status=status)], 4)
        assert ranked[0].trial_id == "old"
    ranked = elite_parents("root", completed, [archived("old", 9.0, status=PopulationArchiveStatus.Pruned)], 4)
    assert ranked[0].trial_id == "new"


def test_generation_evidence_and_record_name_the_elite_parents():
    completed = [trial("p1", tool("a"), score=3.0), trial("p2", tool("b"), score=1.0)]
    result = plan(traces=pressure_traces(), completed=completed)
    assert result.record.parent_trial_ids == ("p1", "p2")
    guardrail = next(s for s in result.offspring if suggestion_operator(s) == "add_prompt_parsimony_guardrail")
    assert guardrail.evidence[:3] == ("evolution_generation=1", "evolution_operator=add_prompt_parsimony_guardrail",
                                      "evolution_parent_trial_ids=p1,p2")


# -- add_prompt_parsimony_guardrail ---------------------------------------------------------------------

def test_guardrail_needs_enough_traces_and_a_high_integer_average():
    assert plan(traces=pressure_traces(4)) is None
    exact = [trace(input_tokens=120_000) for _ in range(4)] + [trace(input_tokens=120_003)]
    assert plan(traces=exact) is not None   # integer average 120000 meets the threshold
    below = [trace(input_tokens=119_999) for _ in range(4)] + [trace(input_tokens=120_003)]
    assert plan(traces=below) is None        # 119999.8 truncates to 119999


def test_guardrail_is_not_repeated_while_an_active_one_exists():
    component = PromptComponent(id="old", text="t", tags=(PARSIMONY_TAG,))
    champion = genome()
    for section in PromptSection:
        guarded = apply_patch(champion, AddPromptComponent(node_id="root", section=section, component=component))
        assert plan(guarded, traces=pressure_traces()) is None
    inactive = apply_patch(champion, AddPromptComponent(node_id="root", section=PromptSection.DomainHints,
                                                        component=evolve(component, active=False)))
    assert plan(inactive, traces=pressure_traces()) is not None


def test_guardrail_needs_the_controller_in_the_champion():
    result = plan_generation(controller_node_id="ghost", champion=genome(), policy=POLICY, completed=(), archive=(),
                             queued_count=0, recent_traces=pressure_traces(), generation=1, now=T0,
                             new_id=SequentialIds("s"))
    assert result is None


# -- retire_low_fitness_child ---------------------------------------------------------------------------

def test_retires_the_child_with_the_lowest_poor_average():
    champion = genome("coder", "helper")
    traces = failing_traces(5, "coder") + [trace("helper", merged=True) for _ in range(5)]
    [s] = plan(champion, traces=traces).offspring
    assert suggestion_operator(s) == "retire_low_fitness_child"
    assert s.patch == SetNodeStatus(node_id="coder", status=NodeLifecycleStatus.Retired)
    assert s.hypothesis == "A child has sustained poor rolling direct fitness; trial retiring it from routing."
    # score per trace: -8 outcome - 5 failure penalty = -13
    assert s.evidence[2:] == ("candidate_child=coder", "child_task_count=5", "child_average_score=-13.000")


def test_retirement_needs_two_live_children_enough_tasks_and_a_low_enough_average():
    assert plan(genome("coder"), traces=failing_traces(5)) is None   # a single child is never retired
    retired_sibling = apply_patch(genome("coder", "helper"),
                                  SetNodeStatus(node_id="helper", status=NodeLifecycleStatus.Retired))
    assert plan(retired_sibling, traces=failing_traces(5)) is None
    assert plan(genome("coder", "helper"), traces=failing_traces(4)) is None
    mild = [trace("coder", merged=False) for _ in range(5)]              # -5.0 each: exactly the threshold
    assert plan(genome("coder", "helper"), traces=mild).offspring[0].patch.node_id == "coder"
    milder = [trace("coder", merged=False, outcome_score=0.5) for _ in range(5)]
    assert plan(genome("coder", "helper"), traces=milder) is None


# -- recombine_elite_parent_patches ----------------------------------------------------------------------

def test_recombines_the_first_compatible_elite_pair():
    completed = [trial("p1", tool("a"), score=3.0), trial("p2", tool("a"), score=2.0),
                 trial("p3", tool("b"), score=1.0)]
    # p1+p2 add the same tool name twice: it applies (tools are a list), so it is the first pair
    [s] = plan(completed=completed).offspring
    assert suggestion_operator(s) == "recombine_elite_parent_patches"
    assert s.patch == Batch(patches=(tool("a"), tool("a")))
    assert "evolution_parent_trial_ids=p1,p2" in s.evidence
    assert s.evidence[-2:] == ("left_parent=p1", "right_parent=p2")
    assert s.hypothesis == "Compatible elite parent patches can be trialed together as a recombined offspring."


def test_recombination_skips_pairs_that_do_not_apply():
    retire_ghost = SetNodeStatus(node_id="ghost", status=NodeLifecycleStatus.Retired)
    completed = [trial("p1", retire_ghost, score=3.0), trial("p2", tool("a"), score=2.0),
                 trial("p3", tool("b"), score=1.0)]
    [s] = plan(completed=completed).offspring
    assert s.patch == Batch(patches=(tool("a"), tool("b")))
    assert "evolution_parent_trial_ids=p2,p3" in s.evidence
    assert plan(completed=completed[:2]) is None


def test_reference_offspring_apply_to_the_champion():
    champion = genome("coder", "helper")
    traces = pressure_traces() + [evolve(t, input_tokens=200_000) for t in failing_traces(5, "helper")]
    completed = [trial("p1", tool("a"), score=3.0), trial("p2", tool("b"), score=2.0)]
    result = plan(champion, traces=traces, completed=completed)
    assert [suggestion_operator(s) for s in result.offspring] == [
        "add_prompt_parsimony_guardrail", "retire_low_fitness_child", "recombine_elite_parent_patches"]
    assert result.record.mutation_operator_counts == {
        "add_prompt_parsimony_guardrail": 1, "retire_low_fitness_child": 1, "recombine_elite_parent_patches": 1}
    for s in result.offspring:
        assert applies_cleanly(champion, s.patch)
        assert validate_genome(apply_patch(champion, s.patch)) == []
