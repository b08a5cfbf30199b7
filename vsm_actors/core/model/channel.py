"""VSM channels: the 11 channel types, priorities, directions and the parent-child bundle."""

from __future__ import annotations

from enum import Enum

from attrs import field, frozen

from .ids import ChannelId, IdFactory, NodeId


class VsmChannelType(str, Enum):
    ResourceBargaining = "ResourceBargaining"
    Command = "Command"
    System2Coordination = "System2Coordination"
    Audit = "Audit"
    ThreeFourHomeostat = "ThreeFourHomeostat"
    ManagementToOperation = "ManagementToOperation"
    OperationToOperation = "OperationToOperation"
    OperationToEnvironment = "OperationToEnvironment"
    FutureProbeToEnvironment = "FutureProbeToEnvironment"
    EnvironmentToEnvironment = "EnvironmentToEnvironment"
    Algedonic = "Algedonic"

    @property
    def routing_name(self) -> str:
        """Lower-case, separator-free name used in AMQP routing keys."""
        return self.value.lower()


class ChannelPriority(str, Enum):
    Low = "Low"
    Normal = "Normal"
    High = "High"
    Critical = "Critical"
    Interrupt = "Interrupt"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]

    def at_least(self, other: ChannelPriority) -> ChannelPriority:
        return self if self.rank >= other.rank else other


_PRIORITY_RANK = {p: i for i, p in enumerate(ChannelPriority)}


class ChannelDirection(str, Enum):
    ParentToChild = "ParentToChild"
    ChildToParent = "ChildToParent"
    SiblingToSibling = "SiblingToSibling"
    NodeToEnvironment = "NodeToEnvironment"
    EnvironmentToNode = "EnvironmentToNode"
    Bidirectional = "Bidirectional"


@frozen(kw_only=True)
class ChannelConfig:
    id: ChannelId
    channel_type: VsmChannelType
    from_: NodeId | None = field(default=None, alias="from_")
    to: NodeId | None = None
    direction: ChannelDirection = ChannelDirection.Bidirectional
    enabled: bool = True
    required: bool = False
    priority: ChannelPriority = ChannelPriority.Normal
    max_messages_per_epoch: int | None = None
    max_token_budget_per_epoch: int | None = None
    activation_predicate: str | None = None
    metadata: dict[str, str] = field(factory=dict)


# (channel type, direction, child-to-parent?) in the reference's bundle order
_BUNDLE = (
    (VsmChannelType.ResourceBargaining, ChannelDirection.Bidirectional, False),
    (VsmChannelType.Command, ChannelDirection.ParentToChild, False),
    (VsmChannelType.System2Coordination, ChannelDirection.ParentToChild, False),
    (VsmChannelType.Audit, ChannelDirection.Bidirectional, False),
    (VsmChannelType.Algedonic, ChannelDirection.ChildToParent, True),
)


def standard_bundle(parent: NodeId, child: NodeId, new_id: IdFactory | None = None) -> tuple[ChannelConfig, ...]:
    """The five channels every containment edge gets.

    Without an id factory the ids are derived from the edge (`parent>child:resourcebargaining`), so
    a concise genome file that omits channels always yields the same ids.
    """
    out = []
    for channel_type, direction, upward in _BUNDLE:
        src, dst = (child, parent) if upward else (parent, child)
        cid = new_id() if new_id else f"{parent}>{child}:{channel_type.routing_name}"
        out.append(ChannelConfig(id=ChannelId(cid), channel_type=channel_type, from_=src, to=dst, direction=direction))
    return tuple(out)
