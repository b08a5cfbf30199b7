"""The Command channel and System 5 policy (reference §3.10), and management-to-operation
directives (§3.11), as pure deciders.

A `vsm.command` carries non-negotiable legal, regulatory and System 5 constraints down the
organization. `task_from_command` relays them as the reference does: into the task's constraints
and authority refs, its `command_*` metadata (which route events and outbound envelopes copy), and
its risk and channel priority.

Where the reference stops at relaying `denied_capabilities` (§9.18), here they are enforced on
the whole subtree of the node that denies them, at the actor boundary:

- a node's genome `system_5.denied_capabilities` hold for every node below it (`genome_denials`),
  not only for the node itself as capability derivation does (`ViableNode.capabilities`);
- a command arriving at a node denies its capabilities for that node's subtree from then on:
  `PolicyState` is a fold of the node's `command_received` events and of the relays
  (`system5_policy_relayed`) it got from the node above that received one;
- `refusal` is the check: a metasystem never routes, and a leaf never executes (the harness asks
  the same question), a task that needs a capability denied at or above it. A routed task also
  carries its router's standing denials (`system5_denied_capabilities`), so a level that has not
  heard of a denial yet still refuses. Unknown capability names (`deploy`), which derivation lets
  through, are denied by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from attrs import evolve, field, frozen

from ..model.capability import CAPABILITY_NAMES
from ..model.genome import OrganizationalGenome
from ..model.ids import IdFactory, TaskId
from ..model.messages import MessageEnvelope
from ..model.payloads import Command, ManagementOperationDirective
from ..model.task import RiskClass, TaskPacket
from .coordination import kind_name
from .lineage import rejected
from .routing import required_capabilities

COMMAND_EVENT = "command_received"
MAPPED_COMMAND = "system3_command_channel"     # the TaskMapped policy of a command's task
RELAY_EVENT = "system5_policy_relayed"
DENIED_EVENT = "system5_capability_denied"
MANAGEMENT_EVENT = "management_operation_directive_received"
MAPPED_MANAGEMENT = "management_operation_directive"
MANAGEMENT_POLICY = "management_operation_directive_v1"
# a Command envelope that only relays a subtree's denials down (no task): its metadata key
RELAY_MARK = "system5_policy_relay"
STAMP = "system5_denied_capabilities"          # task metadata: the denials its routers hold
_RAW_KEYS = ("required_capability", "requires_code_write", "target_child")
_ATTR_TO_NAME = {attr: name for name, attr in CAPABILITY_NAMES.items()}


def capability_name(name: str) -> str:
    """The router's name of a capability, whether given as `write_code` or `can_write_code`."""
    name = name.strip()
    return _ATTR_TO_NAME.get(name, name)


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(capability_name(p) for p in (text or "").split("|") if p.strip())


# -- commands -------------------------------------------------------------------------------------


def task_from_command(command: Command, new_id: IdFactory) -> TaskPacket:
    basis = command.legal_or_policy_basis
    if basis or command.non_negotiable_constraints or command.denied_capabilities:
        risk = RiskClass.Critical
    else:
        risk = RiskClass.High if command.non_negotiable else RiskClass.Medium
    constraints = ["non-negotiable command"] if command.non_negotiable else []
    if basis:
        constraints.append(f"policy basis: {basis}")
    if command.system5_identity:
        constraints.append(f"system5 identity: {command.system5_identity}")
    constraints += [f"policy value: {v}" for v in command.policy_values]
    constraints += [f"non-negotiable policy constraint: {c}" for c in command.non_negotiable_constraints]
    constraints += [f"denied capability: {c}" for c in command.denied_capabilities]
    meta: dict[str, str] = {}
    if basis:
        meta["legal_or_policy_basis"] = meta["command_legal_or_policy_basis"] = basis
    if command.system5_identity:
        meta["command_system5_identity"] = command.system5_identity
    for key, values in (("command_policy_values", command.policy_values),
                        ("command_policy_constraints", command.non_negotiable_constraints),
                        ("command_denied_capabilities", command.denied_capabilities)):
        if values:
            meta[key] = "|".join(values)
    for key, value in command.metadata.items():
        meta[f"command_metadata.{key}"] = value
        if key in _RAW_KEYS:
            meta[key] = value
    meta.update({"vsm_channel": "Command", "command_issued_by": command.issued_by,
                 "command_non_negotiable": str(command.non_negotiable).lower(),
                 "command_target_node_id": command.target})
    return TaskPacket(id=TaskId(new_id()), title=command.title, goal=command.body, constraints=tuple(constraints),
                      authority_refs=(basis,) if basis else (), risk=risk, assigned_to=command.target, metadata=meta)


