"""Simulation files (DESIGN 3.5): loaded as safely as genome files, errors as FILE:LINE:COL: message.

    name: review-gate
    per_generation: 200
    directives:
      - {class: feature, weight: 3, title: "Implement feature {n}", metadata: {requires_code_write: "true"}}
    world:
      default: {success: 0.8, tokens: [800, 1600], latency_ms: [100, 900]}
      rules:
        - when: {class: review, operation: coding}
          then: {success: 0.2}

Every error names the field (`directives[1].weight: must be a positive number`), indexes from 0.
Unknown keys are errors inside `directives[i]`, `world`, `world.rules[i]`, `when` and `then`, where
a misspelt key would silently change the run; unknown top-level keys are accepted and ignored, so a
file written for a later version of the format still loads. A key written with no value (`rules:`)
is the same as leaving it out. Metadata values may be any scalar: numbers become their text, and
booleans `true`/`false`.
"""

from __future__ import annotations

import os
from typing import Any

from ..core.world import (
    BUILTIN_DEFAULT, DirectiveMix, SimulationSpec, WorldCondition, WorldEffect, WorldRule, WorldSpec,
)
from .safe_load import Document, DocumentError, format_path, load_document, load_text

__all__ = ["SimulationFileError", "load_simulation"]

DIRECTIVE_KEYS = ("class", "weight", "title", "body", "metadata")
WORLD_KEYS = ("default", "rules")
RULE_KEYS = ("when", "then")
WHEN_KEYS = ("class", "operation", "leaf", "specialist", "team_has")
THEN_KEYS = ("success", "tokens", "latency_ms")


class SimulationFileError(ValueError):
    """A simulation file cannot be used; `str()` is `FILE:LINE:COL: message`."""

    def __init__(self, error: DocumentError | str) -> None:
        super().__init__(str(error))
        self.file = getattr(error, "file", None)
        self.line = getattr(error, "line", None)
        self.col = getattr(error, "col", None)
        self.message = getattr(error, "message", str(error))


def load_simulation(path_or_text: str | os.PathLike | bytes | None, *, name: str | None = None,
                    text: str | None = None) -> SimulationSpec:
    """Load a simulation file: a path, the file's bytes, or its text (YAML or JSON).

    A `str` is taken as text when it holds a line break or starts with `{`, else as a path; `text=`
    says so explicitly. `name` is the file name used in errors (default: the path, or `<string>`).
    """
    if text is None and isinstance(path_or_text, str) and _looks_like_text(path_or_text):
        text = path_or_text
    try:
        if text is not None:
            doc = load_text(text, name=name or "<string>")
        elif path_or_text is None:
            raise TypeError("load_simulation needs a path, bytes or text")
        elif isinstance(path_or_text, (bytes, bytearray, memoryview)):
            doc = load_document(bytes(path_or_text), name=name)
        else:
            doc = load_document(os.fspath(path_or_text), name=name)
        return _spec(doc)
    except DocumentError as exc:
        raise SimulationFileError(exc) from None


def _looks_like_text(value: str) -> bool:
    return "\n" in value or value.lstrip().startswith("{")


def _fail(doc: Document, path: tuple, message: str) -> DocumentError:
    return doc.error(path, f"{format_path(path)}: {message}" if path else message)


