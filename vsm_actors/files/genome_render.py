"""Human and data views of a genome's tree: each node's kind and derived capabilities."""

from __future__ import annotations

from ..core.model.genome import OrganizationalGenome
from ..core.model.node import NodeLifecycleStatus, ViableNode
from ..core.model.variants import debug_name


def node_label(node: ViableNode) -> str:
    if node.is_metasystem:
        kind = "metasystem"
    else:
        op = node.leaf_operation.kind
        kind = f"leaf:{debug_name(op)}" if op is not None else "leaf"
    status = "" if node.status is NodeLifecycleStatus.Active else f" ({node.status.value.lower()})"
    ident = "" if node.id == node.name else f" id={node.id}"
    return f"{node.name} [{kind}]{status}{ident}"


def render_tree(genome: OrganizationalGenome, *, capabilities: bool = True) -> str:
    """An indented tree with box-drawing guides; capabilities follow each node after a colon."""
    lines = [f"genome {genome.id}: {len(genome.nodes)} nodes, {len(genome.leaves())} leaves"]

    def walk(node_id: str, prefix: str, last: bool, top: bool) -> None:
        node = genome.node(node_id)
        branch = "" if top else ("└── " if last else "├── ")
        caps = ", ".join(node.capabilities().granted()) or "none"
        lines.append(f"{prefix}{branch}{node_label(node)}" + (f": {caps}" if capabilities else ""))
        child_prefix = prefix if top else prefix + ("    " if last else "│   ")
        for i, child in enumerate(node.children):
            walk(child, child_prefix, i == len(node.children) - 1, False)

    walk(genome.root_node_id, "", True, True)
    return "\n".join(lines)


def tree_data(genome: OrganizationalGenome) -> dict:
    """The same tree as nested data (for `-o tree-json` and the live `vsm status`)."""

    def node(node_id: str) -> dict:
        n = genome.node(node_id)
        return {
            "id": n.id, "name": n.name, "kind": n.kind, "status": n.status.value,
            "operation": debug_name(n.leaf_operation.kind) if n.is_leaf and n.leaf_operation.kind else None,
            "capabilities": n.capabilities().granted(),
            "children": [node(c) for c in n.children],
        }

    return {"genome_id": genome.id, "root": node(genome.root_node_id)}
