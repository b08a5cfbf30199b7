"""Shared plumbing for subcommands: output formats, exit codes, error reporting, and the
directives that `vsm run` and `vsm send` read from their options and files."""

from __future__ import annotations

import codecs
import json
import math
import os
import re
import sys
from typing import Any, Callable

import click
from attrs import evolve, field, frozen

from ..core.model.capability import CAPABILITY_NAMES
from ..core.model.task import Directive, RiskClass
from ..files.safe_load import DocumentError, load_text
from ..system import make_directive

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

output_option = click.option(
    "-o", "--output", "output", type=click.Choice(["text", "json", "jsonl"]), default="text", show_default=True,
    help="Output format for data written to stdout.")


class BadInput(click.ClickException):
    """Bad input (unreadable file, invalid genome, bad usage): message on stderr, exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True)


def emit_json(data: Any, *, lines: bool = False) -> None:
    if lines and isinstance(data, list):
        for item in data:
            sys.stdout.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


# -- directive metadata from options -------------------------------------------------------------

RISK_LEVELS = ("low", "medium", "high", "critical")
# the option -> the metadata key the mapper and the routers already read
_OPTION_KEYS = (("--class", "task_class"), ("--risk", "risk"), ("--capability", "required_capability"))


def directive_options(fn):
    """--meta, --class, --risk and --capability: metadata that every directive of the command carries."""
    fn = click.option("--capability", "capability", type=click.Choice(sorted(CAPABILITY_NAMES)), metavar="NAME",
                      help="Capability the work needs (metadata required_capability), e.g. review, run_tests, "
                           "write_code; routes it to a leaf holding it. A name of your own: "
                           "--meta required_capability=NAME.")(fn)
    fn = click.option("--risk", "risk", type=click.Choice(RISK_LEVELS, case_sensitive=False),
                      help="Risk class of the directive (metadata risk).")(fn)
    fn = click.option("--class", "task_class", metavar="NAME",
                      help="Task class (metadata task_class), which routing rules and trials match.")(fn)
    return click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE",
                        help="Directive metadata, repeatable. A --directives file entry's own metadata "
                             "wins over these for that directive.")(fn)


def option_metadata(meta: tuple[str, ...], task_class: str | None, risk: str | None,
                    capability: str | None) -> dict[str, str]:
    """The metadata given by options; conflicting values are bad input, not a silent choice."""
    out: dict[str, str] = {}
    for item in meta:
        key, sep, value = item.partition("=")
        if not _is_utf8(item):
            raise BadInput(f"--meta {key.encode('utf-8', 'replace').decode()!r}: not valid UTF-8")
        if not sep or not key.strip():
            raise BadInput(f"--meta expects KEY=VALUE, got {item!r}")
        if key != key.strip():
            raise BadInput(f"--meta {item!r}: the key has spaces around it")
        if key in out and out[key] != value:
            raise BadInput(f"--meta {key} is given twice, as {out[key]!r} and {value!r}")
        out[key] = value
    for (option, key), value in zip(_OPTION_KEYS, (task_class, risk, capability)):
        if value is None:
            continue
        if not _is_utf8(value):
            raise BadInput(f"{option}: not valid UTF-8")
        if not value.strip():
            raise BadInput(f"{option} must not be empty")
        if key in out and out[key] != value:
            raise BadInput(f"{option} {value} conflicts with --meta {key}={out[key]}")
        out[key] = value
    if "risk" in out:
        out["risk"] = _risk_level(out["risk"], "--meta risk")
    return out


def _risk_level(value: str, where: str) -> str:
    level = value.strip().lower()
    if level not in RISK_LEVELS:
        raise BadInput(f"{where} must be one of {', '.join(RISK_LEVELS)}, not {value!r}")
    return level


# -- directives ------------------------------------------------------------------------------------


@frozen
class DirectiveEntry:
    """One directive as written, before it gets an id; `where` names it in error messages."""

    where: str
    body: str
    title: str | None = None
    metadata: dict[str, str] = field(factory=dict)
    risk_where: str = ""  # where its metadata's `risk` was written, for the error naming it


def build_directives(texts: tuple[str, ...] | list[str], directives_file: str | None,
                     metadata: dict[str, str], *, label: str = "--directive") -> list[Directive]:
    """Directives from texts (`label` names them in errors) and a --directives file, each carrying
    `metadata` under its own; `metadata["risk"]` also sets the directive's risk class (the field
    the mapper and the routing rules read)."""
    entries = [DirectiveEntry(where=f"{label} {i}", body=text) for i, text in enumerate(texts, 1)]
    if directives_file:
        found = read_directives_file(directives_file)
        if not found:
            raise BadInput(f"{directives_file}: holds no directives")
        entries += found
    if not entries:
        raise BadInput(f"give at least one directive: {label} TEXT or --directives FILE"
                       if label.startswith("-") else f"give at least one directive: {label} or --directives FILE")
    out = []
    for entry in entries:
        for name, text in (("title", entry.title), ("text", entry.body)):
            if text is not None and not _is_utf8(text):
                raise BadInput(f"{entry.where}: the {name} is not valid UTF-8")
        if not (entry.title or "").strip() and not entry.body.strip():
            raise BadInput(f"{entry.where}: the directive is empty; give its text")
        meta = {**metadata, **entry.metadata}
        if "risk" in entry.metadata:
            meta["risk"] = _risk_level(entry.metadata["risk"], f"{entry.risk_where or entry.where}: metadata.risk")
        title = entry.title.strip() if entry.title and entry.title.strip() else None
        directive = make_directive(entry.body if entry.body.strip() else title, title=title, metadata=meta)
        if "risk" in meta:
            directive = evolve(directive, risk=RiskClass(meta["risk"].capitalize()))
        out.append(directive)
    return out


def _is_utf8(text: str) -> bool:
    try:  # text from a non-UTF-8 command line holds lone surrogates, which no ledger can store
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_FILE_LIMIT = 64 * 1024 * 1024
_ENTRY_FIELDS = ("title", "body", "metadata")


def read_directives_file(path: str) -> list[DirectiveEntry]:
    """Read a --directives file: plain lines (one directive each, blank lines and # comments
    skipped), JSON lines (`.jsonl`/`.ndjson`, or a file whose first line starts with `{`), or a
    YAML/JSON document (`.yaml`/`.yml`/`.json`): a list, or a mapping with a `directives` list.
    An entry of the last two is a string or a mapping of `title`, `body` and `metadata`."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_FILE_LIMIT + 1)
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > _FILE_LIMIT:
        raise BadInput(f"{path}: the file is larger than {_FILE_LIMIT:,} bytes")
    text = _decode(raw, path)
    if "\x00" in text:
        raise BadInput(f"{path}:{text.count(chr(10), 0, text.index(chr(0))) + 1}: holds a NUL byte; "
                       "a directives file is UTF-8 text")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".yaml", ".yml", ".json"):
        return _document_entries(text, path, "json" if suffix == ".json" else "yaml")
    first = _first_significant(text)
    if suffix in (".jsonl", ".ndjson") or first.startswith("{"):
        return _json_lines_entries(text, path)
    return [DirectiveEntry(where=f"{path}:{n}", body=line.strip())
            for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]