def command_event(command: Command, task: TaskPacket | None, env: MessageEnvelope, node_id: str,
                  subtree: Iterable[str]) -> tuple[str, dict, dict]:
    """`command_received`; `denied_for_subtree` names what it denies below `node_id` (the fold
    reads it back)."""
    payload = {
        "issued_by": command.issued_by, "target": command.target, "title": command.title,
        "non_negotiable": command.non_negotiable, "legal_or_policy_basis": command.legal_or_policy_basis,
        "system5_identity": command.system5_identity, "policy_values": list(command.policy_values),
        "non_negotiable_constraints": list(command.non_negotiable_constraints),
        "denied_capabilities": list(command.denied_capabilities), "metadata": dict(sorted(command.metadata.items())),
        "source_channel": env.channel_type.value, "correlation_id": env.correlation_id,
        "causation_id": env.causation_id, "envelope_id": env.id, "receiving_node_id": node_id,
        "denied_for_subtree": sorted({capability_name(c) for c in command.denied_capabilities}),
        "subtree_node_ids": list(subtree) if command.denied_capabilities else [],
    }
    return COMMAND_EVENT, payload, {"task_id": task.id if task is not None else None,
                                    "correlation_id": env.correlation_id or env.id}


def relay_envelope(env: MessageEnvelope, node_id: str, to: str, *, id: str, created_at: datetime) -> MessageEnvelope:
    """The command's denials, for one node of the subtree below `node_id` (no task is made there)."""
    return evolve(env, id=id, created_at=created_at, source_node_id=node_id, target_node_id=to,
                  causation_id=env.id, correlation_id=env.correlation_id or env.id, trace=(*env.trace, node_id),
                  metadata={**env.metadata, RELAY_MARK: "true", "system5_relayed_by": node_id})


def relay_event(command: Command, env: MessageEnvelope) -> tuple[str, dict, dict]:
    return RELAY_EVENT, {
        "relayed_by": env.metadata.get("system5_relayed_by") or env.source_node_id,
        "issued_by": command.issued_by, "title": command.title,
        "denied_for_subtree": sorted({capability_name(c) for c in command.denied_capabilities}),
        "command_envelope_id": env.causation_id, "envelope_id": env.id}, {"correlation_id": env.correlation_id}


def is_relay(env: MessageEnvelope) -> bool:
    return env.metadata.get(RELAY_MARK) == "true"


# -- System 5 denials -----------------------------------------------------------------------------


@frozen(kw_only=True)
class PolicyState:
    """Capabilities denied for this node's subtree by commands: name -> who denied it (the node
    that received the command)."""

    denied: Mapping[str, str] = field(factory=dict)

    @classmethod
    def fold(cls, events: Iterable[Any]) -> PolicyState:
        state = cls()
        for event in events:
            state = state.observe(event)
        return state

    def observe(self, event: Any) -> PolicyState:
        name = event.storage_key.removeprefix("other:")
        if name not in (COMMAND_EVENT, RELAY_EVENT):
            return self
        payload = event.payload if isinstance(event.payload, Mapping) else {}
        caps = [c for c in payload.get("denied_for_subtree") or () if isinstance(c, str)]
        new = {c: self._by(payload, event) for c in caps if c not in self.denied}
        return evolve(self, denied={**self.denied, **new}) if new else self

    @staticmethod
    def _by(payload: Mapping, event: Any) -> str:
        if event.storage_key.endswith(RELAY_EVENT):
            return str(payload.get("relayed_by") or event.node_id or "")
        return str(payload.get("receiving_node_id") or event.node_id or "")


def genome_denials(genome: OrganizationalGenome, node_id: str) -> dict[str, str]:
    """What the genome's System 5 policies deny at `node_id`: its own and every ancestor's
    (capability -> the nearest node that denies it)."""
    out: dict[str, str] = {}
    current = node_id
    for _ in range(len(genome.nodes) + 1):
        node = genome.nodes.get(current)
        if node is None:
            break
        for cap in node.system_5.denied_capabilities:
            out.setdefault(capability_name(cap), node.id)
        if node.parent_id is None:
            break
        current = node.parent_id
    return out


def task_denials(task: TaskPacket) -> dict[str, str]:
    """What a task carries: its routers' standing denials and its own command's."""
    meta = task.metadata
    out = {c: "task" for c in _split(meta.get(STAMP))}
    for c in _split(meta.get("command_denied_capabilities")):
        out.setdefault(c, f"command from {meta.get('command_issued_by') or 'unknown'}")
    return out


@frozen(kw_only=True)
class Refusal:
    capability: str
    denied_by: str

    @property
    def error(self) -> str:
        return f"capability {self.capability} is denied by the System 5 policy of {self.denied_by}"


