"""Genome files: the concise hand-written form and the full reference form, both ways.

Concise form (what people write): nodes nested under `root:` and `children:`, an `id` that
defaults to the name, defaults left out, `leaf_operation: coding|reviewer|tester` presets, and the
standard channel bundle of every containment edge derived rather than written, and two node keys
of its own: `budget:` (kept on the ResourceBargaining channel into the node) and `probes:` (System
4 probes, kept as canonical JSON in the node's metadata `system4_probes`). Full form: the
reference's `OrganizationalGenome` JSON (flat `nodes` map, explicit `channels`).

Every error is reported as FILE:LINE:COL: message, located through the loader's positions.
"""

from __future__ import annotations

import os
from typing import Any

import cattrs

from .. import codec
from ..core.model.capability import OPERATION_PRESETS
from ..core.control.budgets import environment_channel_id
from ..core.control.probes import PROBES_KEY, concise_probe, decode_probes, encode_probes, parse_probes
from ..core.model.channel import VsmChannelType, standard_bundle
from ..core.model.genome import OrganizationalGenome
from ..core.model.node import NodeBudget, ViableNode
from ..core.model.validation import validate_genome
from .safe_load import Document, DocumentError, Limits, _gc_paused, load_document, load_text

CONCISE_KEYS = ("id", "root", "channels", "lineage", "metadata", "relations", "routing_rules",
                "audit_policies", "trial_settings")
NODE_KEYS = frozenset(a.name for a in ViableNode.__attrs_attrs__)
# concise-only node keys: `budget` becomes the budget of the ResourceBargaining channel into the node;
# `probes` (System 4 probes, core/control/probes.py) becomes canonical JSON in the node's metadata
CONCISE_ONLY = frozenset({"budget", "probes"})
CONCISE_NODE_KEYS = NODE_KEYS | CONCISE_ONLY
_BUDGET_FIELDS = {"tokens_per_epoch": "max_token_budget_per_epoch", "messages_per_epoch": "max_messages_per_epoch"}