def _decode(raw: bytes, path: str) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BadInput(f"{path}: the file is UTF-16 or UTF-32 encoded; save it as UTF-8")
    body = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise BadInput(f"{path}:{line}: not UTF-8 text (byte 0x{body[exc.start]:02x}); "
                       "save the file as UTF-8") from None


def _first_significant(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped
    return ""


def _json_lines_entries(text: str, path: str) -> list[DirectiveEntry]:
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{path}:{n}"
        try:
            value = json.loads(stripped, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where}: invalid JSON: {exc.msg} (column {exc.colno}); a JSON lines file holds "
                           "one JSON object per line") from None
        except ValueError as exc:  # from the hooks: a repeated key, NaN, too many digits
            raise BadInput(f"{where}: invalid JSON: {exc}") from None
        except RecursionError:
            raise BadInput(f"{where}: invalid JSON: nested too deeply") from None
        entries.append(_entry(value, where, lambda _field, where=where: where))
    return entries


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} is repeated")
        out[key] = value
    return out


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


_MENTIONED_LINE = re.compile(r"\bline (\d+)")
_WRAPPED_PATH = re.compile(r"\bdirectives(?=\[)")
_DOCUMENT_HINT = "a directives file is a list of directives, or a mapping whose `directives` field holds that list"


