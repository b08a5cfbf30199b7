"""System 3 routing: which direct child gets a task, and how the routed envelope is shaped.

Rule order (reference §3.6, plus our genome routing rules and pause handling):
1. `assigned_to` names a direct child;
2. `target_child` metadata names a direct child by id or name;
3. a genome routing rule of this node matches the task;
4. the first direct child that can take it: a metasystem child (it can delegate further) or a leaf
   holding the required capabilities.
Retired and paused children are skipped by every rule; an explicit choice of such a child falls
through to the next rule instead of failing.
"""

from __future__ import annotations

from datetime import datetime

from attrs import frozen

from ..model.channel import ChannelPriority, VsmChannelType
from ..model.genome import OrganizationalGenome
from ..model.ids import NodeId
from ..model.messages import MessageEnvelope
from ..model.node import NodeLifecycleStatus, ViableNode
from ..model.task import RiskClass, TaskPacket, TaskResult


class RoutingError(Exception):
    """No child can take the task; becomes a failed result and an event, never a crash."""


@frozen
class RouteDecision:
    child_id: NodeId
    reason: str


def required_capabilities(task: TaskPacket) -> list[str]:
    needs = []
    if task.metadata.get("requires_code_write") == "true":
        needs.append("write_code")
    cap = task.metadata.get("required_capability")
    if cap:
        needs.append(cap)
    return needs


def leaf_can_take(node: ViableNode, task: TaskPacket) -> str | None:
    """None if the leaf may execute the task, else the capability it lacks."""
    caps = node.capabilities()
    for need in required_capabilities(task):
        if not caps.allows(need):
            return need
    return None


def _available(node: ViableNode, paused: frozenset[str]) -> bool:
    return node.status is not NodeLifecycleStatus.Retired and node.id not in paused


def choose_child(genome: OrganizationalGenome, parent_id: str, task: TaskPacket,
                 paused: frozenset[str] = frozenset()) -> RouteDecision:
    parent = genome.node(parent_id)
    if not parent.children:
        raise RoutingError(f"controller node is not a metasystem: {parent_id}")
    children = [genome.node(c) for c in parent.children]
    if task.assigned_to is not None:
        for child in children:
            if child.id == task.assigned_to and _available(child, paused):
                return RouteDecision(child.id, "task already assigned to direct child")
    target = task.metadata.get("target_child")
    if target:
        for child in children:
            if (child.id == target or child.name == target) and _available(child, paused):
                return RouteDecision(child.id, f"matched target_child metadata: {target}")
    for rule in sorted((r for r in genome.routing_rules if r.node_id == parent_id), key=lambda r: -r.priority):
        child = genome.nodes.get(rule.target_child)
        if (child is not None and _available(child, paused) and _rule_matches(rule, task)
                and (child.is_metasystem or leaf_can_take(child, task) is None)):
            return RouteDecision(child.id, f"matched routing rule {rule.id}")
    for child in children:
        if not _available(child, paused):
            continue
        if child.is_metasystem:
            return RouteDecision(child.id, "direct child is a metasystem capable of further delegation")
        if leaf_can_take(child, task) is None:
            return RouteDecision(child.id, "first direct leaf child with required capabilities")
    skipped = [c.id for c in children if not _available(c, paused)]
    note = f" (skipped retired/paused: {', '.join(skipped)})" if skipped else ""
    raise RoutingError(f"no routeable child found for node {parent_id} and task {task.title}{note}")


def _rule_matches(rule, task: TaskPacket) -> bool:
    meta = task.metadata
    if rule.task_class is not None and meta.get("task_class") != rule.task_class:
        return False
    if rule.required_capability is not None and rule.required_capability not in required_capabilities(task):
        return False
    if rule.risk and task.risk.value not in rule.risk:
        return False
    if rule.keywords:
        text = f"{task.title}\n{task.goal}".lower()
        if not any(k.lower() in text for k in rule.keywords):
            return False
    return True


# -- envelopes ---------------------------------------------------------------------------------

# Incoming channels whose tasks keep their channel when routed downwards.
_KEEP_CHANNEL = frozenset({
    VsmChannelType.Command, VsmChannelType.System2Coordination, VsmChannelType.Audit,
    VsmChannelType.ThreeFourHomeostat, VsmChannelType.ManagementToOperation,
    VsmChannelType.OperationToOperation, VsmChannelType.Algedonic,
})
_RISK_PRIORITY = {RiskClass.Low: ChannelPriority.Normal, RiskClass.Medium: ChannelPriority.Normal,
                  RiskClass.High: ChannelPriority.High, RiskClass.Critical: ChannelPriority.Critical}


def outbound_channel(incoming: MessageEnvelope | None,
                     default: VsmChannelType = VsmChannelType.ResourceBargaining) -> VsmChannelType:
    if incoming is not None and incoming.channel_type in _KEEP_CHANNEL:
        return incoming.channel_type
    return default


def outbound_priority(task: TaskPacket, incoming: MessageEnvelope | None) -> ChannelPriority:
    base = _RISK_PRIORITY[task.risk]
    channel = incoming.channel_type if incoming is not None else None
    if channel is VsmChannelType.Command:
        critical = task.metadata.get("command_non_negotiable") == "true" or task.risk is RiskClass.Critical
        return ChannelPriority.Critical if critical else base.at_least(ChannelPriority.High)
    if channel in (VsmChannelType.System2Coordination, VsmChannelType.Audit, VsmChannelType.ThreeFourHomeostat):
        return base.at_least(ChannelPriority.High)
    if channel is VsmChannelType.Algedonic:
        return ChannelPriority.Interrupt
    return base


def routed_task_envelope(task: TaskPacket, incoming: MessageEnvelope | None, controller_id: str,
                         decision: RouteDecision, *, id: str, created_at: datetime) -> MessageEnvelope:
    channel = outbound_channel(incoming)
    metadata = {"routing_reason": decision.reason, "vsm_outbound_channel": channel.value}
    if incoming is not None:
        metadata["vsm_source_channel"] = incoming.channel_type.value
        metadata["source_payload_type"] = incoming.payload_type
    correlation = (incoming.correlation_id or incoming.id) if incoming is not None else task.id
    return MessageEnvelope.new(
        channel, task, id=id, created_at=created_at,
        source_node_id=NodeId(controller_id), target_node_id=decision.child_id,
        correlation_id=correlation, causation_id=incoming.id if incoming is not None else None,
        priority=outbound_priority(task, incoming),
        trace=(*(incoming.trace if incoming is not None else ()), NodeId(controller_id)),
        metadata=metadata,
    )


def result_envelope(result: TaskResult, incoming: MessageEnvelope | None, sender_id: str, target: str | None,
                    *, id: str, created_at: datetime, forwarded: bool = False) -> MessageEnvelope:
    """A result travelling up: always ManagementToOperation, Normal priority, chained causality."""
    metadata: dict[str, str] = {}
    if forwarded:
        metadata = {"forwarded_by_controller_node_id": sender_id, "forwarded_result_task_id": result.task_id,
                    "vsm_outbound_channel": VsmChannelType.ManagementToOperation.value,
                    "source_payload_type": "vsm.task_result"}
    return MessageEnvelope.new(
        VsmChannelType.ManagementToOperation, result, id=id, created_at=created_at,
        source_node_id=NodeId(sender_id), target_node_id=None if target is None else NodeId(target),
        correlation_id=(incoming.correlation_id or incoming.id) if incoming is not None else None,
        causation_id=incoming.id if incoming is not None else None,
        trace=(*(incoming.trace if incoming is not None else ()), NodeId(sender_id)),
        metadata=metadata,
    )
