"""A viable node: Systems 5/4/3/3*/2 configuration plus either children or a leaf operation."""

from __future__ import annotations

from enum import Enum

from attrs import field, frozen

from .capability import CapabilitySet, LeafOperationSpec
from .channel import ChannelConfig
from .ids import NodeId


@frozen(kw_only=True)
class System5Policy:
    identity: str = "unclassified viable node"
    values: tuple[str, ...] = ()
    non_negotiable_constraints: tuple[str, ...] = ()
    denied_capabilities: tuple[str, ...] = ()


@frozen(kw_only=True)
class System4Config:
    future_probe_enabled: bool = True
    probe_interval_seconds: int | None = None
    watched_environments: tuple[str, ...] = ()
    horizon: str | None = None


@frozen(kw_only=True)
class System3Config:
    can_allocate_budget: bool = True
    can_decompose_tasks: bool = True
    can_issue_commands: bool = True
    can_integrate_child_outputs: bool = True
    max_parallel_children: int | None = None
    default_task_budget_tokens: int | None = None


@frozen(kw_only=True)
class NodeBudget:
    """What a node may spend in one epoch (an hour, as the reference keys them): the concise
    genome form's `budget:`. It is stored where the reference declares budgets, on the
    ResourceBargaining channel into the node (from its parent; for the root, from the
    environment), so the full reference form and the wire format stay as they are. None: no
    limit of the node's own (it still spends from its parent's)."""

    tokens_per_epoch: int | None = None
    messages_per_epoch: int | None = None   # task packets the node takes per epoch

    @property
    def declared(self) -> bool:
        return self.tokens_per_epoch is not None or self.messages_per_epoch is not None


@frozen(kw_only=True)
class System3StarConfig:
    audit_enabled: bool = True
    audit_interval_seconds: int | None = None
    audit_window_tasks: int | None = 50
    gene_suggestion_enabled: bool = True


class PromptOrigin(str, Enum):
    Manual = "Manual"
    Mutation = "Mutation"
    SummarizedMemory = "SummarizedMemory"
    TaskCluster = "TaskCluster"
    SystemPolicy = "SystemPolicy"


class PromptSection(str, Enum):
    BehaviorRules = "BehaviorRules"
    DomainHints = "DomainHints"
    CodebaseConventions = "CodebaseConventions"
    NegativeConstraints = "NegativeConstraints"
    OutputContract = "OutputContract"


@frozen(kw_only=True)
class PromptComponent:
    id: str
    text: str
    tags: tuple[str, ...] = ()
    origin: PromptOrigin = PromptOrigin.Manual
    active: bool = True


@frozen(kw_only=True)
class PromptGenome:
    base_identity: str = ""
    behavior_rules: tuple[PromptComponent, ...] = ()
    domain_hints: tuple[PromptComponent, ...] = ()
    codebase_conventions: tuple[PromptComponent, ...] = ()
    negative_constraints: tuple[PromptComponent, ...] = ()
    output_contract: PromptComponent | None = None


# PromptSection -> PromptGenome attribute for the four list sections
PROMPT_LIST_SECTIONS = {
    PromptSection.BehaviorRules: "behavior_rules",
    PromptSection.DomainHints: "domain_hints",
    PromptSection.CodebaseConventions: "codebase_conventions",
    PromptSection.NegativeConstraints: "negative_constraints",
}


@frozen(kw_only=True)
class ModelSpec:
    provider: str = "abstract"
    model: str = "unbound"
    effort: str | None = None
    max_context_tokens: int | None = None


@frozen(kw_only=True)
class ToolSpec:
    name: str
    description: str | None = None
    permissions: tuple[str, ...] = ()
    enabled: bool = False


@frozen(kw_only=True)
class ContextPolicy:
    fixed_context_refs: tuple[str, ...] = ()
    retrievable_context_refs: tuple[str, ...] = ()
    max_retrieval_tokens: int | None = None
    max_total_task_tokens: int | None = None


@frozen(kw_only=True)
class PermissionSpec:
    allowed_paths: tuple[str, ...] = ()
    denied_paths: tuple[str, ...] = ()
    allowed_tools: tuple[str, ...] = ()
    denied_tools: tuple[str, ...] = ()
    requires_human_approval: bool = False


class NodeLifecycleStatus(str, Enum):
    Shadow = "Shadow"
    Probation = "Probation"
    Active = "Active"
    Retired = "Retired"


@frozen(kw_only=True)
class ViableNode:
    id: NodeId
    parent_id: NodeId | None = None
    name: str
    system_5: System5Policy = System5Policy()
    system_4: System4Config = System4Config()
    system_3: System3Config = System3Config()
    system_3_star: System3StarConfig = System3StarConfig()
    children: tuple[NodeId, ...] = ()
    leaf_operation: LeafOperationSpec = LeafOperationSpec()
    model: ModelSpec = ModelSpec()
    prompt: PromptGenome = PromptGenome()
    tools: tuple[ToolSpec, ...] = ()
    context_policy: ContextPolicy = ContextPolicy()
    permissions: PermissionSpec = PermissionSpec()
    channels: tuple[ChannelConfig, ...] = ()
    age_epochs: int = 0
    status: NodeLifecycleStatus = NodeLifecycleStatus.Active
    metadata: dict[str, str] = field(factory=dict)

    @classmethod
    def leaf(cls, node_id: str, name: str, spec: LeafOperationSpec, **kw) -> ViableNode:
        return cls(id=NodeId(node_id), name=name, leaf_operation=spec, **kw)

    @classmethod
    def metasystem(cls, node_id: str, name: str, **kw) -> ViableNode:
        """A node meant to govern children; until it has one, it is an all-false leaf."""
        return cls(id=NodeId(node_id), name=name, **kw)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    @property
    def is_metasystem(self) -> bool:
        return bool(self.children)

    @property
    def kind(self) -> str:
        return "metasystem" if self.children else "leaf"

    def capabilities(self) -> CapabilitySet:
        """Derived from structure: children => metasystem set; else the leaf operation's set.

        Unlike the reference, System 5 `denied_capabilities` are removed here, so a policy denial
        is enforced at the actor boundary rather than only relayed.
        """
        base = CapabilitySet.for_metasystem() if self.children else CapabilitySet.for_leaf(self.leaf_operation)
        denied = self.system_5.denied_capabilities
        return base.without(denied) if denied else base
