"""Safe loading of genome files: YAML or JSON text to plain Python data, with positions.

`load_document` reads a file (or bytes) and `load_text` a string. Both return a `Document`:
the data as plain `dict`/`list`/`str`/`int`/`float`/`bool`/`None`, plus `locate(path)`, which
gives the 1-based line and column where any part of it was written. Anything wrong with the
file raises `DocumentError`, whose `str()` is `FILE:LINE:COL: message`.

What is refused, and why:

- files over `Limits.max_bytes` (checked before parsing), invalid UTF-8, empty files, and a
  top level that is not a mapping (genome files are mappings of fields);
- in YAML, every tag (`!!python/object`, `!foo`, even `!!str`), anchor and alias (this also
  stops "billion laughs" alias bombs), duplicate and non-string keys, and more than one
  document per file. Scalars follow the YAML 1.2 core schema: `yes`/`no`/`on` and dates stay
  strings; `0x10` and `0o17` are integers;
- in JSON, duplicate keys (the standard library silently keeps the last one);
- in both, nesting deeper than `Limits.max_depth`, more than `Limits.max_nodes` values, keys
  longer than `Limits.max_key_length`, and non-finite numbers (`NaN`, `Infinity`, `.inf`,
  `1e999`), which the JSON wire format cannot carry.

YAML is read from ruamel.yaml's event stream with an explicit stack (`vsm_actors.files._safe_yaml`),
so nesting depth is checked as the parser goes and positions come from the parser itself.
JSON goes through `json.loads`, the fast path for large genomes, followed by an iterative check
of the limits; its positions are computed only when asked for (`vsm_actors.files._json_positions`).
The garbage collector is paused while a JSON document is parsed: the parse builds no cycles,
and collections in the middle of it only cost time (they more than double it for large files).
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, Literal

import attrs

from vsm_actors.files._json_positions import first_too_deep, key_offsets, line_col, locate_offset
from vsm_actors.files._safe_yaml import YamlProblem, format_path, kind_name, load_yaml, where

__all__ = [
    "Document",
    "DocumentError",
    "KeyPath",
    "Limits",
    "format_path",
    "load_document",
    "load_text",
]

KeyPath = tuple[str | int, ...]
"""Where a value sits in a document: mapping keys and list indexes from the top level down."""

Format = Literal["yaml", "json"]

_SUFFIX_FORMATS: dict[str, Format] = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}
_LEADING_SPACE = re.compile(r"\s*")


class DocumentError(ValueError):
    """A genome file cannot be loaded: unreadable, too large, malformed, or unsafe.

    `file`, `line` and `col` (both 1-based) say where, `message` says what in plain words.
    """

    def __init__(self, file: str, line: int, col: int, message: str) -> None:
        super().__init__(file, line, col, message)
        self.file = file
        self.line = line
        self.col = col
        self.message = message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


@attrs.frozen
class Limits:
    """Upper bounds that keep a broken or hostile file from using unbounded memory or time."""

    max_bytes: int = attrs.field(default=10 * 1024 * 1024, validator=attrs.validators.ge(1))
    max_depth: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    max_nodes: int = attrs.field(default=2_000_000, validator=attrs.validators.ge(1))
    """Scalars and collections counted together (mapping keys are not counted)."""
    max_key_length: int = attrs.field(default=1024, validator=attrs.validators.ge(1))


class Document:
    """A loaded genome file: its plain data, and where each part of it was written."""

    __slots__ = ("_locator", "data", "file", "format")

    def __init__(
        self, data: Any, file: str, format: Format, locator: Callable[[KeyPath], tuple[int, int]]
    ) -> None:
        self.data = data
        self.file = file
        self.format = format
        self._locator = locator

    def __repr__(self) -> str:
        return f"<Document {self.file!r} ({self.format})>"

    def locate(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Return the 1-based (line, col) of the value at `path`.

        A mapping member is located at its key, a list item at its value. If `path` is not in
        the document, the position of its nearest existing ancestor is returned.
        """
        return self._locator(tuple(path))

    def error(self, path: Sequence[str | int], message: str) -> DocumentError:
        """Return (not raise) a `DocumentError` at the position of `path`."""
        line, col = self.locate(path)
        return DocumentError(self.file, line, col, message)


