"""System 3 routing: which direct child gets a task, and how the routed envelope is shaped.

Rule order (reference §3.6, plus our genome routing rules and pause handling):
1. `assigned_to` names a direct child;
2. `target_child` metadata names a direct child by id or name;
3. a genome routing rule of this node matches the task (highest priority first, then genome order);
4. among the direct children that can take it (a metasystem child, which can delegate further, or a
   leaf holding the required capabilities), the one with room for it and the fewest tasks
   outstanding; ties go to genome order, so without load this is the first such child.
Retired and paused children are skipped by every rule; an explicit choice of such a child falls
through to the next rule instead of failing.

Load (System 3's view of its children's work) is an input: `outstanding` counts the tasks this
node has out with each child. It only breaks ties among equally able children (rule 4); rules 1-3
choose their child whatever its load. A leaf works on `LEAF_CONCURRENCY` tasks at a time, and a
node's `system_3.max_parallel_children` bounds how many of its children work at once; a decision
whose child has no room says so (`RouteDecision.waiting`) and the node keeps the task queued until
a result frees a place. Without `outstanding` (offline replay, operators) nothing is ever waiting.

A rule's `keywords` match whole words of the task's title and goal (the directive's title and
body). The mapper marks every task as code-writing unless the directive says otherwise (the
reference's default), so a rule matched on words would never reach a reviewer or tester leaf;
when the directive did not state `requires_code_write` and the rule's target leaf lacks only
`write_code`, the rule takes the task without it: the genome's words say whose work it is, and the
routed task is sent with `requires_code_write: false` (see `RouteDecision.code_write_waived`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from attrs import evolve, field, frozen

from ..model.channel import ChannelPriority, VsmChannelType
from ..model.genome import OrganizationalGenome
from ..model.ids import NodeId
from ..model.messages import MessageEnvelope
from ..model.node import NodeLifecycleStatus, ViableNode
from ..model.task import RiskClass, TaskPacket, TaskResult
from .predicates import first_keyword


class RoutingError(Exception):
    """No child can take the task; becomes a failed result and an event, never a crash."""


# set by the mapper when the directive itself said whether code is to be written
CODE_WRITE_STATED = "requires_code_write_stated"


@frozen
class RouteDecision:
    """The chosen child and why. `reason` is the reference's text (it names the rule, and the
    capabilities when they are not just the default `write_code`); the fields after it say the
    same in structured form for the envelope and the ledger. They are left out of equality: they
    follow from the task and the reason, and decisions compare as the reference's do."""

    child_id: NodeId
    reason: str
    rule_id: str | None = field(default=None, eq=False)
    keyword: str | None = field(default=None, eq=False)  # the rule keyword found in the text
    capabilities: tuple[str, ...] = field(default=(), eq=False)  # what the chosen leaf had to hold
    code_write_waived: bool = field(default=False, eq=False)
    # the chosen child has no room now (see `has_room`): keep the task queued, route it again later
    waiting: bool = field(default=False, eq=False)


def required_capabilities(task: TaskPacket) -> list[str]:
    needs = []
    if task.metadata.get("requires_code_write") == "true":
        needs.append("write_code")
    cap = task.metadata.get("required_capability")
    if cap:
        needs.append(cap)
    return needs


def _needs(task: TaskPacket, *, waive_code_write: bool = False) -> tuple[str, ...]:
    """The task's required capabilities, each once; `waive_code_write` leaves out the need that
    only `requires_code_write` adds (a `required_capability: write_code` stays)."""
    needs = required_capabilities(task)
    if waive_code_write and task.metadata.get("requires_code_write") == "true":
        needs = needs[1:]
    return tuple(dict.fromkeys(needs))


def leaf_can_take(node: ViableNode, task: TaskPacket, *, waive_code_write: bool = False) -> str | None:
    """None if the leaf may execute the task, else the capability it lacks."""
    caps = node.capabilities()
    for need in _needs(task, waive_code_write=waive_code_write):
        if not caps.allows(need):
            return need
    return None


def code_write_defaulted(task: TaskPacket) -> bool:
    """True when the task asks for code only by the mapper's default, not by the directive's word."""
    return task.metadata.get("requires_code_write") == "true" and CODE_WRITE_STATED not in task.metadata


def _available(node: ViableNode, paused: frozenset[str]) -> bool:
    return node.status is not NodeLifecycleStatus.Retired and node.id not in paused


# tasks a leaf works on at once; more wait in its parent's queue (a leaf runs its provider calls
# one after another, so a second task sent would only wait in its mailbox)
LEAF_CONCURRENCY = 1


def child_capacity(node: ViableNode) -> int | None:
    """How many tasks a child takes at once: a leaf `LEAF_CONCURRENCY`, a metasystem any number
    (it keeps what its own children have no room for queued itself)."""
    return None if node.is_metasystem else LEAF_CONCURRENCY


def has_room(genome: OrganizationalGenome, parent_id: str, child_id: str, outstanding: Mapping[str, int]) -> bool:
    """May `parent_id` send `child_id` one more task now? The child must be under its capacity, and
    when it has nothing yet, fewer than the parent's `max_parallel_children` siblings may be working."""
    load = outstanding.get(child_id, 0)
    capacity = child_capacity(genome.node(child_id))
    if capacity is not None and load >= capacity:
        return False
    limit = genome.node(parent_id).system_3.max_parallel_children
    if limit is not None and load == 0:
        working = sum(1 for c in genome.node(parent_id).children if outstanding.get(c, 0) > 0)
        if working >= max(1, limit):
            return False
    return True


