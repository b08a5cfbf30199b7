"""Safe YAML: ruamel.yaml parser events to plain data, with the position of every value.

No ruamel constructor runs. The events are read with an explicit stack, so the depth limit is
checked as the parser goes (a 10,000-level document fails at level `max_depth + 1`, never with
`RecursionError`). Every tag, anchor and alias is refused on sight. Plain scalars are resolved
by the YAML 1.2 core schema; quoted and block scalars are strings.

Problems are raised as `YamlProblem(line, col, message)`, 1-based; `vsm_actors.files.safe_load`
adds the file name. This module also holds the small helpers both loaders use in messages.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn, Protocol

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import Scanner

__all__ = ["YamlProblem", "format_path", "kind_name", "load_yaml", "where"]

KeyPath = tuple[str | int, ...]
Positions = dict[KeyPath, tuple[int, int]]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_KIND_NAMES = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
_KIND_NAMES |= {int: "an integer", float: "a number", type(None): "null"}


class YamlProblem(Exception):
    """Why a YAML text was refused, and where (1-based line and column)."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(line, col, message)
        self.line, self.col, self.message = line, col, message


class YamlLimits(Protocol):
    """The part of `vsm_actors.files.safe_load.Limits` this module reads."""

    @property
    def max_depth(self) -> int: ...
    @property
    def max_nodes(self) -> int: ...
    @property
    def max_key_length(self) -> int: ...


