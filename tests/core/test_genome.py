"""Genome structure, queries, capabilities, patches and validation (unit level)."""

from __future__ import annotations

import pytest
from attrs import evolve

from vsm_actors.core.model.capability import CapabilitySet, LeafOperationSpec
from vsm_actors.core.model.channel import ChannelDirection, VsmChannelType
from vsm_actors.core.model.genes import Relation, RoutingRule
from vsm_actors.core.model.genome import GenomeError, OrganizationalGenome
from vsm_actors.core.model.node import NodeLifecycleStatus, PromptComponent, PromptSection, ToolSpec, ViableNode
from vsm_actors.core.model.patch import (
    AddChannel, AddPromptComponent, AddTool, Batch, PatchError, PromoteLeafToMetasystem,
    RemoveChannel, RemovePromptComponent, RemoveSubtree, RemoveTool, SetNodeStatus, apply_patch,
)
from vsm_actors.core.model.validation import GenomeValidationError, check_genome, validate_genome


def seed() -> OrganizationalGenome:
    g = OrganizationalGenome.with_root("g1", ViableNode.metasystem("root", "root-codebase-system"))
    return g.add_child("root", ViableNode.leaf("coder", "primary-code-service", LeafOperationSpec.coding()))


def team() -> OrganizationalGenome:
    g = OrganizationalGenome.with_root("g2", ViableNode.metasystem("root", "root"))
    g = g.add_child("root", ViableNode.metasystem("team", "team"))
    g = g.add_child("team", ViableNode.leaf("c", "coder", LeafOperationSpec.coding()))
    g = g.add_child("team", ViableNode.leaf("r", "reviewer", LeafOperationSpec.reviewer()))
    return g.add_child("team", ViableNode.leaf("t", "tester", LeafOperationSpec.tester()))


def test_presets_match_the_reference():
    coding, reviewer, tester = LeafOperationSpec.coding(), LeafOperationSpec.reviewer(), LeafOperationSpec.tester()
    assert (coding.allows_code_write, coding.allows_test_execution, coding.allows_review, coding.allows_research,
            coding.allows_integration, coding.allows_filesystem_read, coding.allows_filesystem_write) == \
        (True, True, False, True, False, True, True)
    assert (reviewer.allows_code_write, reviewer.allows_review, reviewer.allows_filesystem_write) == (False, True, False)
    assert tester.allows_test_execution and not tester.allows_research and not tester.allows_code_write


def test_capabilities_derive_from_structure_not_prompt():
    g = seed()
    leaf = g.node("coder")
    assert leaf.capabilities() == CapabilitySet.for_leaf(LeafOperationSpec.coding())
    root = g.node("root")
    caps = root.capabilities()
    assert caps == CapabilitySet.for_metasystem()
    assert not caps.can_write_code and not caps.can_run_tests and not caps.can_write_filesystem
    assert caps.can_research and caps.can_integrate and caps.can_read_filesystem and caps.can_delegate
    # a "metasystem" without children is an all-false leaf
    assert ViableNode.metasystem("m", "m").capabilities() == CapabilitySet()


def test_denied_capabilities_are_enforced():
    node = ViableNode.leaf("x", "x", LeafOperationSpec.coding())
    denied = evolve(node, system_5=evolve(node.system_5, denied_capabilities=("write_code", "can_run_tests")))
    caps = denied.capabilities()
    assert not caps.can_write_code and not caps.can_run_tests and caps.can_research
    assert not caps.allows("write_code") and caps.allows("some_unknown_capability")


