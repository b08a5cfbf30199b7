"""Properties of the evolution decider over random sequences of suggestions and decisions."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from vsm_actors import codec
from vsm_actors.core.evolution.activation import start_next_trial
from vsm_actors.core.evolution.controller import (
    AdoptPatch, Ctx, EndCandidate, EvolutionState, promote, prune, queue_candidate,
)
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.ids import SequentialIds, SteppingClock
from vsm_actors.core.model.node import ViableNode
from vsm_actors.core.model.patch import AddChild, apply_patch
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialSafetyLimits
from vsm_actors.core.model.validation import validate_genome
from vsm_actors.files.genome_files import parse_genome_text

GENOME = parse_genome_text("""
id: prop
root:
  id: root
  name: root
  children:
    - {name: coder, leaf_operation: coding}
""", name="prop.yaml")

steps = st.lists(st.tuples(st.sampled_from(["coding", "reviewer", "tester"]), st.booleans()), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(steps)
def test_champion_is_base_plus_promoted_patches_and_pruning_leaves_no_actor(plan):
    ctx = Ctx(now=SteppingClock(), new_id=SequentialIds("p"), to_json=codec.to_wire)
    state = EvolutionState(controller_id="root", champion=GENOME)
    expected = GENOME
    live_candidates: set[str] = set()
    for n, (preset, keep) in enumerate(plan):
        leaf = ViableNode.leaf(f"leaf-{n}", f"leaf-{n}", getattr(LeafOperationSpec, preset)())
        suggestion = GeneSuggestion.new("root", "root", GeneSuggestionSourceKind.System3StarAudit,
                                        AddChild(parent_id="root", child=leaf), "try it", ctx.new_id,
                                        safety_limits=TrialSafetyLimits(max_tasks=5))
        state, _ = queue_candidate(state, suggestion, ctx)
        state, effects = start_next_trial(state, ctx)
        assert state.active is not None
        live_candidates |= {n for s in effects.structure for n in getattr(s, "nodes", ())}
        state, effects = (promote if keep else prune)(state, ctx)
        for change in effects.structure:
            if isinstance(change, EndCandidate):
                live_candidates -= set(change.nodes)
            if isinstance(change, AdoptPatch):
                live_candidates -= set(change.nodes)
        if keep:
            expected = apply_patch(expected, suggestion.patch)
        assert state.active is None
    assert live_candidates == set()  # every candidate actor was stopped or adopted
    assert set(state.champion.nodes) == set(expected.nodes)
    assert {k: v for k, v in state.champion.nodes.items()} == dict(expected.nodes)
    assert validate_genome(state.champion) == []
    # the core invariant: no node with children holds an execution capability
    for node in state.champion.nodes.values():
        if node.children:
            caps = node.capabilities()
            assert not (caps.can_write_code or caps.can_run_tests or caps.can_write_filesystem)