def refusal(genome: OrganizationalGenome, node_id: str, task: TaskPacket,
            standing: Mapping[str, str] = {}) -> Refusal | None:  # noqa: B006 - read only
    """Why `node_id` may neither route nor execute `task`, or None: the first capability the task
    needs that is denied at or above the node (genome), by a command for its subtree (`standing`)
    or by what the task carries."""
    needs = required_capabilities(task)
    if not needs:
        return None
    meta = task.metadata
    if not standing and STAMP not in meta and "command_denied_capabilities" not in meta \
            and not _any_genome_denial(genome, node_id):
        return None
    denied = {**task_denials(task), **standing, **genome_denials(genome, node_id)}
    for need in needs:
        who = denied.get(capability_name(need))
        if who is not None:
            return Refusal(capability=capability_name(need), denied_by=who)
    return None


def _any_genome_denial(genome: OrganizationalGenome, node_id: str) -> bool:
    current, steps = genome.nodes.get(node_id), 0
    while current is not None and steps <= len(genome.nodes):
        if current.system_5.denied_capabilities:
            return True
        current = genome.nodes.get(current.parent_id) if current.parent_id is not None else None
        steps += 1
    return False


def stamped(task: TaskPacket, standing: Mapping[str, str]) -> TaskPacket:
    """The task with its router's standing denials added to what it carries."""
    if not standing:
        return task
    have = set(_split(task.metadata.get(STAMP)))
    if have.issuperset(standing):
        return task
    return evolve(task, metadata={**task.metadata, STAMP: "|".join(sorted(have | set(standing)))})


def denied_event(task: TaskPacket, node_id: str, why: Refusal) -> tuple[str, dict, dict]:
    return DENIED_EVENT, {"task_id": task.id, "task_title": task.title, "node_id": node_id,
                          "capability": why.capability, "denied_by": why.denied_by,
                          "required_capabilities": required_capabilities(task), "error": why.error}, {
        "task_id": task.id, "directive_id": task.directive_id}


# -- management to operation ----------------------------------------------------------------------


@frozen(kw_only=True)
class ManagementDecision:
    events: tuple[tuple[str, dict, dict], ...]
    task: TaskPacket | None = None
    error: str | None = None


def decide_management(directive: ManagementOperationDirective, env: MessageEnvelope, controller: str,
                      genome: OrganizationalGenome, *, new_id: IdFactory) -> ManagementDecision:
    kind = kind_name(directive.kind)
    first = directive.related_task_id or (directive.dependency_task_ids[0] if directive.dependency_task_ids else None)
    received = (MANAGEMENT_EVENT, {
        "manager_node_id": directive.manager_node_id, "operation_node_id": directive.operation_node_id,
        "related_task_id": directive.related_task_id, "dependency_task_ids": list(directive.dependency_task_ids),
        "kind": kind, "title": directive.title, "target_state": directive.target_state,
        "risk": directive.risk.value, "metadata": dict(sorted(directive.metadata.items())),
        "source_channel": env.channel_type.value, "source_payload_type": env.payload_type,
        "correlation_id": env.correlation_id, "causation_id": env.causation_id,
    }, {"task_id": first, "correlation_id": env.correlation_id,
        "metadata": {"source_channel": env.channel_type.value, "management_operation_kind": kind}})
    if directive.operation_node_id not in genome.node(controller).children:
        error = f"no routeable child found for node {controller} and task {directive.title}"
        return ManagementDecision(events=(received, rejected(env, error, first)), error=error)
    meta = {"management_kind": "management_to_operation", "management_operation_kind": kind,
            "management_source_node_id": directive.manager_node_id,
            "management_target_node_id": directive.operation_node_id,
            "management_directive_message_id": env.id, "management_policy": MANAGEMENT_POLICY}
    if directive.related_task_id:
        meta["management_related_task_id"] = directive.related_task_id
    if directive.dependency_task_ids:
        meta["management_dependency_task_ids"] = ",".join(directive.dependency_task_ids)
    for key, value in directive.metadata.items():
        meta[f"management_metadata.{key}"] = value
        if key in _RAW_KEYS:
            meta[key] = value
    meta["source_payload_type"] = env.payload_type
    task = TaskPacket(
        id=TaskId(new_id()), title=directive.title, goal=directive.body, parent_task_id=directive.related_task_id,
        dependencies=directive.dependency_task_ids, target_state=directive.target_state,
        constraints=directive.constraints, context_refs=directive.context_refs,
        authority_refs=directive.authority_refs, risk=directive.risk, assigned_to=directive.operation_node_id,
        metadata=meta)
    return ManagementDecision(events=(received,), task=task)
