"""Stored row shapes, shared by every backend so they index and encode values identically.

A row is the value's codec JSON plus the columns queries filter and order on. The in-memory twin
keeps the same rows (JSON text included) and decodes on read, as the SQL store does: a caller
gets back exactly what a durable backend would give it, and can never mutate stored state.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from .. import codec
from ..core.model.events import LedgerEvent, kind_from_storage_key, kind_storage_key
from ..core.model.records import (
    EvolutionGenerationRecord, GenomeSnapshot, PopulationArchiveRecord, StoredTrialRecord, role_storage_key,
)
from ..core.model.trace import TaskTrace
from . import _compact
from .base import LedgerSerializationError
from .query import timestamp_us

T = TypeVar("T")

Row = dict[str, Any]


def encode(value: object, what: str, *, dumps=codec.dumps) -> str:
    try:
        return dumps(value)
    except Exception as exc:  # noqa: BLE001 - cattrs/json raise many types; all mean "cannot encode"
        raise LedgerSerializationError(f"cannot encode {what}: {exc}") from exc


def decode(text: str, cls: type[T], what: str) -> T:
    try:
        return codec.from_wire(json.loads(text), cls)
    except Exception as exc:  # noqa: BLE001 - a corrupt or incompatible row, whatever the cause
        raise LedgerSerializationError(f"cannot decode stored {what}: {exc}") from exc


def event_row(event: LedgerEvent) -> Row:
    """The event's row; under `BLOBS` (taken off before the insert) the long texts it references."""
    try:
        wire = codec.to_wire(event)
    except Exception as exc:  # noqa: BLE001 - cattrs raises many types; all mean "cannot encode"
        raise LedgerSerializationError(f"cannot encode event {event.id!r}: {exc}") from exc
    kind, created_us = kind_storage_key(event.kind), timestamp_us(event.created_at)
    return {
        "id": event.id, "kind": kind, "created_us": created_us,
        "genome_id": event.genome_id, "node_id": event.node_id, "task_id": event.task_id,
        "directive_id": event.directive_id, "suggestion_id": event.suggestion_id,
        "correlation_id": event.correlation_id,
        **_stored_json(wire, kind, created_us, f"event {event.id!r}", _dumps_sorted),
    }


EVENT_COLUMNS = ("id", "kind", "created_us", "genome_id", "node_id", "task_id", "directive_id",
                 "suggestion_id", "correlation_id", "event_json")
BLOBS = "_blobs"


def _dumps_sorted(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True)


def _stored_json(wire: dict[str, Any], kind: str, created_us: int, what: str,
                 dumps: Callable[[Any], str]) -> Row:
    """`event_json` (the compact form, `_compact`) and the packed texts it references."""
    stored, texts = _compact.compact_event(wire, _kind_wire(kind), _timestamp_text(created_us))
    text = encode(stored, what, dumps=dumps)
    try:
        blobs = {key: _compact.pack_blob(value) for key, value in texts.items()}
    except UnicodeError as exc:
        raise LedgerSerializationError(f"cannot encode {what}: {exc}") from exc
    return {"event_json": text, BLOBS: blobs}


def take_blobs(rows: Sequence[Row]) -> list[Row]:
    """Take the texts off a batch's event rows (they are not columns): one blob row per key."""
    out: dict[str, bytes] = {}
    for row in rows:
        out.update(row.pop(BLOBS, None) or {})
    return [{"key": key, "body": body} for key, body in out.items()]


def decode_event(row: Row, blobs: dict[str, str]) -> LedgerEvent:
    """The event a stored row holds; `blobs` has (at least) the texts it references."""
    what = f"event {row['id']!r}"
    try:
        stored = json.loads(row["event_json"])
        wire = _compact.restore_event(stored, row, lambda: _kind_wire(row["kind"]),
                                      lambda: _timestamp_text(row["created_us"]), blobs)
        return codec.from_wire(wire, LedgerEvent)
    except Exception as exc:  # noqa: BLE001 - a corrupt or incompatible row, whatever the cause
        raise LedgerSerializationError(f"cannot decode stored {what}: {exc}") from exc


