"""Directives, task packets ("task genomes") and task results."""

from __future__ import annotations

from enum import Enum

from attrs import field, frozen

from .ids import DirectiveId, IdFactory, NodeId, TaskId


class RiskClass(str, Enum):
    Low = "Low"
    Medium = "Medium"
    High = "High"
    Critical = "Critical"


@frozen(kw_only=True)
class StaticTaskPredicates:
    """Facts about a task known before execution; routers and replay read these, workers ignore them."""

    languages: tuple[str, ...] = ()
    likely_files: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    test_targets: tuple[str, ...] = ()
    public_api_touched: bool = False
    database_touched: bool = False
    auth_touched: bool = False
    config_touched: bool = False
    migration_touched: bool = False
    security_sensitive: bool = False
    estimated_blast_radius: RiskClass | None = None
    tags: tuple[str, ...] = ()
    domain_markers: dict[str, str] = field(factory=dict)


@frozen(kw_only=True)
class AcceptanceCriterion:
    name: str
    description: str
    verifier: str | None = None


@frozen(kw_only=True)
class TaskPacket:
    id: TaskId
    directive_id: DirectiveId | None = None
    parent_task_id: TaskId | None = None
    title: str
    goal: str
    target_state: str | None = None
    scope: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    context_refs: tuple[str, ...] = ()
    authority_refs: tuple[str, ...] = ()
    dependencies: tuple[TaskId, ...] = ()
    acceptance: tuple[AcceptanceCriterion, ...] = ()
    risk: RiskClass = RiskClass.Medium
    static_predicates: StaticTaskPredicates = StaticTaskPredicates()
    assigned_to: NodeId | None = None
    metadata: dict[str, str] = field(factory=dict)

    @classmethod
    def new(cls, title: str, goal: str, new_id: IdFactory, **changes: object) -> TaskPacket:
        """A packet with a fresh id; any other field may be given as a keyword."""
        return cls(id=TaskId(new_id()), title=title, goal=goal, **changes)


class TaskOutcomeStatus(str, Enum):
    Completed = "Completed"
    Failed = "Failed"
    Rejected = "Rejected"
    NeedsHuman = "NeedsHuman"
    Noop = "Noop"


@frozen(kw_only=True)
class TaskArtifact:
    kind: str
    uri: str | None = None
    content: str | None = None
    metadata: dict[str, str] = field(factory=dict)

    @classmethod
    def inline(cls, kind: str, content: str) -> TaskArtifact:
        return cls(kind=kind, content=content)


@frozen(kw_only=True)
class TaskResult:
    task_id: TaskId
    produced_by: NodeId
    status: TaskOutcomeStatus
    summary: str
    artifacts: tuple[TaskArtifact, ...] = ()
    files_touched: tuple[str, ...] = ()
    tests_run: tuple[str, ...] = ()
    error: str | None = None
    metadata: dict[str, str] = field(factory=dict)

    @classmethod
    def completed(cls, task_id: str, produced_by: str, summary: str, **changes: object) -> TaskResult:
        return cls(
            task_id=TaskId(task_id), produced_by=NodeId(produced_by),
            status=TaskOutcomeStatus.Completed, summary=summary, **changes,
        )

    @classmethod
    def failed(cls, task_id: str, produced_by: str, summary: str, error: str, **changes: object) -> TaskResult:
        return cls(
            task_id=TaskId(task_id), produced_by=NodeId(produced_by),
            status=TaskOutcomeStatus.Failed, summary=summary, error=error, **changes,
        )

    @property
    def succeeded(self) -> bool:
        return self.status is TaskOutcomeStatus.Completed


@frozen(kw_only=True)
class Directive:
    id: DirectiveId
    origin: str
    title: str
    body: str
    constraints: tuple[str, ...] = ()
    desired_state: str | None = None
    risk: RiskClass = RiskClass.Medium
    metadata: dict[str, str] = field(factory=dict)

    @classmethod
    def new(cls, origin: str, title: str, body: str, new_id: IdFactory, **changes: object) -> Directive:
        return cls(id=DirectiveId(new_id()), origin=origin, title=title, body=body, **changes)
