"""Each long text is stored once, events lose nothing on the way, and version-1 ledgers still read."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vsm_actors import codec
from vsm_actors.core.model.events import LedgerEvent, LedgerEventKind as K
from vsm_actors.ledger import MemoryLedger, PeeweeLedger, open_ledger
from vsm_actors.ledger._compact import BLOB_MIN_CHARS, compact_event, restore_event

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
OUTPUT = "echo: accepted task.\n" + "the whole prompt, echoed back. " * 40

keys = st.sampled_from(["$blob", "$esc", "$blobs", "a", "summary", "content"]) | st.text(max_size=5)
texts = st.text(max_size=5) | st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=3), st.integers(100, 400))
json_data = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


@given(json_data, st.dictionaries(st.text(max_size=4), texts, max_size=3))
def test_the_stored_form_restores_every_payload_exactly(payload, metadata) -> None:
    wire = {"id": "e", "kind": "TaskMapped", "created_at": "2026-12-07T12:00:00Z", "genome_id": None,
            "node_id": "n", "task_id": None, "directive_id": "d", "suggestion_id": None, "correlation_id": None,
            "payload": payload, "metadata": metadata}
    stored, blobs = compact_event(wire, "TaskMapped", "2026-12-07T12:00:00Z")
    assert all(len(text) >= BLOB_MIN_CHARS for text in blobs.values())
    stored = json.loads(json.dumps(stored))  # what the database gives back
    restored = restore_event(stored, wire, lambda: "TaskMapped", lambda: "2026-12-07T12:00:00Z", blobs)
    assert restored == wire


def result_event(event_id: str, node_id: str, at: int) -> LedgerEvent:
    payload = {"task_id": "t1", "status": "Completed", "summary": OUTPUT,
               "artifacts": [{"kind": "model_output", "content": OUTPUT, "uri": None, "metadata": {}}]}
    return LedgerEvent.new(K.TaskResultReceived, payload, id=event_id, node_id=node_id, task_id="t1",
                           directive_id="d1", created_at=T0 + timedelta(milliseconds=at))


def test_an_output_passed_up_the_tree_is_stored_once(tmp_path) -> None:
    path = tmp_path / "l.sqlite"
    ledger = PeeweeLedger(str(path))
    events = [result_event("e1", "team", 1), result_event("e2", "root", 2)]
    ledger.append_events(events[:1])
    ledger.append_events(events[1:])  # a later batch: the text is already there
    assert ledger.events() == events
    assert ledger.get_event("e2") == events[1]
    ledger.close()
    with sqlite3.connect(path) as conn:
        (count, body), = conn.execute("SELECT count(*), sum(length(body)) FROM ledger_blobs")
        stored = [t for (t,) in conn.execute("SELECT event_json FROM ledger_events")]
    assert count == 1 and body < len(OUTPUT) / 4  # once, compressed
    assert all(OUTPUT not in text and len(text) < 400 for text in stored)


def test_the_memory_twin_keeps_the_same_rows() -> None:
    ledger = MemoryLedger()
    events = [result_event("e1", "team", 1), result_event("e2", "root", 2)]
    ledger.append_events(events)
    assert ledger.events() == events and ledger.get_event("e1") == events[0]
    assert len(ledger._blobs) == 1


def test_a_version_1_ledger_reads_and_upgrades(tmp_path) -> None:
    """A ledger written before the compact form: full JSON rows, no blobs table, version 1."""
    path = tmp_path / "old.sqlite"
    ledger = PeeweeLedger(str(path))
    old = [result_event("e1", "team", 1), result_event("e2", "root", 2)]
    ledger.append_events(old)
    ledger.close()
    with sqlite3.connect(path) as conn:
        for event in old:
            conn.execute("UPDATE ledger_events SET event_json = ? WHERE id = ?",
                         (codec.dumps_sorted(event), event.id))
        conn.execute("DROP TABLE ledger_blobs")
        conn.execute("UPDATE schema_version SET version = 1")
    reader = open_ledger(str(path), read_only=True)
    assert reader.events() == old
    reader.close()
    with sqlite3.connect(path) as conn:  # the reader changed nothing
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    writer = PeeweeLedger(str(path))
    new = result_event("e3", "team", 3)
    writer.append_events([new])
    assert writer.events() == [*old, new]
    writer.close()
    with sqlite3.connect(path) as conn:
        assert max(v for (v,) in conn.execute("SELECT version FROM schema_version")) == 2


@pytest.mark.services
def test_postgres_keeps_texts_once(postgres_url) -> None:
    ledger = open_ledger(postgres_url)
    events = [result_event("e1", "team", 1), result_event("e2", "root", 2)]
    ledger.append_events(events)
    assert ledger.events() == events
    ledger.close()
