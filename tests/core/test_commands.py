"""The Command channel and System 5 (reference §3.10, test 44), management-to-operation
directives (§3.11, tests 47, 48) and what the reference lacks (§9.18): `denied_capabilities` is
enforced on the whole subtree of the node that denies them, by genome or by command."""

from __future__ import annotations

import pytest
from attrs import evolve
from hypothesis import given, settings, strategies as st

from vsm_actors.core.control.commands import (
    COMMAND_EVENT, MANAGEMENT_EVENT, MANAGEMENT_POLICY, RELAY_EVENT, STAMP, PolicyState, capability_name,
    command_event, decide_management, genome_denials, is_relay, refusal, relay_envelope, relay_event, stamped,
    task_from_command,
)
from vsm_actors.core.control.lineage import REJECTED_EVENT, annotate_incoming
from vsm_actors.core.control.harness import NotExecutable, check_executable
from vsm_actors.core.control.routing import RoutingError, choose_child, required_capabilities
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.channel import ChannelPriority, VsmChannelType
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.messages import MessageEnvelope
from vsm_actors.core.model.node import System5Policy, ViableNode
from vsm_actors.core.model.payloads import Command, ManagementOperationDirective, ManagementOperationKind
from vsm_actors.core.model.task import RiskClass, TaskPacket

from .test_coordination import EVENTS, F1, F2, T0, new_id, publish, recorded


def envelope(payload, channel, **changes) -> MessageEnvelope:
    return MessageEnvelope.new(channel, payload, id=new_id(), created_at=T0, **changes)


RELEASE = Command(issued_by="root", target="coder", title="Freeze", body="do not deploy", non_negotiable=True,
                  legal_or_policy_basis="release-policy", system5_identity="Release safety policy",
                  policy_values=("protect production stability",),
                  non_negotiable_constraints=("deployment must remain frozen",), denied_capabilities=("deploy",),
                  metadata={"policy_version": "7"})


# -- relay (reference #44, §3.10) -------------------------------------------------------------------------


def test_command_channel_routes_non_negotiable_task_on_command_channel():
    env = envelope(RELEASE, VsmChannelType.Command, source_node_id="root", target_node_id="root")
    task = task_from_command(RELEASE, new_id)
    assert task.assigned_to == "coder" and task.risk is RiskClass.Critical
    assert task.constraints == ("non-negotiable command", "policy basis: release-policy",
                                "system5 identity: Release safety policy",
                                "policy value: protect production stability",
                                "non-negotiable policy constraint: deployment must remain frozen",
                                "denied capability: deploy")
    assert task.authority_refs == ("release-policy",)
    meta = task.metadata
    assert meta["command_non_negotiable"] == "true" and meta["command_system5_identity"] == "Release safety policy"
    assert meta["command_policy_constraints"] == "deployment must remain frozen"
    assert meta["command_policy_values"] == "protect production stability"
    assert meta["command_denied_capabilities"] == "deploy" and meta["command_metadata.policy_version"] == "7"
    assert meta["legal_or_policy_basis"] == meta["command_legal_or_policy_basis"] == "release-policy"
    assert meta["vsm_channel"] == "Command" and meta["command_issued_by"] == "root"
    assert meta["command_target_node_id"] == "coder"
    routed_task, out, routed = publish(F1, "root", task, env)
    assert routed_task.assigned_to == "coder" and out.id != task.id and out.payload.id == task.id
    assert out.channel_type is VsmChannelType.Command and out.priority is ChannelPriority.Critical
    assert out.metadata["vsm_outbound_channel"] == "Command"
    assert out.metadata["command_system5_identity"] == "Release safety policy"
    assert out.metadata["command_denied_capabilities"] == "deploy"
    assert routed["source_channel"] == routed["outbound_channel"] == "Command"
    assert routed["channel_priority"] == "Critical" and routed["command_non_negotiable"] == "true"
    assert routed["command_policy_constraints"] == "deployment must remain frozen"
    mapped = EVENTS.task_mapped(task, env, "system3_command_channel").payload
    assert mapped["decomposition_policy"] == "system3_command_channel"
    assert mapped["metadata"]["command_policy_values"] == "protect production stability"
    name, payload, links = command_event(RELEASE, task, env, "root", F1.subtree_ids("root"))
    assert name == COMMAND_EVENT and links["task_id"] == task.id
    assert payload["system5_identity"] == "Release safety policy"
    assert payload["non_negotiable_constraints"][0] == "deployment must remain frozen"
    assert payload["denied_for_subtree"] == ["deploy"] and payload["subtree_node_ids"] == ["root", "coder"]


