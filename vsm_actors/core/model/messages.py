"""The message envelope every VSM channel carries, payload type names, and AMQP routing keys."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from attrs import evolve, field, frozen

from .channel import ChannelPriority, VsmChannelType
from .ids import MessageId, NodeId
from .payloads import (
    AlgedonicSignal,
    AuditReport,
    AuditRequest,
    Command,
    EnvironmentSignal,
    ManagementOperationDirective,
    OperationHandoff,
    ResourceAllocationDecision,
    ResourceBargain,
    System2CoordinationSignal,
    ThreeFourHomeostatSignal,
)
from .suggestion import GeneSuggestion
from .task import Directive, TaskPacket, TaskResult


class BuiltinPayloadType(str, Enum):
    """The `payload_type` strings of the built-in payloads.

    Unlike the other enums here the values are the wire strings, not the member names: the
    reference never serialises this enum, only its `as_str()` text in `MessageEnvelope.payload_type`.
    """

    Directive = "vsm.directive"
    TaskPacket = "vsm.task_packet"
    TaskResult = "vsm.task_result"
    ResourceBargain = "vsm.resource_bargain"
    ResourceAllocationDecision = "vsm.resource_allocation_decision"
    System2CoordinationSignal = "vsm.system2_coordination_signal"
    OperationHandoff = "vsm.operation_handoff"
    ManagementOperationDirective = "vsm.management_operation_directive"
    EnvironmentSignal = "vsm.environment_signal"
    Command = "vsm.command"
    AuditRequest = "vsm.audit_request"
    AuditReport = "vsm.audit_report"
    AlgedonicSignal = "vsm.algedonic_signal"
    ThreeFourHomeostatSignal = "vsm.three_four_homeostat_signal"
    GeneSuggestion = "vsm.gene_suggestion"


# payload_type string -> payload class (the codec decodes `payload` with this)
PAYLOAD_CLASSES: dict[str, type] = {
    BuiltinPayloadType.Directive.value: Directive,
    BuiltinPayloadType.TaskPacket.value: TaskPacket,
    BuiltinPayloadType.TaskResult.value: TaskResult,
    BuiltinPayloadType.ResourceBargain.value: ResourceBargain,
    BuiltinPayloadType.ResourceAllocationDecision.value: ResourceAllocationDecision,
    BuiltinPayloadType.System2CoordinationSignal.value: System2CoordinationSignal,
    BuiltinPayloadType.OperationHandoff.value: OperationHandoff,
    BuiltinPayloadType.ManagementOperationDirective.value: ManagementOperationDirective,
    BuiltinPayloadType.EnvironmentSignal.value: EnvironmentSignal,
    BuiltinPayloadType.Command.value: Command,
    BuiltinPayloadType.AuditRequest.value: AuditRequest,
    BuiltinPayloadType.AuditReport.value: AuditReport,
    BuiltinPayloadType.AlgedonicSignal.value: AlgedonicSignal,
    BuiltinPayloadType.ThreeFourHomeostatSignal.value: ThreeFourHomeostatSignal,
    BuiltinPayloadType.GeneSuggestion.value: GeneSuggestion,
}

PAYLOAD_TYPE_NAMES: dict[type, str] = {cls: name for name, cls in PAYLOAD_CLASSES.items()}


def payload_type_of(payload: object) -> str:
    """The built-in `payload_type` string for a payload object; TypeError for anything else."""
    try:
        return PAYLOAD_TYPE_NAMES[type(payload)]
    except KeyError:
        raise TypeError(f"not a built-in payload type: {type(payload).__qualname__}") from None


@frozen(kw_only=True)
class MessageEnvelope:
    """Routing and causality around one payload.

    `payload` holds the frozen payload object (e.g. a `TaskPacket`); for a `payload_type` outside
    `PAYLOAD_CLASSES` it holds the decoded JSON value as is.
    """

    id: MessageId
    channel_type: VsmChannelType
    source_node_id: NodeId | None = None
    target_node_id: NodeId | None = None
    correlation_id: str | None = None
    causation_id: MessageId | None = None
    priority: ChannelPriority = ChannelPriority.Normal
    created_at: datetime
    payload_type: str
    payload: object
    # nodes this message has passed through, oldest first
    trace: tuple[NodeId, ...] = ()
    metadata: dict[str, str] = field(factory=dict)

    @classmethod
    def new(
        cls, channel_type: VsmChannelType, payload: object, *, id: str, created_at: datetime,
        payload_type: str | None = None, **changes: object,
    ) -> MessageEnvelope:
        """Envelope a payload; `payload_type` defaults to the built-in name of the payload's class."""
        return cls(
            id=MessageId(id), channel_type=channel_type, created_at=created_at,
            payload_type=payload_type if payload_type is not None else payload_type_of(payload),
            payload=payload, **changes,
        )

    def __str__(self) -> str:
        # a one-line summary for logs; repr() stays complete. Thespian's TCP base formats every
        # message it sends and receives with str() for a debug line, enabled or not, and the
        # payload (a task, a result with its output) made that a tenth of a leaf's CPU
        return (f"MessageEnvelope({self.id} {self.channel_type.value} {self.payload_type} "
                f"{self.source_node_id}->{self.target_node_id})")

    def with_route(self, source: str | None, target: str | None) -> MessageEnvelope:
        return evolve(
            self,
            source_node_id=None if source is None else NodeId(source),
            target_node_id=None if target is None else NodeId(target),
        )

    def with_priority(self, priority: ChannelPriority) -> MessageEnvelope:
        return evolve(self, priority=priority)


def envelope_for_directive(directive: Directive, *, id: str, created_at: datetime) -> MessageEnvelope:
    """Directives enter from the environment, hence OperationToEnvironment."""
    return MessageEnvelope.new(VsmChannelType.OperationToEnvironment, directive, id=id, created_at=created_at)


def envelope_for_task(task: TaskPacket, *, id: str, created_at: datetime) -> MessageEnvelope:
    return MessageEnvelope.new(VsmChannelType.ResourceBargaining, task, id=id, created_at=created_at)


def envelope_for_task_result(result: TaskResult, *, id: str, created_at: datetime) -> MessageEnvelope:
    return MessageEnvelope.new(VsmChannelType.ManagementToOperation, result, id=id, created_at=created_at)


def routing_key(envelope: MessageEnvelope) -> str:
    """`vsm.<channel, lowercase, no separators>.<target node id | broadcast>`."""
    target = "broadcast" if envelope.target_node_id is None else envelope.target_node_id
    return f"vsm.{envelope.channel_type.routing_name}.{target}"
