"""Positions in JSON text, computed on demand.

`json.loads` is the fast path for loading genomes, but it keeps no positions. These helpers
find them afterwards, only when an error needs a `FILE:LINE:COL`: they walk the text along one
path and let the C scanner skip every sibling value they pass over.

The text is assumed to be valid JSON up to the point of interest (it has already been parsed).
Offsets are character offsets into the text; `line_col` turns one into 1-based line and column
the same way `json.JSONDecodeError` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from json.decoder import scanstring

__all__ = ["first_too_deep", "key_offsets", "line_col", "locate_offset"]

_WS = re.compile(r"[ \t\n\r]*")
_BRACKET_OR_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_scan_once = json.JSONDecoder().scan_once


def line_col(text: str, offset: int) -> tuple[int, int]:
    """Return the 1-based (line, column) of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - text.rfind("\n", 0, offset)


def locate_offset(text: str, path: tuple[str | int, ...], *, value: bool = False) -> int:
    """Return the offset of the deepest prefix of `path` present in the text.

    A mapping member is located at its key (at its value if `value` is true), a list item at
    its value, the root at its first character. Missing parts of the path are ignored: the
    nearest ancestor is returned.
    """
    value_at = found = _skip(text, 0)
    try:
        for part in path:
            child = _child(text, value_at, part)
            if child is None:
                break
            found, value_at = child
            if value:
                found = value_at
    except (ValueError, IndexError, StopIteration, RecursionError):
        pass  # text malformed past this point: keep the nearest position found
    return found


def key_offsets(text: str, path: tuple[str | int, ...], key: str) -> list[int]:
    """Return the offset of every occurrence of `key` in the mapping at `path`."""
    start = _value_offset(text, path)
    if start is None or text[start] != "{":
        return []
    return [key_at for name, key_at, _ in _members(text, start) if name == key]


def first_too_deep(text: str, max_depth: int) -> int | None:
    """Return the offset of the first bracket nested deeper than `max_depth`, if any."""
    depth = 0
    for match in _BRACKET_OR_STRING.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > max_depth:
                return match.start()
        elif char in "]}":
            depth -= 1
    return None


def _skip(text: str, offset: int) -> int:
    match = _WS.match(text, offset)
    return match.end() if match else offset


def _value_offset(text: str, path: tuple[str | int, ...]) -> int | None:
    value = _skip(text, 0)
    for part in path:
        child = _child(text, value, part)
        if child is None:
            return None
        value = child[1]
    return value


def _child(text: str, value: int, part: str | int) -> tuple[int, int] | None:
    """Return (reported offset, value offset) of one child of the value at `value`."""
    opener = text[value : value + 1]
    if opener == "{" and isinstance(part, str):
        for name, key_at, value_at in _members(text, value):
            if name == part:
                return key_at, value_at
    elif opener == "[" and isinstance(part, int) and not isinstance(part, bool):
        for index, item_at in enumerate(_items(text, value)):
            if index == part:
                return item_at, item_at
    return None


def _members(text: str, offset: int) -> Iterator[tuple[str, int, int]]:
    """Yield (key, key offset, value offset) for the object opening at `offset`."""
    offset = _skip(text, offset + 1)
    if text[offset] == "}":
        return
    while True:
        key_at = offset
        name, offset = scanstring(text, offset + 1)
        value_at = _skip(text, _skip(text, offset) + 1)  # past the ':'
        yield name, key_at, value_at
        offset = _skip(text, _scan_once(text, value_at)[1])
        if text[offset] != ",":
            return
        offset = _skip(text, offset + 1)


def _items(text: str, offset: int) -> Iterator[int]:
    """Yield the offset of each item of the array opening at `offset`."""
    offset = _skip(text, offset + 1)
    if text[offset] == "]":
        return
    while True:
        yield offset
        offset = _skip(text, _scan_once(text, offset)[1])
        if text[offset] != ",":
            return
        offset = _skip(text, offset + 1)
