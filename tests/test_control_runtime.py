"""System 2 coordination and the Command channel / System 5 in the running actors (issue 12
points 2 and 3, with the handoff and management lineage of §3.11), on both Thespian bases.

Envelopes arrive through `Organization.deliver`, as if on their channel. A command's constraints
travel with its task; the capabilities it denies are denied below the node that received it,
whatever arrives later and wherever it arrives, and genome denials bind every descendant. A strong
System 2 signal becomes a dampening task, and the recorded evidence is what caps the child's
token grants."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from actors.conftest import base, org_factory  # noqa: F401 - fixtures: both bases
from test_parallel_work import slow
from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.core.control.commands import capability_name
from vsm_actors.core.control.coordination import CoordinationState, summarize
from vsm_actors.core.control.resources import EpochAccount, allocate
from vsm_actors.core.control.routing import required_capabilities
from vsm_actors.core.model.channel import VsmChannelType
from vsm_actors.core.model.messages import MessageEnvelope
from vsm_actors.core.model.payloads import (
    Command, ManagementOperationDirective, ManagementOperationKind, OperationHandoff, OperationHandoffKind,
    ResourceAllocationStatus, ResourceBargain, System2CoordinationKind, System2CoordinationSignal,
)
from vsm_actors.core.model.task import TaskArtifact, TaskPacket
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.ledger import MEMORY_URL
from vsm_actors.ledger.evolution_state import load_pauses
from vsm_actors.system import Organization, OrganizationError, make_directive

NOW = datetime.now(timezone.utc)
_ids = itertools.count()

TWO_TEAMS = """
id: two-teams
root:
  id: root
  name: root
  system_3: {{default_task_budget_tokens: 1000}}
  children:
    - name: team-a
      {team_a}
      children:
        - {{name: coder-a, leaf_operation: coding}}
        - {{name: reviewer-a, leaf_operation: reviewer}}
    - name: team-b
      children:
        - {{name: coder-b, leaf_operation: coding}}
"""
TRIO = """
id: trio
root:
  id: root
  name: root
  system_3: {default_task_budget_tokens: 1000}
  children:
    - {name: coder, leaf_operation: coding}
    - {name: reviewer, leaf_operation: reviewer}
    - {name: tester, leaf_operation: tester}
