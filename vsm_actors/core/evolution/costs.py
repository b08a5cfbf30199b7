"""Candidate costs for selection: what a patch adds to the organization (complexity, the parsimony
pressure) and how much live work its trial exposes (reference §3.14.5)."""

from __future__ import annotations

from ..model.node import ViableNode
from ..model.patch import (
    AddChannel, AddChild, AddPromptComponent, AddRoutingRule, AddTool, Batch, GenomePatch, PromoteLeafToMetasystem,
    RemoveChannel, RemovePromptComponent, RemoveRoutingRule, RemoveSubtree, RemoveTool, SetNodeStatus,
)
from ..model.suggestion import GeneSuggestion, TrialMode

_PATCH_KIND_KEYS = {
    AddChild: "add_child", PromoteLeafToMetasystem: "promote_leaf_to_metasystem", RemoveSubtree: "remove_subtree",
    AddChannel: "add_channel", RemoveChannel: "remove_channel", AddPromptComponent: "add_prompt_component",
    RemovePromptComponent: "remove_prompt_component", AddTool: "add_tool", RemoveTool: "remove_tool",
    SetNodeStatus: "set_node_status", AddRoutingRule: "add_routing_rule", RemoveRoutingRule: "remove_routing_rule",
    Batch: "batch",
}
# flat costs; a routing rule (our gene) is priced between a tool and a channel: it redirects work
# like a channel does, but only for the tasks its conditions match
_FLAT_PATCH_COSTS = {PromoteLeafToMetasystem: 15.0, RemoveSubtree: 4.0, AddChannel: 6.0, RemoveChannel: 2.0,
                     RemovePromptComponent: 1.0, RemoveTool: 1.0, SetNodeStatus: 1.0, AddRoutingRule: 3.0,
                     RemoveRoutingRule: 1.0}


def patch_kind_key(patch: GenomePatch) -> str:
    return _PATCH_KIND_KEYS[type(patch)]


def node_cost(node: ViableNode) -> float:
    """Parsimony cost of a node a patch adds: tools weigh double, permission entries half."""
    prompt, perms = node.prompt, node.permissions
    components = (len(prompt.behavior_rules) + len(prompt.domain_hints) + len(prompt.codebase_conventions)
                  + len(prompt.negative_constraints) + (prompt.output_contract is not None))
    permission_entries = (len(perms.allowed_paths) + len(perms.denied_paths) + len(perms.allowed_tools)
                          + len(perms.denied_tools))
    return (1.0 + 2 * len(node.tools) + components + 0.5 * permission_entries + len(node.channels)
            + len(node.children))


def patch_complexity_cost(patch: GenomePatch) -> float:
    if isinstance(patch, Batch):
        return sum(patch_complexity_cost(p) for p in patch.patches) + 2.0
    if isinstance(patch, AddChild):
        return 10.0 + node_cost(patch.child)
    if isinstance(patch, AddPromptComponent):
        return 2.0 + len(patch.component.text.encode("utf-8")) / 500
    if isinstance(patch, AddTool):
        return 4.0 + len(patch.tool.permissions)
    return _FLAT_PATCH_COSTS[type(patch)]


def exposure_cost(suggestion: GeneSuggestion) -> float:
    """How much live work the trial may touch, and how loosely it is bounded (smaller is better)."""
    limits, mode = suggestion.safety_limits, suggestion.trial_mode
    bp = limits.max_traffic_share_basis_points
    if mode is TrialMode.Shadow:
        cost = 0.0
    elif mode is TrialMode.Direct or bp is None:
        cost = 100.0
    else:
        cost = min(bp, 10_000) / 100
    if limits.max_tasks is None:
        cost += 20.0
    if limits.max_token_budget is None:
        cost += 10.0
    if not limits.requires_approval and mode is not TrialMode.Shadow:
        cost += 10.0
    return cost


# -- the score -----------------------------------------------------------------------------------
