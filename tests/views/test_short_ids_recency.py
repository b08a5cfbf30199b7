"""The recency rule (`commands/ledger_ids.py`) over ids held in record order (`ScannedOrder`, the
reference the SQL orders are tested against in test_ledger_ids_sql.py): a view's window is
computed over the ids shown, those recorded from a near window before them on and a sample of
the older ones; every printed fragment resolves to exactly the id it was printed for, whatever
older ids contain it; a value several recent ids contain stays ambiguous; a value the whole
ledger's ids contain once still names that id."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vsm_actors.actors.runtime import TimeOrderedIds
from vsm_actors.commands import ledger_id_order
from vsm_actors.commands.ledger_id_order import ScannedOrder
from vsm_actors.commands.ledger_ids import basis_over, by_recency, shorten_over
from vsm_actors.views.short_ids import MIN_LENGTH, matching, shorten, width_for

NEAR = 12  # events: small, so that most of a generated ledger lies before the near window


@pytest.fixture(autouse=True)
def small_windows(monkeypatch):
    monkeypatch.setattr(ledger_id_order, "NEAR_EVENTS", NEAR)
    monkeypatch.setattr(ledger_id_order, "SAMPLE", 8)


def decoy(rng: random.Random, value: str) -> str:
    """`value` with one hex digit changed: an older id holding most of a newer one's windows."""
    places = [n for n, c in enumerate(value) if c != "-"]
    n = rng.choice(places)
    return value[:n] + rng.choice([c for c in "0123456789abcdef" if c != value[n]]) + value[n + 1:]


class RuntimeIds:
    """`TimeOrderedIds`' layout (timestamp, version, 26-bit counter from a random start, 48 bits
    fixed per factory), drawn from `rng` so that hypothesis can replay an example."""

    def __init__(self, rng: random.Random) -> None:
        self.tail, self.counter = rng.randbytes(6).hex(), rng.getrandbits(26)

    def __call__(self, ms: int) -> str:
        c = self.counter = (self.counter + 1) & ((1 << 26) - 1)
        h = f"{ms:012x}"
        return f"{h[:8]}-{h[8:]}-7{c >> 14:03x}-{0x80 | (c >> 8) & 0x3F:02x}{c & 0xFF:02x}-{self.tail}"


def ledger_values(factories: int, count: int, decoys: float, seed: int) -> list[str | None]:
    """An event column in record order: runtime ids, each named by 1-3 events (some events name
    none), and before some of them a decoy of one recorded later."""
    rng = random.Random(seed)
    made = [RuntimeIds(rng) for _ in range(factories)]
    ms = 0x01A2532C0000 + rng.getrandbits(16)
    ids = []
    for _ in range(count):
        ms += rng.randint(0, 2)
        ids.append(rng.choice(made)(ms))
    values: list[str | None] = []
    for n, value in enumerate(ids):
        if rng.random() < decoys:
            values.append(decoy(rng, rng.choice(ids[n:])))
        values += [value] * rng.randint(1, 3) + [None] * rng.randint(0, 1)
    return values


def test_runtime_ids_here_have_the_runtimes_layout():
    shape = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    assert shape.fullmatch(TimeOrderedIds()()) and shape.fullmatch(RuntimeIds(random.Random(1))(2 ** 40))


ledgers = st.builds(ledger_values, st.integers(1, 4), st.integers(5, 160), st.floats(0, 0.8),
                    st.integers(0, 10_000))


def window(order: ScannedOrder, shown: list[str]):
    return shorten_over(order, shown)


@settings(max_examples=80, deadline=None)
@given(ledgers, st.data())
def test_every_printed_id_resolves_to_exactly_its_record(values, data):
    order = ScannedOrder(values)
    recorded = list(dict.fromkeys(v for v in values if v))
    shown = data.draw(st.lists(st.sampled_from(recorded), min_size=1, max_size=20, unique=True))
    short = window(order, shown)
    for value in shown:
        piece = short(value)
        assert piece in value and len(piece) >= min(MIN_LENGTH, len(value))
        assert by_recency(order, piece) == [value], (piece, value, order.all_matches(piece))


@settings(max_examples=60, deadline=None)
@given(ledgers, st.integers(1, 10), st.data())
def test_fragments_printed_earlier_name_their_record_or_a_newer_one_or_none(values, newest, data):
    """What the rule gives up, and no more: printed on a shorter ledger, a fragment later names
    its record, or is ambiguous, or names a newer id first recorded past its record's near
    window."""
    cut = data.draw(st.integers(1, len(values)))
    then, now = ScannedOrder(values[:cut]), ScannedOrder(values)
    recorded = list(dict.fromkeys(v for v in values[:cut] if v))
    shown = recorded[-newest:]
    short = window(then, shown)
    for value in shown:
        found = by_recency(now, short(value))
        if found != [value] and len(found) == 1:
            assert now.spans(found)[found[0]].first - NEAR > now.spans([value])[value].last


