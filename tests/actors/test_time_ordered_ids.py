"""Production ids: valid version-7 UUIDs, unique, ordered by creation, never shared across fork()."""

from __future__ import annotations

import os
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from vsm_actors.actors.runtime import TimeOrderedIds


def test_ids_are_rfc9562_version_7_uuids_in_canonical_text():
    new_id = TimeOrderedIds()
    for _ in range(1000):
        text = new_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_one_factory_yields_strictly_increasing_ids():
    new_id = TimeOrderedIds()
    new_id._counter = (1 << 26) - 5000  # must stay unique even across the counter's wrap
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    increasing = sum(a < b for a, b in zip(ids, ids[1:]))
    assert increasing >= len(ids) - 2  # only the wrap itself may step back within one millisecond


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=2, max_value=8))
def test_factories_never_collide(factories):
    sources = [TimeOrderedIds() for _ in range(factories)]
    ids = [source() for _ in range(500) for source in sources]
    assert len(set(ids)) == len(ids)


def test_ids_carry_the_creation_millisecond():
    import time
    before = time.time_ns() // 1_000_000
    text = TimeOrderedIds()()
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(text).int >> 80 <= after


def test_a_forked_child_does_not_repeat_its_parents_ids():
    new_id = TimeOrderedIds()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: same factory object, copied by fork
        try:
            os.write(write, "\n".join(new_id() for _ in range(100)).encode())
        finally:
            os._exit(0)
    os.close(write)
    parent = {new_id() for _ in range(100)}
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    child = set(b"".join(chunks).decode().split("\n"))
    assert len(child) == 100
    assert not parent & child
    # and the child's ids differ in their random part, not merely by counter position
    assert {i[-12:] for i in parent}.isdisjoint({i[-12:] for i in child})
