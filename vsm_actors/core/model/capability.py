"""Leaf operations and the capability set derived from a node's *state*, never from its prompt."""

from __future__ import annotations

from enum import Enum

from attrs import evolve, fields, frozen

from .variants import Custom


class LeafOperationKind(str, Enum):
    Coding = "Coding"
    Reviewing = "Reviewing"
    Testing = "Testing"
    Research = "Research"
    Integration = "Integration"
    Documentation = "Documentation"
    Planning = "Planning"


OperationKind = LeafOperationKind | Custom


@frozen(kw_only=True)
class LeafOperationSpec:
    kind: OperationKind | None = None
    allows_code_write: bool = False
    allows_test_execution: bool = False
    allows_review: bool = False
    allows_research: bool = False
    allows_integration: bool = False
    allows_filesystem_read: bool = False
    allows_filesystem_write: bool = False

    @classmethod
    def coding(cls) -> LeafOperationSpec:
        return cls(
            kind=LeafOperationKind.Coding, allows_code_write=True, allows_test_execution=True,
            allows_research=True, allows_filesystem_read=True, allows_filesystem_write=True,
        )

    @classmethod
    def reviewer(cls) -> LeafOperationSpec:
        return cls(
            kind=LeafOperationKind.Reviewing, allows_test_execution=True, allows_review=True,
            allows_research=True, allows_filesystem_read=True,
        )

    @classmethod
    def tester(cls) -> LeafOperationSpec:
        return cls(kind=LeafOperationKind.Testing, allows_test_execution=True, allows_filesystem_read=True)


OPERATION_PRESETS = {
    "coding": LeafOperationSpec.coding,
    "coder": LeafOperationSpec.coding,
    "reviewer": LeafOperationSpec.reviewer,
    "reviewing": LeafOperationSpec.reviewer,
    "tester": LeafOperationSpec.tester,
    "testing": LeafOperationSpec.tester,
    "none": LeafOperationSpec,
}

# capability name (router/harness vocabulary) -> CapabilitySet attribute
CAPABILITY_NAMES = {
    "write_code": "can_write_code",
    "run_tests": "can_run_tests",
    "review": "can_review",
    "research": "can_research",
    "integrate": "can_integrate",
    "read_filesystem": "can_read_filesystem",
    "write_filesystem": "can_write_filesystem",
    "delegate": "can_delegate",
    "audit_children": "can_audit_children",
    "mutate_child_topology": "can_mutate_child_topology",
    "issue_command": "can_issue_command",
    "coordinate": "can_coordinate",
    "allocate_resources": "can_allocate_resources",
    "run_future_probes": "can_run_future_probes",
}

# Capabilities that let a node change the world; a node with children must never hold them.
EXECUTION_CAPABILITIES = ("can_write_code", "can_run_tests", "can_write_filesystem")


@frozen(kw_only=True)
class CapabilitySet:
    can_write_code: bool = False
    can_run_tests: bool = False
    can_review: bool = False
    can_research: bool = False
    can_integrate: bool = False
    can_read_filesystem: bool = False
    can_write_filesystem: bool = False
    can_delegate: bool = False
    can_audit_children: bool = False
    can_mutate_child_topology: bool = False
    can_issue_command: bool = False
    can_coordinate: bool = False
    can_allocate_resources: bool = False
    can_run_future_probes: bool = False

    @classmethod
    def for_leaf(cls, spec: LeafOperationSpec) -> CapabilitySet:
        return cls(
            can_write_code=spec.allows_code_write,
            can_run_tests=spec.allows_test_execution,
            can_review=spec.allows_review,
            can_research=spec.allows_research,
            can_integrate=spec.allows_integration,
            can_read_filesystem=spec.allows_filesystem_read,
            can_write_filesystem=spec.allows_filesystem_write,
        )

    @classmethod
    def for_metasystem(cls) -> CapabilitySet:
        return _METASYSTEM

    def without(self, denied: tuple[str, ...] | list[str]) -> CapabilitySet:
        """Remove denied capabilities; accepts router names (`write_code`) or attribute names."""
        changes = {}
        for name in denied:
            attr = CAPABILITY_NAMES.get(name, name)
            if attr in _FIELD_NAMES:
                changes[attr] = False
        return evolve(self, **changes) if changes else self

    def allows(self, capability: str) -> bool:
        """Router/harness rule: a known capability must be held; unknown names are allowed."""
        attr = CAPABILITY_NAMES.get(capability)
        return True if attr is None else bool(getattr(self, attr))

    def granted(self) -> list[str]:
        """Names (router vocabulary) of every capability held, in declaration order."""
        return [name for name, attr in CAPABILITY_NAMES.items() if getattr(self, attr)]

    def debug(self) -> str:
        """The reference's Debug rendering, used verbatim in the task prompt."""
        inner = ", ".join(f"{f.name}: {str(getattr(self, f.name)).lower()}" for f in fields(CapabilitySet))
        return f"CapabilitySet {{ {inner} }}"


_FIELD_NAMES = frozenset(f.name for f in fields(CapabilitySet))
_METASYSTEM = CapabilitySet(
    can_research=True, can_integrate=True, can_read_filesystem=True,
    can_delegate=True, can_audit_children=True, can_mutate_child_topology=True,
    can_issue_command=True, can_coordinate=True, can_allocate_resources=True,
    can_run_future_probes=True,
)
