"""AddRoutingRule / RemoveRoutingRule: strict application, removal leaving valid genomes, the wire
form, and `vsm genome patch` accepting them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from vsm_actors import codec
from vsm_actors.cli import main
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.genes import RoutingRule
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.node import ViableNode
from vsm_actors.core.model.patch import (
    PATCH_TYPES, AddChild, AddRoutingRule, Batch, GenomePatch, PatchError, PromoteLeafToMetasystem,
    RemoveRoutingRule, RemoveSubtree, apply_patch,
)
from vsm_actors.core.model.validation import validate_genome

GENOMES = Path(__file__).resolve().parent.parent.parent / "genomes"


def team() -> OrganizationalGenome:
    g = OrganizationalGenome.with_root("g", ViableNode.metasystem("root", "root"))
    g = g.add_child("root", ViableNode.metasystem("team", "team"))
    g = g.add_child("team", ViableNode.leaf("c", "coder", LeafOperationSpec.coding()))
    g = g.add_child("team", ViableNode.leaf("r", "reviewer", LeafOperationSpec.reviewer()))
    return g.add_child("root", ViableNode.leaf("solo", "solo", LeafOperationSpec.coding()))


def rule(rule_id: str = "r1", node: str = "team", target: str = "r", **kw) -> RoutingRule:
    return RoutingRule(id=rule_id, node_id=node, target_child=target, **kw)


def test_patch_types_include_routing_rule_variants():
    assert PATCH_TYPES["AddRoutingRule"] is AddRoutingRule
    assert PATCH_TYPES["RemoveRoutingRule"] is RemoveRoutingRule


def test_add_routing_rule_appends_and_leaves_input_untouched():
    g = team()
    out = apply_patch(g, AddRoutingRule(rule=rule(task_class="review")))
    assert out.routing_rules == (rule(task_class="review"),)
    assert g.routing_rules == ()
    assert validate_genome(out) == []


@pytest.mark.parametrize("bad, message", [
    (rule(node="missing"), "node not found: missing"),
    (rule(node="solo", target="c"), "not a metasystem"),
    (rule(node="team", target="solo"), "not a direct child"),
    (rule(node="root", target="c"), "not a direct child"),   # a grandchild is not a direct child
])
def test_add_routing_rule_is_strict(bad, message):
    with pytest.raises(PatchError, match=message):
        apply_patch(team(), AddRoutingRule(rule=bad))


def test_add_routing_rule_refuses_an_existing_id():
    g = apply_patch(team(), AddRoutingRule(rule=rule()))
    with pytest.raises(PatchError, match="already exists: r1"):
        apply_patch(g, AddRoutingRule(rule=rule(target="c")))


def test_remove_routing_rule_removes_by_id_and_refuses_unknown_ids():
    g = apply_patch(team(), Batch(patches=(AddRoutingRule(rule=rule("a")), AddRoutingRule(rule=rule("b", target="c")))))
    out = apply_patch(g, RemoveRoutingRule(rule_id="a"))
    assert [r.id for r in out.routing_rules] == ["b"]
    with pytest.raises(PatchError, match="routing rule not found: zzz"):
        apply_patch(g, RemoveRoutingRule(rule_id="zzz"))


def test_batch_can_add_a_child_and_route_to_it():
    child = ViableNode.leaf("spec", "spec", LeafOperationSpec.coding())
    patch = Batch(patches=(AddChild(parent_id="root", child=child),
                           AddRoutingRule(rule=rule(node="root", target="spec", task_class="migration"))))
    out = apply_patch(team(), patch)
    assert out.routing_rules[0].target_child == "spec" and validate_genome(out) == []


def test_batch_routing_to_a_promoted_leafs_extracted_child():
    """The extracted child's id is derived from its name, so a later rule in the batch can name it."""
    patch = Batch(patches=(PromoteLeafToMetasystem(node_id="solo", extracted_child_name="solo-generalist"),
                           AddRoutingRule(rule=rule(node="solo", target="solo-generalist"))))
    assert validate_genome(apply_patch(team(), patch)) == []


