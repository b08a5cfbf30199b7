"""Payloads of the VSM channels other than directives, tasks, results and gene suggestions.

Open-ended kinds are unions of a unit-variant enum and `Other`. Where the reference's type name
already ends in `Kind`, the enum keeps that name (so `System2CoordinationKind.Contention` reads as
in the reference) and the union gets the shorter name (`CoordinationKind`), as `EventKind` does for
ledger kinds.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from attrs import field, frozen

from .ids import NodeId, SuggestionId, TaskId
from .patch import GenomePatch
from .task import RiskClass, TaskArtifact, TaskPacket
from .variants import Other

# --- algedonic -------------------------------------------------------------------------------


class AlgedonicValence(str, Enum):
    Pain = "Pain"
    Pleasure = "Pleasure"


class AlgedonicSourceKind(str, Enum):
    User = "User"
    Ci = "Ci"
    Production = "Production"
    SecurityScanner = "SecurityScanner"
    CostMonitor = "CostMonitor"
    ChildNode = "ChildNode"
    Reviewer = "Reviewer"
    ExternalEnvironment = "ExternalEnvironment"


AlgedonicSource = AlgedonicSourceKind | Other


@frozen(kw_only=True)
class AlgedonicOverridePolicy:
    pause_subtree: bool = False
    resume_subtree: bool = False
    escalate_to_root: bool = False
    freeze_mutation: bool = False
    require_human_confirmation: bool = False


@frozen(kw_only=True)
class AlgedonicSignal:
    source: AlgedonicSource
    valence: AlgedonicValence
    severity: int
    target_node_id: NodeId | None = None
    related_task_id: TaskId | None = None
    related_suggestion_id: SuggestionId | None = None
    message: str
    override_policy: AlgedonicOverridePolicy | None = None
    created_at: datetime

    @classmethod
    def pain(cls, source: AlgedonicSource, severity: int, message: str, created_at: datetime) -> AlgedonicSignal:
        return cls(
            source=source, valence=AlgedonicValence.Pain, severity=severity, message=message, created_at=created_at,
        )


# --- resource bargaining (System 1 <-> System 3) -----------------------------------------------


@frozen(kw_only=True)
class ResourceBargain:
    requested_by: NodeId
    task_id: TaskId | None = None
    proposed_task: TaskPacket | None = None
    requested_tokens: int | None = None
    requested_tool_permissions: tuple[str, ...] = ()
    requested_context_refs: tuple[str, ...] = ()
    justification: str


class ResourceAllocationStatus(str, Enum):
    Approved = "Approved"
    PartiallyApproved = "PartiallyApproved"
    Denied = "Denied"


@frozen(kw_only=True)
class ResourceAllocationDecision:
    requested_by: NodeId
    task_id: TaskId | None = None
    status: ResourceAllocationStatus
    approved_tokens: int | None = None
    approved_tool_permissions: tuple[str, ...] = ()
    denied_tool_permissions: tuple[str, ...] = ()
    approved_context_refs: tuple[str, ...] = ()
    denied_context_refs: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    allocation_policy: str
    created_at: datetime


# --- System 2 coordination --------------------------------------------------------------------


class System2CoordinationKind(str, Enum):
    DependencyBlocked = "DependencyBlocked"
    DependencyReady = "DependencyReady"
    Contention = "Contention"
    Oscillation = "Oscillation"
    HandoffNotice = "HandoffNotice"


CoordinationKind = System2CoordinationKind | Other


@frozen(kw_only=True)
class System2CoordinationSignal:
    coordinator_node_id: NodeId
    source_node_id: NodeId | None = None
    target_node_id: NodeId | None = None
    affected_node_ids: tuple[NodeId, ...] = ()
    affected_task_ids: tuple[TaskId, ...] = ()
    kind: CoordinationKind
    summary: str
    evidence: tuple[str, ...] = ()
    severity: int | None = None
    metadata: dict[str, str] = field(factory=dict)
    created_at: datetime

    @classmethod
    def new(
        cls, coordinator: str, kind: CoordinationKind, summary: str, created_at: datetime,
    ) -> System2CoordinationSignal:
        return cls(coordinator_node_id=NodeId(coordinator), kind=kind, summary=summary, created_at=created_at)


# --- operation to operation (peer handoffs) ---------------------------------------------------


class OperationHandoffKind(str, Enum):
    WorkInProgress = "WorkInProgress"
    DependencyReady = "DependencyReady"
    DependencyBlocked = "DependencyBlocked"
    ArtifactTransfer = "ArtifactTransfer"
    ReviewRequest = "ReviewRequest"


HandoffKind = OperationHandoffKind | Other


@frozen(kw_only=True)
class OperationHandoff:
    source_node_id: NodeId
    target_node_id: NodeId
    related_task_id: TaskId | None = None
    dependency_task_ids: tuple[TaskId, ...] = ()
    kind: HandoffKind
    title: str
    summary: str
    artifacts: tuple[TaskArtifact, ...] = ()
    evidence: tuple[str, ...] = ()
    metadata: dict[str, str] = field(factory=dict)
    created_at: datetime

    @classmethod
    def new(
        cls, source: str, target: str, kind: HandoffKind, title: str, summary: str, created_at: datetime,
    ) -> OperationHandoff:
        return cls(
            source_node_id=NodeId(source), target_node_id=NodeId(target), kind=kind,
            title=title, summary=summary, created_at=created_at,
        )


# --- management to operation ------------------------------------------------------------------


class ManagementOperationKind(str, Enum):
    AssignWork = "AssignWork"
    Reprioritize = "Reprioritize"
    IntegrateResult = "IntegrateResult"
    RequestStatus = "RequestStatus"
    LocalPolicy = "LocalPolicy"


ManagementKind = ManagementOperationKind | Other


@frozen(kw_only=True)
class ManagementOperationDirective:
    manager_node_id: NodeId
    operation_node_id: NodeId
    related_task_id: TaskId | None = None
    dependency_task_ids: tuple[TaskId, ...] = ()
    kind: ManagementKind
    title: str
    body: str
    target_state: str | None = None
    constraints: tuple[str, ...] = ()
    context_refs: tuple[str, ...] = ()
    authority_refs: tuple[str, ...] = ()
    risk: RiskClass = RiskClass.Medium
    metadata: dict[str, str] = field(factory=dict)
    created_at: datetime

    @classmethod
    def new(
        cls, manager: str, operation: str, kind: ManagementKind, title: str, body: str, created_at: datetime,
    ) -> ManagementOperationDirective:
        return cls(
            manager_node_id=NodeId(manager), operation_node_id=NodeId(operation), kind=kind,
            title=title, body=body, created_at=created_at,
        )


# --- environment ------------------------------------------------------------------------------


class EnvironmentSignalKind(str, Enum):
    Observation = "Observation"
    UserFeedback = "UserFeedback"
    Artifact = "Artifact"
    DependencyChange = "DependencyChange"
    CapabilityChange = "CapabilityChange"
    Risk = "Risk"
    Opportunity = "Opportunity"


EnvironmentKind = EnvironmentSignalKind | Other


@frozen(kw_only=True)
class EnvironmentSignal:
    observed_by_node_id: NodeId | None = None
    target_node_id: NodeId | None = None
    related_task_id: TaskId | None = None
    related_suggestion_id: SuggestionId | None = None
    source_environment: str
    target_environment: str | None = None
    kind: EnvironmentKind
    summary: str
    evidence: tuple[str, ...] = ()
    severity: int | None = None
    metadata: dict[str, str] = field(factory=dict)
    created_at: datetime

    @classmethod
    def new(
        cls, kind: EnvironmentKind, source_environment: str, summary: str, created_at: datetime,
    ) -> EnvironmentSignal:
        return cls(kind=kind, source_environment=source_environment, summary=summary, created_at=created_at)


# --- the 3-4 homeostat (present vs future) ----------------------------------------------------


class ThreeFourHomeostatKind(str, Enum):
    PresentConstraint = "PresentConstraint"
    FutureRisk = "FutureRisk"
    FutureOpportunity = "FutureOpportunity"
    CapabilityGap = "CapabilityGap"
    ResourceImbalance = "ResourceImbalance"
    CoordinationDebt = "CoordinationDebt"


HomeostatKind = ThreeFourHomeostatKind | Other


class ThreeFourHomeostatBalance(str, Enum):
    PresentDominant = "PresentDominant"
    FutureDominant = "FutureDominant"
    Balanced = "Balanced"
    Conflict = "Conflict"


@frozen(kw_only=True)
class ThreeFourHomeostatSignal:
    system_3_node_id: NodeId
    system_4_node_id: NodeId
    target_node_id: NodeId
    related_task_id: TaskId | None = None
    related_suggestion_id: SuggestionId | None = None
    kind: HomeostatKind
    balance: ThreeFourHomeostatBalance
    present_summary: str = ""
    future_summary: str = ""
    recommendation: str
    evidence: tuple[str, ...] = ()
    suggested_patches: tuple[GenomePatch, ...] = ()
    severity: int | None = None
    metadata: dict[str, str] = field(factory=dict)
    created_at: datetime

    @classmethod
    def new(
        cls, system_3: str, system_4: str, target: str, kind: HomeostatKind,
        balance: ThreeFourHomeostatBalance, recommendation: str, created_at: datetime,
    ) -> ThreeFourHomeostatSignal:
        return cls(
            system_3_node_id=NodeId(system_3), system_4_node_id=NodeId(system_4), target_node_id=NodeId(target),
            kind=kind, balance=balance, recommendation=recommendation, created_at=created_at,
        )


# --- command (System 5 / legal / regulatory relay) --------------------------------------------


@frozen(kw_only=True)
class Command:
    issued_by: NodeId
    target: NodeId
    title: str
    body: str
    non_negotiable: bool = False
    legal_or_policy_basis: str | None = None
    # the reference marks these five `#[serde(default)]`: older senders omit them
    system5_identity: str | None = None
    policy_values: tuple[str, ...] = ()
    non_negotiable_constraints: tuple[str, ...] = ()
    denied_capabilities: tuple[str, ...] = ()
    metadata: dict[str, str] = field(factory=dict)


# --- System 3* audit ----------------------------------------------------------------------------


@frozen(kw_only=True)
class AuditRequest:
    requested_by: NodeId
    target_node_id: NodeId
    window_tasks: int | None = None
    include_gene_suggestions: bool = False


@frozen(kw_only=True)
class AuditFinding:
    title: str
    evidence: tuple[str, ...] = ()
    severity: int
    related_nodes: tuple[NodeId, ...] = ()
    related_tasks: tuple[TaskId, ...] = ()


@frozen(kw_only=True)
class AuditReport:
    target_node_id: NodeId
    findings: tuple[AuditFinding, ...] = ()
    suggested_patches: tuple[GenomePatch, ...] = ()
