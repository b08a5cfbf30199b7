"""What crosses to the ledger writer process comes back as the same events and traces, whether
it travelled marshalled (plain JSON data) or pickled (anything else a payload may hold)."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from vsm_actors import codec
from vsm_actors.core.events import LedgerEvent, LedgerEventKind
from vsm_actors.core.task import RiskClass, TaskOutcomeStatus
from vsm_actors.core.trace import TaskTrace
from vsm_actors.core.variants import Other
from vsm_actors.ledger._rows import event_row, trace_row
from vsm_actors.ledger.writer import decode_batch, encode_batch

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


@given(st.lists(json_data, max_size=5))
def test_events_come_back_stored_identically(payloads) -> None:
    events = [an_event(p, n) for n, p in enumerate(payloads)]
    frame = encode_batch(7, events, [a_trace()], [])
    assert frame[:1] == b"M"
    seq, back, traces, champions = decode_batch(frame)
    assert (seq, champions) == (7, [])
    assert [event_row(e) for e in back] == [event_row(e) for e in events]
    assert [trace_row(t) for t in traces] == [trace_row(a_trace())]


class Colour(str, enum.Enum):
    Red = "Red"


def test_a_payload_marshal_cannot_carry_travels_pickled() -> None:
    events = [an_event({"colour": Colour.Red}), an_event({"n": 1}, 1, kind=Other("custom"))]
    frame = encode_batch(1, events, [], [("champion", {"genome": "g"})])
    assert frame[:1] == b"P"
    _seq, back, _traces, champions = decode_batch(frame)
    assert [event_row(e) for e in back] == [event_row(e) for e in events]
    assert back[1].kind == Other("custom")
    assert champions == [("champion", {"genome": "g"})]


def test_wire_data_holds_plain_strings_for_enums() -> None:
    """(str, Enum) members pass through cattrs untouched unless told otherwise; stored JSON reads
    the same either way, but the writer's marshalled hand-over needs plain str."""
    assert type(codec.to_wire(RiskClass.High)) is str
    assert type(codec.to_wire(TaskOutcomeStatus.Completed)) is str
    assert type(codec.to_wire(LedgerEventKind.TaskRouted)) is str