class GenomeFileError(ValueError):
    """One or more located problems in a genome file."""

    def __init__(self, errors: list[DocumentError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def load_genome(source: str | os.PathLike | bytes, *, name: str | None = None, fmt: str | None = None,
                limits: Limits = Limits(), validate: bool = True) -> OrganizationalGenome:
    """Read, convert and (by default) validate a genome file; raises GenomeFileError."""
    try:
        doc = load_document(source, name=name, fmt=fmt, limits=limits)
    except DocumentError as exc:
        raise GenomeFileError([exc]) from None
    return genome_from_document(doc, validate=validate)


def parse_genome_text(text: str, *, name: str = "<string>", fmt: str | None = None,
                      validate: bool = True) -> OrganizationalGenome:
    try:
        doc = load_text(text, name=name, fmt=fmt)
    except DocumentError as exc:
        raise GenomeFileError([exc]) from None
    return genome_from_document(doc, validate=validate)


def genome_from_document(doc: Document, *, validate: bool = True) -> OrganizationalGenome:
    data = doc.data
    if not isinstance(data, dict):
        raise GenomeFileError([doc.error((), "a genome file must be a mapping")])
    try:
        with _gc_paused():  # conversion builds no cycles; collections in the middle only cost time
            full, locator = _to_full_form(doc, data)
            genome = codec.strict.structure(full, OrganizationalGenome)
    except GenomeFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - every cattrs failure is reported with its location
        errors = [doc.error(locator(path), message) for path, message in error_paths(exc)]
        raise GenomeFileError(errors or [doc.error((), str(exc))]) from None
    if validate:
        issues = validate_genome(genome)
        if issues:
            raise GenomeFileError([doc.error(locator(i.path), str(i)) for i in issues])
        _check_probe_metadata(doc, genome, locator)
    return genome


def _check_probe_metadata(doc: Document, genome: OrganizationalGenome, locator) -> None:
    """Probes written in the full form's metadata are checked as the concise `probes:` are
    (the value is a JSON string, so the location is the metadata entry's)."""
    errors = []
    for node_id, node in genome.nodes.items():
        if PROBES_KEY in node.metadata:
            _, problems = decode_probes(node.metadata[PROBES_KEY])
            errors += [doc.error(locator(("nodes", node_id, "metadata", PROBES_KEY)),
                                 f"{PROBES_KEY}{''.join(f'[{p}]' if isinstance(p, int) else f'.{p}' for p in path)}: {m}")
                       for path, m in problems]
    if errors:
        raise GenomeFileError(errors)


# -- concise -> full -----------------------------------------------------------------------------

def _to_full_form(doc: Document, data: dict) -> tuple[dict, Any]:
    """Return the full-form data and a function mapping full-form paths to document paths."""
    if "nodes" in data or "root_node_id" in data:
        full = dict(data)
        node_paths = {}
        if isinstance(full.get("nodes"), dict):
            full["nodes"] = {k: _expand_presets(doc, v, ("nodes", k)) for k, v in full["nodes"].items()}
            node_paths = {k: ("nodes", k) for k in full["nodes"]}
        channel_paths = None
        if "channels" not in full and isinstance(full.get("nodes"), dict):
            full["channels"] = _derived_channels(full["nodes"])
            channel_paths = []
        return full, _locator(node_paths, channel_paths, 0)
    if "root" not in data:
        raise GenomeFileError([doc.error((), "a genome needs either `root:` (concise form) or "
                                             "`root_node_id:` and `nodes:` (full form)")])
    unknown = [k for k in data if k not in CONCISE_KEYS]
    if unknown:
        raise GenomeFileError([doc.error((k,), f"unknown field {k!r}; expected one of {', '.join(CONCISE_KEYS)}")
                               for k in unknown])
    nodes: dict[str, dict] = {}
    node_paths: dict[str, tuple] = {}
    budgets: dict[str, dict] = {}
    root_id = _flatten(doc, data["root"], ("root",), None, nodes, node_paths, budgets)
    extra = data.get("channels", [])
    if not isinstance(extra, list):
        raise GenomeFileError([doc.error(("channels",), "channels must be a list")])
    # a channel written out for an edge and type replaces the derived one (e.g. the reference's
    # `ch-0`..`ch-4` ids, or a bundle channel with another priority), so both forms round trip
    written = {(c.get("from"), c.get("to"), c.get("channel_type")) for c in extra if isinstance(c, dict)}
    derived = [c for c in _derived_channels(nodes)
               if (c["from"], c["to"], getattr(c["channel_type"], "value", c["channel_type"])) not in written]
    derived += _budget_channels(doc, budgets, nodes, node_paths, derived + extra)
    full = {
        "id": data.get("id", _default_id(doc)), "root_node_id": root_id, "nodes": nodes,
        "channels": derived + extra,
    }
    for key in ("lineage", "metadata", "relations", "routing_rules", "audit_policies", "trial_settings"):
        if key in data:
            full[key] = data[key]
    return full, _locator(node_paths, [], len(derived))


def _default_id(doc: Document) -> str:
    base = os.path.basename(doc.file)
    return base.split(".")[0] or "genome"


def _flatten(doc: Document, raw: Any, path: tuple, parent: str | None, nodes: dict, paths: dict,
             budgets: dict) -> str:
    if not isinstance(raw, dict):
        raise GenomeFileError([doc.error(path, "a node must be a mapping with at least `name`")])
    unknown = [k for k in raw if k not in CONCISE_NODE_KEYS]
    if unknown:
        raise GenomeFileError([doc.error((*path, k), f"unknown node field {k!r}") for k in unknown])
    if "name" not in raw and "id" not in raw:
        raise GenomeFileError([doc.error(path, "a node needs a `name` (its id defaults to the name)")])
    node = _expand_presets(doc, {k: v for k, v in raw.items() if k not in CONCISE_ONLY}, path)
    node_id = node.setdefault("id", node.get("name"))
    node.setdefault("name", node_id)
    if not isinstance(node_id, str):
        raise GenomeFileError([doc.error((*path, "id"), "node id must be a string")])
    if node_id in nodes:
        first = doc.locate(paths[node_id])
        raise GenomeFileError([doc.error(path, f"duplicate node id {node_id!r} (first at line {first[0]})")])
    if "parent_id" in raw and raw["parent_id"] != parent:
        raise GenomeFileError([doc.error((*path, "parent_id"), "parent_id is implied by nesting; leave it out")])
    node["parent_id"] = parent
    children = raw.get("children", [])
    if not isinstance(children, list):
        raise GenomeFileError([doc.error((*path, "children"), "children must be a list of nodes")])
    nodes[node_id] = node
    paths[node_id] = path
    if "budget" in raw:
        budgets[node_id] = _budget(doc, raw["budget"], (*path, "budget"))
    if "probes" in raw:
        _probes(doc, raw["probes"], node, (*path, "probes"))
    node["children"] = [_flatten(doc, child, (*path, "children", i), node_id, nodes, paths, budgets)
                        for i, child in enumerate(children)]
    return node_id


def _budget(doc: Document, raw: Any, path: tuple) -> dict:
    """A node's `budget:` as channel fields (checked here, where its location is known)."""
    if not isinstance(raw, dict):
        raise GenomeFileError([doc.error(path, "budget must be a mapping of tokens_per_epoch and/or "
                                               "messages_per_epoch")])
    try:
        budget = codec.strict.structure(raw, NodeBudget)
    except Exception as exc:  # noqa: BLE001 - located like every other conversion error
        raise GenomeFileError([doc.error((*path, *p), m) for p, m in error_paths(exc)] or
                              [doc.error(path, str(exc))]) from None
    out = {}
    for key, channel_key in _BUDGET_FIELDS.items():
        value = getattr(budget, key)
        if value is not None and value < 0:
            raise GenomeFileError([doc.error((*path, key), f"{key} must be 0 or more, got {value}")])
        if value is not None:
            out[channel_key] = value
    return out


def _probes(doc: Document, raw: Any, node: dict, path: tuple) -> None:
    """A node's `probes:`, checked here where each field's location is known, into its metadata."""
    specs, errors = parse_probes(raw)
    if errors:
        raise GenomeFileError([doc.error((*path, *p), m) for p, m in errors])
    metadata = node.get("metadata", {})
    if not isinstance(metadata, dict) or not specs:
        return  # a bad `metadata:` is reported by the conversion; `probes: []` declares nothing
    if PROBES_KEY in metadata:
        raise GenomeFileError([doc.error(path, f"probes are given both here and in metadata {PROBES_KEY}; "
                                               f"give them in one place")])
    node["metadata"] = {**metadata, PROBES_KEY: encode_probes(specs)}


def _budget_channels(doc: Document, budgets: dict, nodes: dict, paths: dict, channels: list) -> list:
    """Put each `budget:` on the ResourceBargaining channel(s) into its node (derived or written),
    adding the root's from the environment; returns the channels added."""
    added = []
    for node_id, fields in budgets.items():
        parent = nodes[node_id].get("parent_id")
        ends = {parent, node_id}
        found = [c for c in channels if isinstance(c, dict) and {c.get("from"), c.get("to")} == ends
                 and getattr(c.get("channel_type"), "value", c.get("channel_type")) == "ResourceBargaining"]
        for channel in found:
            for key, value in fields.items():
                if channel.get(key) is not None and channel[key] != value:
                    raise GenomeFileError([doc.error((*paths[node_id], "budget"), (
                        f"budget of {node_id!r} differs from {key} of channel {channel.get('id')!r}; "
                        f"give it in one place"))])
            channel.update(fields)
        if not found:
            cid = environment_channel_id(node_id) if parent is None else f"{parent}>{node_id}:resourcebargaining"
            added.append({"id": cid, "channel_type": VsmChannelType.ResourceBargaining.value, "from": parent,
                          "to": node_id, "direction": "EnvironmentToNode" if parent is None else "Bidirectional",
                          **fields})
    return added


def _expand_presets(doc: Document, node: Any, path: tuple) -> Any:
    if isinstance(node, dict) and isinstance(node.get("leaf_operation"), str):
        preset = OPERATION_PRESETS.get(node["leaf_operation"].lower())
        if preset is None:
            raise GenomeFileError([doc.error((*path, "leaf_operation"),
                                             f"unknown leaf operation preset {node['leaf_operation']!r}; "
                                             f"expected one of {', '.join(sorted(OPERATION_PRESETS))}")])
        node = {**node, "leaf_operation": codec.to_wire(preset())}
    return node


def _derived_channels(nodes: dict) -> list:
    out = []
    for node_id, node in nodes.items():
        for child in node.get("children", []) if isinstance(node, dict) else []:
            if isinstance(child, str) and child in nodes:  # a dangling child is reported once, as such
                out.extend(codec.to_wire(c) for c in standard_bundle(node_id, child))
    return out


def _locator(node_paths: dict, channel_paths: list | None, derived_count: int):
    def locate(path: tuple) -> tuple:
        if len(path) >= 2 and path[0] == "nodes" and path[1] in node_paths:
            return (*node_paths[path[1]], *path[2:])
        if len(path) >= 2 and path[0] == "channels" and channel_paths is not None and isinstance(path[1], int):
            if path[1] < derived_count:
                return ("channels",)
            return ("channels", path[1] - derived_count, *path[2:])
        return path
    return locate


# -- full -> concise -----------------------------------------------------------------------------

def genome_to_full(genome: OrganizationalGenome) -> dict:
    return codec.to_wire(genome)


def genome_to_concise(genome: OrganizationalGenome) -> dict:
    """The hand-written form: nested, defaults and derived bundle channels left out."""
    defaults = codec.to_wire(ViableNode(id="x", name="x"))
    wire_nodes = codec.to_wire(genome)["nodes"]

    def node(node_id: str) -> dict:
        full = dict(wire_nodes[node_id])
        out = {"name": full["name"]}
        if full["id"] != full["name"]:
            out = {"id": full["id"], **out}
        probes = _concise_probes(full)
        for key, value in full.items():
            if key in ("id", "name", "parent_id", "children") or value == defaults.get(key):
                continue
            out[key] = value
        if node_id in budgets:
            out["budget"] = budgets[node_id]
        if probes:
            out["probes"] = probes
        if full["children"]:
            out["children"] = [node(c) for c in full["children"]]
        return out

    derived = {(c.id, c.from_, c.to, c.channel_type) for pid, n in genome.nodes.items()
               for cid in n.children for c in standard_bundle(pid, cid)}
    budgets, budget_channels = _concise_budgets(genome)
    extra = [codec.to_wire(c) for c in genome.channels
             if (c.id, c.from_, c.to, c.channel_type) not in derived and c.id not in budget_channels]
    full = codec.to_wire(genome)
    blank = codec.to_wire(OrganizationalGenome(id=genome.id, root_node_id=genome.root_node_id, nodes={}))
    out: dict = {"id": genome.id, "root": node(genome.root_node_id)}
    if extra:
        out["channels"] = extra
    for key in ("lineage", "metadata", "relations", "routing_rules", "audit_policies", "trial_settings"):
        if key in full and full[key] != blank.get(key):
            out[key] = full[key]
    return out


def _concise_probes(full: dict) -> list[dict]:
    """`probes:` from the node's metadata, taken out of it, when the value is what the concise
    form writes (canonical); any other value stays in `metadata:` as written, so both forms
    round trip."""
    text = full.get("metadata", {}).get(PROBES_KEY)
    if not isinstance(text, str):
        return []
    specs, errors = decode_probes(text)
    if errors or not specs or encode_probes(specs) != text:
        return []
    full["metadata"] = {k: v for k, v in full["metadata"].items() if k != PROBES_KEY}
    return [concise_probe(s) for s in specs]


def _concise_budgets(genome: OrganizationalGenome) -> tuple[dict[str, dict], set[str]]:
    """`budget:` per node from the channels the concise form derives (the bundle's
    ResourceBargaining channel into it; the environment's into the root), and those channels'
    ids when the concise form leaves them out."""
    out: dict[str, dict] = {}
    written: set[str] = set()
    for c in genome.channels:
        if c.channel_type is not VsmChannelType.ResourceBargaining or (
                c.max_token_budget_per_epoch is None and c.max_messages_per_epoch is None):
            continue
        node = c.to
        if node not in genome.nodes or c.from_ != genome.node(node).parent_id:
            continue
        parent = genome.node(node).parent_id
        if c.id != (environment_channel_id(node) if parent is None else f"{parent}>{node}:resourcebargaining"):
            continue  # written out with an id of its own: it stays in `channels:`
        out[node] = {k: getattr(c, f) for k, f in _BUDGET_FIELDS.items() if getattr(c, f) is not None}
        if parent is None:
            written.add(c.id)
    return out, written


def error_paths(exc: BaseException, prefix: tuple = ()) -> list[tuple[tuple, str]]:
    """Flatten a cattrs validation error into (path, message) pairs, path as keys/indexes."""
    if isinstance(exc, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        out: list[tuple[tuple, str]] = []
        for sub, note in with_notes:
            step = note.name if isinstance(exc, cattrs.ClassValidationError) else note.index
            out.extend(error_paths(sub, (*prefix, step)))
        for sub in without:
            out.extend(error_paths(sub, prefix))
        return out
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return [(prefix, f"unknown field(s): {', '.join(sorted(exc.extra_fields))}")]
    if isinstance(exc, KeyError):
        return [(prefix, f"required field {exc.args[0]!r} is missing")]
    return [(prefix, str(exc))]
