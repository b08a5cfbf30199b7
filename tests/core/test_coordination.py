"""System 2 coordination (reference §3.8, tests 45, 46, 56), peer handoffs and channel lineage
(§3.4, §3.11, tests 49, 50) against the pure core: the dampening decider, the coordination
evidence fold that caps token grants, and what differs from the reference (evidence decays after
an hour, §9.12; a handoff to a non-child is an event, not a dead controller, §9.3)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from attrs import evolve
from hypothesis import given, settings, strategies as st

from vsm_actors.core.control.coordination import (
    DAMPENING_POLICY, HORIZON, SIGNAL_EVENT, WINDOW, CoordinationState, CoordinationSummary, dampening_event,
    decide_signal, kind_name, needs_dampening, summarize,
)
from vsm_actors.core.control.lineage import (
    HANDOFF_EVENT, REJECTED_EVENT, annotate_incoming, annotate_outbound, decide_handoff, relayed_metadata,
)
from vsm_actors.core.control.ledger_events import EventFactory
from vsm_actors.core.control.resources import EpochAccount, allocate
from vsm_actors.core.control.routing import choose_child, routed_task_envelope
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.channel import ChannelPriority, VsmChannelType
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.messages import MessageEnvelope
from vsm_actors.core.model.node import System3Config, ViableNode
from vsm_actors.core.model.payloads import (
    OperationHandoff, OperationHandoffKind, ResourceAllocationStatus, ResourceBargain, System2CoordinationKind,
    System2CoordinationSignal,
)
from vsm_actors.core.model.task import RiskClass, TaskArtifact, TaskPacket
from vsm_actors.core.model.variants import Other

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
_ids = itertools.count()


def new_id() -> str:
    return f"id-{next(_ids)}"


def genome_with(*leaves, root_system_3: System3Config = System3Config()) -> OrganizationalGenome:
    g = OrganizationalGenome.with_root("g1", ViableNode.metasystem("root", "root", system_3=root_system_3))
    for name, spec in leaves:
        g = g.add_child("root", ViableNode.leaf(name, name, spec))
    return g


F1 = genome_with(("coder", LeafOperationSpec.coding()))
F2 = genome_with(("coder", LeafOperationSpec.coding()), ("reviewer", LeafOperationSpec.reviewer()),
                 ("tester", LeafOperationSpec.tester()))
EVENTS = EventFactory("root", new_id, lambda: T0, lambda v: v, genome_id="g1")


def envelope(payload, channel, **changes) -> MessageEnvelope:
    return MessageEnvelope.new(channel, payload, id=new_id(), created_at=T0, **changes)


def signal(kind=System2CoordinationKind.Contention, severity: int | None = 6, **changes) -> System2CoordinationSignal:
    base = dict(coordinator_node_id="root", source_node_id="coder", target_node_id="reviewer",
                affected_node_ids=("coder", "reviewer"), affected_task_ids=("task-a",), kind=kind,
                summary="both edit src/lib.rs", evidence=("two patches",), severity=severity, created_at=T0)
    return System2CoordinationSignal(**{**base, **changes})


def publish(genome, controller, task, env):
    """What the node's dispatch does with a task once admitted (actors/dispatch_queue.py)."""
    task = annotate_incoming(task, env, controller)
    decision = choose_child(genome, controller, task)
    task = evolve(task, assigned_to=decision.child_id, metadata={
        **annotate_outbound(task.metadata, decision.child_id), "routed_by": controller,
        "routing_reason": decision.reason})
    out = relayed_metadata(routed_task_envelope(task, env, controller, decision, id=new_id(), created_at=T0),
                           task.metadata)
    return task, out, EVENTS.task_routed(task, controller, decision, env, out, genome.id).payload


def recorded(spec, at: datetime = T0):
    """The ledger event the node records for a decided (name, payload, links), at `at`."""
    name, payload, links = spec
    return evolve(EVENTS.other(name, payload, **links), created_at=at)


# -- System 2 coordination tasks (reference #45) ---------------------------------------------------------


def test_system2_coordination_tasks_preserve_coordination_channel():
    t = TaskPacket.new("Coordinate", "goal", new_id, metadata={"requires_code_write": "true"})
    env = envelope(t, VsmChannelType.System2Coordination)
    _, out, routed = publish(F1, "root", t, env)
    assert out.channel_type is VsmChannelType.System2Coordination and out.priority is ChannelPriority.High
    assert out.metadata["vsm_source_channel"] == "System2Coordination"
    assert routed["source_channel"] == routed["outbound_channel"] == "System2Coordination"
    assert routed["channel_priority"] == "High"


