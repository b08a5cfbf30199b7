"""The scripted world (core/world.py, DESIGN 3.5): rule merging, `when` semantics, what the world
sees of a genome (operation, specialist, team), and seeded draws that are deterministic,
independent across keys, and calibrated."""

from __future__ import annotations

import pytest
from attrs import evolve
from hypothesis import given, settings, strategies as st

from vsm_actors.core.model.genes import RoutingRule
from vsm_actors.core.world import (
    DirectiveMix, LeafView, SimulationSpec, WorldCondition, WorldEffect, WorldRule, WorldSpec,
    draw_directive, effect_for, holds, is_specialist, leaf_view, operation_name, team_operations,
    uniform_int, unit_draw, world_outcome,
)
from vsm_actors.files.genome_files import parse_genome_text

GENOME = parse_genome_text("""\
id: world-test
root:
  id: root
  name: root
  children:
    - {name: coder, leaf_operation: coding, metadata: {specialties: "docs, migration"}}
    - {id: rev, name: the-reviewer, leaf_operation: reviewer}
    - {name: auditor, leaf_operation: {kind: {Custom: Security-Audit}, allows_review: true}}
    - name: team
      children:
        - {name: tester, leaf_operation: tester}
        - {name: team-coder, leaf_operation: coding}
routing_rules:
  - {id: reviews, node_id: root, target_child: rev, task_class: review}
  - {id: qa, node_id: team, target_child: tester, task_class: qa}
""")


def view(task_class="feature", operation="coding", leaf="c", specialist=False, team=()) -> LeafView:
    return LeafView(task_class=task_class, operation=operation, leaf_id=leaf, leaf_name=f"{leaf}-name",
                    specialist=specialist, team_operations=frozenset(team))


def rule(then: WorldEffect, **when) -> WorldRule:
    return WorldRule(when=WorldCondition(**when), then=then)


# -- merging -----------------------------------------------------------------------------------


def test_built_in_default_fills_what_the_world_default_leaves_out():
    assert effect_for(WorldSpec(), view()) == WorldEffect(success=0.8, tokens=(800, 1600), latency_ms=(100, 900))
    world = WorldSpec(default=WorldEffect(success=0.5))
    assert effect_for(world, view()) == WorldEffect(success=0.5, tokens=(800, 1600), latency_ms=(100, 900))


def test_every_rule_that_holds_applies_in_order_and_later_keys_win():
    world = WorldSpec(default=WorldEffect(success=0.7, tokens=(10, 20), latency_ms=(1, 2)), rules=(
        rule(WorldEffect(success=0.1, tokens=(5, 5))),                        # always
        rule(WorldEffect(success=0.2), classes=("review",)),                  # not for features
        rule(WorldEffect(tokens=(7, 9), latency_ms=(3, 4)), operations=("coding",)),
        rule(WorldEffect(success=0.3)),                                       # always, last
    ))
    assert effect_for(world, view()) == WorldEffect(success=0.3, tokens=(7, 9), latency_ms=(3, 4))
    assert effect_for(world, view(operation="testing")) == WorldEffect(success=0.3, tokens=(5, 5), latency_ms=(1, 2))
    # an earlier rule's key stays when no later rule sets it
    first_only = WorldSpec(rules=world.rules[:3])
    assert effect_for(first_only, view(task_class="review", operation="testing")).success == 0.2
    assert effect_for(first_only, view(task_class="review", operation="testing")).tokens == (5, 5)


def test_numbers_are_ranges_of_one_and_conditions_normalize():
    assert WorldEffect(tokens=500, latency_ms=[1, 2]) == WorldEffect(tokens=(500, 500), latency_ms=(1, 2))
    assert WorldCondition(operations="Coding", team_has=["Testing"], classes="a") == WorldCondition(
        operations=("coding",), team_has=("testing",), classes=("a",))
    assert LeafView(task_class=None, operation="Reviewing", leaf_id="x", leaf_name="x",
                    team_operations={"Coding"}).team_operations == frozenset({"coding"})


# -- `when` ----------------------------------------------------------------------------------------


def test_an_empty_condition_always_holds():
    assert holds(WorldCondition(), view()) and holds(WorldCondition(), view(task_class=None, operation=""))


def test_class_any_of_exact():
    assert holds(WorldCondition(classes=("review", "feature")), view(task_class="feature"))
    assert not holds(WorldCondition(classes=("review",)), view(task_class="feature"))
    assert not holds(WorldCondition(classes=("Feature",)), view(task_class="feature"))
    assert not holds(WorldCondition(classes=("feature",)), view(task_class=None))


