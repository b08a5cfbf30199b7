"""Malformed genome files (tests/corpus/genomes/): each is refused by `vsm genome validate` with
exit 2 and a `FILE:LINE:COL: message` naming the right line, quickly, without writing anything.

The loader's own corpus (tests/corpus/malformed/) covers YAML/JSON syntax and safety; this one
covers whole genome files: model errors (fields, types, enums, presets) and tree invariants.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from vsm_actors.cli import main
from vsm_actors.files.genome_files import GenomeFileError, load_genome

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus" / "genomes"
LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): \S")

# file -> (line of the (first) expected error, fragment of its message)
EXPECTED: dict[str, tuple[int, str]] = {
    "alias_bomb.yaml": (2, "anchors (&a) are not allowed"),
    "bad_yaml_syntax.yaml": (6, "invalid YAML"),
    "bool_for_int.yaml": (7, "expected an integer, got a boolean"),
    "children_not_list.yaml": (4, "children must be a list"),
    "cycle.json": (7, "cycle"),
    "dangling_channel.yaml": (11, "channel endpoint ghost does not exist"),
    "dangling_child.json": (5, "child ghost does not exist"),
    "dangling_parent.json": (7, "parent ghost does not exist"),
    "dangling_relation.yaml": (11, "relation endpoint ghost does not exist"),
    "dangling_routing_rule.yaml": (12, "target reviewer is not a direct child of team"),
    "duplicate_key.json": (4, "duplicate key 'root_node_id' (first at line 3)"),
    "duplicate_key.yaml": (7, "duplicate key 'leaf_operation' (first at line 6)"),
    "duplicate_node_id.yaml": (11, "duplicate node id 'coder' (first at line 7)"),
    "duplicate_sibling_name.yaml": (4, "two children named 'coder'"),
    "empty.yaml": (1, "file is empty"),
    "invalid_utf8.yaml": (3, "invalid UTF-8"),
    "list_for_string.yaml": (5, "expected a string, got a list"),
    "metasystem_with_operation.yaml": (6, "metasystem cannot execute work"),
    "missing_root.yaml": (1, "a genome needs either `root:`"),
    "missing_root_node.json": (3, "root node 'root' is not in nodes"),
    "parent_id_in_concise.yaml": (6, "parent_id is implied by nesting"),
    "python_tag.yaml": (5, "tags (!!python/object/apply:os.system) are not allowed"),
    "string_for_bool.yaml": (8, "expected a boolean, got a string"),
    "two_roots.json": (7, "second root: node other"),
    "unknown_enum.yaml": (7, "unknown NodeLifecycleStatus 'Sleeping'"),
    "unknown_full_field.json": (5, "unknown field(s): colour"),
    "unknown_node_field.yaml": (7, "unknown node field 'colour'"),
    "unknown_preset.yaml": (6, "unknown leaf operation preset 'juggling'"),
    "unknown_top_field.yaml": (2, "unknown field 'owner'"),
}

DEEP_LEVELS = 10_000


def _deep_yaml(path: Path) -> None:
    nested = "".join(f"{{name: n{i}, children: [" for i in range(DEEP_LEVELS)) + "{name: leaf}" + "]}" * DEEP_LEVELS
    path.write_text(f"id: deep\nroot: {nested}\n", encoding="utf-8")


def _deep_json(path: Path) -> None:
    path.write_text('{"id": "deep", "root_node_id": "r", "nodes": {},\n "metadata": {"x": '
                    + "[" * DEEP_LEVELS + "]" * DEEP_LEVELS + "}}\n", encoding="utf-8")


def _huge_yaml(path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("id: huge\nroot:\n  name: root\n  metadata:\n    blob: \"")
        chunk = "x" * (1 << 20)
        for _ in range(50):
            fh.write(chunk)
        fh.write("\"\n")


GENERATED = {  # name -> (writer, line, fragment)
    "deep_10000.yaml": (_deep_yaml, 2, "nesting is deeper than the limit"),
    "deep_10000.json": (_deep_json, 2, "nesting is deeper than the limit"),
    "huge_50mb.yaml": (_huge_yaml, 1, "file is too large"),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generated-genomes")
    for name, (writer, _line, _fragment) in GENERATED.items():
        writer(folder / name)
    assert (folder / "huge_50mb.yaml").stat().st_size > 50 * 1024 * 1024
    return folder


def _cases(generated: Path) -> list[tuple[Path, int, str]]:
    return ([(CORPUS / name, line, fragment) for name, (line, fragment) in EXPECTED.items()]
            + [(generated / name, line, fragment) for name, (_w, line, fragment) in GENERATED.items()])


def _listing(*folders: Path) -> dict[str, tuple[int, float]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for folder in folders for p in folder.iterdir()}


def test_corpus_is_complete() -> None:
    on_disk = {p.name for p in CORPUS.iterdir()}
    assert on_disk == set(EXPECTED), "every corpus file needs an expectation (and vice versa)"
    assert len(on_disk) >= 20


def _check_errors(stderr: str, path: Path, line: int, fragment: str) -> None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines, f"no message for {path}"
    for ln in lines:
        m = LOCATED.match(ln)
        assert m and m["file"] == str(path), f"not FILE:LINE:COL: message: {ln!r}"
    assert any(ln.startswith(f"{path}:{line}:") and fragment in ln for ln in lines), \
        f"expected line {line} with {fragment!r} in:\n{stderr}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_refuses_corpus_file(name: str, tmp_path: Path) -> None:
    path = CORPUS / name
    line, fragment = EXPECTED[name]
    before = _listing(CORPUS, tmp_path)
    result = CliRunner().invoke(main, ["genome", "validate", str(path)], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    _check_errors(result.stderr, path, line, fragment)
    assert _listing(CORPUS, tmp_path) == before


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_validate_refuses_generated_file(name: str, generated: Path) -> None:
    path = generated / name
    _writer, line, fragment = GENERATED[name]
    before = _listing(generated)
    result = CliRunner().invoke(main, ["genome", "validate", str(path)], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    _check_errors(result.stderr, path, line, fragment)
    assert _listing(generated) == before


def test_load_genome_is_fast_on_every_bad_file(generated: Path) -> None:
    slow = []
    for path, line, _fragment in _cases(generated):
        start = time.perf_counter()
        with pytest.raises(GenomeFileError) as info:
            load_genome(path)
        elapsed = time.perf_counter() - start
        assert info.value.errors[0].file == str(path)
        assert any(e.line == line for e in info.value.errors), (path.name, [str(e) for e in info.value.errors])
        if elapsed >= 1.0:
            slow.append((path.name, round(elapsed, 3)))
    assert not slow, f"load_genome took 1 s or more: {slow}"


def test_validate_subprocess_all_files_at_once(generated: Path, tmp_path: Path) -> None:
    """The real CLI: one message block per file, exit 2, nothing written in any folder."""
    cases = _cases(generated)
    before = _listing(CORPUS, generated, tmp_path)
    result = subprocess.run([sys.executable, "-m", "vsm_actors", "genome", "validate",
                             *(str(p) for p, _l, _f in cases)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert "ok (" not in result.stdout
    for path, line, fragment in cases:
        mine = "\n".join(ln for ln in result.stderr.splitlines() if ln.startswith(f"{path}:"))
        _check_errors(mine, path, line, fragment)
    assert _listing(CORPUS, generated, tmp_path) == before


PATCH = "AddTool:\n  node_id: coder\n  tool: {name: lint}\n"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_patch_on_malformed_genome_writes_nothing(name: str, tmp_path: Path) -> None:
    patch = tmp_path / "patch.yaml"
    patch.write_text(PATCH, encoding="utf-8")
    out = tmp_path / "out.yaml"
    before = _listing(CORPUS, tmp_path)
    result = CliRunner().invoke(main, ["genome", "patch", str(CORPUS / name), str(patch), "-o", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert str(CORPUS / name) in result.stderr
    assert not out.exists()
    assert _listing(CORPUS, tmp_path) == before


def test_patch_subprocess_on_generated_files_writes_nothing(generated: Path, tmp_path: Path) -> None:
    patch = tmp_path / "patch.yaml"
    patch.write_text(PATCH, encoding="utf-8")
    for name in GENERATED:
        out = tmp_path / f"{name}.out.yaml"
        result = subprocess.run([sys.executable, "-m", "vsm_actors", "genome", "patch", str(generated / name),
                                 str(patch), "-o", str(out)], capture_output=True, text=True, cwd=tmp_path,
                                timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert result.returncode == 2, result.stderr
        assert f"{generated / name}:" in result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["patch.yaml"]
