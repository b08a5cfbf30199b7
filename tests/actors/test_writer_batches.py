"""What crosses to the ledger writer process is stored exactly as the ledger stores the events and
traces themselves, whether it travelled marshalled (plain JSON data) or pickled (anything else a
payload may hold), and a non-finite number is refused on every path."""

from __future__ import annotations

import enum
import json
import math
from datetime import datetime, timedelta, timezone

import pytest
from attrs import evolve
from hypothesis import given
from hypothesis import strategies as st

from vsm_actors import codec
from vsm_actors.core.model.events import LedgerEvent, LedgerEventKind
from vsm_actors.core.model.task import RiskClass, TaskOutcomeStatus
from vsm_actors.core.model.trace import TaskTrace
from vsm_actors.core.model.variants import Other
from vsm_actors.ledger._handover import _may_hold_nonfinite, batch_seq, decode_batch, encode_batch
from vsm_actors.ledger._rows import decode_event, event_row, trace_rows
from vsm_actors.ledger.base import LedgerSerializationError

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)

json_data = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12)


def an_event(payload, n: int = 0, kind=LedgerEventKind.TaskRouted) -> LedgerEvent:
    return LedgerEvent.new(kind, payload, id=f"e{n}", created_at=T0 + timedelta(microseconds=n * 1001),
                           node_id="root", task_id="t", directive_id="d", correlation_id="c",
                           genome_id="g").with_metadata(payload_type="TaskPacket")


def a_trace() -> TaskTrace:
    return TaskTrace(id="tr", task_id="t", genome_id="g", assigned_node_id="coder",
                     responsible_ancestor_ids=("root",), started_at=T0, completed_at=T0 + timedelta(seconds=1),
                     input_tokens=3, output_tokens=4, outcome_score=1.0, metadata={"status": "Completed"})


def same_json(row: dict, other: dict, column: str) -> bool:
    """The writer's encoder may spell a float differently (1e+16 / 1e16); the value is the same."""
    return {**row, column: json.loads(row[column])} == {**other, column: json.loads(other[column])}


@given(st.lists(json_data, max_size=5))
def test_events_are_stored_as_their_own_rows(payloads) -> None:
    events = [an_event(p, n) for n, p in enumerate(payloads)]
    frame = encode_batch(7, events, [a_trace()], [])
    assert frame[:1] == b"M" and batch_seq(frame) == 7
    seq, rows, traces, champions = decode_batch(frame)
    assert (seq, champions) == (7, [])
    assert all(same_json(got, event_row(e), "event_json") for got, e in zip(rows, events, strict=True))
    assert traces == trace_rows([a_trace()])


def test_a_payload_marshal_cannot_carry_travels_pickled() -> None:
    events = [an_event({"colour": Colour.Red}), an_event({"n": 1}, 1, kind=Other("custom"))]
    frame = encode_batch(1, events, [], [("champion", {"genome": "g"})])
    assert frame[:1] == b"P"
    _seq, rows, _traces, champions = decode_batch(frame)
    assert rows == [event_row(e) for e in events]
    # the kind lives in its column and comes back from it, custom kinds included
    assert "kind" not in json.loads(rows[1]["event_json"])
    assert decode_event(rows[1], {}).kind == Other("custom")
    assert champions == [("champion", {"genome": "g"})]


class Colour(str, enum.Enum):
    Red = "Red"


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf, -math.nan])
@pytest.mark.parametrize("wrap", [lambda x: x, lambda x: [1.5, {"deep": x}], lambda x: {"k": [x, x]}])
def test_a_non_finite_number_is_refused_with_the_event_named(number, wrap) -> None:
    frame = encode_batch(3, [an_event({"ok": 1.0}, 0), an_event({"x": wrap(number)}, 1)], [], [])
    assert batch_seq(frame) == 3
    with pytest.raises(LedgerSerializationError, match="event 'e1'"):
        decode_batch(frame)


def test_numbers_orjson_refuses_are_stored_as_the_stdlib_stores_them() -> None:
    events = [an_event({"big": 2**70, "neg": -(2**65)})]
    _seq, rows, _traces, _ = decode_batch(encode_batch(1, events, [], []))
    assert rows == [event_row(e) for e in events]


def test_wire_data_holds_plain_strings_for_enums() -> None:
    """(str, Enum) members pass through cattrs untouched unless told otherwise; stored JSON reads
    the same either way, but the writer's marshalled hand-over needs plain str."""
    assert type(codec.to_wire(RiskClass.High)) is str
    assert type(codec.to_wire(TaskOutcomeStatus.Completed)) is str
    assert type(codec.to_wire(LedgerEventKind.TaskRouted)) is str


def test_a_trace_beside_its_event_travels_as_that_event_payload() -> None:
    trace = a_trace()
    written = LedgerEvent.for_trace(trace, id="ev", created_at=T0, to_json=codec.to_wire)
    _seq, _events, traces, _ = decode_batch(encode_batch(1, [written], [trace], []))
    assert traces == trace_rows([trace])
    _seq, _events, traces, _ = decode_batch(encode_batch(1, [], [trace], []))
    assert traces == trace_rows([trace])


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_instants_are_written_as_the_codec_writes_them(created_at) -> None:
    event = LedgerEvent.new(LedgerEventKind.TaskMapped, {}, id="e", created_at=created_at)
    frame = encode_batch(1, [event], [], [])
    (row,) = decode_batch(frame)[1]
    # rebuilt from the created_us column, to the codec's text: so the stored JSON leaves it out
    assert "created_at" not in json.loads(row["event_json"])
    assert codec.to_wire(decode_event(row, {}))["created_at"] == codec.format_timestamp(event.created_at)


@pytest.mark.parametrize("number", [1.5, -0.0, 1e308, -1e-308, 5e-324, 2.0**1023 * 1.9999])
def test_large_and_tiny_finite_numbers_take_the_fast_path(number) -> None:
    frame = encode_batch(1, [an_event({"x": number})], [], [])
    assert not _may_hold_nonfinite(frame, 9)
    (row,) = decode_batch(frame)[1]
    assert json.loads(row["event_json"])["payload"] == {"x": number}


@pytest.mark.parametrize("score", [math.nan, math.inf])
def test_a_trace_with_a_non_finite_number_is_refused(score) -> None:
    trace = evolve(a_trace(), outcome_score=score)
    with pytest.raises(LedgerSerializationError, match="trace 'tr'"):
        decode_batch(encode_batch(1, [], [trace], []))


def test_a_trace_with_odd_numbers_is_stored_as_the_stdlib_stores_it() -> None:
    trace = evolve(a_trace(), input_tokens=2**70)
    _seq, _events, traces, _ = decode_batch(encode_batch(1, [], [trace], []))
    assert traces == trace_rows([trace])
