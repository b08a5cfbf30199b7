"""On the multiprocess base a node's result goes up with the events and traces it would have
written (`NodeActor.send_up`): the parent holds them and the root writes a directive's events in
one message. In process a node writes its own events, as the routing must be in the ledger while
a leaf works. Runs on both bases, with a probe actor standing in for the parent."""

from __future__ import annotations

import os

import pytest
from thespian.actors import Actor

from vsm_actors.actors.protocol import ResultWithEvents, RuntimeConfig
from vsm_actors.core.model.events import LedgerEventKind
from vsm_actors.core.model.messages import MessageEnvelope
from vsm_actors.core.model.task import TaskResult

from .conftest import scripted, wait_until
from .test_node_actor import events, new_task, pumped, task_envelope, wired_leaf


class Parent(Actor):
    """Keeps what a node sends up; answers "got?" with the list."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list = []

    def receiveMessage(self, msg, sender) -> None:
        if msg == "got?":
            self.send(sender, self.got)
        elif isinstance(msg, (MessageEnvelope, ResultWithEvents)):
            self.got.append(msg)


@pytest.fixture
def leaf_under_probe(base, tmp_path):
    """(asys, leaf, probe parent, ledger path): the single_coder leaf, told it was started by this
    process (so on the TCP base it knows it runs in a process of its own), reporting to a probe."""
    path = tmp_path / "ledger.sqlite"
    config = RuntimeConfig(ledger_url=str(path), provider=scripted(), node_defer_ms=600_000)
    with wired_leaf(base, path, config, parent=Parent, organization_pid=os.getpid()) as (asys, node, probe):
        yield asys, node, probe, path


def test_a_result_goes_up_with_the_events_of_its_base(base, leaf_under_probe):
    asys, node, probe, path = leaf_under_probe
    task = new_task("Write the thing")
    asys.tell(node, task_envelope(task))
    (sent,) = wait_until(pumped(asys, lambda: asys.ask(probe, "got?", 10)), what="the result to reach the parent")
    if base == "simple":
        # in process: the leaf wrote its own trace; the trace rides along only to be observed
        assert isinstance(sent, ResultWithEvents) and isinstance(sent.envelope.payload, TaskResult)
        assert sent.events == () and sent.traces == () and [t.task_id for t in sent.observed] == [task.id]
        (written,) = wait_until(pumped(asys, lambda: events(path, "trace_written")), what="trace_written")
        assert written.task_id == task.id
        return
    # its own process: the trace and its event travel with the result, for the parent to write
    assert isinstance(sent, ResultWithEvents)
    assert sent.envelope.payload.task_id == task.id and sent.envelope.payload.status.value == "Completed"
    assert [e.kind for e in sent.events] == [LedgerEventKind.TraceWritten]
    assert [t.task_id for t in sent.traces] == [task.id]
    assert [t.task_id for t in sent.observed] == [task.id]
    assert events(path, "trace_written") == []