@pytest.mark.parametrize("changes, risk, priority", [
    ({}, RiskClass.Medium, ChannelPriority.High),
    ({"non_negotiable": True}, RiskClass.High, ChannelPriority.Critical),
    ({"legal_or_policy_basis": "gdpr"}, RiskClass.Critical, ChannelPriority.Critical),
    ({"non_negotiable_constraints": ("x",)}, RiskClass.Critical, ChannelPriority.Critical),
    ({"denied_capabilities": ("write_code",)}, RiskClass.Critical, ChannelPriority.Critical),
])
def test_command_risk_and_priority(changes, risk, priority):
    command = Command(issued_by="root", target="coder", title="t", body="b", **changes)
    task = task_from_command(command, new_id)
    assert task.risk is risk
    assert publish(F1, "root", task, envelope(command, VsmChannelType.Command))[1].priority is priority


def test_command_metadata_routing_keys_reach_the_task():
    command = Command(issued_by="root", target="root", title="t", body="b",
                      metadata={"required_capability": "review", "requires_code_write": "false",
                                "target_child": "reviewer", "ticket": "T-1"})
    task = task_from_command(command, new_id)
    assert task.metadata["required_capability"] == "review" and task.metadata["target_child"] == "reviewer"
    assert "ticket" not in task.metadata and task.metadata["command_metadata.ticket"] == "T-1"
    # an assignment to the controller itself is no direct child: the router's other rules decide
    assert publish(F2, "root", task, envelope(command, VsmChannelType.Command))[0].assigned_to == "reviewer"


# -- management to operation (reference #47, #48) --------------------------------------------------------------


def test_management_to_operation_preserves_management_channel_and_lineage():
    t = TaskPacket.new("Implement", "goal", new_id, metadata={"requires_code_write": "true"})
    env = envelope(t, VsmChannelType.ManagementToOperation, source_node_id="root", target_node_id="root",
                   correlation_id="management-correlation")
    routed_task, out, routed = publish(F1, "root", t, env)
    meta = routed_task.metadata
    assert routed_task.assigned_to == "coder"
    assert meta["management_kind"] == "management_to_operation" and meta["management_source_node_id"] == "root"
    assert meta["management_target_node_id"] == "coder"
    assert out.channel_type is VsmChannelType.ManagementToOperation and out.target_node_id == "coder"
    for key, value in (("management_kind", "management_to_operation"), ("management_source_node_id", "root"),
                       ("management_target_node_id", "coder"), ("management_via_controller_node_id", "root"),
                       ("vsm_source_channel", "ManagementToOperation")):
        assert out.metadata[key] == value
    assert routed["management_correlation_id"] == "management-correlation"


def test_typed_management_operation_directive_creates_targeted_task():
    directive = ManagementOperationDirective(
        manager_node_id="root", operation_node_id="coder", related_task_id="R", dependency_task_ids=("X",),
        kind=ManagementOperationKind.AssignWork, title="Implement the endpoint", body="Add /health",
        target_state="endpoint returns 200", constraints=("no new dependencies",), context_refs=("repo://src",),
        authority_refs=("policy://default",), risk=RiskClass.High,
        metadata={"requires_code_write": "true", "required_capability": "write_code"}, created_at=T0)
    env = envelope(directive, VsmChannelType.ManagementToOperation, source_node_id="root", target_node_id="root")
    decision = decide_management(directive, env, "root", F1, new_id=new_id)
    (received,) = decision.events
    assert received[0] == MANAGEMENT_EVENT and received[2]["task_id"] == "R"
    assert received[2]["metadata"]["management_operation_kind"] == "AssignWork"
    task = decision.task
    assert task.assigned_to == "coder" and task.parent_task_id == "R" and task.dependencies == ("X",)
    assert task.target_state == "endpoint returns 200" and task.constraints == ("no new dependencies",)
    assert task.context_refs == ("repo://src",) and task.authority_refs == ("policy://default",)
    assert task.risk is RiskClass.High
    assert task.metadata["management_operation_kind"] == "AssignWork"
    assert task.metadata["management_policy"] == MANAGEMENT_POLICY
    assert task.metadata["requires_code_write"] == "true" and task.metadata["required_capability"] == "write_code"
    _, out, routed = publish(F1, "root", task, env)
    assert out.channel_type is VsmChannelType.ManagementToOperation and out.target_node_id == "coder"
    assert out.metadata["management_operation_kind"] == "AssignWork"
    assert out.metadata["management_policy"] == MANAGEMENT_POLICY
    assert routed["source_channel"] == "ManagementToOperation" and routed["management_operation_kind"] == "AssignWork"


