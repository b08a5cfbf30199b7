"""The leaf's memory of started tasks is bounded and forgets oldest first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsm_actors.core.control.seen_ids import SeenIds


@given(st.lists(st.text(alphabet="abcdef", min_size=1, max_size=3)), st.integers(1, 8))
def test_it_remembers_exactly_the_newest_ids(ids, capacity) -> None:
    seen = SeenIds(capacity)
    for item in ids:
        seen.add(item)
    newest: list[str] = []
    for item in reversed(ids):  # the last `capacity` distinct ids, by their latest addition
        if item not in newest:
            newest.append(item)
    expected = set(newest[:capacity])
    assert len(seen) == len(expected) <= capacity
    assert all(item in seen for item in expected)
    assert not any(item in seen for item in set(ids) - expected)


def test_memory_stays_bounded_over_many_tasks() -> None:
    seen = SeenIds(1000)
    for n in range(100_000):
        seen.add(f"task-{n}")
    assert len(seen) == 1000 and "task-99999" in seen and "task-0" not in seen


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SeenIds(0)


def test_recent_submissions_are_bounded_and_say_when_the_oldest_came() -> None:
    from datetime import datetime, timedelta, timezone

    from vsm_actors.core.control.recovery import RecentSubmissions

    t0 = datetime(2026, 12, 7, tzinfo=timezone.utc)
    recent = RecentSubmissions(capacity=3)
    for n in range(5):
        recent.add(f"d{n}", f"client{n}", t0 + timedelta(seconds=n))
    taken, oldest = recent.take_all()
    assert taken == [("d2", "client2"), ("d3", "client3"), ("d4", "client4")]
    assert oldest == t0 + timedelta(seconds=2)
    assert recent.take_all() == ([], None)
