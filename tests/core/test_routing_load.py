"""Load-aware routing (issue 10 point 2), against the pure core: among direct children equally able
to take a task, the one with room and the fewest tasks outstanding, ties by genome order; explicit
choices (assignment, target_child, rules) keep their child and wait when it is busy; without load
the router chooses as it always did."""

from __future__ import annotations

import itertools

from attrs import evolve
from hypothesis import given, settings, strategies as st

from vsm_actors.core.control.routing import (
    LEAF_CONCURRENCY, choose_child, has_room, leaf_can_take,
)
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.genes import RoutingRule
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.node import System3Config, ViableNode
from vsm_actors.core.model.task import TaskPacket

_ids = itertools.count()
SPECS = {"coding": LeafOperationSpec.coding, "reviewer": LeafOperationSpec.reviewer,
         "tester": LeafOperationSpec.tester}
NEEDS = ({"requires_code_write": "true"}, {"required_capability": "review"}, {"required_capability": "run_tests"}, {})


def task(**metadata) -> TaskPacket:
    return TaskPacket.new("work", "work goal", lambda: f"t-{next(_ids)}", metadata=metadata)


def org(kinds: list[str], *, metasystems: tuple[int, ...] = (), limit: int | None = None) -> OrganizationalGenome:
    """A root over children c0, c1, ... of the given leaf kinds (or metasystems at `metasystems`,
    each with one coder below it)."""
    g = OrganizationalGenome.with_root("g", ViableNode.metasystem("root", "root"))
    for i, kind in enumerate(kinds):
        if i in metasystems:
            g = g.add_child("root", ViableNode.metasystem(f"c{i}", f"c{i}"))
            g = g.add_child(f"c{i}", ViableNode.leaf(f"c{i}-coder", f"c{i}-coder", LeafOperationSpec.coding()))
        else:
            g = g.add_child("root", ViableNode.leaf(f"c{i}", f"c{i}", SPECS[kind]()))
    if limit is not None:
        g = g.replace_node(evolve(g.node("root"), system_3=System3Config(max_parallel_children=limit)))
    return g


def able(g: OrganizationalGenome, t: TaskPacket) -> list[str]:
    return [c.id for c in g.children("root") if c.is_metasystem or leaf_can_take(c, t) is None]


# -- properties -------------------------------------------------------------------------------------

shapes = st.lists(st.sampled_from(sorted(SPECS)), min_size=1, max_size=7).flatmap(
    lambda kinds: st.tuples(
        st.just(kinds),
        st.frozensets(st.integers(0, len(kinds) - 1), max_size=2),
        st.lists(st.integers(0, 3), min_size=len(kinds), max_size=len(kinds)),
        st.sampled_from(NEEDS),
        st.one_of(st.none(), st.integers(1, 4)),
    ))


@settings(max_examples=300, deadline=None)
@given(shapes)
def test_least_loaded_able_child_with_room_ties_by_genome_order(shape):
    kinds, metas, loads, needs, limit = shape
    g = org(kinds, metasystems=tuple(sorted(metas)), limit=limit)
    t = task(**needs)
    candidates = able(g, t)
    if not candidates:
        return
    outstanding = {f"c{i}": n for i, n in enumerate(loads) if n}
    decision = choose_child(g, "root", t, outstanding=outstanding)
    assert decision.child_id in candidates
    assert decision == choose_child(g, "root", t, outstanding=dict(outstanding))  # deterministic
    with_room = [c for c in candidates if has_room(g, "root", c, outstanding)]
    if not with_room:
        # everybody able is busy: the task waits (for the least loaded, first in genome order)
        assert decision.waiting
        assert outstanding.get(decision.child_id, 0) == min(outstanding.get(c, 0) for c in candidates)
        return
    assert not decision.waiting
    assert decision.child_id in with_room
    load = outstanding.get(decision.child_id, 0)
    # never a child with more outstanding while an equally able one with room has fewer
    assert all(outstanding.get(c, 0) >= load for c in with_room)
    # and among the least loaded, the first in genome order
    assert decision.child_id == next(c for c in with_room if outstanding.get(c, 0) == load)


@settings(max_examples=200, deadline=None)
@given(shapes)
def test_without_loads_the_choice_is_the_first_able_child(shape):
    kinds, metas, _loads, needs, limit = shape
    g = org(kinds, metasystems=tuple(sorted(metas)), limit=limit)
    t = task(**needs)
    candidates = able(g, t)
    if not candidates:
        return
    assert choose_child(g, "root", t).child_id == candidates[0]
    assert choose_child(g, "root", t, outstanding={}) == choose_child(g, "root", t)
    assert not choose_child(g, "root", t).waiting


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=4, max_size=4), st.integers(0, 3))
def test_explicit_choices_keep_their_child_whatever_its_load(loads, pick):
    g = org(["coding", "coding", "coding", "coding"])
    outstanding = {f"c{i}": n for i, n in enumerate(loads) if n}
    chosen = f"c{pick}"
    rules = evolve(g, routing_rules=(RoutingRule(id="r", node_id="root", target_child=chosen, task_class="x"),))
    for genome, t in ((g, task(requires_code_write="true", target_child=chosen)),
                      (g, evolve(task(requires_code_write="true"), assigned_to=chosen)),
                      (rules, task(requires_code_write="true", task_class="x"))):
        decision = choose_child(genome, "root", t, outstanding=outstanding)
        assert decision.child_id == chosen
        assert decision.waiting == (outstanding.get(chosen, 0) >= LEAF_CONCURRENCY)


# -- examples ---------------------------------------------------------------------------------------

def test_work_spreads_over_equally_able_leaves_and_waits_when_all_are_busy():
    g = org(["coding", "reviewer", "coding", "coding"])
    t = task(requires_code_write="true")
    assert choose_child(g, "root", t, outstanding={}).child_id == "c0"
    d = choose_child(g, "root", t, outstanding={"c0": 1})
    assert (d.child_id, d.waiting) == ("c2", False)
    assert "least loaded" in d.reason  # the route event says load chose the child
    assert choose_child(g, "root", t, outstanding={"c0": 1, "c2": 1}).child_id == "c3"
    busy = choose_child(g, "root", t, outstanding={"c0": 1, "c2": 1, "c3": 1})
    assert busy.waiting and busy.child_id == "c0"
    # the reviewer's load does not matter to coding work, nor coders' to review work
    assert choose_child(g, "root", task(required_capability="review"), outstanding={"c0": 1, "c2": 1, "c3": 1}) \
        .child_id == "c1"


def test_a_metasystem_child_always_has_room_and_max_parallel_children_bounds_the_working_ones():
    g = org(["coding", "coding", "coding"], metasystems=(1,))
    t = task(requires_code_write="true")
    assert choose_child(g, "root", t, outstanding={"c0": 1, "c1": 5}).child_id == "c2"
    d = choose_child(g, "root", t, outstanding={"c0": 1, "c1": 5, "c2": 1})
    assert (d.child_id, d.waiting) == ("c1", False)  # a metasystem queues for itself
    bounded = org(["coding", "coding", "coding", "coding"], limit=2)
    assert choose_child(bounded, "root", t, outstanding={"c0": 1}).child_id == "c1"
    assert choose_child(bounded, "root", t, outstanding={"c0": 1, "c1": 1}).waiting  # two at work already
    assert has_room(bounded, "root", "c2", {"c0": 1}) and not has_room(bounded, "root", "c2", {"c0": 1, "c3": 1})
