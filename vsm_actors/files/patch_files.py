"""Genome patches from outside the process (a model's audit answer, a suggestion file), checked the
way a genome file is: unknown fields and bad values are errors naming their place.

A patch is its wire form (`{"AddChild": {...}}`, as in the reference's JSON); an added child may
also be written as a genome file writes a node (`name` only, `leaf_operation: reviewer`), since
that is what people and models write.
"""

from __future__ import annotations

from typing import Any

from .. import codec
from ..core.model.capability import OPERATION_PRESETS
from ..core.model.patch import PATCH_TYPES, GenomePatch
from .genome_files import error_paths

__all__ = ["PatchFileError", "decode_patch"]


class PatchFileError(ValueError):
    """A patch that cannot be read; the message names every bad place."""


def decode_patch(raw: Any, where: str = "patch") -> GenomePatch:
    data = _concise_children(raw, where)
    try:
        return codec.strict.structure(data, GenomePatch)
    except Exception as exc:  # noqa: BLE001 - every cattrs failure is reported with its path
        paths = error_paths(exc) or [((), str(exc))]
        kind = f"{where}.{next(iter(data))}"
        raise PatchFileError("; ".join(f"{_join(kind, path)}: {message}" for path, message in paths)) from None


def _concise_children(raw: Any, where: str) -> Any:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise PatchFileError(f"{where}: a genome patch is a one-key mapping naming its kind "
                             f"({', '.join(PATCH_TYPES)})")
    (kind, inner), = raw.items()
    if kind not in PATCH_TYPES:
        raise PatchFileError(f"{where}: unknown genome patch {kind!r}; expected one of {', '.join(PATCH_TYPES)}")
    if kind == "Batch" and isinstance(inner, dict) and isinstance(inner.get("patches"), list):
        inner = {**inner, "patches": [_concise_children(p, f"{where}.Batch.patches[{i}]")
                                      for i, p in enumerate(inner["patches"])]}
    elif kind == "AddChild" and isinstance(inner, dict) and isinstance(inner.get("child"), dict):
        inner = {**inner, "child": _concise_node(inner["child"], inner.get("parent_id"), f"{where}.AddChild.child")}
    return {kind: inner}


def _concise_node(node: dict, parent: Any, where: str) -> dict:
    if "name" not in node and "id" not in node:
        raise PatchFileError(f"{where}: a node needs a `name` (its id defaults to the name)")
    if node.get("children"):
        raise PatchFileError(f"{where}.children: AddChild adds one node; add its children with more patches")
    out = dict(node)
    out.setdefault("id", out.get("name"))
    out.setdefault("name", out["id"])
    out.setdefault("parent_id", parent)
    operation = out.get("leaf_operation")
    if isinstance(operation, str):
        preset = OPERATION_PRESETS.get(operation.lower())
        if preset is None:
            raise PatchFileError(f"{where}.leaf_operation: unknown leaf operation preset {operation!r}; "
                                 f"expected one of {', '.join(sorted(OPERATION_PRESETS))}")
        out["leaf_operation"] = codec.to_wire(preset())
    return out


def _join(where: str, path: tuple) -> str:
    return where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
