"""`vsm genome validate|show|schema|diff|patch`: offline work on genome files."""

from __future__ import annotations

import json
import contextlib
import os

import click

from .. import codec
from ..core.model.genome import OrganizationalGenome
from ..core.model.patch import GenomePatch, PatchError, apply_patch
from ..core.model.validation import validate_genome
from ..files.genome_diff import diff_genomes
from ..files.genome_files import GenomeFileError, error_paths, genome_to_concise, genome_to_full, load_genome
from ..files.genome_render import render_tree, tree_data
from ..files.safe_load import DocumentError, load_document
from ..files.schema import genome_file_schema
from .common import BadInput, emit_json, output_option


def read_genome(path: str) -> OrganizationalGenome:
    try:
        return load_genome(path)
    except GenomeFileError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None


@click.group("genome")
def genome_group() -> None:
    """Validate, inspect, compare and patch organizational genome files."""


@genome_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@output_option
def validate_cmd(files: tuple[str, ...], output: str) -> None:
    """Check genome files; errors are printed as FILE:LINE:COL: message (exit 2 if any)."""
    results, failed = [], False
    for path in files:
        try:
            genome = load_genome(path)
            results.append({"file": path, "valid": True, "genome_id": genome.id, "nodes": len(genome.nodes)})
        except (GenomeFileError, OSError) as exc:
            failed = True
            errors = exc.errors if isinstance(exc, GenomeFileError) else []
            message = str(exc) if errors else f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
            click.echo(message, err=True)
            results.append({"file": path, "valid": False, "errors": [str(e) for e in errors] or [message]})
    if output == "text":
        for r in results:
            if r["valid"]:
                click.echo(f"{r['file']}: ok ({r['nodes']} nodes, genome {r['genome_id']})")
    else:
        emit_json(results, lines=output == "jsonl")
    if failed:
        raise SystemExit(2)


@genome_group.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml", "tree-json"]), default="text",
              show_default=True, help="text: the tree; json: the full reference form; yaml: the concise form; "
                                      "tree-json: the tree with kinds and capabilities as data.")
def show_cmd(file: str, output: str) -> None:
    """Draw the tree with each node's kind and derived capabilities."""
    genome = read_genome(file)
    if output == "text":
        click.echo(render_tree(genome))
    elif output == "json":
        emit_json(genome_to_full(genome))
    elif output == "tree-json":
        emit_json(tree_data(genome))
    else:
        click.echo(_render(genome_to_concise(genome), yaml_out=True), nl=False)


@genome_group.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the genome file format (for editor completion)."""
    emit_json(genome_file_schema())


@genome_group.command("diff")
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@output_option
def diff_cmd(a: str, b: str, output: str) -> None:
    """What differs between two genomes, node by node (exit 1 when they differ)."""
    changes = diff_genomes(read_genome(a), read_genome(b))
    if output == "text":
        for change in changes:
            click.echo(change.render())
        if not changes:
            click.echo("no differences")
    else:
        emit_json([c.as_data() for c in changes], lines=output == "jsonl")
    if changes:
        raise SystemExit(1)


@genome_group.command("patch")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("patch_file", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), help="Write the patched genome here "
              "(default: stdout). Nothing is written when any patch fails.")
@click.option("--form", type=click.Choice(["concise", "full"]), default=None,
              help="Output form (default: concise for .yaml/.yml, full for .json and stdout).")
def patch_cmd(file: str, patch_file: str, out: str | None, form: str | None) -> None:
    """Apply the patches in PATCH_FILE to FILE, all or nothing.

    PATCH_FILE holds one patch (`AddTool: {node_id: ..., tool: {...}}`) or a list of them under
    `patches:`."""
    genome = read_genome(file)
    patches = read_patches(patch_file)
    try:
        for p in patches:
            genome = apply_patch(genome, p)
    except PatchError as exc:
        raise BadInput(f"{patch_file}: {exc}") from None
    issues = validate_genome(genome)
    if issues:
        raise BadInput(f"{patch_file}: the patched genome is invalid: " + "; ".join(map(str, issues)))
    if form is None:
        form = "concise" if out and out.endswith((".yaml", ".yml")) else "full"
    data = genome_to_concise(genome) if form == "concise" else genome_to_full(genome)
    text = _render(data, yaml_out=bool(out and out.endswith((".yaml", ".yml"))))
    if out:
        tmp = f"{out}.tmp-{os.getpid()}"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, out)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise BadInput(f"{out}: cannot write: {exc.strerror or exc}") from None
        click.echo(f"{out}: {len(patches)} patch(es) applied, {len(genome.nodes)} nodes", err=True)
    else:
        click.echo(text, nl=False)


def read_patches(path: str) -> list:
    try:
        doc = load_document(path)
    except DocumentError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    # a patch file holds one patch (`PromoteLeafToMetasystem: {...}`) or a list under `patches:`
    # (the loader refuses a top-level list: every genome-related file is a mapping)
    listed = isinstance(doc.data, dict) and set(doc.data) == {"patches"}
    if listed and not isinstance(doc.data["patches"], list):
        raise BadInput(str(doc.error(("patches",), "patches must be a list of patches")))
    items = doc.data["patches"] if listed else [doc.data]
    patches, errors = [], []
    for i, item in enumerate(items):
        base = ("patches", i) if listed else ()
        try:
            patches.append(codec.strict.structure(item, GenomePatch))
        except Exception as exc:  # noqa: BLE001 - located and reported below
            for sub_path, message in error_paths(exc):
                tag = (next(iter(item)),) if isinstance(item, dict) and len(item) == 1 else ()
                errors.append(str(doc.error((*base, *tag, *sub_path), message)))
    if errors:
        raise BadInput("\n".join(errors))
    return patches


def _render(data: dict, *, yaml_out: bool) -> str:
    if not yaml_out:
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    import io
    from enum import Enum

    from ruamel.yaml import YAML
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    # to_wire leaves (str, Enum) members as they are (json writes them as strings, YAML would not)
    yaml.representer.add_multi_representer(Enum, lambda r, v: r.represent_str(v.value))
    # our loader refuses anchors and aliases, so never write them for shared objects
    yaml.representer.ignore_aliases = lambda _data: True
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()