# -- dampening (reference #46 and §3.8 steps 2-4) -----------------------------------------------------------


def test_system2_contention_signal_creates_dampening_task():
    sig = signal()
    env = envelope(sig, VsmChannelType.System2Coordination, source_node_id="coder", target_node_id="root")
    decision = decide_signal(sig, env, "root", F2, new_id=new_id, now=T0)
    name, payload, links = decision.event
    assert name == SIGNAL_EVENT and links["task_id"] == "task-a"
    assert links["metadata"] == {"source_channel": "System2Coordination", "coordination_kind": "Contention",
                                 "severity": "6"}
    assert payload["kind"] == "Contention" and payload["affected_node_ids"] == ["coder", "reviewer"]
    task = decision.task
    assert task.assigned_to == "reviewer" and task.dependencies == ("task-a",)
    assert task.title == "Dampen System 2 Contention"
    assert task.goal == ("Coordinate affected System 1 units to dampen Contention. Summary: both edit src/lib.rs "
                         "Evidence: two patches")
    assert task.risk is RiskClass.Medium
    meta = task.metadata
    assert meta["coordination_policy"] == DAMPENING_POLICY and meta["coordination_kind"] == "Contention"
    assert meta["coordination_signal_message_id"] == env.id and meta["coordination_source_node_id"] == "coder"
    assert meta["coordination_target_node_id"] == meta["target_child"] == "reviewer"
    assert meta["coordination_severity"] == "6" and meta["coordination_affected_node_ids"] == "coder,reviewer"
    assert meta["coordination_affected_task_ids"] == "task-a" and meta["requires_code_write"] == "false"
    assert meta["decomposition_authority"] == "system2" and meta["vsm_coordination_summary"] == sig.summary
    synthetic = decision.envelope
    assert synthetic.channel_type is VsmChannelType.System2Coordination
    assert synthetic.correlation_id == env.id and synthetic.causation_id == env.id
    assert synthetic.metadata == {"coordination_policy": DAMPENING_POLICY, "coordination_signal_message_id": env.id}
    routed_task, out, routed = publish(F2, "root", task, synthetic)
    assert out.target_node_id == "reviewer" and out.channel_type is VsmChannelType.System2Coordination
    assert out.priority is ChannelPriority.High
    assert out.metadata["coordination_kind"] == "Contention" and out.metadata["coordination_policy"] == DAMPENING_POLICY
    assert routed["source_channel"] == "System2Coordination" and routed["coordination_kind"] == "Contention"
    created = dampening_event(routed_task, "reviewer", sig, synthetic)
    assert created[0] == "system2_dampening_task_created" and created[1]["child_node_id"] == "reviewer"


@pytest.mark.parametrize("kind, severity, dampen", [
    (System2CoordinationKind.Contention, 5, True), (System2CoordinationKind.Contention, 4, False),
    (System2CoordinationKind.Oscillation, 5, True), (System2CoordinationKind.Oscillation, None, False),
    (System2CoordinationKind.DependencyBlocked, 7, True), (System2CoordinationKind.DependencyBlocked, 6, False),
    (System2CoordinationKind.DependencyReady, 10, False), (System2CoordinationKind.HandoffNotice, 10, False),
    (Other("dup"), 10, False),
])
def test_which_signals_are_dampened(kind, severity, dampen):
    sig = signal(kind=kind, severity=severity)
    assert needs_dampening(sig) is dampen
    decision = decide_signal(sig, envelope(sig, VsmChannelType.System2Coordination), "root", F2, new_id=new_id, now=T0)
    assert (decision.task is not None) is dampen


def test_dampening_risk_and_target_follow_the_signal():
    high = decide_signal(signal(severity=8), envelope(signal(), VsmChannelType.System2Coordination), "root", F2,
                         new_id=new_id, now=T0).task
    assert high.risk is RiskClass.High
    # the first of target and affected nodes that is a direct child; none: the router decides
    stray = signal(target_node_id="elsewhere", affected_node_ids=("nobody", "tester"))
    assert decide_signal(stray, envelope(stray, VsmChannelType.System2Coordination), "root", F2, new_id=new_id,
                         now=T0).task.assigned_to == "tester"
    none = signal(target_node_id=None, affected_node_ids=(), evidence=())
    task = decide_signal(none, envelope(none, VsmChannelType.System2Coordination), "root", F2, new_id=new_id,
                         now=T0).task
    assert task.assigned_to is None and "target_child" not in task.metadata and "Evidence" not in task.goal


