"""The one cattrs converter: the Rust reference's serde JSON wire format for every core type.

Wire rules (DESIGN §3.3): externally tagged PascalCase enums, plain string ids, RFC 3339 UTC
timestamps with `Z` and 0/3/6 fraction digits, every field present (`null` when empty). Genes the
reference does not know (relations, routing rules, ...) are written only when they differ from
their defaults, so a Rust peer that ignores unknown fields still reads our output.

`converter` is lenient about unknown keys (as serde is); `strict` is the same converter with
unknown keys rejected, used for hand-written genome files where a typo must not pass silently.
"""

from __future__ import annotations

import functools
import json
import operator
import types
import typing
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.fns import identity

from .core.model import genes
from .core.model import genome
from .core.model import patch
from .core.model.channel import ChannelConfig, ChannelDirection, ChannelPriority, VsmChannelType
from .core.model.events import LedgerEvent
from .core.model.messages import PAYLOAD_CLASSES, MessageEnvelope
from .core.model.variants import NEWTYPE_VARIANTS
from .timestamps import format_timestamp, parse_timestamp

T = TypeVar("T")

# -- strict primitives ---------------------------------------------------------------------------

def _expect(kind: type | tuple, label: str):
    def hook(value, _type):
        if type(value) is kind:  # the common case, decided without the checks below
            return value
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise TypeError(f"expected {label}, got a boolean")
        if not isinstance(value, kind):
            raise TypeError(f"expected {label}, got {_describe(value)}")
        return value
    return hook