def _document_entries(text: str, path: str, fmt: str) -> list[DirectiveEntry]:
    # the safe loader takes only a mapping at the top; a list of directives is the natural way to
    # write them, so a top-level list is read as the value of `directives`, one line further down
    # (its positions and messages are moved back up)
    source = text.removeprefix("\ufeff")
    lines = source.split("\n")
    first = _first_significant(source)
    if fmt == "yaml" and first == "---":  # an explicit document start: the list may follow it
        lines[next(i for i, ln in enumerate(lines) if ln.strip() == "---")] = ""
        source, first = "\n".join(lines), _first_significant("\n".join(lines))
    shift = 0
    if first.startswith("["):
        source, shift = '{"directives":\n' + source + "\n}", 1
    elif fmt == "yaml" and first.startswith("-") and not first.startswith("---"):
        source, shift = "directives:\n" + source, 1
    last_line = len(lines)

    def moved(line: int) -> int:
        return min(max(line - shift, 1), last_line)

    try:
        doc = load_text(source, name=path, fmt=fmt)  # type: ignore[arg-type]
    except DocumentError as exc:
        message = exc.message
        if shift:
            message = _MENTIONED_LINE.sub(lambda m: f"line {moved(int(m.group(1)))}", message)
            message = _WRAPPED_PATH.sub("", message)
        if "top level must be a mapping" in message:
            message += f"; {_DOCUMENT_HINT}"
        raise BadInput(f"{exc.file}:{moved(exc.line)}:{exc.col}: {message}") from None

    def at(*keys: str | int) -> str:
        return f"{path}:{moved(doc.locate(keys)[0])}"

    data = doc.data
    extra = sorted(set(data) - {"directives"})
    if extra or "directives" not in data:
        named = f"unknown field {extra[0]!r}" if extra else "no `directives` field"
        raise BadInput(f"{at(*extra[:1])}: {named}: {_DOCUMENT_HINT}")
    items = data["directives"]
    if not isinstance(items, list):
        raise BadInput(f"{at('directives')}: directives must be a list, not {_kind(items)}")
    return [_entry(item, at("directives", i), lambda field, i=i: at("directives", i, *field))
            for i, item in enumerate(items)]


def _entry(value: Any, where: str, locate: Callable[[tuple], str]) -> DirectiveEntry:
    """One entry of a JSON lines or YAML/JSON directives file."""
    if isinstance(value, str):
        return DirectiveEntry(where=where, body=value)
    if not isinstance(value, dict):
        raise BadInput(f"{where}: a directive is a string or a mapping of title, body and metadata, "
                       f"not {_kind(value)}")
    for key in value:
        if key not in _ENTRY_FIELDS:
            raise BadInput(f"{locate((key,))}: unknown field {key!r}; a directive has title, body and metadata")
    for key in ("title", "body"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise BadInput(f"{locate((key,))}: {key} must be a string, not {_kind(value[key])}")
    title, body = value.get("title"), value.get("body") or ""
    if not (title or "").strip() and not body.strip():
        raise BadInput(f"{where}: a directive needs a title or a body")
    raw_meta = value.get("metadata", {})
    if raw_meta is None:
        raw_meta = {}
    if not isinstance(raw_meta, dict):
        raise BadInput(f"{locate(('metadata',))}: metadata must be a mapping, not {_kind(raw_meta)}")
    metadata = {}
    for key, item in raw_meta.items():
        if isinstance(item, bool):
            metadata[key] = "true" if item else "false"  # the spelling metadata flags are read in
        elif isinstance(item, (int, float)):
            if not math.isfinite(item):
                raise BadInput(f"{locate(('metadata', key))}: metadata.{key} is too large a number")
            metadata[key] = str(item)
        elif isinstance(item, str):
            metadata[key] = item
        else:
            raise BadInput(f"{locate(('metadata', key))}: metadata.{key} must be a string, number or boolean, "
                           f"not {_kind(item)}")
    return DirectiveEntry(where=where, body=body, title=title, metadata=metadata,
                          risk_where=locate(("metadata", "risk")) if "risk" in metadata else "")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


class Seconds(click.ParamType):
    """A positive, finite number of seconds (at most a year): `--timeout`."""

    name = "seconds"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(number) or number <= 0 or number > 366 * 86400:
            self.fail(f"{value!r} is not a positive number of seconds (at most a year)", param, ctx)
        return number


SECONDS = Seconds()