def test_an_other_kind_prints_as_the_reference_debug():
    assert kind_name(Other("dup")) == 'Other("dup")' and kind_name({"Other": "dup"}) == 'Other("dup")'
    assert kind_name(System2CoordinationKind.Oscillation) == "Oscillation"


# -- the evidence fold and token grants (reference #56, §3.8 "Coordination pressure on grants") -------------


def test_resource_bargain_uses_system2_contention_pressure_to_constrain_tokens():
    g = genome_with(("coder", LeafOperationSpec.coding()), ("reviewer", LeafOperationSpec.reviewer()),
                    ("tester", LeafOperationSpec.tester()),
                    root_system_3=System3Config(default_task_budget_tokens=1000))
    sig = signal(source_node_id="reviewer", target_node_id="coder", affected_node_ids=("coder",), severity=8)
    decision = decide_signal(sig, envelope(sig, VsmChannelType.System2Coordination), "root", g, new_id=new_id, now=T0)
    assert decision.task is not None and decision.task.assigned_to == "coder"  # a dampening task for the coder
    state = CoordinationState().observe(recorded(decision.event))
    summary = state.summary("coder")
    allocation = allocate(g, "root", ResourceBargain(requested_by="coder", requested_tokens=800, justification="need"),
                          EpochAccount(), now=T0, coordination=summary.pressure_for_grants())
    assert allocation.decision.status is ResourceAllocationStatus.PartiallyApproved
    assert allocation.decision.approved_tokens == 200
    assert any("System 2 coordination pressure" in r for r in allocation.decision.reasons)
    meta = summary.metadata()
    assert meta["coordination_pressure_count"] == "1" and meta["coordination_max_severity"] == "8"
    assert meta["coordination_contention_count"] == "1" and meta["coordination_pressure"] == "8.000"
    assert meta["coordination_pressure_reasons"] == "system2_coordination kind=Contention severity=8"
    # a child the signal does not name is not constrained
    assert state.summary("tester") == CoordinationSummary() and not state.summary("tester").affects_allocation


def test_pressure_weights_and_defaults_follow_the_reference():
    events = [recorded(decide_signal(s, envelope(s, VsmChannelType.System2Coordination), "root", F2,
                                     new_id=new_id, now=T0).event) for s in (
        signal(kind=System2CoordinationKind.Contention, severity=4),
        signal(kind=System2CoordinationKind.Oscillation, severity=4),
        signal(kind=System2CoordinationKind.DependencyBlocked, severity=None),  # missing: 1
        signal(kind=System2CoordinationKind.HandoffNotice, severity=9),         # not counted
        signal(kind=Other("dup"), severity=9),
    )]
    summary = summarize(events, "coder")
    assert (summary.event_count, summary.contention_count, summary.oscillation_count,
            summary.dependency_blocked_count) == (3, 1, 1, 1)
    assert summary.pressure == pytest.approx(4 + 1.25 * 4 + 0.75 * 1) and summary.max_severity == 4
    assert summary.affects_allocation  # pressure 9.75 >= 8 although no severity reaches 5
    assert summary.to_json()["reasons"] == ["system2_coordination kind=Contention severity=4",
                                            "system2_coordination kind=Oscillation severity=4",
                                            "system2_coordination kind=DependencyBlocked severity=1"]
    assert summarize(events[:1], "coder").affects_allocation is False


def test_only_the_latest_window_of_signals_counts():
    quiet = [recorded((SIGNAL_EVENT, {"kind": "DependencyReady", "source_node_id": "coder"}, {}))] * WINDOW
    loud = recorded((SIGNAL_EVENT, {"kind": "Contention", "severity": 9, "affected_node_ids": ["coder"]}, {}))
    assert summarize([loud, *quiet[:-1]], "coder").event_count == 1
    assert summarize([loud, *quiet], "coder").event_count == 0  # pushed out by a hundred later signals


