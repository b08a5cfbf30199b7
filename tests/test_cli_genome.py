"""`vsm genome validate|show|schema|diff|patch` end to end: the real CLI as a subprocess, and
click's CliRunner where many invocations would make subprocesses slow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from vsm_actors.cli import main
from vsm_actors.files.genome_files import load_genome
from vsm_actors.files.safe_load import load_document

ROOT = Path(__file__).resolve().parent.parent
GENOMES = ROOT / "genomes"
GENOME_FILES = sorted(p for p in GENOMES.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
REFERENCE = GENOMES / "reference_genome.json"
SEED = GENOMES / "single_coder.yaml"

PROMOTE = """\
PromoteLeafToMetasystem:
  node_id: primary-code-service
  extracted_child_name: generalist-coder
"""


def vsm(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsm_actors", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=60)


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_genome_files_present() -> None:
    assert REFERENCE in GENOME_FILES and len(GENOME_FILES) >= 4


def test_help() -> None:
    result = vsm("--help")
    assert result.returncode == 0, result.stderr
    assert "genome" in result.stdout
    assert vsm("genome", "--help").returncode == 0


# -- validate --------------------------------------------------------------------------------------

def test_validate_every_genome_file_subprocess() -> None:
    result = vsm("genome", "validate", *GENOME_FILES)
    assert result.returncode == 0, result.stderr
    for path in GENOME_FILES:
        assert f"{path}: ok" in result.stdout


@pytest.mark.parametrize("path", GENOME_FILES, ids=lambda p: p.name)
def test_validate_each_genome_file(path: Path) -> None:
    result = invoke("genome", "validate", path)
    assert result.exit_code == 0, result.output
    data = json.loads(invoke("genome", "validate", "-o", "json", path).stdout)
    assert data == [{"file": str(path), "valid": True, "genome_id": load_genome(path).id,
                     "nodes": len(load_genome(path).nodes)}]


def test_validate_reference_fixture_genome() -> None:
    genome = load_genome(REFERENCE)
    assert set(genome.nodes) == {"root", "coder"}
    assert vsm("genome", "validate", REFERENCE).returncode == 0


def test_validate_missing_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = vsm("genome", "validate", missing)
    assert result.returncode == 2
    assert str(missing) in result.stderr


# -- show ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", GENOME_FILES, ids=lambda p: p.name)
def test_show_text_lists_every_node_with_kind_and_capabilities(path: Path) -> None:
    genome = load_genome(path)
    result = invoke("genome", "show", path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for node in genome.nodes.values():
        [line] = [ln for ln in lines if f" {node.name} [" in f" {ln.lstrip('│├└─ ')}"]
        kind = "[metasystem]" if node.is_metasystem else "[leaf"
        assert kind in line
        caps = line.split("]: ", 1)[1] if "]: " in line else line.rsplit(": ", 1)[1]
        granted = node.capabilities().granted()
        assert caps.split(", ") == (granted or ["none"])
        if node.is_metasystem:
            assert "write_code" not in caps
    assert any("write_code" in ln for ln in lines), "some leaf can write code"


def test_show_text_subprocess() -> None:
    result = vsm("genome", "show", SEED)
    assert result.returncode == 0, result.stderr
    assert "root-codebase-system [metasystem]" in result.stdout
    assert "primary-code-service [leaf:Coding]: write_code" in result.stdout


@pytest.mark.parametrize("path", GENOME_FILES, ids=lambda p: p.name)
def test_show_json_is_full_form_and_validates(path: Path, tmp_path: Path) -> None:
    result = invoke("genome", "show", "-o", "json", path)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"id", "root_node_id", "nodes", "channels", "lineage", "metadata"} <= set(data)
    genome = load_genome(path)
    assert set(data["nodes"]) == set(genome.nodes)
    for node in data["nodes"].values():  # every field is written out
        assert {"parent_id", "children", "system_5", "leaf_operation", "model", "prompt", "tools",
                "permissions", "status"} <= set(node)
    out = tmp_path / "full.json"
    out.write_text(result.stdout, encoding="utf-8")
    assert invoke("genome", "validate", out).exit_code == 0
    assert load_genome(out) == genome


@pytest.mark.parametrize("path", GENOME_FILES, ids=lambda p: p.name)
def test_show_yaml_concise_round_trips(path: Path, tmp_path: Path) -> None:
    result = invoke("genome", "show", "-o", "yaml", path)
    assert result.exit_code == 0, result.output
    out = tmp_path / "concise.yaml"
    out.write_text(result.stdout, encoding="utf-8")
    data = load_document(out).data
    assert "root" in data and "nodes" not in data
    assert invoke("genome", "validate", out).exit_code == 0
    assert load_genome(out) == load_genome(path)


def test_show_yaml_subprocess_round_trip(tmp_path: Path) -> None:
    result = vsm("genome", "show", "-o", "yaml", GENOMES / "two_level.yaml")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "two.yaml"
    out.write_text(result.stdout, encoding="utf-8")
    assert load_genome(out) == load_genome(GENOMES / "two_level.yaml")


# -- schema ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema() -> dict:
    result = vsm("genome", "schema")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(data)
    return data


@pytest.mark.parametrize("path", GENOME_FILES, ids=lambda p: p.name)
def test_schema_accepts_every_genome_file(schema: dict, path: Path) -> None:
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(load_document(path).data))
    assert not errors, [e.message for e in errors]


def test_schema_accepts_full_form_output(schema: dict) -> None:
    data = json.loads(invoke("genome", "show", "-o", "json", GENOMES / "three_level.yaml").stdout)
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)


def test_schema_rejects_unknown_fields(schema: dict, tmp_path: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    concise = load_document(GENOMES / "two_level.yaml").data
    concise["root"]["children"][0]["colour"] = "red"
    assert not validator.is_valid(concise)
    full = load_document(REFERENCE).data
    full["nodes"]["coder"]["colour"] = "red"
    assert not validator.is_valid(full)
    top = load_document(SEED).data
    top["owner"] = "someone"
    assert not validator.is_valid(top)
    # the same file, written to disk, is refused by the CLI too
    bad = tmp_path / "bad.yaml"
    bad.write_text(SEED.read_text(encoding="utf-8").replace("      leaf_operation: coding",
                                                            "      leaf_operation: coding\n      colour: red"))
    assert not validator.is_valid(load_document(bad).data)
    assert vsm("genome", "validate", bad).returncode == 2


# -- diff ------------------------------------------------------------------------------------------

def _promoted(tmp_path: Path) -> Path:
    patch = tmp_path / "promote.yaml"
    patch.write_text(PROMOTE, encoding="utf-8")
    out = tmp_path / "promoted.yaml"
    result = invoke("genome", "patch", SEED, patch, "-o", out)
    assert result.exit_code == 0, result.output
    return out


def test_diff_lists_changed_and_added_nodes(tmp_path: Path) -> None:
    promoted = _promoted(tmp_path)
    result = vsm("genome", "diff", SEED, promoted)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "+ node generalist-coder" in lines
    [changed] = [ln for ln in lines if ln.startswith("~ node primary-code-service")]
    assert "children" in changed and "leaf_operation" in changed
    assert not any(ln.startswith("~ node root") or ln.startswith("-") for ln in lines)
    data = json.loads(invoke("genome", "diff", "-o", "json", SEED, promoted).stdout)
    assert {"change": "added", "subject": "node", "key": "generalist-coder", "fields": []} in data


def test_diff_equal_genomes_exit_0(tmp_path: Path) -> None:
    result = vsm("genome", "diff", SEED, SEED)
    assert result.returncode == 0
    assert "no differences" in result.stdout
    # the concise file and its full form are the same genome
    full = tmp_path / "full.json"
    full.write_text(invoke("genome", "show", "-o", "json", SEED).stdout, encoding="utf-8")
    assert invoke("genome", "diff", SEED, full).exit_code == 0


def test_diff_invalid_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\n", encoding="utf-8")
    result = vsm("genome", "diff", SEED, bad)
    assert result.returncode == 2
    assert str(bad) in result.stderr


# -- patch -----------------------------------------------------------------------------------------

def test_patch_writes_output_atomically(tmp_path: Path) -> None:
    patch = tmp_path / "promote.yaml"
    patch.write_text(PROMOTE, encoding="utf-8")
    out = tmp_path / "out.yaml"
    result = vsm("genome", "patch", SEED, patch, "-o", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.yaml", "promote.yaml"]  # no temp left
    genome = load_genome(out)
    assert genome.node("primary-code-service").is_metasystem
    child = genome.find_child("primary-code-service", "generalist-coder")
    assert child is not None and child.capabilities().can_write_code
    assert "nodes" not in load_document(out).data  # a .yaml output is the concise form


def test_patch_replaces_existing_output(tmp_path: Path) -> None:
    patch = tmp_path / "promote.yaml"
    patch.write_text(PROMOTE, encoding="utf-8")
    out = tmp_path / "out.json"
    out.write_text("old", encoding="utf-8")
    assert invoke("genome", "patch", SEED, patch, "-o", out).exit_code == 0
    assert len(load_genome(out).nodes) == 3
    assert "nodes" in json.loads(out.read_text(encoding="utf-8"))  # a .json output is the full form


def test_patch_to_stdout(tmp_path: Path) -> None:
    patch = tmp_path / "promote.yaml"
    patch.write_text(PROMOTE, encoding="utf-8")
    result = invoke("genome", "patch", SEED, patch)
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["nodes"]) == {"root", "primary-code-service", "generalist-coder"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["promote.yaml"]


def test_patch_file_that_is_a_genome_exits_2() -> None:
    result = invoke("genome", "patch", SEED, GENOMES / "single_coder.yaml")
    assert result.exit_code == 2
    assert "single_coder.yaml:" in result.stderr


def test_failing_batch_writes_nothing(tmp_path: Path) -> None:
    patch = tmp_path / "batch.yaml"
    patch.write_text(PROMOTE.replace("PromoteLeafToMetasystem:", "patches:\n  - PromoteLeafToMetasystem:")
                     .replace("  node_id", "      node_id").replace("  extracted", "      extracted")
                     + "  - SetNodeStatus:\n      node_id: no-such-node\n      status: Retired\n",
                     encoding="utf-8")
    out = tmp_path / "out.yaml"
    result = vsm("genome", "patch", SEED, patch, "-o", out)
    assert result.returncode == 2
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.yaml"]
    assert str(patch) in result.stderr and "no-such-node" in result.stderr


def test_failing_batch_patch_writes_nothing(tmp_path: Path) -> None:
    patch = tmp_path / "batch.json"
    patch.write_text(json.dumps({"Batch": {"patches": [
        {"PromoteLeafToMetasystem": {"node_id": "primary-code-service", "extracted_child_name": "g"}},
        {"AddTool": {"node_id": "missing", "tool": {"name": "t", "description": "d"}}},
    ]}}), encoding="utf-8")
    out = tmp_path / "out.yaml"
    result = vsm("genome", "patch", SEED, patch, "-o", out)
    assert result.returncode == 2, result.stderr
    assert not out.exists()
    assert str(patch) in result.stderr


def test_malformed_patch_file_is_located(tmp_path: Path) -> None:
    patch = tmp_path / "typo.yaml"
    patch.write_text(PROMOTE.replace("extracted_child_name", "extracted_child"), encoding="utf-8")
    out = tmp_path / "out.yaml"
    result = invoke("genome", "patch", SEED, patch, "-o", out)
    assert result.exit_code == 2
    assert f"{patch}:" in result.stderr
    assert not out.exists()
