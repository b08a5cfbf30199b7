"""How an event is kept on disk: once, without what its columns already hold, long text by reference.

A task's output travels up the tree inside every `task_result_received` on its way to the root,
and inside one result both as the summary and as an artifact: stored verbatim, a two-level echo
directive wrote ~27 KB, most of it the same text four times. So the stored form of an event

- leaves out the fields its row's columns hold (`id`, `kind`, `created_at`, the link ids) when
  they can be rebuilt exactly from those columns;
- replaces every string of `BLOB_MIN_CHARS` or more in its payload and metadata by `{"$blob": key}`,
  where key is the text's SHA-256 (128 bits, hex) and the text is kept once, zlib-compressed, in
  the `ledger_blobs` table, shared by every event that holds it;
- lists the keys it references under `"$blobs"` (and says `"$esc": true` when it escaped a
  dict, below), so a reader fetches them without walking every payload, and walks only those.

A payload dict that happens to carry a `$blob` or `$esc` key is wrapped as `{"$esc": {...}}`, so
an unwrapped one-key `{"$blob": ...}` is always a reference. Readers restore the event exactly
(`restore_event`); rows written before this form existed (they hold `"id"`) are read as they are.
Events are immutable, so a blob, once referenced, never changes: the key is its content.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Mapping
from typing import Any

BLOB_MIN_CHARS = 256
_REF, _ESC, _REFS = "$blob", "$esc", "$blobs"
# copied verbatim into a column of the same name: always rebuilt from it
_LINK_FIELDS = ("id", "genome_id", "node_id", "task_id", "directive_id", "suggestion_id", "correlation_id")
_COMPRESS_LEVEL = 6


def blob_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def pack_blob(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), _COMPRESS_LEVEL)


def unpack_blob(body: bytes | memoryview) -> str:
    return zlib.decompress(bytes(body)).decode("utf-8")


def compact_event(wire: dict[str, Any], kind_wire: Any, created_text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The stored form of the event `wire` (its full wire dict) and the long texts it references,
    by key. `kind_wire` and `created_text` are what the row's `kind` and `created_us` columns
    rebuild: a field equal to them is left out."""
    texts: dict[str, str] = {}
    escaped: list[bool] = []
    stored: dict[str, Any] = {"payload": _shrink(wire["payload"], texts, escaped),
                              "metadata": _shrink(wire["metadata"], texts, escaped)}
    if wire["kind"] != kind_wire:
        stored["kind"] = wire["kind"]
    if wire["created_at"] != created_text:
        stored["created_at"] = wire["created_at"]
    if texts:
        stored[_REFS] = sorted(texts)
    if escaped:
        stored[_ESC] = True
    return stored, texts


def referenced_keys(stored: Mapping[str, Any]) -> list[str]:
    return stored.get(_REFS, []) if "id" not in stored else []


def restore_event(stored: dict[str, Any], columns: Mapping[str, Any], kind_wire: Callable[[], Any],
                  created_text: Callable[[], str], blobs: Mapping[str, str]) -> dict[str, Any]:
    """The full wire dict of a stored event; `columns` holds its row's link columns."""
    if "id" in stored:  # written before the compact form: complete as it is
        return stored
    wire = {name: columns[name] for name in _LINK_FIELDS}
    wire["kind"] = stored["kind"] if "kind" in stored else kind_wire()
    wire["created_at"] = stored["created_at"] if "created_at" in stored else created_text()
    if _REFS in stored or _ESC in stored:
        wire["payload"] = _grow(stored["payload"], blobs)
        wire["metadata"] = _grow(stored["metadata"], blobs)
    else:  # nothing was replaced: the payload is stored as it is, no walk needed
        wire["payload"] = stored["payload"]
        wire["metadata"] = stored["metadata"]
    return wire


def _shrink(value: Any, texts: dict[str, str], escaped: list[bool]) -> Any:
    if isinstance(value, str):
        if len(value) < BLOB_MIN_CHARS:
            return value
        key = blob_key(value)
        texts[key] = value
        return {_REF: key}
    if isinstance(value, dict):
        out = {k: _shrink(v, texts, escaped) for k, v in value.items()}
        if _REF in value or _ESC in value:
            escaped.append(True)
            return {_ESC: out}
        return out
    if isinstance(value, list):
        return [_shrink(v, texts, escaped) for v in value]
    return value


def _grow(value: Any, blobs: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            if _REF in value:
                try:
                    return blobs[value[_REF]]
                except KeyError:
                    raise KeyError(f"the ledger lost the text {value[_REF]!r} an event references") from None
            if _ESC in value:
                return {k: _grow(v, blobs) for k, v in value[_ESC].items()}
        return {k: _grow(v, blobs) for k, v in value.items()}
    if isinstance(value, list):
        return [_grow(v, blobs) for v in value]
    return value
