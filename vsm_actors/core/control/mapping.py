"""System 3 directive intake: directive -> task packet, and the fixed capability split (§3.3-3.5).

The controller calls `DirectiveTaskMapper.map` on every `vsm.directive`, then `decompose`; when
that returns a plan it records the root task (never routed) and routes each planned child on its
channel, otherwise it routes the single mapped task. Both steps are pure: ids come from the
caller's `IdFactory`, and the order of `new_id` calls is part of the contract (one per task, root
children in plan order) so simulations stay reproducible.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable, Mapping

from attrs import evolve, frozen

from ..model.capability import LeafOperationKind
from ..model.channel import VsmChannelType
from ..model.genome import OrganizationalGenome
from ..model.ids import IdFactory, TaskId
from ..model.node import NodeLifecycleStatus, ViableNode
from .predicates import DomainKeywordHint, extract_static_predicates, is_truthy
from .routing import CODE_WRITE_STATED
from ..model.task import Directive, RiskClass, TaskPacket

# `decomposition_policy` labels written in TaskMapped payloads (how a task came to exist)
MAPPED_SINGLE_TASK = "system3_single_task"
MAPPED_SPLIT_ROOT = "system3_capability_split_root"

# `decomposition_policy` value stored in the metadata of split tasks
SPLIT_POLICY = "system3_capability_split_v1"
# the directive-side request that selects the split
SPLIT_REQUEST = "system3_capability_split"

# directive metadata copied verbatim onto the mapped task (step 8)
_COPIED_KEYS = (
    "required_capability", "target_child", "requires_review", "trial_approved", "task_class",
    "estimated_files_touched",
)
_TASK_METADATA_PREFIX = "task.metadata."
_ELEVATED_RISK = (RiskClass.High, RiskClass.Critical)


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


@frozen(kw_only=True)
class DirectiveTaskMapper:
    """Turn a directive into one task packet carrying its static predicates and lineage metadata."""

    default_requires_code_write: bool = True
    repository_files: tuple[str, ...] = ()
    domain_keyword_hints: tuple[DomainKeywordHint, ...] = ()

    def with_repository_files(self, files: Iterable[str]) -> DirectiveTaskMapper:
        """Return a mapper that matches directives against this repository inventory."""
        return evolve(self, repository_files=tuple(files))

    def with_domain_keyword_hints(self, hints: Iterable[tuple[str, Iterable[str]]]) -> DirectiveTaskMapper:
        """Return a mapper with `(marker, keywords)` hints that set `<marker>=true` markers."""
        return evolve(self, domain_keyword_hints=tuple(
            DomainKeywordHint(marker=marker, keywords=tuple(keywords)) for marker, keywords in hints))

    def map(self, directive: Directive, new_id: IdFactory, controller_node_id: str | None = None) -> TaskPacket:
        """Map a directive to a task packet (reference §3.3 steps 1-10).

        Args:
            directive: the accepted directive.
            new_id: called exactly once, for the task id.
            controller_node_id: the accepting controller, recorded last in the task's metadata.

        Returns:
            The task.
        """
        predicates = extract_static_predicates(directive, self.repository_files, self.domain_keyword_hints)
        likely_files = predicates.likely_files
        meta = directive.metadata
        metadata = {"origin": directive.origin, "mapped_from_directive": directive.id}
        requested = meta.get("requires_code_write")
        # a directive that names a capability other than writing code (review, run_tests, research)
        # does not also ask for code to be written unless it says so
        named = meta.get("required_capability")
        write = requested == "true" if requested is not None else (
            self.default_requires_code_write and named in (None, "", "write_code"))
        metadata["requires_code_write"] = _bool_text(write)
        if likely_files:
            metadata["estimated_files_touched"] = str(len(likely_files))
        metadata.update((k, meta[k]) for k in _COPIED_KEYS if k in meta)
        # `task.metadata.<k>` is the directive author's escape hatch, so it beats every derived key
        for key in sorted(meta):
            if key.startswith(_TASK_METADATA_PREFIX) and len(key) > len(_TASK_METADATA_PREFIX):
                metadata[key[len(_TASK_METADATA_PREFIX):]] = meta[key]
        # routing lets a keyword rule set aside a default code-writing need, never a stated one
        if requested is not None or f"{_TASK_METADATA_PREFIX}requires_code_write" in meta:
            metadata[CODE_WRITE_STATED] = "true"
        if directive.risk in _ELEVATED_RISK:
            metadata["requires_parent_review"] = "true"
        if controller_node_id is not None:
            metadata["controller_node_id"] = controller_node_id
        return TaskPacket.new(
            directive.title, directive.body, new_id,
            directive_id=directive.id,
            target_state=directive.desired_state,
            constraints=tuple(directive.constraints),
            risk=directive.risk,
            static_predicates=predicates,
            scope=likely_files,
            metadata=metadata,
        )


# -- System 3 capability split -------------------------------------------------------------------


class DecompositionRole(str, Enum):
    """One child of the capability split; the value is the `decomposition_role` metadata."""

    Implementation = "implementation"
    Test = "test"
    Review = "review"
    Integration = "integration"

    @property
    def mapped_policy(self) -> str:
        """The TaskMapped `decomposition_policy` label for tasks of this role."""
        return f"system3_capability_split_{self.value}"


# role -> (title prefix, preferred leaf kind, required capability, channel)
_ROLE_SPECS = {
    DecompositionRole.Implementation: ("Implement", LeafOperationKind.Coding, "write_code",
                                       VsmChannelType.ResourceBargaining),
    DecompositionRole.Test: ("Test", LeafOperationKind.Testing, "run_tests", VsmChannelType.System2Coordination),
    DecompositionRole.Review: ("Review", LeafOperationKind.Reviewing, "review", VsmChannelType.System2Coordination),
    DecompositionRole.Integration: ("Integrate", LeafOperationKind.Integration, "integrate",
                                    VsmChannelType.System2Coordination),
}
_ROLE_GOALS = {
    DecompositionRole.Test: "Verify the implementation for directive task {}",
    DecompositionRole.Review: "Review the implementation for directive task {}",
    DecompositionRole.Integration: "Integrate dependent outputs for directive task {}",
}


@frozen(kw_only=True)
class PlannedTask:
    """A split child and the channel its synthetic incoming envelope uses (and so its outbound one)."""

    role: DecompositionRole
    task: TaskPacket
    channel: VsmChannelType


@frozen(kw_only=True)
class DecompositionPlan:
    """The root task (recorded, never routed) and its children in routing order."""

    root: TaskPacket
    plans: tuple[PlannedTask, ...]


MetadataSource = Directive | TaskPacket | Mapping[str, str]
"""Anything whose metadata can carry a decomposition request: a directive, a task or the bare map."""


def _metadata_of(source: MetadataSource) -> Mapping[str, str]:
    return source.metadata if isinstance(source, (Directive, TaskPacket)) else source


def wants_decomposition(source: MetadataSource, controller_node: ViableNode) -> bool:
    """Tell whether a directive asks for the capability split and this controller may split tasks.

    Args:
        source: the directive (or a task or bare metadata) whose metadata carries the request:
            `decompose` truthy or `decomposition_policy=system3_capability_split`, each also
            accepted with the `task.metadata.` prefix.
        controller_node: the controller's node; its `system_3.can_decompose_tasks` must be set.
    """
    meta = _metadata_of(source)
    requested = (
        is_truthy(meta.get("decompose")) or is_truthy(meta.get("task.metadata.decompose"))
        or meta.get("decomposition_policy") == SPLIT_REQUEST
        or meta.get("task.metadata.decomposition_policy") == SPLIT_REQUEST
    )
    return requested and controller_node.system_3.can_decompose_tasks


def target_child_for_role(genome: OrganizationalGenome, controller_node: ViableNode,
                          role: DecompositionRole) -> str | None:
    """Name the direct child to receive a role: first by leaf kind, else by derived capability.

    Retired children never receive split work. Metasystem children hold `integrate`, so without a
    dedicated integrator leaf a metasystem child usually receives integration.
    """
    _, kind, capability, _ = _ROLE_SPECS[role]
    children = [c for c in genome.children(controller_node.id) if c.status is not NodeLifecycleStatus.Retired]
    for child in children:
        if child.leaf_operation.kind == kind:
            return child.name
    for child in children:
        if child.capabilities().allows(capability):
            return child.name
    return None


def decompose(
    directive_task: TaskPacket,
    controller_node: ViableNode,
    genome: OrganizationalGenome,
    new_id: IdFactory,
    *,
    directive_metadata: Mapping[str, str] | None = None,
) -> DecompositionPlan | None:
    """Split a mapped directive task into implementation/test/review/integration children (§3.5).

    Environment pressure is left out: this is the split with zero environment and 3-4 homeostat
    events, so the root carries no pressure keys and only the directive can request review or
    integration. A pressure-aware caller can express pressure-driven review or integration by
    adding `requires_review` / `requires_integration` to `directive_metadata`.

    Two deliberate departures from the reference (its §9.2 item 19 and the same flaw for review):
    children do not inherit the root-only `decomposition_root` marker, and `requires_code_write`
    is the root's (the directive's, else the mapper default) for the implementation child and
    "false" for test, review and integration, since those roles do not write code and a
    reviewer would otherwise reject its own review task.

    Args:
        directive_task: the mapped task (with `controller_node_id` already set by the caller).
        controller_node: the node whose direct children receive the split.
        genome: the genome holding the controller node and its children.
        new_id: called once per child, in plan order.
        directive_metadata: the directive's own metadata, which holds the requests the mapper
            does not copy (`decompose`, `requires_tests`, `test_targets`, `requires_integration`);
            defaults to the task's metadata.

    Returns:
        None when the split is not requested or not allowed, else the root and its children.
    """
    meta = directive_task.metadata if directive_metadata is None else directive_metadata
    if not wants_decomposition(meta, controller_node):
        return None
    root = evolve(directive_task, metadata={
        **directive_task.metadata,
        "decomposition_policy": SPLIT_POLICY, "decomposition_authority": "system3", "decomposition_root": "true",
    })
    implementation = _planned(root, DecompositionRole.Implementation, genome, controller_node, new_id, (),
                              root.metadata.get("requires_code_write", "true"))
    plans = [implementation]
    optional = (
        (DecompositionRole.Test, _requires_tests(meta)),
        (DecompositionRole.Review, is_truthy(meta.get("requires_review")) or root.risk in _ELEVATED_RISK),
    )
    for role, requested in optional:
        if requested and target_child_for_role(genome, controller_node, role) is not None:
            plans.append(_planned(root, role, genome, controller_node, new_id, (implementation.task.id,), "false"))
    integration = DecompositionRole.Integration
    if is_truthy(meta.get("requires_integration")) \
            and target_child_for_role(genome, controller_node, integration) is not None:
        after = tuple(p.task.id for p in plans)
        plans.append(_planned(root, integration, genome, controller_node, new_id, after, "false"))
    root = evolve(root, metadata={**root.metadata, "decomposition_task_count": str(len(plans))})
    return DecompositionPlan(root=root, plans=tuple(plans))


def _requires_tests(meta: Mapping[str, str]) -> bool:
    return is_truthy(meta.get("requires_tests")) or "test_targets" in meta or "task.metadata.test_targets" in meta


def _planned(root: TaskPacket, role: DecompositionRole, genome: OrganizationalGenome, controller_node: ViableNode,
             new_id: IdFactory, dependencies: tuple[TaskId, ...], requires_code_write: str) -> PlannedTask:
    prefix, _, capability, channel = _ROLE_SPECS[role]
    inherited = {k: v for k, v in root.metadata.items() if k not in ("target_child", "decomposition_root")}
    metadata = {
        **inherited,
        "decomposition_policy": SPLIT_POLICY,
        "decomposition_authority": "system3",
        "decomposition_parent_task_id": root.id,
        "decomposition_role": role.value,
        "requires_code_write": requires_code_write,
        "required_capability": capability,
    }
    target = target_child_for_role(genome, controller_node, role)
    if target is not None:
        metadata["target_child"] = target
    goal = root.goal if role is DecompositionRole.Implementation else _ROLE_GOALS[role].format(root.id)
    task = TaskPacket.new(
        f"{prefix}: {root.title}", goal, new_id,
        directive_id=root.directive_id,
        parent_task_id=root.id,
        target_state=root.target_state,
        scope=root.scope,
        constraints=root.constraints,
        context_refs=root.context_refs,
        authority_refs=root.authority_refs,
        dependencies=dependencies,
        risk=root.risk,
        static_predicates=root.static_predicates,
        metadata=metadata,
    )
    return PlannedTask(role=role, task=task, channel=channel)
