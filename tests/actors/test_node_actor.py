"""One NodeActor driven directly (no supervisor): at-most-once execution and bad input.

The organization does not expose node addresses, so these tests build the minimum a node needs
themselves: a ledger actor, and a NodeSetup whose directory holds the node itself. Results go to
`source_node_id`'s address; the parent is absent from the directory, so they are dropped, and
only the ledger is observed. Runs on both bases.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from datetime import datetime, timezone

import pytest

from vsm_actors.actors import base as actor_base
from vsm_actors.actors.ledger_actor import LedgerActor
from vsm_actors.actors.node_actor import NodeActor
from vsm_actors.actors.protocol import (
    LedgerClose, LedgerClosed, LedgerOpen, LedgerReady, NodeReady, NodeSetup, RuntimeConfig,
)
from vsm_actors.actors.thespian_base import start_system
from vsm_actors.core.model.channel import VsmChannelType
from vsm_actors.core.model.messages import MessageEnvelope
from vsm_actors.core.model.task import TaskPacket
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import EventQuery, open_ledger

from .conftest import GENOMES, descendants, scripted, session_members, session_of, wait_until

LEAF = "primary-code-service"


@contextlib.contextmanager
def wired_leaf(base: str, path, config: RuntimeConfig, parent=None, organization_pid: int | None = None):
    """(asys, leaf address, parent address or None): the single_coder leaf wired to a real ledger
    actor at `path`; a `parent` actor class, if given, stands in for the root in its directory.
    Afterwards every actor process is gone."""
    before = descendants()
    asys = start_system(base)
    sessions: set[int] = set()
    ledger = None
    try:
        ledger = asys.createActor(LedgerActor)
        assert isinstance(asys.ask(ledger, LedgerOpen(url=str(path)), 10), LedgerReady)
        probe = asys.createActor(parent) if parent is not None else None
        node = asys.createActor(NodeActor)
        directory = {LEAF: node, **({"root": probe} if probe is not None else {})}
        ready = asys.ask(node, NodeSetup(node_id=LEAF, genome=load_genome(GENOMES / "single_coder.yaml"),
                                         directory=directory, ledger=ledger, supervisor=None,
                                         provider=config.provider, config=config,
                                         organization_pid=organization_pid), 10)
        assert isinstance(ready, NodeReady)
        if ready.pid != os.getpid():
            sessions.add(session_of(ready.pid))
        yield asys, node, probe
    finally:
        if ledger is not None:  # the in-process base never sends ActorExitRequest at shutdown
            assert isinstance(asys.ask(ledger, LedgerClose(), 30), LedgerClosed)
        asys.shutdown()
        wait_until(lambda: not (descendants() - before) and not session_members(sessions), timeout=15,
                   what="actor processes to exit")


@pytest.fixture
def lone_node(base, tmp_path, monkeypatch):
    """(asys, node address, ledger path) for the single_coder leaf, wired to a real ledger actor."""
    if base == "simple":
        monkeypatch.setenv("VSM_PICKLE_CHECK", "1")
        monkeypatch.setattr(actor_base, "PICKLE_CHECK", True)
    path = tmp_path / "ledger.sqlite"
    with wired_leaf(base, path, RuntimeConfig(ledger_url=str(path), provider=scripted())) as (asys, node, _):
        yield asys, node, path


def pumped(asys, predicate):
    """simpleSystemBase runs actors (and fires the ledger's flush timer) only inside a call on the
    system, so each poll gives it a short listen; on TCP that is just the poll interval."""
    def poll():
        asys.listen(0.01)
        return predicate()
    return poll


def events(path, kind: str) -> list:
    with open_ledger(str(path)) as ledger:
        return [e for e in ledger.events(EventQuery()) if e.storage_key in (kind, f"other:{kind}")]


def task_envelope(task: TaskPacket) -> MessageEnvelope:
    return MessageEnvelope.new(VsmChannelType.ResourceBargaining, task, id=str(uuid.uuid4()),
                               created_at=datetime.now(timezone.utc), source_node_id="root", target_node_id=LEAF,
                               correlation_id="corr-1", trace=("root",))


def new_task(title: str) -> TaskPacket:
    return TaskPacket.new(title, f"{title}, please", lambda: str(uuid.uuid4()), assigned_to=LEAF,
                          metadata={"requires_code_write": "true"})


def test_duplicate_delivery_executes_once(lone_node):
    asys, node, path = lone_node
    task = new_task("Write the thing")
    env = task_envelope(task)
    asys.tell(node, env)
    asys.tell(node, env)  # the same envelope again (a redelivery)
    (ignored,) = wait_until(pumped(asys, lambda: events(path, "duplicate_task_ignored")), what="duplicate_task_ignored")
    assert ignored.task_id == task.id
    written = wait_until(pumped(asys, lambda: events(path, "trace_written")), what="trace_written")
    # the duplicate was handled after the first execution recorded its trace: exactly one
    assert [e.task_id for e in written] == [task.id]
    with open_ledger(str(path)) as ledger:
        assert [t.task_id for t in ledger.recent_task_traces()] == [task.id]


def test_unknown_payload_is_recorded_and_ignored(lone_node):
    asys, node, path = lone_node
    odd = MessageEnvelope.new(VsmChannelType.ResourceBargaining, {"what": "no idea"}, payload_type="vsm.mystery",
                              id=str(uuid.uuid4()), created_at=datetime.now(timezone.utc), source_node_id="root")
    asys.tell(node, odd)
    (ignored,) = wait_until(pumped(asys, lambda: events(path, "payload_ignored")), what="payload_ignored")
    assert ignored.payload["payload_type"] == "vsm.mystery" and ignored.payload["envelope_id"] == odd.id
    # the node is alive and still executes work
    task = new_task("After the odd message")
    asys.tell(node, task_envelope(task))
    (written,) = wait_until(pumped(asys, lambda: events(path, "trace_written")), what="trace_written")
    assert written.task_id == task.id
    assert not events(path, "handler_failed")