def test_add_child_appends_standard_bundle():
    g = seed()
    assert g.node("coder").parent_id == "root" and g.node("root").children == ("coder",)
    kinds = [(c.channel_type, c.direction, c.from_, c.to) for c in g.channels]
    assert kinds == [
        (VsmChannelType.ResourceBargaining, ChannelDirection.Bidirectional, "root", "coder"),
        (VsmChannelType.Command, ChannelDirection.ParentToChild, "root", "coder"),
        (VsmChannelType.System2Coordination, ChannelDirection.ParentToChild, "root", "coder"),
        (VsmChannelType.Audit, ChannelDirection.Bidirectional, "root", "coder"),
        (VsmChannelType.Algedonic, ChannelDirection.ChildToParent, "coder", "root"),
    ]
    with pytest.raises(GenomeError, match="already exists"):
        g.add_child("root", ViableNode.leaf("coder", "other", LeafOperationSpec()))
    with pytest.raises(GenomeError, match="node not found"):
        g.add_child("nope", ViableNode.leaf("z", "z", LeafOperationSpec()))
    with pytest.raises(GenomeError, match="already has a child named"):
        g.add_child("root", ViableNode.leaf("c2", "primary-code-service", LeafOperationSpec()))


def test_queries():
    g = team()
    assert [n.id for n in g.children("team")] == ["c", "r", "t"]
    assert g.parent("c").id == "team" and g.parent("root") is None
    assert g.ancestor_ids("c") == ["team", "root"] and g.ancestor_ids("root") == []
    assert g.subtree_ids("root") == ["root", "team", "c", "r", "t"]
    assert [n.id for n in g.leaves()] == ["c", "r", "t"]
    assert g.path_from_root("t") == ["root", "team", "t"]
    assert g.find_child("team", "reviewer").id == "r" and g.find_child("team", "t").id == "t"
    assert g.resolve("tester").id == "t"


def test_remove_subtree_drops_nodes_channels_and_genes():
    g = team()
    g = evolve(g, relations=(Relation(id="rel", kind="peer", from_="c", to="r"),),
               routing_rules=(RoutingRule(id="rr", node_id="team", target_child="r"),))
    g2, removed = g.remove_subtree("team")
    assert removed == ["team", "c", "r", "t"]
    assert set(g2.nodes) == {"root"} and g2.node("root").children == ()
    assert g2.channels == () and g2.relations == () and g2.routing_rules == ()
    assert validate_genome(g2) == []
    with pytest.raises(GenomeError, match="cannot remove root"):
        g.remove_subtree("root")


def test_promotion_moves_the_operation_to_the_extracted_child():
    g = seed()
    tool = ToolSpec(name="git", enabled=True)
    g = apply_patch(g, AddTool(node_id="coder", tool=tool))
    promoted = apply_patch(g, PromoteLeafToMetasystem(node_id="coder", extracted_child_name="generalist-coder"))
    parent, child = promoted.node("coder"), promoted.node("generalist-coder")
    assert parent.is_metasystem and not parent.capabilities().can_write_code
    assert parent.leaf_operation == LeafOperationSpec() and parent.tools == ()
    assert parent.metadata["promoted_to_metasystem"] == "true" and parent.name == "primary-code-service"
    assert child.capabilities().can_write_code and child.tools == (tool,)
    assert child.metadata["extracted_from_node_id"] == "coder" and child.parent_id == "coder"
    assert len(promoted.channels) == len(g.channels) + 5
    assert g.node("coder").is_leaf  # the input genome is untouched
    with pytest.raises(PatchError, match="already a metasystem"):
        apply_patch(promoted, PromoteLeafToMetasystem(node_id="coder", extracted_child_name="again"))