def test_coordination_evidence_decays_after_the_horizon():
    """§9.12: the reference counts its latest 100 signals forever."""
    old = recorded((SIGNAL_EVENT, {"kind": "Oscillation", "severity": 9, "target_node_id": "coder"}, {}), at=T0)
    state = CoordinationState.fold([old])
    assert state.summary("coder").affects_allocation
    assert state.expire(T0 + HORIZON - timedelta(seconds=1)).summary("coder").event_count == 1
    assert state.expire(T0 + HORIZON + timedelta(seconds=1)).summary("coder") == CoordinationSummary()
    later = recorded((SIGNAL_EVENT, {"kind": "Contention", "severity": 2, "target_node_id": "coder"}, {}),
                     at=T0 + 2 * HORIZON)
    assert state.observe(later).summary("coder").event_count == 1


def test_severity_falls_back_to_metadata_and_is_capped():
    ev = EVENTS.other(SIGNAL_EVENT, {"kind": None, "affected_node_ids": ["coder"]},
                      metadata={"coordination_kind": "Contention", "severity": "42"})
    summary = summarize([ev], "coder")
    assert summary.max_severity == 10 and summary.pressure == 10.0


def test_other_events_leave_the_state_alone():
    state = CoordinationState()
    assert state.observe(EVENTS.other("algedonic_subtree_paused", {"target_node_id": "coder"})) is state


# (kind, severity or None, involved nodes, minutes after T0), oldest first
_SIGNALS = st.lists(st.tuples(
    st.sampled_from(["Contention", "Oscillation", "DependencyBlocked", "DependencyReady", "HandoffNotice"]),
    st.one_of(st.none(), st.integers(0, 12)),
    st.lists(st.sampled_from(["coder", "reviewer", "tester"]), max_size=3),
    st.integers(0, 30)), max_size=260)


def _rescan(raw: list, child: str, now: datetime) -> dict:
    """What the reference computes on every bargain, with our horizon: the latest WINDOW signals."""
    window = [s for s in raw[-WINDOW:] if s[1] >= now - HORIZON]
    count = contention = oscillation = blocked = 0
    pressure, severities = 0.0, []
    for kind, at, severity, nodes in window:
        if child not in nodes or kind not in ("Contention", "Oscillation", "DependencyBlocked"):
            continue
        s = min(1 if severity is None else severity, 10)
        p = max(s, 1)
        count += 1
        severities.append(s)
        contention += kind == "Contention"
        oscillation += kind == "Oscillation"
        blocked += kind == "DependencyBlocked"
        pressure += {"Contention": 1.0, "Oscillation": 1.25, "DependencyBlocked": 0.75}[kind] * p
    return {"event_count": count, "contention_count": contention, "oscillation_count": oscillation,
            "dependency_blocked_count": blocked, "pressure": pressure, "max_severity": max(severities, default=0)}


@settings(max_examples=150, deadline=None)
@given(_SIGNALS)
def test_the_fold_equals_a_rescan_of_the_window(signals):
    """Folding one event at a time gives what rescanning the latest signals gives, at any time."""
    state, raw, at = CoordinationState(), [], T0
    for kind, severity, nodes, step in signals:
        at += timedelta(minutes=step)
        payload = {"kind": kind, "severity": severity, "affected_node_ids": nodes}
        state = state.observe(recorded((SIGNAL_EVENT, payload, {}), at=at))
        raw.append((kind, at, severity, tuple(nodes)))
        assert len(state.window) <= WINDOW
    for now in (at, at + timedelta(minutes=45)):
        current = state.expire(now)
        for child in ("coder", "reviewer", "tester"):
            got = current.summary(child).to_json()
            want = _rescan(raw, child, now)
            assert {k: got[k] for k in want} == pytest.approx(want)
            assert len(got["reasons"]) == min(want["event_count"], 8)


# -- peer handoffs and management lineage (reference #49, #50, §3.4) -------------------------------------------


