"""What the ledger actor hands its writer process: one batch as one frame of plain data.

The actor's side is on the organization's hot path, so it does as little as it can: events go as
tuples of their columns and JSON payload (`_rows.event_data`), traces as their wire form, all
marshalled (pickling the event objects cost ~8 us an event against ~2). The writer builds the
stored rows straight from that data (`_rows.event_row_from_data`), never rebuilding objects.

Stored event JSON is encoded by orjson there, a third of the stdlib's cost, but orjson writes NaN
and the infinities as `null` where the ledger must refuse them (`LedgerSerializationError`). So a
frame that may hold a non-finite float is encoded by the stdlib, which refuses it as every other
path does. Marshal writes a float as `g` (or `g|0x80` when shared) and its eight IEEE bytes, little
end first; non-finite means the exponent's eleven bits are all set, i.e. the last byte is 0x7f or
0xff and the one before is 0xf0 or above. That pair never occurs in UTF-8 text, so the check is
conservative: a false alarm only costs the slower encoder.
"""

from __future__ import annotations

import json
import marshal
import pickle
from typing import Any

import orjson

from .. import codec
from ..core.model.events import LedgerEventKind
from ._rows import event_data, event_row_from_data, trace_row_from_data

_MARSHAL, _PICKLE = b"M", b"P"
_TRACE_WRITTEN = LedgerEventKind.TraceWritten
_FLOAT_TAGS = (ord("g"), ord("g") | 0x80)


def encode_batch(seq: int, events, traces, champions) -> bytes:
    """One frame. Payloads are JSON data, which marshal takes unless a str or int subclass
    slipped in (then pickle, same shape). Champions (rare, whole genomes) travel pickled inside."""
    data = ([event_data(e) for e in events], _trace_data(events, traces),
            pickle.dumps(champions) if champions else b"")
    header = seq.to_bytes(8, "little")
    try:
        return _MARSHAL + header + marshal.dumps(data)
    except ValueError:
        return _PICKLE + header + pickle.dumps(data)


def batch_seq(frame: bytes) -> int:
    """Readable even when the rest of the frame is not, so a failure can name its batch."""
    return int.from_bytes(frame[1:9], "little")


def _trace_data(events, traces) -> list:
    """A trace travels beside its TraceWritten event, whose payload is the trace's wire form
    (`LedgerEvent.for_trace`): reuse it rather than unstructure the trace a second time."""
    written = {e.metadata.get("trace_id"): e.payload for e in events if e.kind is _TRACE_WRITTEN} if traces else {}
    return [p if (p := written.get(t.id)) is not None else codec.to_wire(t) for t in traces]


def decode_batch(frame: bytes) -> tuple[int, list, list, list]:
    """(seq, event rows, trace rows with their subject nodes, champions), ready for
    `PeeweeLedger.write_rows`. Encoding errors surface here, as `LedgerSerializationError`."""
    body = memoryview(frame)[9:]
    marshalled = frame[:1] == _MARSHAL
    events, traces, champions = marshal.loads(body) if marshalled else pickle.loads(body)
    fast = marshalled and not _may_hold_nonfinite(frame, 9)
    sorted_dumps, plain_dumps = (_dumps_fast, _dumps_fast_in_order) if fast else (_dumps_strict, codec.dumps_data)
    return (batch_seq(frame), [event_row_from_data(e, sorted_dumps) for e in events],
            [trace_row_from_data(t, plain_dumps) for t in traces], pickle.loads(champions) if champions else [])


def _may_hold_nonfinite(frame: bytes, start: int) -> bool:
    """A float tag, six bytes, then an exponent of all ones (module docstring). Found from the
    last byte, which memchr finds at memory speed and which is rare in marshalled data."""
    for last in (0x7F, 0xFF):
        at = frame.find(last, start + 8)
        while at != -1:
            if frame[at - 1] >= 0xF0 and frame[at - 8] in _FLOAT_TAGS:
                return True
            at = frame.find(last, at + 1)
    return False


def _dumps_strict(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True)


def _dumps_fast(data: Any) -> str:
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # what orjson refuses and the stdlib may take: ints beyond 64 bits, odd keys
        return _dumps_strict(data)


def _dumps_fast_in_order(data: Any) -> str:
    try:
        return orjson.dumps(data).decode()
    except TypeError:
        return codec.dumps_data(data)