def _describe(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


_expect_str = _expect(str, "a string")


@functools.cache
def _enum_members(tp: Any) -> dict[str, Enum] | None:
    """Members by value for an Enum class (a plain dict lookup is several times faster than
    `EnumClass(value)`); None for any other type."""
    if isinstance(tp, type) and issubclass(tp, Enum):
        return {m.value: m for m in tp if isinstance(m.value, str)}
    return None


def _structure_str(value, _type):
    # (str, Enum) classes dispatch here first, because str precedes Enum in their MRO
    if _type is not str and _enum_members(_type) is not None:
        return _structure_enum(value, _type)
    if type(value) is str:
        return value
    return _expect_str(value, _type)


def _structure_float(value, _type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {_describe(value)}")
    return float(value)


def _structure_int(value, _type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {_describe(value)}")
    if value < 0 and _type is int:
        pass  # signed fields (lines_deleted) exist; unsigned ones are checked by validation
    return value


def _structure_enum(value, enum_type):
    if type(value) is str:
        member = _enum_members(enum_type).get(value)
        if member is not None:
            return member
    if not isinstance(value, str):
        raise TypeError(f"expected one of {', '.join(m.value for m in enum_type)}, got {_describe(value)}")
    try:
        return enum_type(value)
    except ValueError:
        raise ValueError(f"unknown {enum_type.__name__} {value!r}; expected one of "
                         f"{', '.join(m.value for m in enum_type)}") from None


# -- the converter -------------------------------------------------------------------------------

converter = cattrs.Converter(unstruct_collection_overrides={tuple: list}, forbid_extra_keys=False)


def _is_homogeneous_tuple(tp) -> bool:
    return get_origin(tp) is tuple and len(get_args(tp)) == 2 and get_args(tp)[1] is Ellipsis


def _make_tuple_hook(conv: cattrs.Converter):
    def factory(tp):
        item = get_args(tp)[0]
        item_hook = conv.get_structure_hook(item)

        def hook(value, _type):
            if not isinstance(value, list):
                raise TypeError(f"expected a list, got {_describe(value)}")
            errors, out = [], []
            for i, v in enumerate(value):
                try:
                    out.append(item_hook(v, item))
                except Exception as exc:  # noqa: BLE001 - collected into a located group
                    exc.__notes__ = [*getattr(exc, "__notes__", []), cattrs.errors.IterableValidationNote(
                        f"Structuring {tp} @ index {i}", i, item)]
                    errors.append(exc)
            if errors:
                raise cattrs.IterableValidationError(f"While structuring {tp}", errors, tp)
            return tuple(out)
        return hook
    return factory


def _is_optional_str(tp) -> bool:
    """`str | None`, or `NodeId | None` for a NewType id over str (the most common union)."""
    members = _union_members(tp)
    return (len(members) == 2 and type(None) in members
            and all(m is str or getattr(m, "__supertype__", None) is str for m in members if m is not type(None)))


def _structure_optional_str(value, _type):
    if value is None or type(value) is str:
        return value
    return _expect_str(value, _type)


def _union_members(tp) -> tuple:
    return get_args(tp) if get_origin(tp) in (Union, types.UnionType) else ()


def _is_variant_union(tp) -> bool:
    members = [m for m in _union_members(tp) if m is not type(None)]
    return bool(members) and all(
        (isinstance(m, type) and issubclass(m, Enum)) or m in NEWTYPE_VARIANTS.values() for m in members
    ) and any(m in NEWTYPE_VARIANTS.values() for m in members)


def _variant_union_hook(tp):
    members = [m for m in _union_members(tp) if m is not type(None)]
    optional = type(None) in _union_members(tp)
    enum_type = next((m for m in members if isinstance(m, type) and issubclass(m, Enum)), None)
    tagged = {m.__name__: m for m in members if m in NEWTYPE_VARIANTS.values()}

    def hook(value, _type):
        if value is None and optional:
            return None
        if isinstance(value, str) and enum_type is not None:
            return _structure_enum(value, enum_type)
        if isinstance(value, dict) and len(value) == 1:
            (tag, inner), = value.items()
            if tag in tagged and isinstance(inner, str):
                return tagged[tag](inner)
        names = [m.value for m in enum_type] if enum_type else []
        names += [f'{{"{t}": "..."}}' for t in tagged]
        raise ValueError(f"expected one of {', '.join(names)}, got {value!r}")
    return hook


for _cls in NEWTYPE_VARIANTS.values():
    _field = attrs.fields(_cls)[0].name
    converter.register_unstructure_hook(_cls, lambda v, _f=_field: {type(v).__name__: getattr(v, _f)})


# -- genome patches (externally tagged struct variants) ------------------------------------------

def _patch_hook(conv: cattrs.Converter):
    # the variant's fields are read by the converter the hook belongs to, so `strict` also rejects
    # unknown keys inside a patch (a typo in a hand-written patch file must not pass silently)
    def structure_patch(value, _type):
        if not isinstance(value, dict) or len(value) != 1:
            raise ValueError(f"a genome patch is a one-key mapping naming its kind ({', '.join(patch.PATCH_TYPES)}), "
                             f"got {_describe(value)}")
        (tag, inner), = value.items()
        cls = patch.PATCH_TYPES.get(tag)
        if cls is None:
            raise ValueError(f"unknown genome patch {tag!r}; expected one of {', '.join(patch.PATCH_TYPES)}")
        return conv.structure(inner, cls)
    return structure_patch


_CHANNEL_FIELDS = (("id", str), ("from", (str, type(None))), ("to", (str, type(None))),
                   ("enabled", bool), ("required", bool),
                   ("max_messages_per_epoch", (int, type(None))), ("max_token_budget_per_epoch", (int, type(None))),
                   ("activation_predicate", (str, type(None))))
_CHANNEL_KEYS = frozenset(k for k, _ in _CHANNEL_FIELDS) | {"channel_type", "direction", "priority", "metadata"}


def _fast_channel(generated):
    """Genomes carry five channels per edge (50,000 in a 10,000-node file): take the common,
    well-formed shape directly and leave anything unusual to the generated hook, which reports
    errors with their locations."""
    channel_types = {m.value: m for m in VsmChannelType}
    directions = {m.value: m for m in ChannelDirection}
    priorities = {m.value: m for m in ChannelPriority}

    def hook(data, tp):
        if (type(data) is dict and data.keys() == _CHANNEL_KEYS
                and all(type(data[k]) is t or (type(t) is tuple and type(data[k]) in t) for k, t in _CHANNEL_FIELDS)
                and type(data["metadata"]) is dict and not data["metadata"]):
            kind = channel_types.get(data["channel_type"])
            direction = directions.get(data["direction"])
            priority = priorities.get(data["priority"])
            if kind is not None and direction is not None and priority is not None:
                return ChannelConfig(
                    id=data["id"], channel_type=kind, from_=data["from"], to=data["to"], direction=direction,
                    enabled=data["enabled"], required=data["required"], priority=priority,
                    max_messages_per_epoch=data["max_messages_per_epoch"],
                    max_token_budget_per_epoch=data["max_token_budget_per_epoch"],
                    activation_predicate=data["activation_predicate"], metadata={})
        return generated(data, tp)
    return hook


_enum_value = operator.attrgetter("value")
_PRIMITIVES = (str, int, float, bool)


def _is_optional_primitive(tp) -> bool:
    members = _union_members(tp)
    return len(members) == 2 and type(None) in members and any(m in _PRIMITIVES for m in members)


def _our_enums(base: type) -> list[type]:
    found = []
    for sub in base.__subclasses__():
        if sub.__module__.startswith("vsm_actors.") and issubclass(sub, str):
            found.append(sub)
        found += _our_enums(sub)
    return found


def _install_hooks(conv: cattrs.Converter) -> None:
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _expect(bool, "a boolean"))
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(datetime, lambda v, _t: parse_timestamp(v))
    conv.register_unstructure_hook(datetime, format_timestamp)
    # an optional plain value is itself: say so, and generated hooks read the field inline
    # instead of calling a union helper per field (traces carry seven of them)
    conv.register_unstructure_hook_func(_is_optional_primitive, identity)
    # cattrs passes (str, Enum) members through as they are (its str hook wins by MRO); plain str
    # keeps wire data plain (marshal, which carries events to the ledger writer, takes no subclass)
    for enum_cls in _our_enums(Enum):
        conv.register_unstructure_hook(enum_cls, _enum_value)
    conv.register_structure_hook_func(lambda t: isinstance(t, type) and issubclass(t, Enum), _structure_enum)
    conv.register_structure_hook_factory(_is_homogeneous_tuple, _make_tuple_hook(conv))
    conv.register_structure_hook_factory(_is_variant_union, _variant_union_hook)
    conv.register_structure_hook_func(_is_optional_str, _structure_optional_str)
    conv.register_structure_hook_func(lambda t: t == patch.GenomePatch, _patch_hook(conv))
    conv.register_structure_hook_func(lambda t: t is object or t is typing.Any, lambda v, _t: v)
    for cls in (ChannelConfig, genes.Relation):
        conv.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, conv, from_=override(rename="from")))
        generated = make_dict_structure_fn(
            cls, conv, from_=override(rename="from"), _cattrs_forbid_extra_keys=conv.forbid_extra_keys)
        conv.register_structure_hook(cls, _fast_channel(generated) if cls is ChannelConfig else generated)
    for cls in patch.PATCH_TYPES.values():
        inner = make_dict_unstructure_fn(cls, conv)
        conv.register_unstructure_hook(cls, lambda v, _inner=inner: {type(v).__name__: _inner(v)})
    extras = {name: override(omit_if_default=True)
              for name in ("relations", "routing_rules", "audit_policies", "trial_settings")}
    conv.register_unstructure_hook(genome.OrganizationalGenome, _sorted_nodes(
        make_dict_unstructure_fn(genome.OrganizationalGenome, conv, **extras)))


