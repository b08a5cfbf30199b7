"""Specialization operators: each proposes exactly when its evidence holds, and every proposal
applies to the champion and leaves a valid genome (also over random trace mixes)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from attrs import evolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vsm_actors.core.control.routing import choose_child
from vsm_actors.core.evolution import operators as ops
from vsm_actors.core.evolution.candidates import build_candidate
from vsm_actors.core.evolution.generation import OperatorInput, plan_generation, suggestion_operator
from vsm_actors.core.evolution.operators import (
    ALL_OPERATORS, SPECIALIZATION_OPERATORS, SpecializationPolicy, add_specialist_sibling,
    merge_indistinguishable_leaves, promote_overloaded_leaf, retire_redundant_specialist,
    specialization_operators, task_class_of, trace_succeeded,
)
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.genes import RoutingRule
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.ids import SequentialIds
from vsm_actors.core.model.node import ModelSpec, NodeLifecycleStatus, ToolSpec, ViableNode
from vsm_actors.core.model.patch import (
    AddChild, AddRoutingRule, Batch, PromoteLeafToMetasystem, RemoveRoutingRule, RemoveSubtree, apply_patch,
)
from vsm_actors.core.model.records import EvolutionPolicy
from vsm_actors.core.model.task import TaskPacket
from vsm_actors.core.model.trace import TaskTrace
from vsm_actors.core.model.validation import validate_genome

T0 = datetime(2026, 1, 2, tzinfo=timezone.utc)
_ids = SequentialIds("trace")


def coder(node_id: str, **kw) -> ViableNode:
    return ViableNode.leaf(node_id, node_id, LeafOperationSpec.coding(),
                           model=ModelSpec(provider="local", model="m1"), tools=(ToolSpec(name="git"),), **kw)


def org(*children: ViableNode, rules: tuple[RoutingRule, ...] = ()) -> OrganizationalGenome:
    g = OrganizationalGenome.with_root("champion", ViableNode.metasystem("root", "root"))
    for child in children:
        g = g.add_child("root", child)
    return evolve(g, routing_rules=rules)


def work(node: str, cls: str | None, successes: int, failures: int, tokens: int = 1000) -> list[TaskTrace]:
    meta = {} if cls is None else {"task_metadata.task_class": cls}
    out = []
    for ok in [True] * successes + [False] * failures:
        out.append(TaskTrace(id=_ids(), task_id="t", genome_id="champion", assigned_node_id=node, started_at=T0,
                             merged=ok, tests_passed=ok, input_tokens=tokens, metadata=meta))
    return out


def inp(genome: OrganizationalGenome, traces, controller: str = "root") -> OperatorInput:
    return OperatorInput(controller_node_id=controller, champion=genome, policy=EvolutionPolicy(),
                         recent_traces=tuple(traces), elite_parents=(), generation=1)


def assert_applies(genome, proposals):
    for p in proposals:
        out = apply_patch(genome, p.patch)
        assert validate_genome(out) == [], p


def routed(genome, controller, cls):
    task = TaskPacket.new("work", "goal", SequentialIds("task"), metadata={"task_class": cls})
    return choose_child(genome, controller, task).child_id


# a coder that fails half its migrations and 1 in 10 of its features
WEAK = work("coder", "migration", 5, 5) + work("coder", "feature", 9, 1)


# -- task classes and outcomes ----------------------------------------------------------------------

def test_task_class_prefers_explicit_metadata_then_the_title():
    def t(**meta):
        return TaskTrace(id="x", task_id="t", genome_id="g", assigned_node_id="n", started_at=T0, metadata=meta)

    assert task_class_of(t(**{"task_metadata.task_class": "a", "task_class": "b", "task_title": "c d"})) == "a"
    assert task_class_of(t(task_class="b", task_title="c d")) == "b"
    assert task_class_of(t(task_title="Migrate 12 Users tables now")) == "migrate-users"
    assert task_class_of(t(task_title="fix_bug #42: parser")) == "fix-bug"
    assert task_class_of(t(task_title="Refactor")) == "refactor"
    assert task_class_of(t(task_title="123 !!")) == ""
    assert task_class_of(t()) == ""


@pytest.mark.parametrize("merged, tests, expected", [
    (True, None, True), (True, False, True), (False, True, False), (None, False, False),
    (None, True, None), (None, None, None),
])
def test_success_is_a_merge_and_failure_a_refused_merge_or_failed_tests(merged, tests, expected):
    trace = TaskTrace(id="x", task_id="t", genome_id="g", assigned_node_id="n", started_at=T0, merged=merged,
                      tests_passed=tests)
    assert trace_succeeded(trace) is expected


def test_operator_tuples():
    assert SPECIALIZATION_OPERATORS == (add_specialist_sibling, promote_overloaded_leaf,
                                        retire_redundant_specialist, merge_indistinguishable_leaves)
    assert ALL_OPERATORS[3:] == SPECIALIZATION_OPERATORS and len(ALL_OPERATORS) == 7


# -- a. add_specialist_sibling ------------------------------------------------------------------------

def test_adds_a_specialist_sibling_for_a_weak_class():
    genome = org(coder("coder"), coder("helper"))
    traces = WEAK + work("helper", "feature", 4, 1)
    [p] = add_specialist_sibling(inp(genome, traces))
    assert p.operator == "add_specialist_sibling"
    add, route = p.patch.patches
    assert isinstance(add, AddChild) and add.parent_id == "root"
    spec, leaf = add.child, genome.node("coder")
    assert spec.id == spec.name == "migration-specialist"
    assert (spec.leaf_operation, spec.model, spec.tools) == (leaf.leaf_operation, leaf.model, leaf.tools)
    assert spec.metadata["specialties"] == "migration" and spec.status is NodeLifecycleStatus.Probation
    assert route == AddRoutingRule(rule=RoutingRule(id="route-migration-to-specialist", node_id="root",
                                                    target_child="migration-specialist", task_class="migration"))
    assert p.safety_limits.allowed_task_classes == ("migration",)
    assert p.safety_limits.max_tasks and p.safety_limits.max_token_budget and p.safety_limits.max_traffic_share_basis_points
    for entry in ("node=coder", "cluster=migration", "size=10", "success_rate=0.50", "rest_success_rate=0.90",
                  "avg_tokens=1000"):
        assert entry in p.evidence
    assert p.hypothesis
    assert_applies(genome, [p])
    after = apply_patch(genome, p.patch)
    assert routed(after, "root", "migration") == "migration-specialist"
    assert routed(after, "root", "feature") == "coder"


def test_no_specialist_for_a_small_cluster_or_a_small_gap():
    genome = org(coder("coder"))
    small = work("coder", "migration", 3, 4) + work("coder", "feature", 9, 1)
    assert add_specialist_sibling(inp(genome, small)) == []
    # 0.80 vs 0.90 on the rest (0.85 overall): a 0.10 gap is no evidence
    close = work("coder", "migration", 8, 2) + work("coder", "feature", 9, 1)
    assert add_specialist_sibling(inp(genome, close)) == []
    # exactly the gap: 0.70 vs 0.85 proposes
    edge = work("coder", "migration", 7, 3) + work("coder", "feature", 17, 3)
    assert len(add_specialist_sibling(inp(genome, edge))) == 1


def test_specialist_when_the_leaf_does_only_that_class_but_the_controller_does_better():
    genome = org(coder("coder"), coder("helper"))
    traces = work("coder", "migration", 4, 4) + work("helper", "feature", 12, 0)
    [p] = add_specialist_sibling(inp(genome, traces))
    assert "rest_success_rate=n/a" in p.evidence and "controller_success_rate=0.80" in p.evidence


def test_no_specialist_when_the_class_is_already_routed_or_claimed():
    rule = RoutingRule(id="r", node_id="root", target_child="helper", task_class="migration")
    assert add_specialist_sibling(inp(org(coder("coder"), coder("helper"), rules=(rule,)), WEAK)) == []
    claimed = coder("helper", metadata={"specialties": "docs, migration"})
    assert add_specialist_sibling(inp(org(coder("coder"), claimed), WEAK)) == []
    # a rule of another node or for another class does not count
    other = RoutingRule(id="r", node_id="root", target_child="helper", task_class="docs")
    assert len(add_specialist_sibling(inp(org(coder("coder"), coder("helper"), rules=(other,)), WEAK))) == 1


def test_specialist_names_and_rule_ids_stay_unique():
    taken = coder("migration-specialist")
    rule = RoutingRule(id="route-migration-to-specialist", node_id="root", target_child="migration-specialist",
                       task_class="other")
    genome = org(coder("coder"), taken, rules=(rule,))
    [p] = add_specialist_sibling(inp(genome, WEAK))
    add, route = p.patch.patches
    assert add.child.id == add.child.name == "migration-specialist-2"
    assert route.rule.id == "route-migration-to-specialist-2" and route.rule.target_child == "migration-specialist-2"
    assert_applies(genome, [p])


def test_title_classes_and_odd_class_names_make_valid_specialists():
    genome = org(coder("coder"))
    titled = [evolve(t, metadata={"task_title": f"Migrate {i} Users"}) for i, t in
              enumerate(work("coder", None, 3, 7))] + work("coder", "Feature Work!", 9, 1)
    [p] = add_specialist_sibling(inp(genome, titled))
    assert p.patch.patches[0].child.id == "migrate-users-specialist"
    assert p.patch.patches[1].rule.task_class == "migrate-users"
    weird = work("coder", "DB/Migration", 2, 8) + work("coder", "feature", 9, 1)
    [q] = add_specialist_sibling(inp(genome, weird))
    assert q.patch.patches[0].child.id == "db-migration-specialist" and q.patch.patches[1].rule.task_class == "DB/Migration"
    assert_applies(genome, [p, q])


def test_retired_leaves_and_metasystem_children_get_no_specialist():
    retired = org(coder("coder", status=NodeLifecycleStatus.Retired), coder("helper"))
    assert add_specialist_sibling(inp(retired, WEAK)) == []
    team = org(ViableNode.metasystem("coder", "coder"))
    team = team.add_child("coder", coder("worker"))
    assert add_specialist_sibling(inp(team, WEAK)) == []


def test_one_specialist_per_class_worst_gap_first():
    genome = org(coder("coder"), coder("helper"))
    traces = (WEAK + work("coder", "docs", 4, 6) + work("helper", "migration", 2, 8) + work("helper", "feature", 9, 1))
    proposals = add_specialist_sibling(inp(genome, traces))
    classes = [p.patch.patches[1].rule.task_class for p in proposals]
    assert classes == ["migration", "docs"]
    assert "node=helper" in proposals[0].evidence   # helper fails migrations worst
    assert_applies(genome, proposals)


# -- b. promote_overloaded_leaf ------------------------------------------------------------------------

def test_promotes_an_overloaded_leaf_over_a_generalist_and_a_specialist():
    genome = org(coder("coder"))
    [p] = promote_overloaded_leaf(inp(genome, WEAK))
    promote, add, route = p.patch.patches
    assert promote == PromoteLeafToMetasystem(node_id="coder", extracted_child_name="coder-generalist")
    assert add.parent_id == "coder" and add.child.id == "migration-specialist"
    assert route.rule == RoutingRule(id="route-migration-to-specialist", node_id="coder",
                                     target_child="migration-specialist", task_class="migration")
    assert p.safety_limits.allowed_task_classes == ("migration",)
    assert "leaf_trace_share=1.00" in p.evidence and "generalist=coder-generalist" in p.evidence
    after = apply_patch(genome, p.patch)
    assert validate_genome(after) == []
    assert after.node("coder").is_metasystem
    assert {c.id for c in after.children("coder")} == {"coder-generalist", "migration-specialist"}
    assert routed(after, "coder", "migration") == "migration-specialist"
    assert routed(after, "coder", "feature") == "coder-generalist"
    assert after.node("migration-specialist").capabilities().can_write_code


def test_promotion_needs_an_overloaded_leaf_and_a_weak_class():
    shared = org(coder("coder"), coder("helper"))
    # coder carries 20 of 30 traces (67%): a sibling, not a promotion
    traces = WEAK + work("helper", "feature", 9, 1)
    assert promote_overloaded_leaf(inp(shared, traces)) == []
    assert len(add_specialist_sibling(inp(shared, traces))) == 1
    # 20 of 24 (83%) is overloaded
    assert len(promote_overloaded_leaf(inp(shared, WEAK + work("helper", "feature", 4, 0)))) == 1
    even = work("coder", "migration", 9, 1) + work("coder", "feature", 9, 1)
    assert promote_overloaded_leaf(inp(org(coder("coder")), even)) == []


def test_promotion_ids_avoid_existing_nodes():
    genome = org(coder("coder"), ViableNode.metasystem("other", "other"))
    genome = genome.add_child("other", coder("coder-generalist"))
    genome = genome.add_child("other", coder("migration-specialist"))
    traces = WEAK
    [p] = promote_overloaded_leaf(inp(genome, traces))
    _, add, route = p.patch.patches
    assert "generalist=coder-generalist-2" in p.evidence
    assert add.child.id == "migration-specialist-2" == route.rule.target_child
    after = apply_patch(genome, p.patch)
    assert validate_genome(after) == []
    assert set(after.node("coder").children) == {"coder-generalist-2", "migration-specialist-2"}


# -- c. retire_redundant_specialist ------------------------------------------------------------------

SPEC_RULE = RoutingRule(id="route-migration-to-specialist", node_id="root", target_child="spec",
                        task_class="migration")


def specialist_org(**kw):
    return org(coder("coder"), coder("spec", metadata={"specialties": "migration"}, **kw), rules=(SPEC_RULE,))


def test_retires_a_specialist_without_an_advantage():
    genome = specialist_org()
    traces = work("spec", "migration", 8, 2) + work("coder", "feature", 9, 1)
    [p] = retire_redundant_specialist(inp(genome, traces))
    assert p.operator == "retire_redundant_specialist"
    assert p.patch == Batch(patches=(RemoveRoutingRule(rule_id="route-migration-to-specialist"),
                                     RemoveSubtree(node_id="spec")))
    assert p.safety_limits.allowed_task_classes == ("migration",)
    assert "success_rate=0.80" in p.evidence and "rest_success_rate=0.90" in p.evidence
    assert_applies(genome, [p])


def test_a_specialist_that_does_better_stays():
    genome = specialist_org()
    # 1.00 vs 0.90: an advantage of 0.10 >= 0.075
    assert retire_redundant_specialist(inp(genome, work("spec", "migration", 10, 0) + work("coder", "feature", 9, 1))) == []
    # 0.90 vs 0.80 is still better by 0.10
    assert retire_redundant_specialist(inp(genome, work("spec", "migration", 9, 1) + work("coder", "feature", 8, 2))) == []
    # too little evidence either way
    assert retire_redundant_specialist(inp(genome, work("spec", "migration", 3, 4) + work("coder", "feature", 9, 1))) == []
    assert retire_redundant_specialist(inp(genome, work("spec", "migration", 5, 5) + work("coder", "feature", 2, 1))) == []


def test_a_rule_target_counts_as_a_specialist_and_generalists_are_left_alone():
    genome = org(coder("coder"), coder("spec"), rules=(SPEC_RULE,))
    traces = work("spec", "migration", 6, 4) + work("coder", "feature", 9, 1)
    [p] = retire_redundant_specialist(inp(genome, traces))
    assert p.patch.patches[-1] == RemoveSubtree(node_id="spec")
    plain = org(coder("coder"), coder("spec"))
    assert retire_redundant_specialist(inp(plain, traces)) == []


def test_the_last_live_child_is_never_retired():
    genome = org(coder("coder", status=NodeLifecycleStatus.Retired),
                 coder("spec", metadata={"specialties": "migration"}), rules=(SPEC_RULE,))
    traces = work("spec", "migration", 5, 5) + work("coder", "feature", 9, 1)
    assert retire_redundant_specialist(inp(genome, traces)) == []


# -- d. merge_indistinguishable_leaves -------------------------------------------------------------------

def test_merges_two_indistinguishable_leaves_keeping_the_busier():
    rule = RoutingRule(id="to-b", node_id="root", target_child="b", keywords=("db",))
    genome = org(coder("a"), coder("b"), rules=(rule,))
    traces = work("a", "feature", 10, 2, tokens=1000) + work("b", "feature", 8, 2, tokens=1100)
    [p] = merge_indistinguishable_leaves(inp(genome, traces))
    assert p.patch == Batch(patches=(RemoveRoutingRule(rule_id="to-b"), RemoveSubtree(node_id="b")))
    assert "kept=a" in p.evidence and "removed=b" in p.evidence
    assert p.safety_limits.allowed_task_classes == ()
    assert_applies(genome, [p])
    # the busier one is kept wherever it is listed
    [q] = merge_indistinguishable_leaves(inp(genome, work("a", "feature", 8, 2) + work("b", "feature", 10, 2)))
    assert q.patch == Batch(patches=(RemoveSubtree(node_id="a"),))


def test_distinguishable_leaves_are_not_merged():
    genome = org(coder("a"), coder("b"))
    base = work("a", "feature", 8, 2, tokens=1000)
    # rates 0.80 vs 0.70: 0.10 >= 0.05
    assert merge_indistinguishable_leaves(inp(genome, base + work("b", "feature", 7, 3, tokens=1000))) == []
    # tokens 1000 vs 1300: 23% apart
    assert merge_indistinguishable_leaves(inp(genome, base + work("b", "feature", 8, 2, tokens=1300))) == []
    # too few traces on one side
    assert merge_indistinguishable_leaves(inp(genome, base + work("b", "feature", 6, 1, tokens=1000))) == []
    # different operation kinds
    mixed = org(coder("a"), ViableNode.leaf("b", "b", LeafOperationSpec.reviewer()))
    assert merge_indistinguishable_leaves(inp(mixed, base + work("b", "feature", 8, 2, tokens=1000))) == []
    assert len(merge_indistinguishable_leaves(inp(genome, base + work("b", "feature", 8, 2, tokens=1000)))) == 1


# -- shared behaviour -----------------------------------------------------------------------------------

def test_proposals_that_do_not_apply_are_skipped(monkeypatch):
    monkeypatch.setattr(ops, "applies_cleanly", lambda genome, patch: False)
    genome = org(coder("coder"))
    assert add_specialist_sibling(inp(genome, WEAK)) == []
    assert promote_overloaded_leaf(inp(genome, WEAK)) == []


def test_operators_need_a_metasystem_controller():
    genome = org(coder("coder"))
    for op in SPECIALIZATION_OPERATORS:
        assert op(inp(genome, WEAK, controller="coder")) == []
        assert op(inp(genome, WEAK, controller="ghost")) == []


def test_thresholds_come_from_the_policy():
    genome = org(coder("coder"))
    small = work("coder", "migration", 1, 3) + work("coder", "feature", 9, 1)
    assert add_specialist_sibling(inp(genome, small)) == []
    loose = specialization_operators(SpecializationPolicy(min_cluster_size=4))
    assert len(loose[0](inp(genome, small))) == 1
    strict = SpecializationPolicy(min_success_gap=0.5)
    assert add_specialist_sibling(inp(genome, WEAK), policy=strict) == []


def test_a_generation_with_all_operators_queues_specialization_offspring():
    genome = org(coder("coder"), coder("helper"))
    traces = WEAK + work("helper", "feature", 5, 1)   # coder carries 20 of 26: not overloaded
    plan = plan_generation(controller_node_id="root", champion=genome, policy=EvolutionPolicy(), completed=(),
                           archive=(), queued_count=0, recent_traces=traces, generation=2, now=T0,
                           new_id=SequentialIds("sugg"), operators=ALL_OPERATORS)
    assert [suggestion_operator(s) for s in plan.offspring] == ["add_specialist_sibling"]
    [s] = plan.offspring
    assert s.evidence[:2] == ("evolution_generation=2", "evolution_operator=add_specialist_sibling")
    assert "cluster=migration" in s.evidence
    assert s.safety_limits.allowed_task_classes == ("migration",)
    candidate = build_candidate(genome, s, "candidate-1")
    assert candidate.has_node("migration-specialist")


# -- property: every proposal applies and validates ---------------------------------------------------

def _genomes() -> list[OrganizationalGenome]:
    single = org(coder("coder"))
    pair = org(coder("coder"), coder("helper"))
    specialist = specialist_org()
    mixed = org(coder("coder"), ViableNode.leaf("rev", "rev", LeafOperationSpec.reviewer()),
                coder("spec", metadata={"specialties": "docs"}),
                coder("old", status=NodeLifecycleStatus.Retired),
                rules=(RoutingRule(id="docs", node_id="root", target_child="spec", task_class="docs"),))
    team = org(coder("coder"), ViableNode.metasystem("team", "team"))
    team = team.add_child("team", coder("worker"))
    team = team.add_child("team", coder("team-spec", metadata={"specialties": "migration"}))
    team = evolve(team, routing_rules=(RoutingRule(id="t", node_id="team", target_child="team-spec",
                                                   task_class="migration"),
                                       RoutingRule(id="to-team", node_id="root", target_child="team")))
    return [single, pair, specialist, mixed, team]


GENOMES = _genomes()
CLASSES = ["migration", "docs", "feature", "", "Fix 2 bugs", "DB/Migration"]


def _trace(node: str, cls: str, merged, tests, tokens: int) -> TaskTrace:
    meta = {"task_title": cls} if " " in cls else {"task_class": cls} if cls else {}
    return TaskTrace(id="x", task_id="t", genome_id="champion", assigned_node_id=node, started_at=T0,
                     merged=merged, tests_passed=tests, input_tokens=tokens, metadata=meta)


@st.composite
def scenarios(draw):
    """A genome, a controller in it, and a trace mix over its nodes (plus a stranger's)."""
    genome = GENOMES[draw(st.integers(0, len(GENOMES) - 1))]
    controller = draw(st.sampled_from([n for n, node in genome.nodes.items() if node.is_metasystem]))
    nodes = sorted(genome.nodes) + ["ghost"]
    # a success bias per (node, class) makes clusters that differ, as real work does
    bias = {(n, c): draw(st.sampled_from([0.1, 0.5, 0.8, 0.9])) for n in nodes for c in CLASSES}
    focus = draw(st.sampled_from([None, *nodes]))   # sometimes one node does nearly all the work
    traces = []
    for _ in range(draw(st.integers(0, 120))):
        node = focus if focus is not None and draw(st.floats(0, 1)) < 0.9 else draw(st.sampled_from(nodes))
        cls = draw(st.sampled_from(CLASSES))
        roll = draw(st.floats(0, 1))
        merged = draw(st.sampled_from([roll < bias[node, cls]] * 4 + [None]))
        tests = draw(st.sampled_from([merged, None, True, False]))
        traces.append(_trace(node, cls, merged, tests, draw(st.sampled_from([1000, 1050, 1100, 5000]))))
    return genome, controller, traces


LOOSE = SpecializationPolicy(min_cluster_size=3, min_baseline_size=2, min_success_gap=0.1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=scenarios())
def test_every_proposal_applies_and_validates(scenario):
    genome, controller, traces = scenario
    for operators in (SPECIALIZATION_OPERATORS, specialization_operators(LOOSE)):
        for op in operators:
            proposals = op(inp(genome, traces, controller))
            assert proposals == op(inp(genome, traces, controller))   # deterministic
            for p in proposals:
                after = apply_patch(genome, p.patch)
                assert validate_genome(after) == [], (p.operator, p.patch)
                assert p.evidence and p.hypothesis and p.safety_limits is not None
                # a removal never leaves the controller without a live child
                live = [c for c in after.children(controller) if c.status is not NodeLifecycleStatus.Retired]
                assert live
