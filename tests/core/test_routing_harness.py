"""The reference's worker-harness tests (vsm-worker harness.rs, §8 #13-16) and the routing parts of
its controller tests (runtime.rs #43-45, #47, #49, #62, #79-80; §3.6 rules), against the pure core."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest
from attrs import evolve

from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.channel import ChannelPriority, VsmChannelType
from vsm_actors.core.model.genes import RoutingRule
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.control.harness import NotExecutable, Outcome, check_executable, finish
from vsm_actors.core.model.messages import MessageEnvelope
from vsm_actors.core.model.node import NodeLifecycleStatus, System5Policy, ViableNode
from vsm_actors.core.control.routing import (
    RouteDecision, RoutingError, choose_child, outbound_channel, outbound_priority, result_envelope,
    routed_task_envelope,
)
from vsm_actors.core.model.task import RiskClass, StaticTaskPredicates, TaskOutcomeStatus, TaskPacket, TaskResult

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
_ids = itertools.count()


def new_id() -> str:
    return f"id-{next(_ids)}"


def genome_with(*leaves: tuple[str, LeafOperationSpec], root: str = "root") -> OrganizationalGenome:
    """F1/F2: a root metasystem over leaves, in order."""
    g = OrganizationalGenome.with_root("g1", ViableNode.metasystem(root, root))
    for name, spec in leaves:
        g = g.add_child(root, ViableNode.leaf(name, name, spec))
    return g


F1 = genome_with(("coder", LeafOperationSpec.coding()))
F2 = genome_with(("coder", LeafOperationSpec.coding()), ("reviewer", LeafOperationSpec.reviewer()),
                 ("tester", LeafOperationSpec.tester()))


def task(title: str = "Implement feature", **changes) -> TaskPacket:
    return TaskPacket.new(title, f"{title} goal", new_id, **changes)


def envelope(payload, channel=VsmChannelType.ResourceBargaining, **changes) -> MessageEnvelope:
    return MessageEnvelope.new(channel, payload, id=new_id(), created_at=T0, **changes)


def run_leaf(genome, node_id, t, incoming=None, outcome=None):
    return finish(genome, node_id, t, incoming, outcome or Outcome(output_text="done", provider="echo", model="m"),
                  trace_id=new_id(), started_at=T0, completed_at=T0)


# -- routing order (reference §3.6 TaskRouter) -------------------------------------------------

def test_leaf_parent_is_not_a_metasystem():
    with pytest.raises(RoutingError, match="not a metasystem: coder"):
        choose_child(F1, "coder", task())


def test_assigned_to_wins_over_target_child_and_capabilities():
    t = task(assigned_to="tester", metadata={"target_child": "reviewer", "requires_code_write": "true"})
    assert choose_child(F2, "root", t) == RouteDecision("tester", "task already assigned to direct child")


def test_target_child_by_id_or_name():
    for target in ("reviewer",):
        d = choose_child(F2, "root", task(metadata={"target_child": target}))
        assert d == RouteDecision("reviewer", "matched target_child metadata: reviewer")
    named = F2.replace_node(evolve(F2.node("tester"), name="qa"))
    assert choose_child(named, "root", task(metadata={"target_child": "qa"})).child_id == "tester"


def test_unknown_assignment_or_target_falls_through_to_capabilities():
    t = task(assigned_to="elsewhere", metadata={"target_child": "nobody", "requires_code_write": "true"})
    assert choose_child(F2, "root", t) == RouteDecision("coder", "first direct leaf child with required capabilities")


def test_first_leaf_with_required_capabilities_in_child_order():
    assert choose_child(F2, "root", task(metadata={"requires_code_write": "true"})).child_id == "coder"
    review = task(metadata={"required_capability": "review", "requires_code_write": "false"})
    assert choose_child(F2, "root", review).child_id == "reviewer"
    # the coder can run tests too, and comes first
    assert choose_child(F2, "root", task(metadata={"required_capability": "run_tests"})).child_id == "coder"
    # requires_code_write must be exactly "true"
    assert choose_child(F2, "root", task(metadata={"requires_code_write": "True",
                                                   "required_capability": "review"})).child_id == "reviewer"


def test_unknown_capability_names_are_allowed():
    assert choose_child(F2, "root", task(metadata={"required_capability": "deploy"})).child_id == "coder"


def test_no_routeable_child():
    g = genome_with(("reviewer", LeafOperationSpec.reviewer()))
    with pytest.raises(RoutingError, match="no routeable child found for node root and task Implement feature"):
        choose_child(g, "root", task(metadata={"requires_code_write": "true"}))


def test_metasystem_child_is_chosen_without_capability_check():
    g = OrganizationalGenome.with_root("g", ViableNode.metasystem("root", "root"))
    g = g.add_child("root", ViableNode.metasystem("backend", "backend"))
    g = g.add_child("backend", ViableNode.leaf("reviewer", "reviewer", LeafOperationSpec.reviewer()))
    d = choose_child(g, "root", task(metadata={"requires_code_write": "true"}))
    assert d == RouteDecision("backend", "direct child is a metasystem capable of further delegation")


def test_retired_children_are_skipped_shadow_and_probation_are_not():
    retired = F2.replace_node(evolve(F2.node("coder"), status=NodeLifecycleStatus.Retired))
    with pytest.raises(RoutingError, match="skipped retired/paused: coder"):
        choose_child(retired, "root", task(metadata={"requires_code_write": "true"}))
    assert choose_child(retired, "root", task(metadata={"required_capability": "run_tests"})).child_id == "reviewer"
    for status in (NodeLifecycleStatus.Shadow, NodeLifecycleStatus.Probation):
        g = F2.replace_node(evolve(F2.node("coder"), status=status))
        assert choose_child(g, "root", task(metadata={"requires_code_write": "true"})).child_id == "coder"


def test_explicit_choice_of_retired_or_paused_child_falls_through():
    """Deliberate difference: the reference routes an explicit choice to a retired child anyway."""
    retired = F2.replace_node(evolve(F2.node("reviewer"), status=NodeLifecycleStatus.Retired))
    t = task(assigned_to="reviewer", metadata={"target_child": "reviewer"})
    assert choose_child(retired, "root", t).child_id == "coder"
    assert choose_child(F2, "root", t, paused=frozenset({"reviewer"})).child_id == "coder"


def test_paused_subtree_blocks_routing_and_resume_reopens_it():  # runtime.rs #62
    t = task(metadata={"requires_code_write": "true"})
    with pytest.raises(RoutingError, match="coder"):
        choose_child(F1, "root", t, paused=frozenset({"coder"}))
    assert choose_child(F1, "root", t, paused=frozenset()).child_id == "coder"


def test_routing_rules_by_priority_after_explicit_choices():
    rules = (RoutingRule(id="low", node_id="root", target_child="tester", keywords=("endpoint",), priority=1),
             RoutingRule(id="high", node_id="root", target_child="reviewer", required_capability="review",
                         priority=5),
             RoutingRule(id="other-node", node_id="coder", target_child="tester"))
    g = evolve(F2, routing_rules=rules)
    review = task("Review the endpoint", metadata={"required_capability": "review"})
    assert choose_child(g, "root", review) == RouteDecision("reviewer", "matched routing rule high")
    assert choose_child(g, "root", task("Add an endpoint")).child_id == "tester"
    assert choose_child(g, "root", task("Add a page")).child_id == "coder"
    assert choose_child(g, "root", evolve(review, assigned_to="coder")).child_id == "coder"


# -- channel and priority of routed tasks (publish_routed_task) --------------------------------

@pytest.mark.parametrize("incoming, expected", [
    (None, VsmChannelType.ResourceBargaining),
    (VsmChannelType.ResourceBargaining, VsmChannelType.ResourceBargaining),
    (VsmChannelType.OperationToEnvironment, VsmChannelType.ResourceBargaining),
    (VsmChannelType.FutureProbeToEnvironment, VsmChannelType.ResourceBargaining),
    (VsmChannelType.EnvironmentToEnvironment, VsmChannelType.ResourceBargaining),
    *((c, c) for c in (VsmChannelType.Command, VsmChannelType.System2Coordination, VsmChannelType.Audit,
                       VsmChannelType.ThreeFourHomeostat, VsmChannelType.ManagementToOperation,
                       VsmChannelType.OperationToOperation, VsmChannelType.Algedonic)),
])
def test_outbound_channel(incoming, expected):
    env = None if incoming is None else envelope(task(), incoming)
    assert outbound_channel(env) is expected


@pytest.mark.parametrize("risk, base", [(RiskClass.Low, ChannelPriority.Normal), (RiskClass.Medium, ChannelPriority.Normal),
                                        (RiskClass.High, ChannelPriority.High),
                                        (RiskClass.Critical, ChannelPriority.Critical)])
def test_outbound_priority(risk, base):
    t = task(risk=risk)
    assert outbound_priority(t, None) is base
    assert outbound_priority(t, envelope(t, VsmChannelType.ResourceBargaining)) is base
    assert outbound_priority(t, envelope(t, VsmChannelType.Algedonic)) is ChannelPriority.Interrupt
    for channel in (VsmChannelType.System2Coordination, VsmChannelType.Audit, VsmChannelType.ThreeFourHomeostat):
        assert outbound_priority(t, envelope(t, channel)) is base.at_least(ChannelPriority.High)
    command = envelope(t, VsmChannelType.Command)
    assert outbound_priority(t, command) is (ChannelPriority.Critical if risk is RiskClass.Critical
                                             else base.at_least(ChannelPriority.High))
    non_negotiable = evolve(t, metadata={"command_non_negotiable": "true"})
    assert outbound_priority(non_negotiable, command) is ChannelPriority.Critical  # runtime.rs #44


def test_system2_coordination_task_keeps_its_channel():  # runtime.rs #45
    t = task(metadata={"requires_code_write": "true"})
    incoming = envelope(t, VsmChannelType.System2Coordination, correlation_id="corr", trace=("boss",))
    decision = choose_child(F1, "root", t)
    out = routed_task_envelope(evolve(t, assigned_to=decision.child_id), incoming, "root", decision,
                               id="out-1", created_at=T0)
    assert out.channel_type is VsmChannelType.System2Coordination
    assert out.priority is ChannelPriority.High
    assert out.metadata["vsm_source_channel"] == "System2Coordination"
    assert out.metadata["vsm_outbound_channel"] == "System2Coordination"
    assert out.metadata["source_payload_type"] == "vsm.task_packet"
    assert out.metadata["routing_reason"] == decision.reason
    assert (out.source_node_id, out.target_node_id) == ("root", "coder")
    assert out.correlation_id == "corr" and out.causation_id == incoming.id
    assert out.trace == ("boss", "root")
    assert out.payload.assigned_to == "coder" and out.payload_type == "vsm.task_packet"


def test_routed_envelope_without_incoming_correlates_by_task():
    t = task()
    out = routed_task_envelope(t, None, "root", RouteDecision("coder", "r"), id="o", created_at=T0)
    assert out.channel_type is VsmChannelType.ResourceBargaining
    assert out.correlation_id == t.id and out.causation_id is None and out.trace == ("root",)
    assert "vsm_source_channel" not in out.metadata
    incoming = envelope(t, VsmChannelType.OperationToEnvironment)  # no correlation id: use its id
    assert routed_task_envelope(t, incoming, "root", RouteDecision("coder", "r"), id="o2",
                                created_at=T0).correlation_id == incoming.id


# -- results travelling up ---------------------------------------------------------------------

def test_leaf_result_envelope():  # harness §4.3
    t = task()
    routed = envelope(t, VsmChannelType.System2Coordination, correlation_id="corr", source_node_id="team",
                      trace=("root", "team"), priority=ChannelPriority.High)
    result = TaskResult.completed(t.id, "coder", "ok")
    up = result_envelope(result, routed, "coder", "team", id="r1", created_at=T0)
    assert up.channel_type is VsmChannelType.ManagementToOperation and up.priority is ChannelPriority.Normal
    assert (up.source_node_id, up.target_node_id) == ("coder", "team")
    assert up.correlation_id == "corr" and up.causation_id == routed.id
    assert up.trace == ("root", "team", "coder") and up.metadata == {}


def test_controller_forwards_result_upward_with_lineage():  # result observation step 5
    t = task()
    incoming = envelope(TaskResult.failed(t.id, "coder", "s", "e"), VsmChannelType.ManagementToOperation,
                        trace=("root", "team", "coder"))
    up = result_envelope(incoming.payload, incoming, "team", "root", id="f1", created_at=T0, forwarded=True)
    assert up.channel_type is VsmChannelType.ManagementToOperation and up.priority is ChannelPriority.Normal
    assert (up.source_node_id, up.target_node_id) == ("team", "root")
    assert up.correlation_id == incoming.id and up.causation_id == incoming.id  # no correlation: its id
    assert up.trace == ("root", "team", "coder", "team")
    assert up.metadata == {"forwarded_by_controller_node_id": "team", "forwarded_result_task_id": t.id,
                           "vsm_outbound_channel": "ManagementToOperation", "source_payload_type": "vsm.task_result"}
    assert up.payload.status is TaskOutcomeStatus.Failed


# -- leaf execution (vsm-worker harness.rs) ------------------------------------------------------

def test_non_leaf_cannot_execute():
    with pytest.raises(NotExecutable, match="node is not executable as a leaf: root"):
        check_executable(F1, "root", task())


def test_capability_check_before_execution():
    check_executable(F2, "coder", task(metadata={"requires_code_write": "true"}))
    with pytest.raises(NotExecutable, match="lacks required capability: reviewer: write_code"):
        check_executable(F2, "reviewer", task(metadata={"requires_code_write": "true"}))
    check_executable(F2, "reviewer", task(metadata={"required_capability": "review"}))
    with pytest.raises(NotExecutable, match="tester: review"):
        check_executable(F2, "tester", task(metadata={"required_capability": "review"}))


def test_system5_denied_capability_is_enforced():
    """Deliberate difference: the reference only relays denied_capabilities."""
    g = F1.replace_node(evolve(F1.node("coder"), system_5=System5Policy(denied_capabilities=("write_code",))))
    with pytest.raises(NotExecutable, match="write_code"):
        check_executable(g, "coder", task(metadata={"requires_code_write": "true"}))


def test_failed_execution_is_a_failed_result_not_a_drop():
    t = task()
    result, trace = run_leaf(F1, "root", t, outcome=Outcome(error="node is not executable as a leaf: root"))
    assert result.status is TaskOutcomeStatus.Failed and result.error == "node is not executable as a leaf: root"
    assert result.summary == "worker failed to execute task"
    assert trace.outcome_score == -1.0 and trace.merged is False and trace.metadata["status"] == "Failed"
    ok, ok_trace = run_leaf(F1, "coder", t)
    assert ok.status is TaskOutcomeStatus.Completed and ok_trace.outcome_score == 1.0 and ok_trace.merged is None
    assert ok.artifacts[0].kind == "model_output"


def test_trace_names_node_and_ancestors():  # system lib.rs #79-80
    g = OrganizationalGenome.with_root("g", ViableNode.metasystem("root", "root"))
    g = g.add_child("root", ViableNode.metasystem("backend-system", "backend-system"))
    g = g.add_child("backend-system", ViableNode.leaf("backend-coder", "backend-coder", LeafOperationSpec.coding()))
    _, trace = run_leaf(g, "backend-coder", task())
    assert trace.assigned_node_id == "backend-coder" and trace.genome_id == "g"
    assert list(trace.responsible_ancestor_ids) == ["backend-system", "root"]


def test_trial_metadata_is_copied_to_result_and_trace():  # harness.rs #13
    s = "suggestion-1"
    t = task(metadata={"trial_id": s, "related_suggestion_id": s, "candidate_genome_id": "cand", "trial_mode": "canary",
                       "trial_route_role": "shadow", "trial_shadow": "true", "trial_exposure_basis_points": "250",
                       "trial_exposure_bucket": "42"})
    result, trace = run_leaf(F1, "coder", t)
    for key, value in (("trial_id", s), ("related_suggestion_id", s), ("trial_mode", "canary"),
                       ("trial_route_role", "shadow")):
        assert result.metadata[key] == value
    assert s in trace.related_suggestion_ids
    assert trace.metadata["trial_shadow"] == "true"
    assert trace.metadata["trial_exposure_basis_points"] == "250"
    assert trace.metadata["trial_exposure_bucket"] == "42"


def test_decomposition_metadata_is_copied_to_result_and_trace():  # harness.rs #14
    t = task(directive_id="D", parent_task_id="P", dependencies=("X",), metadata={
        "decomposition_policy": "system3_capability_split_v1", "decomposition_role": "review",
        "required_capability": "review", "target_child": "reviewer"})
    result, trace = run_leaf(F2, "reviewer", t)
    assert result.metadata["directive_id"] == "D" and result.metadata["parent_task_id"] == "P"
    assert result.metadata["dependency_task_ids"] == "X" and result.metadata["decomposition_role"] == "review"
    assert trace.metadata["target_child"] == "reviewer"


def test_channel_metadata_is_copied_to_result_and_trace():  # harness.rs #15
    t = task(metadata={
        "vsm_source_channel": "OperationToOperation", "handoff_kind": "peer", "handoff_source_node_id": "coder",
        "handoff_operation_kind": "ReviewRequest", "coordination_kind": "Contention",
        "coordination_policy": "system2_dampening_v1", "management_operation_kind": "AssignWork",
        "management_policy": "system3_management_operation_v1"})
    incoming = envelope(t, VsmChannelType.OperationToOperation, priority=ChannelPriority.High,
                        correlation_id="handoff-correlation",
                        metadata={"vsm_outbound_channel": "OperationToOperation"})
    result, trace = run_leaf(F2, "reviewer", t, incoming)
    for meta in (result.metadata, trace.metadata):
        assert meta["vsm_source_channel"] == "OperationToOperation"
        assert meta["vsm_outbound_channel"] == "OperationToOperation"
        assert meta["channel_priority"] == "High"
        assert meta["correlation_id"] == "handoff-correlation"
        assert meta["envelope_id"] == incoming.id
        for key in ("handoff_kind", "handoff_operation_kind", "coordination_kind", "coordination_policy",
                    "management_operation_kind", "management_policy"):
            assert meta[key] == t.metadata[key]


def test_channel_metadata_falls_back_to_the_envelope():
    t = task()
    incoming = envelope(t, VsmChannelType.System2Coordination,
                        metadata={"vsm_source_channel": "Audit", "coordination_kind": "Contention"})
    result, trace = run_leaf(F1, "coder", t, incoming)
    assert result.metadata["vsm_source_channel"] == "Audit"
    assert result.metadata["vsm_outbound_channel"] == "System2Coordination"  # Debug of the channel
    assert trace.metadata["coordination_kind"] == "Contention"


def test_replay_metadata_preserves_task_shape_on_trace():  # harness.rs #16
    t = task("Review change", risk=RiskClass.High, scope=("src/lib.rs", "src/main.rs"),
             static_predicates=StaticTaskPredicates(languages=("rust",), modules=("kernel",), tags=("hot",)),
             metadata={"required_capability": "review"})
    _, trace = run_leaf(F2, "reviewer", t)
    assert trace.metadata["task_title"] == "Review change"
    assert trace.metadata["task_risk"] == "High"
    assert trace.metadata["task_languages"] == "rust"
    assert trace.metadata["task_modules"] == "kernel" and trace.metadata["task_tags"] == "hot"
    assert trace.metadata["task_scope"] == "src/lib.rs\nsrc/main.rs"
    assert trace.metadata["task_metadata.required_capability"] == "review"