def load_document(
    source: str | os.PathLike[str] | bytes,
    *,
    name: str | None = None,
    fmt: Format | None = None,
    limits: Limits = Limits(),  # noqa: B008 - frozen value object
) -> Document:
    """Load a genome from a file path, or from `bytes` holding the file's content.

    `name` is the file name used in positions and errors (default: the path, or `<bytes>`).
    `fmt` is `"yaml"` or `"json"`; by default it comes from the suffix (`.json`, `.yaml`,
    `.yml`), else from the content: text starting with `{` or `[` is JSON, anything else YAML.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        file = name if name is not None else "<bytes>"
        if len(raw) > limits.max_bytes:
            raise _too_large(file, len(raw), limits)
        fmt = fmt or _format_from_name(file)
    else:
        path = os.fspath(source)
        file = name if name is not None else path
        raw = _read_file(path, file, limits)
        fmt = fmt or _format_from_name(file) or _format_from_name(path)
    return _load(_decode(raw, file), file, fmt, limits)


def load_text(
    text: str,
    *,
    name: str = "<string>",
    fmt: Format | None = None,
    limits: Limits = Limits(),  # noqa: B008 - frozen value object
) -> Document:
    """Load a genome from a string. `name`, `fmt` and `limits` are as for `load_document`."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise _too_large(name, size, limits)
    return _load(text.removeprefix("\ufeff"), name, fmt or _format_from_name(name), limits)


# -- reading and decoding -----------------------------------------------------------------------


def _read_file(path: str, file: str, limits: Limits) -> bytes:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limits.max_bytes:
                raise _too_large(file, size, limits)
            raw = handle.read(limits.max_bytes + 1)  # the size on disk may be wrong or change
    except OSError as exc:
        raise DocumentError(file, 1, 1, f"cannot read the file: {exc.strerror or exc}") from exc
    if len(raw) > limits.max_bytes:
        raise _too_large(file, None, limits)
    return raw


def _too_large(file: str, size: int | None, limits: Limits) -> DocumentError:
    actual = f" ({size:,} bytes)" if size is not None else ""
    return DocumentError(
        file, 1, 1, f"file is too large{actual}: the limit is {limits.max_bytes:,} bytes"
    )


def _decode(raw: bytes, file: str) -> str:
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DocumentError(file, 1, 1, "file is UTF-16 or UTF-32 encoded; save it as UTF-8")
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        body, bad = raw[bom:], exc.start
        line_start = body.rfind(b"\n", 0, bad) + 1
        line = body.count(b"\n", 0, bad) + 1
        col = len(body[line_start:bad].decode("utf-8")) + 1
        message = f"invalid UTF-8: byte 0x{body[bad]:02x} at byte offset {bad + bom}"
        raise DocumentError(file, line, col, f"{message}; save the file as UTF-8") from None


def _format_from_name(name: str) -> Format | None:
    return _SUFFIX_FORMATS.get(os.path.splitext(name)[1].lower())


def _load(text: str, file: str, fmt: Format | None, limits: Limits) -> Document:
    if fmt not in (None, "yaml", "json"):
        raise ValueError(f"fmt must be 'yaml', 'json' or None, not {fmt!r}")
    start = _LEADING_SPACE.match(text).end()  # type: ignore[union-attr]
    if start == len(text):
        raise DocumentError(file, 1, 1, "file is empty")
    if fmt is None:
        fmt = "json" if text[start] in "{[" else "yaml"
    if fmt == "json":
        return _load_json(text, file, limits)
    try:
        data, positions = load_yaml(text, limits)
    except YamlProblem as problem:
        raise DocumentError(file, problem.line, problem.col, problem.message) from None
    return Document(data, file, "yaml", partial(_nearest, positions))


def _nearest(positions: dict[KeyPath, tuple[int, int]], path: KeyPath) -> tuple[int, int]:
    while path not in positions:
        path = path[:-1]
    return positions[path]


# -- JSON -----------------------------------------------------------------------------------------

_JSON_MESSAGES = {
    "Expecting value": "expected a value",
    "Expecting property name enclosed in double quotes": "expected a key in double quotes"
    " (is there a trailing comma?)",
    "Expecting ',' delimiter": "expected ',' between items",
    "Expecting ':' delimiter": "expected ':' after a key",
    "Extra data": "unexpected text after the end of the document",
    "Unterminated string starting at": "string is not closed",
    "Invalid control character at": "control character in a string (escape it, e.g. \\n)",
    "Invalid \\escape": "invalid escape in a string",
}


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load_json(text: str, file: str, limits: Limits) -> Document:
    duplicates: list[tuple[dict[str, Any], str]] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping = dict(pairs)
        if len(mapping) != len(pairs) and not duplicates:
            duplicates.append((mapping, _first_repeated(key for key, _ in pairs)))
        return mapping

    try:
        with _gc_paused():  # JSON builds no cycles; collections mid-parse only cost time
            data = json.loads(text, object_pairs_hook=pairs_hook)
            suspect = isinstance(data, dict) and _may_break_limits(data, limits)
    except json.JSONDecodeError as exc:
        message = _JSON_MESSAGES.get(exc.msg, exc.msg)
        raise DocumentError(file, exc.lineno, exc.colno, f"invalid JSON: {message}") from None
    except RecursionError:
        raise _too_deep(text, file, limits) from None
    except ValueError:  # an integer with more digits than int() accepts
        digits = re.search(rf"[0-9]{{{sys.get_int_max_str_digits() + 1},}}", text)
        line, col = line_col(text, digits.start() if digits else 0)
        raise DocumentError(file, line, col, "invalid JSON: number has too many digits") from None
    document = Document(data, file, "json", lambda path: line_col(text, locate_offset(text, path)))
    if not isinstance(data, dict):
        raise document.error((), f"the top level must be a mapping of fields, not {kind_name(data)}")
    if suspect:
        _check_json_tree(document, text, limits)
    if duplicates:
        mapping, key = duplicates[0]
        path = _path_to(data, mapping)
        first, second = key_offsets(text, path, key)[:2]
        line, col = line_col(text, second)
        message = f"{where(path)}duplicate key {key!r} (first at line {line_col(text, first)[0]})"
        raise DocumentError(file, line, col, message)
    return document