def test_operation_any_of_case_insensitive():
    assert holds(WorldCondition(operations=("Reviewing", "CODING")), view(operation="coding"))
    assert holds(WorldCondition(operations=("security-audit",)), view(operation="Security-Audit"))
    assert not holds(WorldCondition(operations=("reviewing",)), view(operation="coding"))


def test_leaf_by_id_or_name():
    assert holds(WorldCondition(leaves=("c",)), view(leaf="c"))
    assert holds(WorldCondition(leaves=("other", "c-name")), view(leaf="c"))
    assert not holds(WorldCondition(leaves=("d",)), view(leaf="c"))


def test_specialist_true_false_or_unset():
    assert holds(WorldCondition(specialist=True), view(specialist=True))
    assert not holds(WorldCondition(specialist=True), view(specialist=False))
    assert holds(WorldCondition(specialist=False), view(specialist=False))
    assert not holds(WorldCondition(specialist=False), view(specialist=True))
    assert holds(WorldCondition(specialist=None), view(specialist=True))


def test_team_has_any_of_the_listed_kinds():
    team = view(team=("reviewing",))
    assert holds(WorldCondition(team_has=("reviewing",)), team)
    assert holds(WorldCondition(team_has=("testing", "reviewing")), team)  # any of, not all of
    assert not holds(WorldCondition(team_has=("testing",)), team)
    assert not holds(WorldCondition(team_has=("reviewing",)), view(team=()))


def test_all_given_keys_must_hold():
    when = WorldCondition(classes=("review",), operations=("coding",), specialist=False)
    assert holds(when, view(task_class="review", operation="coding"))
    assert not holds(when, view(task_class="review", operation="reviewing"))
    assert not holds(when, view(task_class="feature", operation="coding"))
    assert not holds(when, view(task_class="review", operation="coding", specialist=True))


# -- the genome as the world sees it ----------------------------------------------------------------


def test_operation_names():
    names = {node_id: operation_name(GENOME.node(node_id)) for node_id in ("coder", "rev", "auditor", "tester")}
    assert names == {"coder": "coding", "rev": "reviewing", "auditor": "security-audit", "tester": "testing"}
    assert operation_name(GENOME.node("root")) == ""


def test_specialist_from_a_routing_rule_of_its_parent():
    assert is_specialist(GENOME, "rev", "review") and is_specialist(GENOME, "tester", "qa")
    assert not is_specialist(GENOME, "rev", "feature")
    # a rule of another metasystem naming the leaf does not count (validation refuses one anyway)
    stray = RoutingRule(id="stray", node_id="team", target_child="coder", task_class="perf")
    assert not is_specialist(evolve(GENOME, routing_rules=(*GENOME.routing_rules, stray)), "coder", "perf")
    assert not is_specialist(GENOME, "rev", None) and not is_specialist(GENOME, "rev", "")


def test_specialist_from_metadata_specialties():
    assert is_specialist(GENOME, "coder", "docs") and is_specialist(GENOME, "coder", "migration")
    assert not is_specialist(GENOME, "coder", "doc") and not is_specialist(GENOME, "coder", "Docs")
    assert not is_specialist(GENOME, "auditor", "docs")


def test_team_operations_are_the_sibling_leaves_kinds():
    assert team_operations(GENOME, "coder") == {"reviewing", "security-audit"}  # `team` is a metasystem
    assert team_operations(GENOME, "tester") == {"coding"}
    assert team_operations(GENOME, "root") == frozenset()


def test_leaf_view_puts_it_together():
    assert leaf_view(GENOME, "rev", "review") == LeafView(
        task_class="review", operation="reviewing", leaf_id="rev", leaf_name="the-reviewer", specialist=True,
        team_operations=frozenset({"coding", "security-audit"}))
    world = WorldSpec(rules=(rule(WorldEffect(success=0.95), classes=("review",), operations=("reviewing",),
                                  leaves=("the-reviewer",), specialist=True, team_has=("coding",)),))
    assert effect_for(world, leaf_view(GENOME, "rev", "review")).success == 0.95
    assert effect_for(world, leaf_view(GENOME, "coder", "review")).success == 0.8


# -- draws ---------------------------------------------------------------------------------------------


def test_unit_draw_is_fixed_by_seed_and_key():
    assert unit_draw(7, "a", 1) == unit_draw(7, "a", 1)
    assert len({unit_draw(7, "a", 1), unit_draw(8, "a", 1), unit_draw(7, "a", 2), unit_draw(7, "b", 1)}) == 4
    assert all(0 <= unit_draw(s, "k") < 1 for s in range(500))