def choose_child(genome: OrganizationalGenome, parent_id: str, task: TaskPacket,
                 paused: frozenset[str] = frozenset(), outstanding: Mapping[str, int] | None = None) -> RouteDecision:
    parent = genome.node(parent_id)
    if not parent.children:
        raise RoutingError(f"controller node is not a metasystem: {parent_id}")
    children = [genome.node(c) for c in parent.children]
    if task.assigned_to is not None:
        for child in children:
            if child.id == task.assigned_to and _available(child, paused):
                return _with_load(genome, parent_id, RouteDecision(child.id, "task already assigned to direct child"),
                                  outstanding)
    target = task.metadata.get("target_child")
    if target:
        for child in children:
            if (child.id == target or child.name == target) and _available(child, paused):
                return _with_load(genome, parent_id, RouteDecision(child.id, f"matched target_child metadata: {target}"),
                                  outstanding)
    for rule in sorted((r for r in genome.routing_rules if r.node_id == parent_id), key=lambda r: -r.priority):
        decision = _rule_decision(genome, rule, task, paused)
        if decision is not None:
            return _with_load(genome, parent_id, decision, outstanding)
    able = [child for child in children if _available(child, paused)
            and (child.is_metasystem or leaf_can_take(child, task) is None)]
    if able:
        if outstanding is None:
            child, waiting = able[0], False
        else:
            # room first, then the fewest outstanding, then genome order (min keeps the first)
            rooms = {c.id: has_room(genome, parent_id, c.id, outstanding) for c in able}
            child = min(able, key=lambda c: (not rooms[c.id], outstanding.get(c.id, 0)))
            waiting = not rooms[child.id]
        # the reference's texts when the first able child is chosen; load choosing another says so
        by_load = child is not able[0]
        if child.is_metasystem:
            return RouteDecision(child.id, "least loaded direct child, a metasystem capable of further delegation"
                                 if by_load else "direct child is a metasystem capable of further delegation",
                                 waiting=waiting)
        needs = _needs(task)
        # the reference's text stands for the default need (write_code, or none); any other
        # need is named, so the route event says which capability chose the leaf
        named = f": {', '.join(needs)}" if needs not in ((), ("write_code",)) else ""
        which = "least loaded" if by_load else "first"
        return RouteDecision(child.id, f"{which} direct leaf child with required capabilities{named}",
                             capabilities=needs, waiting=waiting)
    skipped = [c.id for c in children if not _available(c, paused)]
    note = f" (skipped retired/paused: {', '.join(skipped)})" if skipped else ""
    raise RoutingError(f"no routeable child found for node {parent_id} and task {task.title}{note}")


def _with_load(genome: OrganizationalGenome, parent_id: str, decision: RouteDecision,
               outstanding: Mapping[str, int] | None) -> RouteDecision:
    """An explicit choice (assignment, target_child, a rule) keeps its child, busy or not: it waits."""
    if outstanding is None or has_room(genome, parent_id, decision.child_id, outstanding):
        return decision
    return evolve(decision, waiting=True)


def _rule_decision(genome: OrganizationalGenome, rule, task: TaskPacket,
                   paused: frozenset[str]) -> RouteDecision | None:
    child = genome.nodes.get(rule.target_child)
    if child is None or not _available(child, paused) or not _rule_conditions_hold(rule, task):
        return None
    keyword = None
    if rule.keywords:
        keyword = first_keyword(rule.keywords, f"{task.title}\n{task.goal}")
        if keyword is None:
            return None
    reason = f"matched routing rule {rule.id}"
    if child.is_metasystem or leaf_can_take(child, task) is None:
        return RouteDecision(child.id, reason if keyword is None else f"{reason} (keyword {keyword!r})",
                             rule_id=rule.id, keyword=keyword, capabilities=() if child.is_metasystem else _needs(task))
    # words, not metadata, chose this leaf: code writing that was only the default gives way
    if keyword is not None and code_write_defaulted(task) \
            and leaf_can_take(child, task, waive_code_write=True) is None:
        return RouteDecision(child.id, f"{reason} (keyword {keyword!r}; code writing was not asked for)",
                             rule_id=rule.id, keyword=keyword, capabilities=_needs(task, waive_code_write=True),
                             code_write_waived=True)
    return None


def _rule_conditions_hold(rule, task: TaskPacket) -> bool:
    """The rule's metadata conditions (its keywords are matched by the caller, which reports them)."""
    meta = task.metadata
    if rule.task_class is not None and meta.get("task_class") != rule.task_class:
        return False
    if rule.required_capability is not None and rule.required_capability not in required_capabilities(task):
        return False
    # genome files are hand-written: "high" means High
    if rule.risk and task.risk.value.lower() not in {r.lower() for r in rule.risk}:
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
    if decision.rule_id is not None:
        metadata["routing_rule_id"] = decision.rule_id
    if decision.keyword is not None:
        metadata["routing_keyword"] = decision.keyword
    if decision.capabilities:
        metadata["routing_capabilities"] = ",".join(decision.capabilities)
    if decision.code_write_waived:
        # the leaf's harness checks the task it receives: it must not ask for what was waived
        task = evolve(task, metadata={**task.metadata, "requires_code_write": "false",
                                      "requires_code_write_waived_by": decision.rule_id or ""})
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
