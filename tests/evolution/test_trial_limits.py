"""A trial never routes work its limits forbid (hypothesis over limits, counters and tasks)."""

from __future__ import annotations

from attrs import evolve
from hypothesis import given, settings, strategies as st

from vsm_actors.core.evolution.candidates import build_candidate
from vsm_actors.core.evolution.exposure import exposure_bucket
from vsm_actors.core.evolution.trials import ActiveTrial, choose_trial_route
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.ids import EPOCH
from vsm_actors.core.model.node import ViableNode
from vsm_actors.core.model.patch import AddChild
from vsm_actors.core.model.records import StoredTrialRecord
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialMode, TrialSafetyLimits
from vsm_actors.core.model.task import RiskClass, TaskPacket
from vsm_actors.files.genome_files import parse_genome_text

GENOME = parse_genome_text("""
id: limits
root:
  id: root
  name: root
  children:
    - {name: coder, leaf_operation: coding}
""", name="limits.yaml")

limits = st.builds(
    TrialSafetyLimits, max_tasks=st.none() | st.integers(0, 5), max_token_budget=st.none() | st.integers(0, 1000),
    max_traffic_share_basis_points=st.none() | st.integers(0, 10_000), max_files_touched=st.none() | st.integers(0, 3),
    allowed_task_classes=st.sampled_from([(), ("review",), ("feature", "docs")]), requires_approval=st.booleans())


@settings(max_examples=300, deadline=None)
@given(limits, st.sampled_from(list(TrialMode)), st.integers(0, 6), st.integers(0, 1200), st.text(min_size=1, max_size=8),
       st.sampled_from(["review", "feature", "docs", ""]), st.sampled_from(list(RiskClass)), st.integers(0, 5),
       st.booleans())
def test_trial_routes_only_what_its_limits_allow(lim, mode, routed, tokens, task_id, task_class, risk, files, approved):
    reviewer = ViableNode.leaf("rev", "rev", LeafOperationSpec.coding())
    suggestion = GeneSuggestion(id="s-1", suggested_by_node_id="root", target_node_id="root",
                                source=GeneSuggestionSourceKind.System3StarAudit,
                                patch=AddChild(parent_id="root", child=reviewer), hypothesis="h", trial_mode=mode,
                                safety_limits=lim)
    candidate = build_candidate(GENOME, suggestion, "cand")
    # the candidate's router must reach the new leaf: make it the first child
    root = candidate.node("root")
    candidate = candidate.replace_node(evolve(root, children=("rev", "coder")))
    record = evolve(StoredTrialRecord.active("root", GENOME.id, "cand", suggestion, EPOCH), routed_tasks=routed,
                    consumed_tokens=tokens)
    trial = ActiveTrial(record=record, candidate=candidate)
    meta = {"task_class": task_class, "estimated_files_touched": str(files), "requires_code_write": "true"}
    if approved:
        meta["trial_approved"] = "s-1"
    task = TaskPacket(id=task_id, title="t", goal="g", risk=risk, metadata=meta)
    route = choose_trial_route(trial, "root", task, workers=frozenset({"rev", "coder"}), champion=GENOME)
    if route is None:
        return
    assert mode is not TrialMode.Shadow
    assert lim.max_tasks is None or routed < lim.max_tasks
    assert lim.max_token_budget is None or tokens < lim.max_token_budget
    assert lim.max_files_touched is None or files <= lim.max_files_touched
    assert not lim.allowed_task_classes or task_class in lim.allowed_task_classes
    assert approved or not lim.requires_approval
    assert approved or risk not in (RiskClass.High, RiskClass.Critical)
    if not approved and mode in (TrialMode.Canary, TrialMode.Probation):
        bp = lim.max_traffic_share_basis_points
        assert bp is not None and exposure_bucket(task_id, "s-1") < min(bp, 10_000)
    assert route.leaf_id == "rev" and route.tags["trial_id"] == "s-1"


def test_an_admitted_task_does_take_the_trial_route():
    # the property above is not vacuous: a Direct trial within its limits routes to the candidate
    test_trial_routes_only_what_its_limits_allow.hypothesis.inner_test(
        TrialSafetyLimits(max_tasks=3), TrialMode.Direct, 0, 0, "task-1", "feature", RiskClass.Low, 0, False)
    reviewer = ViableNode.leaf("rev", "rev", LeafOperationSpec.coding())
    suggestion = GeneSuggestion(id="s-1", suggested_by_node_id="root", target_node_id="root",
                                source=GeneSuggestionSourceKind.System3StarAudit,
                                patch=AddChild(parent_id="root", child=reviewer), hypothesis="h",
                                trial_mode=TrialMode.Direct, safety_limits=TrialSafetyLimits(max_tasks=3))
    candidate = build_candidate(GENOME, suggestion, "cand")
    candidate = candidate.replace_node(evolve(candidate.node("root"), children=("rev", "coder")))
    trial = ActiveTrial(record=StoredTrialRecord.active("root", GENOME.id, "cand", suggestion, EPOCH), candidate=candidate)
    task = TaskPacket(id="task-1", title="t", goal="g", metadata={"requires_code_write": "true"})
    route = choose_trial_route(trial, "root", task, workers=frozenset({"rev", "coder"}), champion=GENOME)
    assert route is not None and route.leaf_id == "rev" and route.tags["trial_mode"] == "direct"
    used_up = evolve(trial, record=evolve(trial.record, routed_tasks=3))
    assert choose_trial_route(used_up, "root", task, workers=frozenset({"rev", "coder"}), champion=GENOME) is None
