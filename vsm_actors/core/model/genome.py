"""The organizational genome: a flat node map plus channels and other genes, with tree queries.

Genomes are immutable values: every change returns a new genome (copying only the node map,
never the nodes), so a patch can fail half-way without touching the caller's genome.
"""

from __future__ import annotations

from typing import Iterator

from attrs import evolve, field, frozen

from .channel import ChannelConfig, standard_bundle
from .genes import AuditPolicy, Relation, RoutingRule, TrialSettings
from .ids import GenomeId, IdFactory, NodeId
from .node import ViableNode


class GenomeError(ValueError):
    """A genome operation referred to something that is not (or already) there."""


@frozen(kw_only=True)
class GenomeLineage:
    parent_genome_ids: tuple[GenomeId, ...] = ()
    mutation_ids: tuple[str, ...] = ()
    created_at_unix_ms: int | None = None


@frozen(kw_only=True)
class OrganizationalGenome:
    id: GenomeId
    root_node_id: NodeId
    nodes: dict[NodeId, ViableNode]
    channels: tuple[ChannelConfig, ...] = ()
    lineage: GenomeLineage = GenomeLineage()
    metadata: dict[str, str] = field(factory=dict)
    relations: tuple[Relation, ...] = ()
    routing_rules: tuple[RoutingRule, ...] = ()
    audit_policies: tuple[AuditPolicy, ...] = ()
    trial_settings: TrialSettings = TrialSettings()

    @classmethod
    def with_root(cls, genome_id: str, root: ViableNode) -> OrganizationalGenome:
        return cls(id=GenomeId(genome_id), root_node_id=root.id, nodes={root.id: evolve(root, parent_id=None)})

    # -- queries ---------------------------------------------------------------------------

    @property
    def root(self) -> ViableNode:
        return self.node(self.root_node_id)

    def node(self, node_id: str) -> ViableNode:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GenomeError(f"node not found: {node_id}") from None

    def has_node(self, node_id: str) -> bool:
        return node_id in self.nodes

    def children(self, node_id: str) -> list[ViableNode]:
        return [self.node(c) for c in self.node(node_id).children]

    def parent(self, node_id: str) -> ViableNode | None:
        parent_id = self.node(node_id).parent_id
        return None if parent_id is None else self.node(parent_id)

    def ancestor_ids(self, node_id: str) -> list[NodeId]:
        """[immediate parent, grandparent, ..., root]; empty for the root."""
        out: list[NodeId] = []
        current = self.node(node_id).parent_id
        while current is not None:
            if current in out or len(out) > len(self.nodes):
                raise GenomeError(f"parent-child cycle detected at node {current}")
            out.append(current)
            current = self.node(current).parent_id
        return out

    def path_from_root(self, node_id: str) -> list[NodeId]:
        return [*reversed(self.ancestor_ids(node_id)), NodeId(node_id)]

    def depth(self, node_id: str) -> int:
        return len(self.ancestor_ids(node_id))

    def subtree_ids(self, node_id: str) -> list[NodeId]:
        """Pre-order: the node, then each child's subtree in order."""
        out: list[NodeId] = []
        stack = [NodeId(node_id)]
        seen: set[str] = set()
        while stack:
            current = stack.pop()
            if current in seen:
                raise GenomeError(f"parent-child cycle detected at node {current}")
            seen.add(current)
            out.append(current)
            stack.extend(reversed(self.node(current).children))
        return out

    def iter_tree(self) -> Iterator[tuple[int, ViableNode]]:
        """(depth, node) in pre-order from the root."""
        stack = [(0, self.root_node_id)]
        while stack:
            depth, current = stack.pop()
            node = self.node(current)
            yield depth, node
            stack.extend((depth + 1, c) for c in reversed(node.children))

    def leaves(self) -> list[ViableNode]:
        return [n for _, n in self.iter_tree() if n.is_leaf]

    def metasystems(self) -> list[ViableNode]:
        return [n for _, n in self.iter_tree() if n.is_metasystem]

    def find_child(self, parent_id: str, key: str) -> ViableNode | None:
        """The direct child of `parent_id` whose id or name equals `key` (first in order)."""
        for child in self.children(parent_id):
            if child.id == key or child.name == key:
                return child
        return None

    def resolve(self, key: str) -> ViableNode:
        """A node by id, else by unique name (CLI convenience)."""
        if key in self.nodes:
            return self.nodes[key]
        named = [n for n in self.nodes.values() if n.name == key]
        if len(named) == 1:
            return named[0]
        if not named:
            raise GenomeError(f"node not found: {key}")
        raise GenomeError(f"node name is ambiguous: {key} ({', '.join(sorted(n.id for n in named))})")

    # -- structural changes (each returns a new genome) -------------------------------------

    def replace_node(self, node: ViableNode) -> OrganizationalGenome:
        self.node(node.id)
        nodes = dict(self.nodes)
        nodes[node.id] = node
        return evolve(self, nodes=nodes)

    def add_child(self, parent_id: str, child: ViableNode, new_channel_id: IdFactory | None = None) -> OrganizationalGenome:
        parent = self.node(parent_id)
        if child.id in self.nodes:
            raise GenomeError(f"node already exists: {child.id}")
        if child.children:
            raise GenomeError(f"child {child.id} lists children that are not in the genome; add them one by one")
        if any(self.nodes[c].name == child.name for c in parent.children):
            raise GenomeError(f"node {parent_id} already has a child named {child.name!r}")
        nodes = dict(self.nodes)
        nodes[child.id] = evolve(child, parent_id=parent.id)
        nodes[parent.id] = evolve(parent, children=(*parent.children, child.id))
        channels = (*self.channels, *standard_bundle(parent.id, child.id, new_channel_id))
        return evolve(self, nodes=nodes, channels=channels)

    def remove_subtree(self, node_id: str) -> tuple[OrganizationalGenome, list[NodeId]]:
        if node_id == self.root_node_id:
            raise GenomeError("cannot remove root node")
        node = self.node(node_id)
        removed = self.subtree_ids(node_id)
        gone = set(removed)
        nodes = {k: v for k, v in self.nodes.items() if k not in gone}
        if node.parent_id is not None and node.parent_id in nodes:
            parent = nodes[node.parent_id]
            nodes[parent.id] = evolve(parent, children=tuple(c for c in parent.children if c != node_id))
        genome = evolve(
            self,
            nodes=nodes,
            channels=tuple(c for c in self.channels if c.from_ not in gone and c.to not in gone),
            relations=tuple(r for r in self.relations if r.from_ not in gone and r.to not in gone),
            routing_rules=tuple(r for r in self.routing_rules if r.node_id not in gone and r.target_child not in gone),
            audit_policies=tuple(p for p in self.audit_policies if p.node_id not in gone),
        )
        return genome, removed


def complexity_by_node(genome: OrganizationalGenome) -> dict[NodeId, float]:
    """Parsimony pressure per node: children, tools, prompt components and channels it owns."""
    out: dict[NodeId, float] = {}
    for node in genome.nodes.values():
        prompt = node.prompt
        components = sum(len(s) for s in (prompt.behavior_rules, prompt.domain_hints,
                                           prompt.codebase_conventions, prompt.negative_constraints))
        out[node.id] = float(len(node.children) + len(node.tools) + components + len(node.channels))
    return out