def test_operation_to_operation_handoff_preserves_peer_channel_and_lineage():
    t = TaskPacket.new("Review the patch", "goal", new_id,
                       metadata={"target_child": "reviewer", "required_capability": "review"})
    env = envelope(t, VsmChannelType.OperationToOperation, source_node_id="coder", target_node_id="root",
                   correlation_id="handoff-correlation")
    routed_task, out, routed = publish(F2, "root", t, env)
    assert routed_task.assigned_to == "reviewer"
    meta = routed_task.metadata
    assert meta["handoff_kind"] == "operation_to_operation" and meta["handoff_source_node_id"] == "coder"
    assert meta["handoff_target_node_id"] == "reviewer" and meta["handoff_via_controller_node_id"] == "root"
    assert out.channel_type is VsmChannelType.OperationToOperation and out.target_node_id == "reviewer"
    for key, value in (("handoff_source_node_id", "coder"), ("handoff_target_node_id", "reviewer"),
                       ("handoff_via_controller_node_id", "root"), ("vsm_source_channel", "OperationToOperation")):
        assert out.metadata[key] == value
    assert routed["handoff_kind"] == "operation_to_operation"
    assert routed["handoff_correlation_id"] == "handoff-correlation"
    assert routed["handoff_channel"] == "OperationToOperation" and routed["handoff_envelope_id"] == env.id


def test_typed_operation_handoff_creates_targeted_peer_task():
    handoff = OperationHandoff(
        source_node_id="coder", target_node_id="reviewer", related_task_id="R", dependency_task_ids=("X",),
        kind=OperationHandoffKind.ReviewRequest, title="Review patch 123", summary="ready for review",
        artifacts=(TaskArtifact(kind="patch", uri="artifact://patch/123"),), evidence=("tests pass",),
        metadata={"branch": "feature"}, created_at=T0)
    env = envelope(handoff, VsmChannelType.OperationToOperation, source_node_id="coder", target_node_id="root")
    decision = decide_handoff(handoff, env, "root", F2, new_id=new_id)
    (received,) = decision.events
    assert received[0] == HANDOFF_EVENT and received[2]["task_id"] == "R"
    assert received[1]["kind"] == "ReviewRequest" and received[1]["artifact_count"] == 1
    assert received[2]["metadata"]["handoff_operation_kind"] == "ReviewRequest"
    task = decision.task
    assert task.assigned_to == "reviewer" and task.parent_task_id == "R" and task.dependencies == ("X",)
    assert task.context_refs == ("artifact://patch/123",) and task.risk is RiskClass.Medium
    assert task.goal == ("Continue operation handoff from coder to reviewer. Summary: ready for review "
                         "Artifacts: patch. Evidence: tests pass")
    assert task.metadata["handoff_metadata.branch"] == "feature" and task.metadata["requires_code_write"] == "false"
    routed_task, out, routed = publish(F2, "root", task, env)
    assert out.channel_type is VsmChannelType.OperationToOperation and out.target_node_id == "reviewer"
    assert out.metadata["handoff_operation_kind"] == "ReviewRequest"
    assert out.metadata["handoff_artifact_refs"] == "artifact://patch/123"
    assert routed["handoff_operation_kind"] == "ReviewRequest" and routed["handoff_artifact_count"] == "1"


def test_a_blocked_dependency_handoff_is_high_risk():
    handoff = OperationHandoff.new("coder", "reviewer", OperationHandoffKind.DependencyBlocked, "Blocked", "x", T0)
    env = envelope(handoff, VsmChannelType.OperationToOperation)
    assert decide_handoff(handoff, env, "root", F2, new_id=new_id).task.risk is RiskClass.High


def test_a_handoff_to_a_non_child_is_an_event_not_an_error():
    """§9.3: the reference's NoRouteableChild stopped the controller."""
    handoff = OperationHandoff.new("coder", "stranger", OperationHandoffKind.WorkInProgress, "Help", "x", T0)
    decision = decide_handoff(handoff, envelope(handoff, VsmChannelType.OperationToOperation), "root", F2,
                              new_id=new_id)
    assert decision.task is None and [e[0] for e in decision.events] == [HANDOFF_EVENT, REJECTED_EVENT]
    assert decision.error == "no routeable child found for node root and task Help"


def test_tasks_on_other_channels_carry_no_peer_lineage():
    t = TaskPacket.new("x", "y", new_id)
    for channel in (VsmChannelType.ResourceBargaining, VsmChannelType.Command, VsmChannelType.System2Coordination):
        assert annotate_incoming(t, envelope(t, channel), "root") is t
    out = envelope(t, VsmChannelType.ResourceBargaining)
    assert relayed_metadata(out, {"routing_reason": "r", "handoff_metadata.x": "y"}) is out