def test_a_management_directive_to_a_non_child_is_rejected_with_an_event():
    directive = ManagementOperationDirective.new("root", "nobody", ManagementOperationKind.Reprioritize, "t", "b", T0)
    decision = decide_management(directive, envelope(directive, VsmChannelType.ManagementToOperation), "root", F1,
                                 new_id=new_id)
    assert decision.task is None and decision.events[-1][0] == REJECTED_EVENT


# -- System 5 denials enforced (§9.18) -----------------------------------------------------------------------

CODE = {"requires_code_write": "true"}


def team_genome(team_denies=(), coder_denies=()) -> OrganizationalGenome:
    g = OrganizationalGenome.with_root("g", ViableNode.metasystem("root", "root"))
    g = g.add_child("root", ViableNode.metasystem("team", "team", system_5=System5Policy(denied_capabilities=team_denies)))
    g = g.add_child("team", ViableNode.leaf("coder", "coder", LeafOperationSpec.coding(),
                                            system_5=System5Policy(denied_capabilities=coder_denies)))
    return g.add_child("root", ViableNode.leaf("other", "other", LeafOperationSpec.coding()))


def code_task(**meta) -> TaskPacket:
    return TaskPacket.new("Implement", "goal", new_id, metadata={**CODE, **meta})


def test_a_genome_denial_holds_for_the_whole_subtree():
    g = team_genome(team_denies=("write_code",))
    assert genome_denials(g, "coder") == {"write_code": "team"} and genome_denials(g, "other") == {}
    # capability derivation alone lets the coder write code; its ancestor's policy does not
    assert g.node("coder").capabilities().can_write_code
    with pytest.raises(NotExecutable, match="denied by the System 5 policy of team"):
        check_executable(g, "coder", code_task())
    check_executable(g, "other", code_task())
    assert refusal(g, "team", code_task()).denied_by == "team"
    assert refusal(g, "root", code_task()) is None


def test_unknown_capability_names_are_denied_by_name():
    g = team_genome(team_denies=("deploy",))
    deploy = TaskPacket.new("Deploy", "ship it", new_id, metadata={"required_capability": "deploy"})
    check_executable(g, "other", deploy)  # unknown names pass capability derivation...
    with pytest.raises(NotExecutable, match="deploy"):
        check_executable(g, "coder", deploy)  # ... but not a policy that names them


def test_capability_names_are_normalised():
    assert capability_name("can_write_code") == "write_code" and capability_name(" deploy ") == "deploy"
    g = team_genome(team_denies=("can_write_code",))
    assert refusal(g, "coder", code_task()).capability == "write_code"


def test_what_a_task_carries_is_enforced_too():
    assert refusal(F1, "coder", code_task(command_denied_capabilities="write_code|deploy")) is not None
    assert refusal(F1, "coder", code_task(**{STAMP: "write_code"})).denied_by == "task"
    with pytest.raises(NotExecutable):
        check_executable(F1, "coder", code_task(), denied={"write_code": "root"})
    assert refusal(F1, "coder", TaskPacket.new("Read", "g", new_id), {"write_code": "root"}) is None


def test_a_command_denial_is_a_fold_of_the_nodes_events():
    env = envelope(RELEASE, VsmChannelType.Command)
    received = recorded(command_event(evolve(RELEASE, denied_capabilities=("deploy", "can_write_code")), None, env,
                                      "team", ["team", "coder"]))
    state = PolicyState.fold([received])
    assert state.denied == {"deploy": "team", "write_code": "team"}
    relay = relay_envelope(env, "team", "coder", id=new_id(), created_at=T0)
    assert is_relay(relay) and not is_relay(env) and relay.target_node_id == "coder" and relay.causation_id == env.id
    at_coder = PolicyState.fold([recorded(relay_event(RELEASE, relay))])
    assert at_coder.denied == {"deploy": "team"}
    assert RELAY_EVENT == "system5_policy_relayed"
    assert PolicyState().observe(EVENTS.other("algedonic_subtree_paused", {})) == PolicyState()