def _may_break_limits(data: dict[str, Any], limits: Limits) -> bool:
    """Check depth, size, key lengths and finite numbers quickly, level by level.

    No paths are built, so this is the cheap check every JSON load pays; when it finds
    anything, `_check_json_tree` walks again to find the first problem and its position.
    """
    level: list[Any] = [data]
    depth = nodes = 1
    while level:
        nodes += sum(map(len, level))
        below: list[Any] = []
        for container in level:
            if type(container) is dict:
                if container and max(map(len, container)) > limits.max_key_length:
                    return True
                values = container.values()
            else:
                values = container
            for value in values:
                kind = type(value)
                if kind is dict or kind is list:
                    below.append(value)
                elif kind is float and value - value != 0.0:  # NaN, Infinity, or 1e999
                    return True
        if below:
            depth += 1
            if depth > limits.max_depth:
                return True
        level = below
    return nodes > limits.max_nodes


def _check_json_tree(document: Document, text: str, limits: Limits) -> None:
    """Walk the parsed tree iteratively, in document order, and raise at the first problem."""
    _check_keys(document, (), document.data, limits)
    path: list[str | int] = []
    iterators: list[Iterator[tuple[Any, Any]]] = [iter(document.data.items())]
    nodes = 1 + len(document.data)
    if nodes > limits.max_nodes:
        raise document.error((), f"more than {limits.max_nodes:,} values in one file")
    while iterators:
        for key, value in iterators[-1]:
            kind = type(value)
            if kind is dict or kind is list:
                if len(iterators) >= limits.max_depth:
                    raise _too_deep(text, document.file, limits)
                nodes += len(value)
                if nodes > limits.max_nodes:
                    message = f"more than {limits.max_nodes:,} values in one file"
                    raise document.error((*path, key), message)
                if kind is dict:
                    _check_keys(document, (*path, key), value, limits)
                path.append(key)
                iterators.append(iter(value.items()) if kind is dict else enumerate(value))
                break
            if kind is float and value - value != 0.0:  # NaN, Infinity, or 1e999
                number = "NaN" if value != value else "-Infinity" if value < 0 else "Infinity"
                message = f"{where((*path, key))}{number} is not allowed: numbers must be finite"
                offset = locate_offset(text, (*path, key), value=True)
                raise DocumentError(document.file, *line_col(text, offset), message)
        else:
            iterators.pop()
            if path:
                path.pop()


def _check_keys(document: Document, path: KeyPath, mapping: dict[str, Any], limits: Limits) -> None:
    if not mapping or max(map(len, mapping)) <= limits.max_key_length:
        return
    key = next(key for key in mapping if len(key) > limits.max_key_length)
    message = f"key is {len(key):,} characters long; the limit is {limits.max_key_length:,}"
    raise document.error((*path, key), where(path) + message)


def _first_repeated(keys: Iterator[str]) -> str:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return ""  # not reached: called only when some key repeats


def _too_deep(text: str, file: str, limits: Limits) -> DocumentError:
    line, col = line_col(text, first_too_deep(text, limits.max_depth) or 0)
    message = f"nesting is deeper than the limit of {limits.max_depth} levels"
    return DocumentError(file, line, col, message)


def _path_to(root: Any, target: Any) -> KeyPath:
    """Find the path of the container `target` inside `root` (error path only)."""
    stack: list[tuple[KeyPath, Any]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if node is target:
            return path
        members = node.items() if isinstance(node, dict) else enumerate(node)
        children = [((*path, k), v) for k, v in members if isinstance(v, (dict, list))]
        stack.extend(reversed(children))
    return ()
