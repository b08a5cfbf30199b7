"""The genome patch variants: the reference's 11, plus adding and removing routing rules (genes
the reference never modelled). Applying a patch returns a new genome; the input is untouched, so a
batch is all-or-nothing by construction.

Deliberate differences from the reference: removals that match nothing and channels with unknown
endpoints are errors, not silent no-ops, and a failing batch leaves nothing applied.
"""

from __future__ import annotations

from attrs import evolve, frozen

from .channel import ChannelConfig
from .genes import RoutingRule
from .genome import GenomeError, OrganizationalGenome
from .ids import IdFactory, NodeId
from .node import (
    PROMPT_LIST_SECTIONS, ContextPolicy, ModelSpec, NodeLifecycleStatus, PermissionSpec, PromptComponent,
    PromptGenome, PromptSection, ToolSpec, ViableNode,
)
from .capability import LeafOperationSpec


class PatchError(ValueError):
    """A patch could not be applied; the message names the patch kind and the node."""


@frozen(kw_only=True)
class AddChild:
    parent_id: NodeId
    child: ViableNode


@frozen(kw_only=True)
class PromoteLeafToMetasystem:
    node_id: NodeId
    extracted_child_name: str


@frozen(kw_only=True)
class RemoveSubtree:
    node_id: NodeId


@frozen(kw_only=True)
class AddChannel:
    channel: ChannelConfig


@frozen(kw_only=True)
class RemoveChannel:
    channel_id: str


@frozen(kw_only=True)
class AddPromptComponent:
    node_id: NodeId
    section: PromptSection
    component: PromptComponent


@frozen(kw_only=True)
class RemovePromptComponent:
    node_id: NodeId
    component_id: str


@frozen(kw_only=True)
class AddTool:
    node_id: NodeId
    tool: ToolSpec


@frozen(kw_only=True)
class RemoveTool:
    node_id: NodeId
    tool_name: str


@frozen(kw_only=True)
class SetNodeStatus:
    node_id: NodeId
    status: NodeLifecycleStatus


@frozen(kw_only=True)
class AddRoutingRule:
    rule: RoutingRule


@frozen(kw_only=True)
class RemoveRoutingRule:
    rule_id: str


@frozen(kw_only=True)
class Batch:
    patches: tuple[GenomePatch, ...]


GenomePatch = (
    AddChild | PromoteLeafToMetasystem | RemoveSubtree | AddChannel | RemoveChannel | AddPromptComponent
    | RemovePromptComponent | AddTool | RemoveTool | SetNodeStatus | AddRoutingRule | RemoveRoutingRule | Batch
)
PATCH_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (AddChild, PromoteLeafToMetasystem, RemoveSubtree, AddChannel, RemoveChannel, AddPromptComponent,
                RemovePromptComponent, AddTool, RemoveTool, SetNodeStatus, AddRoutingRule, RemoveRoutingRule,
                Batch)
}


def patch_kind(patch: GenomePatch) -> str:
    return type(patch).__name__


def apply_patch(genome: OrganizationalGenome, patch: GenomePatch, new_id: IdFactory | None = None) -> OrganizationalGenome:
    """Apply one patch (a batch applies each member in order) and return the new genome.

    `new_id` supplies ids for nodes the patch creates (the promoted leaf's extracted child); by
    default the child's id is derived from its name, so offline and live application agree.
    """
    try:
        return _APPLY[type(patch)](genome, patch, new_id)
    except GenomeError as exc:
        raise PatchError(f"{patch_kind(patch)}: {exc}") from None


def apply_patches(genome: OrganizationalGenome, patches, new_id: IdFactory | None = None) -> OrganizationalGenome:
    for p in patches:
        genome = apply_patch(genome, p, new_id)
    return genome


def extracted_child_id(genome: OrganizationalGenome, name: str, new_id: IdFactory | None) -> NodeId:
    if new_id is not None:
        return NodeId(new_id())
    candidate, n = name, 2
    while candidate in genome.nodes:
        candidate, n = f"{name}-{n}", n + 1
    return NodeId(candidate)


def _promote(genome: OrganizationalGenome, p: PromoteLeafToMetasystem, new_id: IdFactory | None) -> OrganizationalGenome:
    node = genome.node(p.node_id)
    if node.children:
        raise PatchError(f"node is already a metasystem and cannot be promoted as a leaf: {p.node_id}")
    if not p.extracted_child_name.strip():
        raise PatchError(f"PromoteLeafToMetasystem: extracted_child_name must not be empty (node {p.node_id})")
    child = ViableNode(
        id=extracted_child_id(genome, p.extracted_child_name, new_id),
        name=p.extracted_child_name,
        system_5=node.system_5,
        leaf_operation=node.leaf_operation,
        model=node.model,
        prompt=node.prompt,
        tools=node.tools,
        context_policy=node.context_policy,
        permissions=node.permissions,
        metadata={**node.metadata, "extracted_from_node_id": node.id},
    )
    stripped = evolve(
        node,
        leaf_operation=LeafOperationSpec(), model=ModelSpec(), prompt=PromptGenome(), tools=(),
        context_policy=ContextPolicy(), permissions=PermissionSpec(),
        metadata={**node.metadata, "promoted_to_metasystem": "true"},
    )
    return genome.replace_node(stripped).add_child(node.id, child)


