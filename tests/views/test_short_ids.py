"""The short-id rule: fragments at least 6 characters wide, one window per column, and each printed
fragment names exactly the id it was printed for (as a filter reads it back: exact id first,
else every id containing it)."""

from __future__ import annotations

import random
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from vsm_actors.actors.runtime import TimeOrderedIds
from vsm_actors.views.short_ids import MIN_LENGTH, GrowingShortIds, is_opaque, matching, shorten


def factories_ids(factories: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    made = [TimeOrderedIds() for _ in range(factories)]
    return [rng.choice(made)() for _ in range(count)]


def assert_every_fragment_resolves(ids: list[str]) -> None:
    short = shorten(ids)
    for value in set(ids):
        piece = short(value)
        assert piece in value
        assert len(piece) >= min(MIN_LENGTH, len(value))
        assert matching(piece, ids) == [value], (piece, value)


uuid_text = st.uuids().map(str)
runtime_ids = st.builds(factories_ids, st.integers(1, 6), st.integers(1, 400), st.integers(0, 10_000))
names = st.sampled_from(["root", "backend-coder", "backend-team", "two-level", "root-16", "root-160", "d-1"])
hex_digests = st.text("0123456789abcdef", min_size=16, max_size=40)


@settings(max_examples=60, deadline=None)
@given(runtime_ids)
def test_runtime_ids_every_fragment_names_its_id(ids):
    assert_every_fragment_resolves(ids)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(uuid_text, names, hex_digests), min_size=1, max_size=300))
def test_mixed_ids_every_fragment_names_its_id(ids):
    assert_every_fragment_resolves(ids)


def test_ids_of_one_run_get_a_short_fragment_not_their_shared_prefix_or_tail():
    ids = factories_ids(1, 5000, 1)
    short = shorten(ids)
    assert short.width <= 8
    pieces = {short(i) for i in ids}
    assert len(pieces) == len(set(ids))
    # the first 8 characters are the same for the whole run, and so are the last 12 of one actor
    assert len({i[:8] for i in ids}) == 1 and len({i[-12:] for i in ids}) == 1


def test_random_uuids_get_their_suffix():
    ids = [str(uuid.UUID(int=random.Random(3).getrandbits(128) | n, version=4)) for n in range(50)]
    short = shorten(ids)
    assert short.skip == 0 and all(i.endswith(short(i)) for i in ids)


def test_names_and_sequential_ids_print_whole():
    short = shorten(["backend-coder", "root", "root-16", "two-level"])
    assert [short(v) for v in ("backend-coder", "root", "root-16", "two-level")] == [
        "backend-coder", "root", "root-16", "two-level"]
    assert short(None) == "-" and not is_opaque("backend-coder") and is_opaque(str(uuid.uuid4()))


def test_matching_exact_first_then_any_part_case_insensitive():
    ids = ["root-16", "root-160", "backend-coder", "backend-team"]
    assert matching("root-16", ids) == ["root-16"]
    assert matching("coder", ids) == ["backend-coder"]
    assert matching("BACKEND", ids) == ["backend-coder", "backend-team"]
    assert matching("nothing", ids) == [] and matching("  ", ids) == []


@settings(max_examples=30, deadline=None)
@given(runtime_ids, st.integers(1, 50))
def test_a_growing_view_keeps_fragments_distinct(ids, batch):
    column = GrowingShortIds()
    for start in range(0, len(ids), batch):
        column.add(ids[start:start + batch])
        seen = list(dict.fromkeys(ids[:start + batch]))
        pieces = [column(i) for i in seen]
        assert len(set(pieces)) == len(seen)
        assert all(p in i for p, i in zip(pieces, seen))