def _mapping(doc: Document, path: tuple, value: Any, keys: tuple[str, ...], what: str) -> dict:
    """`value` as a mapping holding only `keys` (None is an empty mapping)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(doc, path, f"must be a mapping {what}")
    for key in value:
        if key not in keys:
            raise _fail(doc, (*path, key), f"unknown key; expected one of: {', '.join(keys)}")
    return value


def _spec(doc: Document) -> SimulationSpec:
    data = doc.data
    if not isinstance(data, dict):
        raise _fail(doc, (), "a simulation file is a mapping with `directives` and `world`")
    per = data.get("per_generation", 100)
    if isinstance(per, float) and per.is_integer():
        per = int(per)
    if isinstance(per, bool) or not isinstance(per, int) or per < 1:
        raise _fail(doc, ("per_generation",), "must be a positive whole number")
    approve = data.get("approve_trials", True)
    if not isinstance(approve, bool):
        raise _fail(doc, ("approve_trials",), "must be true or false")
    if "directives" not in data:
        raise _fail(doc, ("directives",), "is required: a non-empty list of {class, title, weight, metadata}")
    items = data["directives"]
    if not isinstance(items, list) or not items:
        raise _fail(doc, ("directives",), "must be a non-empty list")
    mixes = tuple(_mix(doc, i, item) for i, item in enumerate(items))
    world = _mapping(doc, ("world",), data.get("world"), WORLD_KEYS, "with `default` and `rules`")
    default = _effect(doc, ("world", "default"), world.get("default"))
    rules = world.get("rules")
    if rules is not None and not isinstance(rules, list):
        raise _fail(doc, ("world", "rules"), "must be a list of {when, then}")
    parsed = []
    for i, rule in enumerate(rules or ()):
        path = ("world", "rules", i)
        rule = _mapping(doc, path, rule, RULE_KEYS, "with `when` and `then`")
        parsed.append(WorldRule(when=_condition(doc, (*path, "when"), rule.get("when")),
                                then=_effect(doc, (*path, "then"), rule.get("then"))))
    name = data.get("name")
    if name is None:
        name = os.path.splitext(os.path.basename(doc.file))[0] if not doc.file.startswith("<") else "simulation"
    elif isinstance(name, bool) or not isinstance(name, (str, int, float)) or not str(name).strip():
        raise _fail(doc, ("name",), "must be a non-empty string")
    return SimulationSpec(name=str(name), directives=mixes, per_generation=per, approve_trials=approve,
                          world=WorldSpec(default=default.over(BUILTIN_DEFAULT), rules=tuple(parsed)))


def _mix(doc: Document, i: int, item: Any) -> DirectiveMix:
    path = ("directives", i)
    if not isinstance(item, dict):
        raise _fail(doc, path, "must be a mapping with `class` and `title`")
    item = _mapping(doc, path, item, DIRECTIVE_KEYS, "with `class` and `title`")
    for key in ("class", "title"):
        if key not in item:
            raise _fail(doc, (*path, key), "is required")
        if not isinstance(item[key], str) or not item[key].strip():
            raise _fail(doc, (*path, key), "must be a non-empty string")
    weight = item.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
        raise _fail(doc, (*path, "weight"), "must be a positive number")
    meta = item.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise _fail(doc, (*path, "metadata"), "must be a mapping of strings")
    metadata = {}
    for key, value in (meta or {}).items():
        if isinstance(value, (dict, list)) or value is None:
            raise _fail(doc, (*path, "metadata", key), "must be a string")
        metadata[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    body = item.get("body")
    if body is not None and not isinstance(body, str):
        raise _fail(doc, (*path, "body"), "must be a string")
    return DirectiveMix(task_class=item["class"], title=item["title"], weight=float(weight), body=body,
                        metadata=metadata)


def _strings(doc: Document, path: tuple, value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise _fail(doc, path, "must be a string or a non-empty list of strings")
    return tuple(values)


def _condition(doc: Document, path: tuple, when: Any) -> WorldCondition:
    when = _mapping(doc, path, when, WHEN_KEYS, "of conditions")
    specialist = when.get("specialist")
    if specialist is not None and not isinstance(specialist, bool):
        raise _fail(doc, (*path, "specialist"), "must be true or false")

    def get(key: str) -> tuple[str, ...]:
        return _strings(doc, (*path, key), when[key]) if when.get(key) is not None else ()

    return WorldCondition(classes=get("class"), operations=get("operation"), leaves=get("leaf"),
                          specialist=specialist, team_has=get("team_has"))


def _whole(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return value


def _range(doc: Document, path: tuple, value: Any) -> tuple[int, int]:
    single = _whole(value)
    if single is not None:
        return single, single
    if isinstance(value, list) and len(value) == 2:
        lo, hi = _whole(value[0]), _whole(value[1])
        if lo is not None and hi is not None:
            if lo <= hi:
                return lo, hi
            raise _fail(doc, path, f"[min, max] needs min <= max, not [{lo}, {hi}]")
    raise _fail(doc, path, "must be a non-negative whole number or a [min, max] pair of them")


def _effect(doc: Document, path: tuple, then: Any) -> WorldEffect:
    then = _mapping(doc, path, then, THEN_KEYS, "of effects")
    success = then.get("success")
    if success is not None and (isinstance(success, bool) or not isinstance(success, (int, float))
                                or not 0 <= success <= 1):
        raise _fail(doc, (*path, "success"), "must be a probability between 0 and 1")
    ranges = {key: _range(doc, (*path, key), then[key]) for key in ("tokens", "latency_ms")
              if then.get(key) is not None}
    return WorldEffect(success=float(success) if success is not None else None, **ranges)