def _sorted_nodes(inner):
    def hook(g):
        out = inner(g)
        out["nodes"] = dict(sorted(out["nodes"].items()))
        return out
    return hook


_install_hooks(converter)

strict = converter.copy(forbid_extra_keys=True)
_install_hooks(strict)


# -- payload-carrying envelopes ------------------------------------------------------------------

def sort_keys(value: Any) -> Any:
    """serde_json's `Value` keeps object keys sorted; payloads embedded as values follow suit."""
    if isinstance(value, dict):
        return {k: sort_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(v) for v in value]
    return value


def register_payload_envelope(cls: type, payload_types: dict[str, type], payload_field: str = "payload",
                              type_field: str | None = "payload_type") -> None:
    """Teach both converters an attrs class whose `payload` holds a typed object on our side and a
    key-sorted JSON value on the wire, typed by `payload_type`."""
    for conv in (converter, strict):
        base_un = make_dict_unstructure_fn(cls, conv, **{payload_field: override(omit=True)})
        names = [a.name for a in attrs.fields(cls)]
        base_st = make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=conv.forbid_extra_keys)

        def unstructure(obj, _base=base_un, _conv=conv, _typed=bool(payload_types), _names=names):
            out = _base(obj)
            payload = getattr(obj, payload_field)
            # an untyped payload is JSON data already: pass it through rather than walk it twice
            out[payload_field] = sort_keys(_conv.unstructure(payload)) if _typed else payload
            return {n: out[n] for n in _names}

        def structure(data, tp, _base=base_st, _conv=conv):
            obj = _base(data, tp)
            raw = getattr(obj, payload_field)
            payload_cls = payload_types.get(getattr(obj, type_field)) if type_field else None
            if payload_cls is not None and isinstance(raw, dict):
                obj = attrs.evolve(obj, **{payload_field: _conv.structure(raw, payload_cls)})
            return obj

        conv.register_unstructure_hook(cls, unstructure)
        conv.register_structure_hook(cls, structure)


register_payload_envelope(MessageEnvelope, PAYLOAD_CLASSES)
register_payload_envelope(LedgerEvent, {}, type_field=None)


# -- public helpers ------------------------------------------------------------------------------

def to_wire(obj: Any) -> Any:
    """Plain JSON-ready data in the reference's wire shape."""
    return converter.unstructure(obj)


def from_wire(data: Any, cls: type[T]) -> T:
    return converter.structure(data, cls)


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Compact JSON (the AMQP body form) unless `indent` is given."""
    return dumps_data(to_wire(obj), indent=indent)


def dumps_data(data: Any, *, indent: int | None = None) -> str:
    """`dumps` for data already in wire form."""
    separators = (",", ":") if indent is None else None
    return json.dumps(data, ensure_ascii=False, separators=separators, indent=indent, allow_nan=False)


def dumps_sorted(obj: Any) -> str:
    """Compact, every object key-sorted: stored events (payloads are sorted serde `Value`s in the
    reference; sorting here, in the C encoder, beats sorting each payload in Python)."""
    return json.dumps(to_wire(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True)


def dumps_pretty(obj: Any) -> str:
    """Two-space indent, declaration order (a task as a model reads it). orjson: the stdlib indents
    in pure Python (~40 us a task); NaN becomes null, fine in prompts, never in storage."""
    return orjson.dumps(to_wire(obj), option=orjson.OPT_INDENT_2).decode()


def loads(text: str | bytes, cls: type[T]) -> T:
    return from_wire(json.loads(text), cls)