"""


def two_teams(team_a: str = ""):
    return parse_genome_text(TWO_TEAMS.format(team_a=team_a), name="two_teams.yaml")


def trio():
    return parse_genome_text(TRIO, name="trio.yaml")


def envelope(payload, channel, to: str, **changes) -> MessageEnvelope:
    return MessageEnvelope.new(channel, payload, id=f"env-{next(_ids)}", created_at=NOW, target_node_id=to, **changes)


def command(target: str, denied=(), **changes) -> Command:
    return Command(issued_by="root", target=target, title="Release freeze", body="Keep production stable",
                   **{"non_negotiable": True, "legal_or_policy_basis": "release-policy",
                      "system5_identity": "Release safety policy", "policy_values": ("stability",),
                      "non_negotiable_constraints": ("deployment must remain frozen",),
                      "denied_capabilities": tuple(denied), **changes})


def directive(text: str, **metadata):
    return make_directive(text, metadata=metadata)


def of(org, kind: str, **links) -> list:
    return org.events(kind, **links)


# -- the Command channel relays (reference #44) ----------------------------------------------------------


def test_a_command_relays_its_constraints_on_the_command_channel(org_factory):
    org = org_factory(two_teams())
    sent = envelope(command("coder-a", denied=("deploy",)), VsmChannelType.Command, "team-a", source_node_id="root")
    delivered = org.deliver("team-a", sent)
    assert delivered.awaiting and delivered.done is not None
    (result,) = delivered.done.results
    assert result.status.value == "Completed" and result.produced_by == "coder-a"
    (received,) = of(org, "command_received")
    assert received.node_id == "team-a" and received.payload["system5_identity"] == "Release safety policy"
    assert received.payload["non_negotiable_constraints"] == ["deployment must remain frozen"]
    (mapped,) = [e for e in of(org, "task_mapped") if e.task_id == received.task_id]
    assert mapped.payload["decomposition_policy"] == "system3_command_channel"
    assert mapped.payload["metadata"]["command_policy_values"] == "stability"
    (routed,) = [e for e in of(org, "task_routed") if e.task_id == received.task_id]
    assert routed.payload["source_channel"] == routed.payload["outbound_channel"] == "Command"
    assert routed.payload["channel_priority"] == "Critical" and routed.payload["command_denied_capabilities"] == "deploy"
    (trace,) = org.traces()
    assert trace.metadata["vsm_outbound_channel"] == "Command" and trace.metadata["channel_priority"] == "Critical"
    assert trace.metadata["task_metadata.command_system5_identity"] == "Release safety policy"
    assert trace.metadata["task_metadata.command_non_negotiable"] == "true"
    assert "non-negotiable policy constraint: deployment must remain frozen" in result.summary  # the leaf saw it


# -- System 5 denials enforced (§9.18) --------------------------------------------------------------------


def test_a_commands_denials_hold_on_the_whole_receiving_subtree(org_factory):
    org = org_factory(two_teams())
    org.deliver("team-a", envelope(command("coder-a", denied=("write_code",)), VsmChannelType.Command, "team-a"))
    code_a, code_b, review_a = org.run_many([
        directive("Implement feature A", target_child="team-a", requires_code_write="true"),
        directive("Implement feature B", target_child="team-b", requires_code_write="true"),
        directive("Review change A", target_child="team-a", requires_code_write="false", required_capability="review"),
    ])
    assert not code_a.ok and "write_code is denied by the System 5 policy of team-a" in code_a.results[0].error
    assert code_b.ok and code_b.results[0].produced_by == "coder-b"
    assert review_a.ok and review_a.results[0].produced_by == "reviewer-a"
    relayed = {e.node_id for e in of(org, "system5_policy_relayed")}
    assert relayed == {"coder-a", "reviewer-a"}  # the subtree below team-a, nothing else
    (denied,) = of(org, "system5_capability_denied")
    assert denied.node_id == "team-a" and denied.payload["capability"] == "write_code"
    # at the actor boundary: a task handed straight to the leaf below is refused there, unexecuted
    task = TaskPacket(id="direct-1", title="Patch", goal="edit a file", metadata={"requires_code_write": "true"})
    org.deliver("coder-a", envelope(task, VsmChannelType.ResourceBargaining, "coder-a", source_node_id="team-a"))
    assert org.run(directive("Implement feature C", target_child="team-b")).ok  # what came before is recorded now
    (trace,) = [t for t in org.traces() if t.task_id == "direct-1"]
    assert trace.metadata["status"] == "Failed" and "provider" not in trace.metadata
    assert all(t.metadata["status"] == "Failed" for t in org.traces()
               if t.assigned_node_id == "coder-a" and t.metadata.get("task_metadata.requires_code_write") == "true")


def test_a_genome_denial_binds_every_descendant(org_factory):
    org = org_factory(two_teams(team_a="system_5: {denied_capabilities: [write_code]}"))
    code_a, code_b = org.run_many([
        directive("Implement feature A", target_child="team-a", requires_code_write="true"),
        directive("Implement feature B", target_child="team-b", requires_code_write="true")])
    assert not code_a.ok and "System 5 policy of team-a" in code_a.results[0].error
    assert code_b.ok
    assert not [t for t in org.traces() if t.assigned_node_id == "coder-a"]  # coder-a never ran


def test_work_waiting_when_a_denial_arrives_fails_instead_of_running(org_factory):
    org = org_factory("single_coder", provider=slow(600))
    first, second = org.submit(make_directive("Implement one")), org.submit(make_directive("Implement two"))
    if org.base == "multiproc":  # in process the actors run only while this thread waits for them
        org.wait_events("task_queued")  # the coder is busy with the first: the second waits at the root
    delivered = org.deliver("root", envelope(command("primary-code-service", denied=("write_code",)),
                                             VsmChannelType.Command, "root"))
    assert delivered.done.results[0].status.value == "Completed"  # the command's own task needs no code
    done_first, done_second = org.wait([first, second])
    assert done_first.ok  # routed before the denial
    assert not done_second.ok and "write_code" in done_second.results[0].error
    assert [t.task_id for t in org.traces() if t.metadata.get("task_metadata.requires_code_write") == "true"
            and t.metadata["status"] == "Completed"] == [done_first.results[0].task_id]
    assert of(org, "task_queued") and of(org, "system5_capability_denied")[0].task_id == done_second.results[0].task_id


def test_a_denial_survives_a_restart(tmp_path):
    path = str(tmp_path / "l.sqlite")
    genome = two_teams()
    with Organization.start(genome, RuntimeConfig(ledger_url=path), restore=False) as org:
        org.deliver("team-a", envelope(command("coder-a", denied=("write_code",)), VsmChannelType.Command, "team-a"))
    with Organization.start(genome, RuntimeConfig(ledger_url=path)) as org:
        again = org.run(directive("Implement feature A", target_child="team-a", requires_code_write="true"))
        assert not again.ok and "System 5 policy of team-a" in again.results[0].error
        assert org.run(directive("Implement feature B", target_child="team-b", requires_code_write="true")).ok


def test_an_unknown_node_is_the_callers_error(org_factory):
    org = org_factory(trio())
    with pytest.raises(OrganizationError, match="no node 'nobody'"):
        org.deliver("nobody", envelope(command("coder"), VsmChannelType.Command, "nobody"))


# -- System 2 coordination (reference #46, #56) -------------------------------------------------------------


def contention(severity: int = 8, **changes) -> System2CoordinationSignal:
    return System2CoordinationSignal(**{
        "coordinator_node_id": "root", "source_node_id": "reviewer", "target_node_id": "coder",
        "affected_node_ids": ("coder",), "affected_task_ids": ("task-a",), "kind": System2CoordinationKind.Contention,
        "summary": "both edit src/lib.rs", "severity": severity, "created_at": NOW, **changes})


def test_a_contention_signal_dampens_and_its_evidence_caps_the_childs_grants(org_factory):
    org = org_factory(trio())
    delivered = org.deliver("root", envelope(contention(), VsmChannelType.System2Coordination, "root",
                                             source_node_id="reviewer"))
    (result,) = delivered.done.results
    assert result.produced_by == "coder" and result.status.value == "Completed"
    (signal,) = of(org, "system2_coordination_signal")
    assert signal.task_id == "task-a" and signal.metadata["coordination_kind"] == "Contention"
    (created,) = of(org, "system2_dampening_task_created")
    assert created.payload["child_node_id"] == "coder"
    (routed,) = [e for e in of(org, "task_routed") if e.task_id == created.task_id]
    assert routed.payload["outbound_channel"] == "System2Coordination" and routed.payload["channel_priority"] == "High"
    assert routed.payload["coordination_policy"] == "system2_dampening_v1"
    (mapped,) = [e for e in of(org, "task_mapped") if e.task_id == created.task_id]
    assert mapped.payload["decomposition_policy"] == "system2_dampening_signal"
    # the recorded evidence is the grant's constraint, the same folded live or after a restart
    with org.ledger() as ledger:
        restored = CoordinationState.fold(load_pauses(ledger, ["root"])["root"])
    summary = summarize(of(org, "system2_coordination_signal"), "coder")
    assert restored.summary("coder") == summary and summary.affects_allocation
    grant = allocate(org.initial_genome, "root", ResourceBargain(requested_by="coder", requested_tokens=800,
                                                                 justification="need"),
                     EpochAccount(), now=NOW, coordination=summary.pressure_for_grants())
    assert grant.decision.status is ResourceAllocationStatus.PartiallyApproved and grant.decision.approved_tokens == 200
    assert not summarize(of(org, "system2_coordination_signal"), "tester").affects_allocation


def test_a_weak_signal_is_evidence_only(org_factory):
    org = org_factory(trio())
    delivered = org.deliver("root", envelope(contention(severity=3), VsmChannelType.System2Coordination, "root"))
    assert not delivered.awaiting and delivered.done is None
    assert org.run("Implement something").ok
    assert of(org, "system2_coordination_signal") and not of(org, "system2_dampening_task_created")


# -- peer handoffs and management directives (reference #48-50) ------------------------------------------------


def test_handoffs_and_management_directives_reach_the_named_child(org_factory):
    org = org_factory(trio())
    handoff = OperationHandoff(
        source_node_id="coder", target_node_id="reviewer", related_task_id="R", dependency_task_ids=("X",),
        kind=OperationHandoffKind.ReviewRequest, title="Review patch 123", summary="ready",
        artifacts=(TaskArtifact(kind="patch", uri="artifact://patch/123"),), created_at=NOW)
    reviewed = org.deliver("root", envelope(handoff, VsmChannelType.OperationToOperation, "root",
                                            source_node_id="coder", correlation_id="peer-1"))
    assert reviewed.done.results[0].produced_by == "reviewer"
    assert of(org, "operation_handoff_received")[0].task_id == "R"
    (routed,) = [e for e in of(org, "task_routed") if e.payload.get("handoff_operation_kind") == "ReviewRequest"]
    assert routed.payload["outbound_channel"] == "OperationToOperation"
    assert routed.payload["handoff_source_node_id"] == "coder" and routed.payload["handoff_target_node_id"] == "reviewer"
    assert routed.payload["handoff_correlation_id"] == "peer-1"
    assign = ManagementOperationDirective(
        manager_node_id="root", operation_node_id="coder", related_task_id="R", kind=ManagementOperationKind.AssignWork,
        title="Implement the endpoint", body="Add /health", metadata={"requires_code_write": "true"}, created_at=NOW)
    assigned = org.deliver("root", envelope(assign, VsmChannelType.ManagementToOperation, "root", source_node_id="root"))
    assert assigned.done.results[0].produced_by == "coder"
    (routed,) = [e for e in of(org, "task_routed") if e.payload.get("management_operation_kind") == "AssignWork"]
    assert routed.payload["outbound_channel"] == "ManagementToOperation"
    assert routed.payload["management_policy"] == "management_operation_directive_v1"
    trace = [t for t in org.traces() if t.assigned_node_id == "coder"][0]
    assert trace.metadata["management_kind"] == "management_to_operation"
    # to a node that is no child: an event, and the organization goes on (the reference stopped)
    stray = OperationHandoff.new("coder", "stranger", OperationHandoffKind.WorkInProgress, "Help", "x", NOW)
    assert not org.deliver("root", envelope(stray, VsmChannelType.OperationToOperation, "root")).awaiting
    assert org.run("Implement something").ok
    assert of(org, "coordination_payload_rejected")


# -- the invariant over random traffic (hypothesis, in process) --------------------------------------------------

METASYSTEMS = ("root", "team-a", "team-b")
CAPS = ("write_code", "review", "deploy")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=st.lists(st.tuples(st.sampled_from(METASYSTEMS), st.lists(st.sampled_from(CAPS), min_size=1,
                                                                          max_size=2, unique=True)), max_size=3),
       work=st.lists(st.tuples(st.sampled_from(("team-a", "team-b", None)), st.booleans(),
                               st.sampled_from((None, *CAPS))), min_size=1, max_size=6),
       genome_denies=st.lists(st.sampled_from(CAPS), max_size=1))
def test_a_denied_capability_is_never_exercised_below_the_node_that_denies_it(commands, work, genome_denies):
    team_a = f"system_5: {{denied_capabilities: [{', '.join(genome_denies)}]}}" if genome_denies else ""
    genome = two_teams(team_a)
    config = RuntimeConfig(ledger_url=MEMORY_URL, evolution=False)
    with Organization.start(genome, config, restore=False) as org:
        for at, denied in commands:
            org.deliver(at, envelope(command("nobody", denied=denied), VsmChannelType.Command, at), wait=False)
        items = []
        for team, code, cap in work:
            meta = {"requires_code_write": "true" if code else "false"}
            if team:
                meta["target_child"] = team
            if cap:
                meta["required_capability"] = cap
            items.append(org.submit(directive("Do the work", **meta)))
        org.wait(items)
        traces = org.read_ledger("recent_task_traces")
    denied_at = {n: set() for n in genome.nodes}
    for at, denied in commands:
        for node in genome.subtree_ids(at):
            denied_at[node] |= {capability_name(c) for c in denied}
    for node in genome.subtree_ids("team-a"):
        denied_at[node] |= set(genome_denies)
    for trace in traces:
        if trace.metadata["status"] != "Completed":
            continue
        meta = {k.removeprefix("task_metadata."): v for k, v in trace.metadata.items() if k.startswith("task_metadata.")}
        needs = {capability_name(c) for c in required_capabilities(TaskPacket(id="t", title="t", goal="g",
                                                                              metadata=meta))}
        assert not needs & denied_at[trace.assigned_node_id], (trace.assigned_node_id, needs, commands)