def referenced_blob_keys(rows: Sequence[Row]) -> set[str]:
    """Keys of the texts the stored rows reference (read from their JSON without decoding it)."""
    keys: set[str] = set()
    for row in rows:
        text = row["event_json"]
        if '"$blobs"' in text:
            keys.update(_compact.referenced_keys(json.loads(text)))
    return keys


def trace_row(trace: TaskTrace) -> Row:
    return {
        "id": trace.id, "task_id": trace.task_id, "genome_id": trace.genome_id,
        "assigned_node_id": trace.assigned_node_id, "started_us": timestamp_us(trace.started_at),
        "completed_us": None if trace.completed_at is None else timestamp_us(trace.completed_at),
        "outcome_score": trace.outcome_score, "token_total": trace.token_total(),
        "trace_json": encode(trace, f"trace {trace.id!r}"),
    }


def trace_rows(traces: Sequence[TaskTrace]) -> list[tuple[Row, list[str]]]:
    """Each trace's row and the nodes whose subtree it belongs to."""
    return [(trace_row(t), trace_subject_ids(t)) for t in traces]


# -- rows from plain data ------------------------------------------------------------------------
# The ledger writer process receives events and traces as the plain data the actor sent
# (`writer.encode_batch`) and builds rows straight from it: rebuilding the objects only to take
# them apart again cost more than inserting them. These must give exactly the rows above.

EventData = tuple  # (id, kind storage key, created_us, genome_id, node_id, task_id, directive_id,
#                     suggestion_id, correlation_id, payload, metadata)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def event_data(event: LedgerEvent) -> EventData:
    return (event.id, kind_storage_key(event.kind), timestamp_us(event.created_at), event.genome_id,
            event.node_id, event.task_id, event.directive_id, event.suggestion_id, event.correlation_id,
            event.payload, event.metadata)


def event_row_from_data(data: EventData, dumps_data: Callable[[Any], str]) -> Row:
    """`event_row` of the event `data` describes; `dumps_data` encodes wire data key-sorted."""
    (event_id, kind, created_us, genome_id, node_id, task_id, directive_id, suggestion_id, correlation_id,
     payload, metadata) = data
    created_text = _timestamp_text(created_us)
    wire = {"kind": _kind_wire(kind), "created_at": created_text, "payload": payload, "metadata": metadata}
    return {"id": event_id, "kind": kind, "created_us": created_us, "genome_id": genome_id, "node_id": node_id,
            "task_id": task_id, "directive_id": directive_id, "suggestion_id": suggestion_id,
            "correlation_id": correlation_id,
            **_stored_json(wire, kind, created_us, f"event {event_id!r}", dumps_data)}


def _timestamp_text(us: int) -> str:
    """`codec.format_timestamp` of the instant `us`; the date and time of day are formatted once
    a second (a batch's events share a handful of seconds)."""
    seconds, micro = divmod(us, 1_000_000)
    base = _second_text(seconds)
    if micro == 0:
        return base + "Z"
    if micro % 1000 == 0:
        return f"{base}.{micro // 1000:03d}Z"
    return f"{base}.{micro:06d}Z"


@functools.lru_cache(maxsize=64)
def _second_text(seconds: int) -> str:
    return codec.format_timestamp(_EPOCH + timedelta(seconds=seconds))[:-1]


@functools.lru_cache(maxsize=256)
def _kind_wire(storage_key: str) -> Any:
    return codec.to_wire(kind_from_storage_key(storage_key))