def _add_channel(genome: OrganizationalGenome, p: AddChannel, _new_id) -> OrganizationalGenome:
    for end in (p.channel.from_, p.channel.to):
        if end is not None and end not in genome.nodes:
            raise PatchError(f"AddChannel: channel {p.channel.id} refers to unknown node {end}")
    if any(c.id == p.channel.id for c in genome.channels):
        raise PatchError(f"AddChannel: channel id already exists: {p.channel.id}")
    return evolve(genome, channels=(*genome.channels, p.channel))


def _remove_channel(genome: OrganizationalGenome, p: RemoveChannel, _new_id) -> OrganizationalGenome:
    kept = tuple(c for c in genome.channels if c.id != p.channel_id)
    if len(kept) == len(genome.channels):
        raise PatchError(f"RemoveChannel: channel not found: {p.channel_id}")
    return evolve(genome, channels=kept)


def _add_prompt(genome: OrganizationalGenome, p: AddPromptComponent, _new_id) -> OrganizationalGenome:
    node = genome.node(p.node_id)
    prompt = node.prompt
    if p.section is PromptSection.OutputContract:
        prompt = evolve(prompt, output_contract=p.component)
    else:
        attr = PROMPT_LIST_SECTIONS[p.section]
        prompt = evolve(prompt, **{attr: (*getattr(prompt, attr), p.component)})
    return genome.replace_node(evolve(node, prompt=prompt))


def _remove_prompt(genome: OrganizationalGenome, p: RemovePromptComponent, _new_id) -> OrganizationalGenome:
    node = genome.node(p.node_id)
    prompt, removed = node.prompt, False
    for attr in PROMPT_LIST_SECTIONS.values():
        items = getattr(prompt, attr)
        kept = tuple(c for c in items if c.id != p.component_id)
        if len(kept) != len(items):
            prompt, removed = evolve(prompt, **{attr: kept}), True
    if prompt.output_contract is not None and prompt.output_contract.id == p.component_id:
        prompt, removed = evolve(prompt, output_contract=None), True
    if not removed:
        raise PatchError(f"prompt component not found: {p.component_id} (node {p.node_id})")
    return genome.replace_node(evolve(node, prompt=prompt))


def _add_tool(genome: OrganizationalGenome, p: AddTool, _new_id) -> OrganizationalGenome:
    node = genome.node(p.node_id)
    return genome.replace_node(evolve(node, tools=(*node.tools, p.tool)))


def _remove_tool(genome: OrganizationalGenome, p: RemoveTool, _new_id) -> OrganizationalGenome:
    node = genome.node(p.node_id)
    kept = tuple(t for t in node.tools if t.name != p.tool_name)
    if len(kept) == len(node.tools):
        raise PatchError(f"RemoveTool: node {p.node_id} has no tool named {p.tool_name!r}")
    return genome.replace_node(evolve(node, tools=kept))


def _add_routing_rule(genome: OrganizationalGenome, p: AddRoutingRule, _new_id) -> OrganizationalGenome:
    rule = p.rule
    if any(r.id == rule.id for r in genome.routing_rules):
        raise PatchError(f"AddRoutingRule: routing rule id already exists: {rule.id}")
    node = genome.node(rule.node_id)
    # a rule only ever chooses among a metasystem's own children (routing.choose_child)
    if not node.is_metasystem:
        raise PatchError(f"AddRoutingRule: node {rule.node_id} is not a metasystem (rule {rule.id})")
    if rule.target_child not in node.children:
        raise PatchError(f"AddRoutingRule: target {rule.target_child} is not a direct child of {rule.node_id} "
                         f"(rule {rule.id})")
    return evolve(genome, routing_rules=(*genome.routing_rules, rule))


def _remove_routing_rule(genome: OrganizationalGenome, p: RemoveRoutingRule, _new_id) -> OrganizationalGenome:
    kept = tuple(r for r in genome.routing_rules if r.id != p.rule_id)
    if len(kept) == len(genome.routing_rules):
        raise PatchError(f"RemoveRoutingRule: routing rule not found: {p.rule_id}")
    return evolve(genome, routing_rules=kept)


def _batch(genome: OrganizationalGenome, p: Batch, new_id) -> OrganizationalGenome:
    for index, member in enumerate(p.patches):
        try:
            genome = apply_patch(genome, member, new_id)
        except PatchError as exc:
            raise PatchError(f"Batch[{index}] {exc}; nothing in the batch was applied") from None
    return genome


def _add_child(genome: OrganizationalGenome, p: AddChild, _new_id) -> OrganizationalGenome:
    parent = genome.node(p.parent_id)
    if parent.is_leaf and parent.leaf_operation != LeafOperationSpec():
        # adding a child would silently strand the leaf's operation on a node that can no longer run it
        raise PatchError(f"AddChild: node {p.parent_id} is a leaf with an operation; promote it first "
                         f"(PromoteLeafToMetasystem) so its operation moves to a child")
    return genome.add_child(p.parent_id, p.child)


_APPLY = {
    AddChild: _add_child,
    PromoteLeafToMetasystem: _promote,
    RemoveSubtree: lambda g, p, new_id: g.remove_subtree(p.node_id)[0],
    AddChannel: _add_channel,
    RemoveChannel: _remove_channel,
    AddPromptComponent: _add_prompt,
    RemovePromptComponent: _remove_prompt,
    AddTool: _add_tool,
    RemoveTool: _remove_tool,
    SetNodeStatus: lambda g, p, new_id: g.replace_node(evolve(g.node(p.node_id), status=p.status)),
    AddRoutingRule: _add_routing_rule,
    RemoveRoutingRule: _remove_routing_rule,
    Batch: _batch,
}