def test_uniform_int_covers_its_range():
    values = [uniform_int(3, 2, 5, "k", i) for i in range(2000)]
    assert set(values) == {2, 3, 4, 5}
    assert all(400 < values.count(v) < 600 for v in (2, 3, 4, 5))
    assert uniform_int(3, 9, 9, "k") == 9


def test_world_outcome_is_deterministic_and_in_range():
    world = WorldSpec(default=WorldEffect(success=0.5, tokens=(100, 200), latency_ms=(10, 20)))
    outcomes = [world_outcome(world, view(), 11, ("d", i)) for i in range(300)]
    assert outcomes == [world_outcome(world, view(), 11, ("d", i)) for i in range(300)]
    assert outcomes != [world_outcome(world, view(), 12, ("d", i)) for i in range(300)]
    assert all(100 <= o.tokens <= 200 and 10 <= o.latency_ms <= 20 for o in outcomes)
    assert len({o.tokens for o in outcomes}) > 50


def test_success_tokens_and_latency_are_drawn_independently():
    world = WorldSpec(default=WorldEffect(success=0.5, tokens=(0, 1000), latency_ms=(0, 1000)))
    outcomes = [world_outcome(world, view(), 5, ("d", i)) for i in range(4000)]
    won = [o.tokens for o in outcomes if o.success]
    lost = [o.tokens for o in outcomes if not o.success]
    assert abs(sum(won) / len(won) - sum(lost) / len(lost)) < 40  # success says nothing of tokens
    same = sum(o.tokens == o.latency_ms for o in outcomes)
    assert same < 20


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.8, 0.95, 1.0])
def test_success_rate_over_5000_draws_matches_the_probability(p):
    world = WorldSpec(rules=(rule(WorldEffect(success=p), classes=("feature",)),))
    wins = sum(world_outcome(world, view(), 42, ("task", i, "leaf")).success for i in range(5000))
    assert abs(wins / 5000 - p) <= 0.03


# -- directives --------------------------------------------------------------------------------------

SPEC = SimulationSpec(name="s", directives=(
    DirectiveMix(task_class="feature", weight=3, title="Implement feature {n}",
                 metadata={"requires_code_write": "true"}),
    DirectiveMix(task_class="review", title="Review change {n}", body="Look at change {n} of {n}"),
))


def test_draw_directive_fills_number_body_and_metadata():
    drawn = {draw_directive(SPEC, 1, n)[0]: (n, draw_directive(SPEC, 1, n)) for n in range(1, 50)}
    n, (cls, title, body, meta) = drawn["feature"]
    assert (title, body, meta) == (f"Implement feature {n}", f"Implement feature {n}",
                                   {"requires_code_write": "true", "task_class": "feature"})
    n, (cls, title, body, meta) = drawn["review"]
    assert (title, body, meta) == (f"Review change {n}", f"Look at change {n} of {n}", {"task_class": "review"})
    assert draw_directive(SPEC, 1, 17) == draw_directive(SPEC, 1, 17)


mixes = st.lists(
    st.tuples(st.sampled_from(["feature", "review", "docs", "migration", "bug", "perf"]),
              st.floats(min_value=0.25, max_value=10, allow_nan=False)),
    min_size=1, max_size=5, unique_by=lambda t: t[0])


@settings(max_examples=40, deadline=None)
@given(mix=mixes, seed=st.integers(min_value=0, max_value=2**32), n=st.integers(min_value=1, max_value=10**6))
def test_draw_directive_always_returns_a_class_of_the_mix(mix, seed, n):
    spec = evolve(SPEC, directives=tuple(DirectiveMix(task_class=c, weight=w, title="t {n}") for c, w in mix))
    cls, title, _, meta = draw_directive(spec, seed, n)
    assert cls in {c for c, _ in mix} and meta["task_class"] == cls and title == f"t {n}"


@settings(max_examples=15, deadline=None)
@given(mix=mixes, seed=st.integers(min_value=0, max_value=2**32))
def test_draw_directive_respects_the_weights(mix, seed):
    spec = evolve(SPEC, directives=tuple(DirectiveMix(task_class=c, weight=w, title="t") for c, w in mix))
    draws = 3000
    classes = [draw_directive(spec, seed, n)[0] for n in range(1, draws + 1)]
    total = sum(w for _, w in mix)
    for c, w in mix:
        assert abs(classes.count(c) / draws - w / total) < 0.05, (c, w, total)