@pytest.mark.parametrize("removed", ["team", "r", "c", "solo"])
def test_remove_subtree_drops_rules_naming_removed_nodes(removed):
    g = apply_patch(team(), Batch(patches=(
        AddRoutingRule(rule=rule("to-r", target="r")), AddRoutingRule(rule=rule("to-c", target="c")),
        AddRoutingRule(rule=rule("to-team", node="root", target="team")),
        AddRoutingRule(rule=rule("to-solo", node="root", target="solo")))))
    out = apply_patch(g, RemoveSubtree(node_id=removed))
    assert validate_genome(out) == []
    gone = set(g.subtree_ids(removed))
    assert all(r.node_id not in gone and r.target_child not in gone for r in out.routing_rules)
    assert len(out.routing_rules) == sum(1 for r in g.routing_rules if r.node_id not in gone and r.target_child not in gone)


def test_routing_rule_patches_round_trip_on_the_wire():
    patches = [
        AddRoutingRule(rule=rule(task_class="migration", required_capability="write_code", keywords=("db",),
                                 risk=("High",), priority=3)),
        RemoveRoutingRule(rule_id="r1"),
        Batch(patches=(AddRoutingRule(rule=rule()), RemoveRoutingRule(rule_id="r1"))),
    ]
    for p in patches:
        wire = codec.to_wire(p)
        assert list(wire) == [type(p).__name__]
        assert codec.from_wire(wire, GenomePatch) == p
        assert codec.loads(codec.dumps(p), GenomePatch) == p
        assert codec.strict.structure(json.loads(codec.dumps(p)), GenomePatch) == p
    assert codec.to_wire(patches[1]) == {"RemoveRoutingRule": {"rule_id": "r1"}}
    # a hand-written rule may leave its optional conditions out
    short = codec.strict.structure({"AddRoutingRule": {"rule": {"id": "x", "node_id": "a", "target_child": "b"}}},
                                   GenomePatch)
    assert short == AddRoutingRule(rule=RoutingRule(id="x", node_id="a", target_child="b"))


def test_strict_codec_rejects_unknown_rule_fields():
    with pytest.raises(Exception):
        codec.strict.structure({"AddRoutingRule": {"rule": {"id": "x", "node_id": "a", "target_child": "b",
                                                            "colour": "red"}}}, GenomePatch)


def test_genome_schema_lists_the_new_variants():
    from vsm_actors.files.schema import genome_file_schema
    variants = genome_file_schema()["$defs"]["GenomePatch"]["anyOf"]
    names = {next(iter(v["properties"])) for v in variants}
    assert {"AddRoutingRule", "RemoveRoutingRule"} <= names


def test_cli_genome_patch_accepts_routing_rule_patches(tmp_path: Path):
    seed = GENOMES / "single_coder.yaml"
    patch_file = tmp_path / "route.yaml"
    patch_file.write_text(
        "patches:\n"
        "  - AddRoutingRule:\n"
        "      rule: {id: route-docs, node_id: root, target_child: primary-code-service, task_class: docs}\n"
        "  - RemoveRoutingRule:\n"
        "      rule_id: route-docs\n"
        "  - AddRoutingRule:\n"
        "      rule: {id: route-migrations, node_id: root, target_child: primary-code-service}\n",
        encoding="utf-8")
    result = CliRunner().invoke(main, ["genome", "patch", str(seed), str(patch_file)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rules = json.loads(result.stdout)["routing_rules"]
    assert [r["id"] for r in rules] == ["route-migrations"]


def test_cli_genome_patch_refuses_a_rule_to_a_non_child(tmp_path: Path):
    seed = GENOMES / "single_coder.yaml"
    patch_file = tmp_path / "route.yaml"
    patch_file.write_text("AddRoutingRule:\n  rule: {id: r, node_id: root, target_child: root}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["genome", "patch", str(seed), str(patch_file)])
    assert result.exit_code == 2
    assert "not a direct child" in result.output