def format_path(path: Sequence[str | int]) -> str:
    """Render a path for messages: `root.children[0].model`, `nodes["a b"]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def where(path: KeyPath) -> str:
    """Return a message prefix naming `path` (`root.model: `), or nothing at the top level."""
    return f"{format_path(path)}: " if path else ""


def kind_name(value: object) -> str:
    """Name the kind of a plain value for messages: `a list`, `an integer`, `null`."""
    return _KIND_NAMES.get(type(value), type(value).__name__)


def load_yaml(text: str, limits: YamlLimits) -> tuple[dict[str, Any], Positions]:
    """Parse one YAML document holding a mapping; return its data and positions."""
    builder = _Builder(limits)
    yaml = YAML(typ="safe", pure=True)
    yaml.Scanner = _scanner_class(limits.max_depth)
    try:
        data = builder.build(iter(yaml.parse(text)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "syntax error"
        if exc.context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            message += f" ({exc.context} at line {exc.context_mark.line + 1})"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlProblem(line, col, f"invalid YAML: {message}") from None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - text.rfind("\n", 0, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise YamlProblem(line, col, f"character U+{code:04X} is not allowed in YAML") from None
    except YAMLError as exc:
        raise YamlProblem(1, 1, f"invalid YAML: {exc}") from None
    return data, builder.positions


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_DECIMAL = re.compile(r"[-+]?[0-9]+")
_OCTAL_OR_HEX = re.compile(r"0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS = {
    sign + inf: -math.inf if sign == "-" else math.inf
    for sign in ("", "+", "-")
    for inf in (".inf", ".Inf", ".INF")
} | dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan)


def _plain_scalar(text: str) -> object:
    """Resolve an untagged plain scalar by the YAML 1.2 core schema."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _DECIMAL.fullmatch(text):
        return int(text)
    if _OCTAL_OR_HEX.fullmatch(text):
        return int(text[2:], 8 if text[1] == "o" else 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    return _SPECIAL_FLOATS.get(text, text)


class _DepthCheckingScanner(Scanner):  # type: ignore[misc]
    """A scanner that refuses deep flow nesting (`[[[[...`) before its look-ahead.

    To decide whether `[` starts a key, the scanner looks up to 1024 characters ahead, with
    cost growing with the nesting; checking here keeps a `[[[[...` bomb fast to refuse.
    Open block collections (`indents`) plus flow levels never exceed the true depth.
    """

    max_depth = 64

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:  # noqa: N803
        if len(self.indents) + self.flow_level >= self.max_depth:
            mark = self.reader.get_mark()
            message = f"nesting is deeper than the limit of {self.max_depth} levels"
            raise YamlProblem(mark.line + 1, mark.column + 1, message)
        super().fetch_flow_collection_start(TokenClass, to_push)


@functools.cache
def _scanner_class(max_depth: int) -> type[_DepthCheckingScanner]:
    return type("_DepthCheckingScanner", (_DepthCheckingScanner,), {"max_depth": max_depth})


class _Frame:
    """One open mapping or list on the builder's stack."""

    __slots__ = ("is_mapping", "items", "key", "path")

    def __init__(self, items: dict[str, Any] | list[Any], path: KeyPath) -> None:
        self.items: Any = items
        self.path = path
        self.is_mapping = isinstance(items, dict)
        self.key: str | None = None  # the key whose value comes next; None: a key comes next


class _Builder:
    """Turns parser events into plain data, recording each value's position."""

    def __init__(self, limits: YamlLimits) -> None:
        self.limits = limits
        self.positions: Positions = {}
        self.nodes = 0

    @staticmethod
    def position(event: Any) -> tuple[int, int]:
        return event.start_mark.line + 1, event.start_mark.column + 1

    def fail(self, event: Any, message: str) -> NoReturn:
        raise YamlProblem(*self.position(event), message)

    def build(self, events: Iterator[Any]) -> dict[str, Any]:
        next(events)  # StreamStartEvent
        start = next(events)
        if isinstance(start, StreamEndEvent):
            raise YamlProblem(1, 1, "file is empty")  # nothing but comments
        if start.version not in (None, (1, 2)):
            self.fail(start, "only YAML 1.2 is supported; remove the %YAML directive")
        root = self.read_document(events)
        next(events)  # DocumentEndEvent
        after = next(events)
        if not isinstance(after, StreamEndEvent):
            self.fail(after, "a second YAML document starts here; a genome file holds one")
        return root

    def read_document(self, events: Iterator[Any]) -> dict[str, Any]:
        event = next(events)
        self.check_safe(event, ())
        if isinstance(event, ScalarEvent) and event.style is None and event.value == "":
            self.fail(event, "file is empty")
        if not isinstance(event, MappingStartEvent):
            found = "a list" if isinstance(event, SequenceStartEvent) else "a single value"
            self.fail(event, f"the top level must be a mapping of fields, not {found}")
        self.nodes, self.positions[()] = 1, self.position(event)
        stack = [_Frame({}, ())]
        root: dict[str, Any] = stack[0].items
        for event in events:
            if isinstance(event, (MappingEndEvent, SequenceEndEvent)):
                stack.pop()
                if not stack:
                    break
                continue
            frame = stack[-1]
            if frame.is_mapping and frame.key is None:
                frame.key = self.read_key(event, frame)
                continue
            if frame.is_mapping:
                frame.items[frame.key] = self.read_value(event, (*frame.path, frame.key), stack)
                frame.key = None
            else:
                path = (*frame.path, len(frame.items))
                self.positions[path] = self.position(event)
                frame.items.append(self.read_value(event, path, stack))
        return root

    def read_key(self, event: Any, frame: _Frame) -> str:
        at = where(frame.path)
        self.check_safe(event, frame.path)
        if not isinstance(event, ScalarEvent):
            found = "a mapping" if isinstance(event, MappingStartEvent) else "a list"
            self.fail(event, f"{at}keys must be strings, not {found}")
        key = self.scalar(event, frame.path)
        if key is None and event.value == "":
            self.fail(event, f"{at}a key is missing before ':'")
        if not isinstance(key, str):
            raw = event.value
            self.fail(event, f'{at}key {raw} is read as {kind_name(key)}; quote it: "{raw}"')
        if len(key) > self.limits.max_key_length:
            limit = self.limits.max_key_length
            self.fail(event, f"{at}key is {len(key):,} characters long; the limit is {limit:,}")
        path = (*frame.path, key)
        if key in frame.items:
            first_line = self.positions[path][0]
            self.fail(event, f"{at}duplicate key {key!r} (first at line {first_line})")
        self.positions[path] = self.position(event)
        return key

    def read_value(self, event: Any, path: KeyPath, stack: list[_Frame]) -> Any:
        self.check_safe(event, path)
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            self.fail(event, f"more than {self.limits.max_nodes:,} values in one file")
        if isinstance(event, ScalarEvent):
            return self.scalar(event, path)
        if len(stack) >= self.limits.max_depth:
            self.fail(event, f"nesting is deeper than the limit of {self.limits.max_depth} levels")
        frame = _Frame({} if isinstance(event, MappingStartEvent) else [], path)
        stack.append(frame)
        return frame.items

    def check_safe(self, event: Any, path: KeyPath) -> None:
        at = where(path)
        if isinstance(event, AliasEvent):
            self.fail(event, f"{at}aliases (*{event.anchor}) are not allowed; write the value out")
        if event.anchor is not None:
            self.fail(event, f"{at}anchors (&{event.anchor}) are not allowed")
        if event.tag is not None:
            tag = str(event.tag).replace("tag:yaml.org,2002:", "!!")
            self.fail(event, f"{at}tags ({tag}) are not allowed; genome files are plain data")

    def scalar(self, event: Any, path: KeyPath) -> Any:
        if event.style is not None:
            return event.value  # quoted or block scalar: always a string
        try:
            value = _plain_scalar(event.value)
        except ValueError:  # more digits than int() accepts
            self.fail(event, f"{where(path)}number has too many digits")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(event, f"{where(path)}{event.value} is not allowed: numbers must be finite")
        return value
