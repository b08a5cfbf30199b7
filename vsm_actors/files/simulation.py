"""Simulation files (DESIGN 3.5): loaded as safely as genome files, errors as FILE:LINE:COL: message."""

from __future__ import annotations

import os

from ..core.world import DirectiveMix, SimulationSpec, WorldCondition, WorldEffect, WorldRule, WorldSpec
from .safe_load import Document, DocumentError, load_document, load_text

WHEN_KEYS = ("class", "operation", "leaf", "specialist", "team_has")
THEN_KEYS = ("success", "tokens", "latency_ms")


class SimulationFileError(ValueError):
    pass


def load_simulation(source: str | os.PathLike, *, name: str | None = None, text: str | None = None) -> SimulationSpec:
    try:
        doc = load_text(text, name=name or "<string>") if text is not None else load_document(os.fspath(source))
        return _spec(doc)
    except DocumentError as exc:
        raise SimulationFileError(str(exc)) from None


def _fail(doc: Document, path: tuple, message: str) -> DocumentError:
    where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))
    return doc.error(path, f"{where}: {message}" if where else message)


def _spec(doc: Document) -> SimulationSpec:
    data = doc.data
    if not isinstance(data, dict):
        raise _fail(doc, (), "a simulation file is a mapping with `directives` and `world`")
    per = data.get("per_generation", 100)
    if isinstance(per, bool) or not isinstance(per, int) or per < 1:
        raise _fail(doc, ("per_generation",), "must be a positive whole number")
    approve = data.get("approve_trials", True)
    if not isinstance(approve, bool):
        raise _fail(doc, ("approve_trials",), "must be true or false")
    items = data.get("directives")
    if not isinstance(items, list) or not items:
        raise _fail(doc, ("directives",), "must be a non-empty list")
    mixes = tuple(_mix(doc, i, item) for i, item in enumerate(items))
    world = data.get("world", {})
    if not isinstance(world, dict):
        raise _fail(doc, ("world",), "must be a mapping with `default` and `rules`")
    default = _effect(doc, ("world", "default"), world.get("default", {}))
    rules = world.get("rules", [])
    if not isinstance(rules, list):
        raise _fail(doc, ("world", "rules"), "must be a list")
    parsed = []
    for i, rule in enumerate(rules):
        path = ("world", "rules", i)
        if not isinstance(rule, dict):
            raise _fail(doc, path, "must be a mapping with `when` and `then`")
        for key in rule:
            if key not in ("when", "then"):
                raise _fail(doc, (*path, key), "unknown key (a rule has `when` and `then`)")
        parsed.append(WorldRule(when=_condition(doc, (*path, "when"), rule.get("when", {})),
                                then=_effect(doc, (*path, "then"), rule.get("then", {}))))
    name = data.get("name", os.path.splitext(os.path.basename(doc.file))[0])
    return SimulationSpec(name=str(name), directives=mixes, per_generation=per, approve_trials=approve,
                          world=WorldSpec(default=default.over(WorldSpec().default), rules=tuple(parsed)))


def _mix(doc: Document, i: int, item) -> DirectiveMix:
    path = ("directives", i)
    if not isinstance(item, dict):
        raise _fail(doc, path, "must be a mapping with `class` and `title`")
    for key in ("class", "title"):
        if not isinstance(item.get(key), str) or not item.get(key).strip():
            raise _fail(doc, (*path, key), "must be a non-empty string")
    weight = item.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
        raise _fail(doc, (*path, "weight"), "must be a positive number")
    meta = item.get("metadata", {})
    if not isinstance(meta, dict):
        raise _fail(doc, (*path, "metadata"), "must be a mapping of strings")
    metadata = {}
    for key, value in meta.items():
        if isinstance(value, (dict, list)) or value is None:
            raise _fail(doc, (*path, "metadata", key), "must be a string")
        metadata[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    body = item.get("body")
    if body is not None and not isinstance(body, str):
        raise _fail(doc, (*path, "body"), "must be a string")
    return DirectiveMix(task_class=item["class"], title=item["title"], weight=float(weight), body=body, metadata=metadata)


def _strings(doc: Document, path: tuple, value, lower: bool = False) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise _fail(doc, path, "must be a string or a list of strings")
    return tuple(v.lower() if lower else v for v in values)


def _condition(doc: Document, path: tuple, when) -> WorldCondition:
    if not isinstance(when, dict):
        raise _fail(doc, path, "must be a mapping")
    for key in when:
        if key not in WHEN_KEYS:
            raise _fail(doc, (*path, key), f"unknown key (one of {', '.join(WHEN_KEYS)})")
    specialist = when.get("specialist")
    if specialist is not None and not isinstance(specialist, bool):
        raise _fail(doc, (*path, "specialist"), "must be true or false")
    get = lambda k, lower=False: _strings(doc, (*path, k), when[k], lower) if k in when else ()  # noqa: E731
    return WorldCondition(classes=get("class"), operations=get("operation", True), leaves=get("leaf"),
                          specialist=specialist, team_has=get("team_has", True))


def _range(doc: Document, path: tuple, value) -> tuple[int, int]:
    if isinstance(value, bool):
        raise _fail(doc, path, "must be a number or [min, max]")
    if isinstance(value, (int, float)) and value >= 0:
        return int(value), int(value)
    if (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                            and v >= 0 for v in value) and value[0] <= value[1]):
        return int(value[0]), int(value[1])
    raise _fail(doc, path, "must be a non-negative number or [min, max] with min <= max")


def _effect(doc: Document, path: tuple, then) -> WorldEffect:
    if not isinstance(then, dict):
        raise _fail(doc, path, "must be a mapping")
    for key in then:
        if key not in THEN_KEYS:
            raise _fail(doc, (*path, key), f"unknown key (one of {', '.join(THEN_KEYS)})")
    success = then.get("success")
    if success is not None and (isinstance(success, bool) or not isinstance(success, (int, float)) or not 0 <= success <= 1):
        raise _fail(doc, (*path, "success"), "must be a probability between 0 and 1")
    return WorldEffect(success=float(success) if success is not None else None,
                       tokens=_range(doc, (*path, "tokens"), then["tokens"]) if "tokens" in then else None,
                       latency_ms=_range(doc, (*path, "latency_ms"), then["latency_ms"]) if "latency_ms" in then else None)