def test_a_router_stamps_its_standing_denials_on_the_task():
    t = code_task()
    assert stamped(t, {}) is t
    once = stamped(t, {"write_code": "root", "deploy": "root"})
    assert once.metadata[STAMP] == "deploy|write_code"
    assert stamped(once, {"deploy": "team"}) is once


# A random organization: the root, metasystems and leaves to depth 3, each node denying a random
# subset of a vocabulary with known and unknown names; commands at random metasystems deny more.
VOCABULARY = ("write_code", "review", "run_tests", "deploy", "can_integrate")
PRESETS = (LeafOperationSpec.coding, LeafOperationSpec.reviewer, LeafOperationSpec.tester, LeafOperationSpec)


@st.composite
def organizations(draw):
    g = OrganizationalGenome.with_root("g", ViableNode.metasystem("n0", "n0"))
    frontier, count = ["n0"], 1
    while frontier and count < 14:
        parent = frontier.pop(0)
        for _ in range(draw(st.integers(1, 3))):
            node_id = f"n{count}"
            count += 1
            denies = tuple(draw(st.lists(st.sampled_from(VOCABULARY), max_size=2, unique=True)))
            if g.depth(parent) < 2 and draw(st.booleans()):
                g = g.add_child(parent, ViableNode.metasystem(node_id, node_id,
                                                              system_5=System5Policy(denied_capabilities=denies)))
                frontier.append(node_id)
            else:
                spec = draw(st.sampled_from(PRESETS))()
                g = g.add_child(parent, ViableNode.leaf(node_id, node_id, spec,
                                                        system_5=System5Policy(denied_capabilities=denies)))
    # a metasystem still without a child would be an all-false leaf: give it one
    for node_id in frontier:
        g = g.add_child(node_id, ViableNode.leaf(f"{node_id}-leaf", f"{node_id}-leaf", LeafOperationSpec.coding()))
    metasystems = [n.id for n in g.metasystems()]
    commands = draw(st.dictionaries(st.sampled_from(metasystems),
                                    st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=2, unique=True),
                                    max_size=2))
    return g, commands


tasks = st.builds(lambda code, cap, target: (code, cap, target), st.booleans(),
                  st.one_of(st.none(), st.sampled_from(VOCABULARY)), st.one_of(st.none(), st.integers(0, 20)))


def standing_at(genome, node_id: str, commands: dict) -> dict:
    """What commands deny at a node: those received by it or by an ancestor (relayed down)."""
    path = genome.path_from_root(node_id)
    return {capability_name(c): at for at in path for c in commands.get(at, ())}


def walk(genome, commands, task):
    """A task from the root down as the nodes pass it: each metasystem admits it (or refuses),
    stamps its standing denials on it and routes it; the leaf checks it before executing."""
    node_id, path = genome.root_node_id, []
    while True:
        path.append(node_id)
        standing = standing_at(genome, node_id, commands)
        if genome.node(node_id).is_leaf:
            try:
                check_executable(genome, node_id, task, denied=standing)
            except NotExecutable:
                return path, "refused at leaf"
            return path, "executed"
        if refusal(genome, node_id, task, standing) is not None:
            return path, "refused"
        task = stamped(annotate_incoming(task, None, node_id), standing)
        try:
            decision = choose_child(genome, node_id, task)
        except RoutingError:
            return path, "unroutable"
        node_id = decision.child_id


@settings(max_examples=300, deadline=None)
@given(organizations(), st.lists(tasks, min_size=1, max_size=6))
def test_a_denied_capability_is_never_exercised_below_the_node_that_denies_it(org, specs):
    genome, commands = org
    nodes = sorted(genome.nodes)
    for code, cap, target in specs:
        meta = {"requires_code_write": "true" if code else "false"}
        if cap:
            meta["required_capability"] = cap
        if target is not None:
            meta["target_child"] = nodes[target % len(nodes)]
        task = TaskPacket.new("t", "g", new_id, metadata=meta)
        needs = {capability_name(n) for n in required_capabilities(task)}
        path, fate = walk(genome, commands, task)
        denied_on_path = {capability_name(c) for at in path for c in genome.node(at).system_5.denied_capabilities}
        denied_on_path |= {capability_name(c) for at in path for c in commands.get(at, ())}
        if fate == "executed":
            assert not needs & denied_on_path, (path, needs, denied_on_path)
        if fate.startswith("refused"):  # never refused without cause
            assert needs & denied_on_path or fate == "refused at leaf"
