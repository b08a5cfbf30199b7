"""JSON Schema of the genome file format, generated from the attrs model so it cannot drift."""

from __future__ import annotations

import types
from datetime import datetime
from enum import Enum
from typing import Any, Union, get_args, get_origin, get_type_hints

import attrs

from ..core.control.probes import PROBES
from ..core.model.capability import OPERATION_PRESETS
from ..core.model.genome import OrganizationalGenome
from ..core.model.node import NodeBudget, ViableNode
from ..core.model.patch import GenomePatch, PATCH_TYPES
from ..core.model.variants import NEWTYPE_VARIANTS

SCHEMA_ID = "https://vsm-actors.invalid/schema/genome.json"
_RENAMES = {"from_": "from"}


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def of(self, tp: Any) -> dict:
        if tp is str:
            return {"type": "string"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if tp is datetime:
            return {"type": "string", "format": "date-time"}
        if tp is object or tp is Any:
            return {}
        if getattr(tp, "__supertype__", None) is str:  # NewType ids
            return {"type": "string"}
        if tp == GenomePatch:
            return {"$ref": "#/$defs/GenomePatch"}
        origin, args = get_origin(tp), get_args(tp)
        if origin in (Union, types.UnionType):
            members = [self.of(a) if a is not type(None) else {"type": "null"} for a in args]
            return {"anyOf": members}
        if origin is tuple:
            return {"type": "array", "items": self.of(args[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.of(args[1])}
        if isinstance(tp, type) and issubclass(tp, Enum):
            return {"enum": [m.value for m in tp]}
        if tp in NEWTYPE_VARIANTS.values():
            return {"type": "object", "properties": {tp.__name__: {"type": "string"}},
                    "required": [tp.__name__], "additionalProperties": False}
        if attrs.has(tp):
            return self.ref(tp)
        raise TypeError(f"no schema for {tp!r}")

    def ref(self, cls: type, name: str | None = None, *, skip: tuple = (), optional: tuple = ()) -> dict:
        name = name or cls.__name__
        if name not in self.defs:
            self.defs[name] = {}  # placeholder breaks recursion
            hints = get_type_hints(cls)
            props, required = {}, []
            for a in attrs.fields(cls):
                if a.name in skip:
                    continue
                key = _RENAMES.get(a.name, a.name)
                props[key] = self.of(hints[a.name])
                if a.default is attrs.NOTHING and a.name not in optional:
                    required.append(key)
            self.defs[name] = {"type": "object", "properties": props, "additionalProperties": False,
                               **({"required": required} if required else {})}
        return {"$ref": f"#/$defs/{name}"}


def _probe_schema() -> dict:
    watches = sorted({w for p in PROBES.values() for w in p.watches})
    return {"type": "object", "additionalProperties": False, "required": ["kind"], "properties": {
        "kind": {"enum": sorted(PROBES)},
        "interval_seconds": {"type": "integer", "minimum": 0,
                             "description": "how often a window may close; 0: on every observed result"},
        "watch": {"type": "array", "items": {"enum": watches}, "uniqueItems": True},
        "threshold": {"type": "number", "exclusiveMinimum": 1,
                      "description": "latest / previous window at or past this is a rise"},
        "min_tasks": {"type": "integer", "minimum": 1, "description": "tasks a window needs before it closes"}}}


def genome_file_schema() -> dict:
    b = _Builder()
    b.defs["GenomePatch"] = {}
    b.defs["GenomePatch"] = {"anyOf": [
        {"type": "object", "properties": {name: b.ref(cls)}, "required": [name], "additionalProperties": False}
        for name, cls in PATCH_TYPES.items()]}
    full = b.ref(OrganizationalGenome)
    concise_node = b.ref(ViableNode, "ConciseNode", skip=("parent_id",), optional=("id", "name"))
    node_def = b.defs["ConciseNode"]
    node_def["properties"]["children"] = {"type": "array", "items": concise_node}
    node_def["properties"]["leaf_operation"] = {"anyOf": [
        {"enum": sorted(OPERATION_PRESETS)}, b.ref(attrs.fields(ViableNode).leaf_operation.type)]}
    node_def["anyOf"] = [{"required": ["name"]}, {"required": ["id"]}]
    # concise only: stored on the ResourceBargaining channel into the node (genome_files)
    node_def["properties"]["budget"] = b.ref(NodeBudget)
    for key in ("tokens_per_epoch", "messages_per_epoch"):
        b.defs["NodeBudget"]["properties"][key] = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}
    # concise only: System 4 probes, stored as JSON in the node's metadata (core/control/probes.py)
    node_def["properties"]["probes"] = {"type": "array", "items": {"$ref": "#/$defs/Probe"}}
    b.defs["Probe"] = _probe_schema()
    genome_props = b.defs["OrganizationalGenome"]["properties"]
    concise = {
        "type": "object", "additionalProperties": False, "required": ["root"],
        "properties": {"id": {"type": "string"}, "root": concise_node,
                       **{k: genome_props[k] for k in ("channels", "lineage", "metadata", "relations",
                                                       "routing_rules", "audit_policies", "trial_settings")}},
    }
    b.defs["ConciseGenome"] = concise
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "vsm_actors organizational genome",
        "description": "Concise form (nested `root:`) or the full reference form (`root_node_id` + `nodes`).",
        "anyOf": [{"$ref": "#/$defs/ConciseGenome"}, full],
        "$defs": b.defs,
    }
