"""Whole-genome invariants. The reference had none (no cycle or dangling-id detection); every
entry point that accepts a genome from outside runs `validate_genome` first.
"""

from __future__ import annotations

from attrs import frozen

from .capability import LeafOperationSpec
from .genome import OrganizationalGenome


@frozen(kw_only=True)
class GenomeIssue:
    """One broken invariant. `section`/`key`/`field` locate it in the full genome form:
    `nodes[key].field`, `channels[key].field`, ... (`key` is a node id or a list index)."""

    message: str
    section: str = "nodes"
    key: str | int | None = None
    field: str | None = None

    @property
    def path(self) -> tuple:
        return tuple(p for p in (self.section, self.key, self.field) if p is not None)

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.path)
        return f"{where}: {self.message}" if where else self.message


class GenomeValidationError(ValueError):
    def __init__(self, issues: list[GenomeIssue]):
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


_EMPTY_OPERATION = LeafOperationSpec()


# what an audit policy's `suggestion` may name: the rule-based auditor, a model, or both
AUDITOR_KINDS = ("add_review_leaf", "model", "rules_and_model")


def validate_genome(genome: OrganizationalGenome) -> list[GenomeIssue]:
    """Every broken invariant, in a stable order; an empty list means the genome is valid."""
    issues: list[GenomeIssue] = []
    nodes = genome.nodes
    add = issues.append

    if genome.root_node_id not in nodes:
        add(GenomeIssue(message=f"root node {genome.root_node_id!r} is not in nodes", section="root_node_id"))
    for key, node in nodes.items():
        if key != node.id:
            add(GenomeIssue(message=f"node is stored under key {key!r} but its id is {node.id!r}", key=key, field="id"))
        if node.parent_id is None:
            if key != genome.root_node_id:
                add(GenomeIssue(message=f"second root: node {key} has no parent (root is {genome.root_node_id})",
                                key=key, field="parent_id"))
        elif key == genome.root_node_id:
            add(GenomeIssue(message=f"root node cannot have a parent (has {node.parent_id})", key=key, field="parent_id"))
        elif node.parent_id not in nodes:
            add(GenomeIssue(message=f"parent {node.parent_id} does not exist", key=key, field="parent_id"))
        elif key not in nodes[node.parent_id].children:
            add(GenomeIssue(message=f"parent {node.parent_id} does not list this node among its children",
                            key=key, field="parent_id"))
        seen_children: set[str] = set()
        names: dict[str, str] = {}
        for child_id in node.children:
            if child_id in seen_children:
                add(GenomeIssue(message=f"child {child_id} is listed twice", key=key, field="children"))
                continue
            seen_children.add(child_id)
            child = nodes.get(child_id)
            if child is None:
                add(GenomeIssue(message=f"child {child_id} does not exist", key=key, field="children"))
                continue
            if child.parent_id != key:
                add(GenomeIssue(message=f"child {child_id} names {child.parent_id} as its parent", key=key, field="children"))
            if child.name in names:
                add(GenomeIssue(message=f"two children named {child.name!r}: {names[child.name]} and {child_id}",
                                key=key, field="children"))
            names[child.name] = child_id
        if node.children and node.leaf_operation != _EMPTY_OPERATION:
            add(GenomeIssue(
                message="node has children but declares a leaf operation; a metasystem cannot execute work "
                        "(move the operation to a child leaf)", key=key, field="leaf_operation"))
        if not node.name.strip():
            add(GenomeIssue(message="node name is empty", key=key, field="name"))
        for i, channel in enumerate(node.channels):
            for end in (channel.from_, channel.to):
                if end is not None and end not in nodes:
                    add(GenomeIssue(message=f"channel {channel.id} endpoint {end} does not exist", key=key,
                                    field="channels"))

    if genome.root_node_id in nodes:
        _check_reachability(genome, add)

    channel_ids: set[str] = set()
    for i, channel in enumerate(genome.channels):
        if channel.id in channel_ids:
            add(GenomeIssue(message=f"duplicate channel id {channel.id}", section="channels", key=i, field="id"))
        channel_ids.add(channel.id)
        for attr in ("from_", "to"):
            end = getattr(channel, attr)
            if end is not None and end not in nodes:
                add(GenomeIssue(message=f"channel endpoint {end} does not exist", section="channels", key=i,
                                field=attr.rstrip("_")))
    for i, rel in enumerate(genome.relations):
        for attr in ("from_", "to"):
            end = getattr(rel, attr)
            if end not in nodes:
                add(GenomeIssue(message=f"relation endpoint {end} does not exist", section="relations", key=i,
                                field=attr.rstrip("_")))
    for i, rule in enumerate(genome.routing_rules):
        if rule.node_id not in nodes:
            add(GenomeIssue(message=f"routing rule node {rule.node_id} does not exist", section="routing_rules",
                            key=i, field="node_id"))
        elif rule.target_child not in nodes[rule.node_id].children:
            add(GenomeIssue(message=f"routing rule target {rule.target_child} is not a direct child of {rule.node_id}",
                            section="routing_rules", key=i, field="target_child"))
    for i, policy in enumerate(genome.audit_policies):
        if policy.node_id not in nodes:
            add(GenomeIssue(message=f"audit policy node {policy.node_id} does not exist", section="audit_policies",
                            key=i, field="node_id"))
        if policy.suggestion not in AUDITOR_KINDS:
            add(GenomeIssue(message=f"unknown auditor {policy.suggestion!r}; expected one of {', '.join(AUDITOR_KINDS)}",
                            section="audit_policies", key=i, field="suggestion"))
    return issues


def _check_reachability(genome: OrganizationalGenome, add) -> None:
    """Walk down from the root; a node never reached sits on a cycle or under a detached parent."""
    nodes = genome.nodes
    reached: set[str] = set()
    stack = [genome.root_node_id]
    while stack:
        current = stack.pop()
        if current in reached:
            add(GenomeIssue(message=f"parent-child cycle: node {current} is reached twice from the root",
                            key=current, field="children"))
            continue
        reached.add(current)
        stack.extend(c for c in nodes[current].children if c in nodes)
    for key in nodes:
        if key not in reached:
            add(GenomeIssue(message="node is not reachable from the root (cycle or detached subtree)",
                            key=key, field="parent_id"))


def check_genome(genome: OrganizationalGenome) -> OrganizationalGenome:
    issues = validate_genome(genome)
    if issues:
        raise GenomeValidationError(issues)
    return genome