@settings(max_examples=60, deadline=None)
@given(ledgers, st.data())
def test_a_value_unique_in_the_whole_ledger_still_names_its_id(values, data):
    """Fragments printed under the whole-ledger rule (unique among every id) keep working."""
    order = ScannedOrder(values)
    recorded = list(dict.fromkeys(v for v in values if v))
    value = data.draw(st.sampled_from(recorded))
    start = data.draw(st.integers(0, len(value) - 6))
    piece = value[start:start + data.draw(st.integers(6, len(value) - start))]
    if matching(piece, recorded) == [value]:
        assert by_recency(order, piece) == [value]


def test_older_ids_containing_a_fragment_lose_to_the_newer_id(monkeypatch):
    monkeypatch.setattr(ledger_id_order, "SAMPLE", 0)  # sampled decoys would widen the window past them
    rng = random.Random(5)
    made = RuntimeIds(rng)
    newest = [made(0x01A2532C0000 + n // 3) for n in range(30)]
    old = [d for v in newest for d in (decoy(rng, v) for _ in range(4)) if d not in newest]  # each's windows but one
    values = [*old, *([None] * NEAR), *newest]
    order = ScannedOrder(values)
    short = window(order, newest[-10:])
    recorded = list(dict.fromkeys(v for v in values if v))
    pieces = [short(value) for value in newest[-10:]]
    assert [by_recency(order, piece) for piece in pieces] == [[value] for value in newest[-10:]]
    # the recency rule, not luck, told them apart: older ids hold some of the fragments
    assert any(len(matching(piece, recorded)) > 1 for piece in pieces)


def test_a_fragment_never_is_an_older_records_whole_id(monkeypatch):
    """An exact id comes first, so a fragment equal to an older record's id would name that one:
    such a record joins the ids the window is computed over."""
    monkeypatch.setattr(ledger_id_order, "SAMPLE", 0)
    made = RuntimeIds(random.Random(3))
    newest = [made(0x01A2532C0000) for _ in range(5)]
    piece = window(ScannedOrder(newest), newest)(newest[0])
    values = [piece, *([None] * NEAR), *newest]  # an older id that is exactly that fragment
    short = window(ScannedOrder(values), newest)
    assert short(newest[0]) != piece and all(by_recency(ScannedOrder(values), short(v)) == [v] for v in newest)
    assert by_recency(ScannedOrder(values), piece) == [piece]


def test_a_value_several_recent_ids_contain_is_ambiguous():
    made = TimeOrderedIds()
    ids = [made() for _ in range(5)]
    order = ScannedOrder(ids)
    tail = ids[0][-12:]  # one factory: its random tail is all of theirs
    assert sorted(by_recency(order, tail)) == sorted(ids)
    assert len(by_recency(order, "7")) == 5  # every UUIDv7 holds a 7
    assert by_recency(order, ids[2]) == [ids[2]]
    assert by_recency(order, "zz-none") == [] and by_recency(order, "  ") == []


def test_one_actors_ids_get_a_window_over_the_counter_that_changes(monkeypatch):
    """With the sample, a window over one actor's newest ids covers as much of the counter as
    its older ids need, not just the last two digits (that repeat every 256 ids)."""
    monkeypatch.setattr(ledger_id_order, "SAMPLE", 256)
    made = TimeOrderedIds()
    values = [made() for _ in range(3000)]
    short = window(ScannedOrder(values), values[-5:])
    assert len({short(v) for v in values}) == len(values) and short.width <= 8


def test_the_window_widens_with_the_number_of_ids():
    assert [width_for(n) for n in (10, 10_000, 100_000, 1_000_000)] == [6, 6, 7, 8]
    rng = random.Random(2)
    values = [f"{rng.getrandbits(128):032x}" for _ in range(200_000)]
    # the near window holds few ids, but they stand for the 200,000 recorded before them
    ids, width = basis_over(ScannedOrder(values), values[-3:])
    assert len(ids) < 50 and width == 7 and shorten(ids, width).width >= 7


def test_a_followed_view_covers_what_comes_after_the_backlog():
    made = TimeOrderedIds()
    values = [made() for _ in range(40)]
    ids, _width = basis_over(ScannedOrder(values), [], to_end=True)
    assert set(values[-NEAR:]) <= set(ids)
    assert basis_over(ScannedOrder(values), []) == ([], MIN_LENGTH)