def test_prompt_tool_status_and_channel_patches():
    g = seed()
    comp = PromptComponent(id="p1", text="keep diffs small")
    g = apply_patch(g, AddPromptComponent(node_id="coder", section=PromptSection.BehaviorRules, component=comp))
    assert g.node("coder").prompt.behavior_rules == (comp,)
    contract = PromptComponent(id="oc", text="diff only")
    g = apply_patch(g, AddPromptComponent(node_id="coder", section=PromptSection.OutputContract, component=contract))
    assert g.node("coder").prompt.output_contract == contract
    g = apply_patch(g, RemovePromptComponent(node_id="coder", component_id="oc"))
    assert g.node("coder").prompt.output_contract is None
    with pytest.raises(PatchError, match="prompt component not found"):
        apply_patch(g, RemovePromptComponent(node_id="coder", component_id="missing"))
    with pytest.raises(PatchError, match="no tool named"):
        apply_patch(g, RemoveTool(node_id="coder", tool_name="missing"))
    g = apply_patch(g, SetNodeStatus(node_id="coder", status=NodeLifecycleStatus.Retired))
    assert g.node("coder").status is NodeLifecycleStatus.Retired
    channel = evolve(g.channels[0], id="extra")
    g = apply_patch(g, AddChannel(channel=channel))
    assert g.channels[-1].id == "extra"
    with pytest.raises(PatchError, match="unknown node"):
        apply_patch(g, AddChannel(channel=evolve(channel, id="bad", to="ghost")))
    g = apply_patch(g, RemoveChannel(channel_id="extra"))
    with pytest.raises(PatchError, match="channel not found"):
        apply_patch(g, RemoveChannel(channel_id="extra"))


def test_batch_is_all_or_nothing():
    g = seed()
    batch = Batch(patches=(
        AddTool(node_id="coder", tool=ToolSpec(name="git")),
        RemoveSubtree(node_id="ghost"),
    ))
    with pytest.raises(PatchError, match=r"Batch\[1\].*nothing in the batch was applied"):
        apply_patch(g, batch)
    assert g.node("coder").tools == ()
    ok = apply_patch(g, Batch(patches=(AddTool(node_id="coder", tool=ToolSpec(name="git")),
                                      SetNodeStatus(node_id="coder", status=NodeLifecycleStatus.Probation))))
    assert ok.node("coder").tools[0].name == "git" and ok.node("coder").status is NodeLifecycleStatus.Probation


def _issues(g):
    return [str(i) for i in validate_genome(g)]


def test_validation_catches_broken_structure():
    g = team()
    assert validate_genome(g) == []
    # cycle: team lists root as its child and root claims team as parent
    nodes = dict(g.nodes)
    nodes["root"] = evolve(nodes["root"], parent_id="t")
    nodes["t"] = evolve(nodes["t"], children=("root",))
    assert any("cycle" in i or "root node cannot have a parent" in i for i in _issues(evolve(g, nodes=nodes)))
    # dangling child
    nodes = dict(g.nodes)
    nodes["team"] = evolve(nodes["team"], children=(*nodes["team"].children, "ghost"))
    assert any("child ghost does not exist" in i for i in _issues(evolve(g, nodes=nodes)))
    # two roots
    nodes = dict(g.nodes)
    nodes["loose"] = ViableNode.leaf("loose", "loose", LeafOperationSpec())
    assert any("second root" in i for i in _issues(evolve(g, nodes=nodes)))
    # duplicate sibling names
    nodes = dict(g.nodes)
    nodes["r"] = evolve(nodes["r"], name="coder")
    assert any("two children named 'coder'" in i for i in _issues(evolve(g, nodes=nodes)))
    # channel endpoint and key mismatch
    bad_channel = evolve(g.channels[0], to="ghost")
    assert any("channel endpoint ghost" in i for i in _issues(evolve(g, channels=(bad_channel,))))
    nodes = dict(g.nodes)
    nodes["alias"] = nodes.pop("c")
    assert any("stored under key 'alias'" in i for i in _issues(evolve(g, nodes=nodes)))
    # metasystem with a leaf operation
    nodes = dict(g.nodes)
    nodes["team"] = evolve(nodes["team"], leaf_operation=LeafOperationSpec.coding())
    assert any("cannot execute work" in i for i in _issues(evolve(g, nodes=nodes)))
    # dangling genes
    rule = RoutingRule(id="x", node_id="team", target_child="root")
    assert any("not a direct child" in i for i in _issues(evolve(g, routing_rules=(rule,))))
    rel = Relation(id="y", kind="peer", from_="c", to="ghost")
    assert any("relation endpoint ghost" in i for i in _issues(evolve(g, relations=(rel,))))
    with pytest.raises(GenomeValidationError):
        check_genome(evolve(g, relations=(rel,)))