def trace_row_from_data(data: dict[str, Any], dumps_data: Callable[[Any], str] = codec.dumps_data,
                        ) -> tuple[Row, list[str]]:
    """`trace_rows` for one trace given in its wire form (`codec.to_wire(trace)`); `dumps_data`
    encodes wire data compactly, keys in their order."""
    completed = data["completed_at"]
    row = {
        "id": data["id"], "task_id": data["task_id"], "genome_id": data["genome_id"],
        "assigned_node_id": data["assigned_node_id"],
        "started_us": timestamp_us(codec.parse_timestamp(data["started_at"])),
        "completed_us": None if completed is None else timestamp_us(codec.parse_timestamp(completed)),
        "outcome_score": data["outcome_score"], "token_total": data["input_tokens"] + data["output_tokens"],
        "trace_json": encode(data, f"trace {data['id']!r}", dumps=dumps_data),
    }
    return row, list(dict.fromkeys((data["assigned_node_id"], *data["responsible_ancestor_ids"])))


def trace_subject_ids(trace: TaskTrace) -> list[str]:
    """Nodes whose subtree a trace belongs to: the assignee and every responsible ancestor."""
    return list(dict.fromkeys((trace.assigned_node_id, *trace.responsible_ancestor_ids)))


def dedupe_last(values: list[T], key: Any) -> list[T]:
    """Last copy of each key wins, in first-seen order: one batch, one upsert per id."""
    out: dict[Any, T] = {}
    for value in values:
        out[key(value)] = value
    return list(out.values())


def snapshot_row(snapshot: GenomeSnapshot) -> Row:
    return {
        "genome_id": snapshot.genome_id, "role": role_storage_key(snapshot.role),
        "saved_us": timestamp_us(snapshot.saved_at),
        "snapshot_json": encode(snapshot, f"genome snapshot {snapshot.genome_id!r}"),
    }


def trial_row(record: StoredTrialRecord) -> Row:
    return {
        "trial_id": record.trial_id, "controller_node_id": record.controller_node_id,
        "base_genome_id": record.base_genome_id, "candidate_genome_id": record.candidate_genome_id,
        "status": record.status.storage_key, "started_us": timestamp_us(record.started_at),
        "updated_us": timestamp_us(record.updated_at),
        "completed_us": None if record.completed_at is None else timestamp_us(record.completed_at),
        "record_json": encode(record, f"trial record {record.trial_id!r}"),
    }


def archive_row(record: PopulationArchiveRecord) -> Row:
    return {
        "trial_id": record.trial_id, "controller_node_id": record.controller_node_id,
        "candidate_genome_id": record.candidate_genome_id, "status": record.status.storage_key,
        "updated_us": timestamp_us(record.updated_at), "selection_score": record.selection_score,
        "record_json": encode(record, f"population archive record {record.trial_id!r}"),
    }


def generation_row(record: EvolutionGenerationRecord) -> Row:
    return {
        "controller_node_id": record.controller_node_id, "generation": record.generation,
        "champion_genome_id": record.champion_genome_id, "updated_us": timestamp_us(record.updated_at),
        "record_json": encode(record, f"evolution generation {record.controller_node_id!r}/{record.generation}"),
    }


# -- isolating what cannot be stored --------------------------------------------------------------

def unstorable(build: Callable[[], Row]) -> str | None:
    """Why the row `build` makes cannot be stored (it does not encode, or holds text that is not
    UTF-8, such as a lone surrogate), or None when it can."""
    try:
        row = build()
        for value in row.values():
            if isinstance(value, str):
                value.encode("utf-8")
    except (LedgerSerializationError, UnicodeError, ValueError, TypeError) as exc:
        return str(exc)
    return None


def storable_parts(events: Sequence[LedgerEvent], traces: Sequence[TaskTrace]
                   ) -> tuple[list[LedgerEvent], list[TaskTrace], list[tuple[str, str, str]]]:
    """The events and traces of a batch that can be stored, and (what, id, reason) for the rest,
    so one bad value costs its own record and not its batch."""
    good_events, good_traces, bad = [], [], []
    for event in events:
        reason = unstorable(lambda e=event: event_row(e))
        (bad.append(("event", event.id, reason)) if reason else good_events.append(event))
    for trace in traces:
        reason = unstorable(lambda t=trace: trace_row(t))
        (bad.append(("trace", trace.id, reason)) if reason else good_traces.append(trace))
    return good_events, good_traces, bad
