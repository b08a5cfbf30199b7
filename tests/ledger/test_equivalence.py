"""Property: for any events, traces and queries, the in-memory twin and SQLite answer identically."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from vsm_actors.core.model.events import LedgerEventKind as K, TraceWindow
from vsm_actors.core.model.variants import Other
from vsm_actors.ledger import EventQuery, MemoryLedger, PeeweeLedger

from .builders import at, event, trace

KINDS = (K.TaskMapped, K.TaskRouted, K.TraceWritten, Other("command_received"))
LINK = st.sampled_from([None, "a", "b", "B", "_"])
LINK_NAMES = ("node_id", "task_id", "directive_id", "correlation_id", "genome_id", "suggestion_id")
SECONDS = st.integers(0, 8).map(float)  # few distinct times, so ties are common
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def event_sets(draw):
    n = draw(st.integers(0, 30))
    events = [event(f"e{i}", draw(st.sampled_from(KINDS)), draw(SECONDS), node_id=draw(LINK), task_id=draw(LINK),
                    directive_id=draw(LINK), correlation_id=draw(LINK), genome_id=draw(LINK),
                    suggestion_id=draw(LINK)) for i in range(n)]
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    return [events[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True)]


@st.composite
def queries(draw, event_ids: list[str]):
    cursor = st.sampled_from([None, *event_ids]) if event_ids else st.none()
    # pin at most two links, so that most queries still match something
    pinned = draw(st.lists(st.sampled_from(LINK_NAMES), max_size=2, unique=True))
    return EventQuery(
        kinds=tuple(draw(st.lists(st.sampled_from(KINDS), max_size=2, unique=True))),
        **{name: draw(LINK.filter(bool)) for name in pinned},
        since=draw(st.none() | SECONDS.map(at)), limit=draw(st.sampled_from([None, 0, 1, 3, 10])),
        keep=draw(st.sampled_from(["newest", "oldest"])), after_id=draw(cursor), before_id=draw(cursor),
    )


def both():
    return MemoryLedger(), PeeweeLedger(":memory:")


@SETTINGS
@given(batches=event_sets(), data=st.data())
def test_event_queries_agree(batches, data) -> None:
    memory, sqlite = both()
    try:
        for batch in batches:
            memory.append_events(batch)
            sqlite.append_events(batch)
        event_ids = [e.id for batch in batches for e in batch]
        for _ in range(5):
            query = data.draw(queries(event_ids))
            assert memory.events(query) == sqlite.events(query), query
    finally:
        sqlite.close()


NODE = st.sampled_from(["root", "team", "coder", "Ops", "_x"])


@SETTINGS
@given(writes=st.lists(st.lists(st.tuples(st.sampled_from(["t1", "t2", "T3", "_4", "t5", "t6"]), NODE,
                                          st.lists(NODE, max_size=3, unique=True), SECONDS),
                                max_size=6), max_size=4),
       windows=st.lists(st.tuples(st.none() | NODE, st.none() | SECONDS.map(at), st.sampled_from([None, 0, 1, 2, 5])),
                        min_size=1, max_size=5))
def test_trace_queries_agree(writes, windows) -> None:
    memory, sqlite = both()
    try:
        for batch in writes:
            traces = [trace(tid, node, s, tuple(ancestors)) for tid, node, ancestors, s in batch]
            memory.write_traces(traces)
            sqlite.write_traces(traces)
        for node, since, limit in windows:
            window = TraceWindow(since=since, limit=limit)
            if node is None:
                assert memory.recent_task_traces(window) == sqlite.recent_task_traces(window)
            else:
                assert memory.subtree_task_traces(node, window) == sqlite.subtree_task_traces(node, window)
    finally:
        sqlite.close()
