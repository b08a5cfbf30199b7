"""The metasystem's dispatch half: the shell around `core.control.routing.choose_child` that
counts each child's outstanding tasks, sends a routed task down, and keeps a task queued while the
child chosen for it has no room (a leaf works on one task at a time; `system_3.max_parallel_children`
bounds the children working at once). Every result that comes back gives the queue another look.

A queued task is never lost: it is recorded (`other:task_queued`, after the directive's
`task_mapped`), stays in FIFO order, and is routed again, with the loads of that moment, as soon as
a place frees up (a result, a restarted child, a new genome); only then is `task_routed` written.
What is queued lives in the actor as outstanding work does, and shares its fate on restart.
"""

from __future__ import annotations

from attrs import evolve

from ..core.control.lineage import annotate_outbound, relayed_metadata
from ..core.control.routing import RoutingError, choose_child, has_room, result_envelope, routed_task_envelope
from ..core.model.task import TaskPacket, TaskResult


class OutstandingTasks(dict):
    """task id -> (child id, envelope), with a count per child kept as entries come and go, so a
    routing decision reads each child's load without walking every task out (a burst of
    thousands at the root). Whoever writes it (routing, trials, crash retries) keeps the counts
    right; reads are a plain dict's."""

    def __init__(self) -> None:
        super().__init__()
        self.per_child: dict[str, int] = {}

    def _count(self, child_id: str, step: int) -> None:
        left = self.per_child.get(child_id, 0) + step
        if left > 0:
            self.per_child[child_id] = left
        else:
            self.per_child.pop(child_id, None)

    def __setitem__(self, task_id, entry) -> None:
        old = dict.get(self, task_id)
        if old is not None:
            self._count(old[0], -1)
        dict.__setitem__(self, task_id, entry)
        self._count(entry[0], +1)

    def __delitem__(self, task_id) -> None:
        self._count(dict.__getitem__(self, task_id)[0], -1)
        dict.__delitem__(self, task_id)

    _MISSING = object()

    def pop(self, task_id, default=_MISSING):
        if task_id in self:
            entry = dict.pop(self, task_id)
            self._count(entry[0], -1)
            return entry
        if default is OutstandingTasks._MISSING:
            raise KeyError(task_id)
        return default

    def popitem(self):
        task_id, entry = dict.popitem(self)
        self._count(entry[0], -1)
        return task_id, entry

    def clear(self) -> None:
        dict.clear(self)
        self.per_child.clear()

    def setdefault(self, task_id, entry=None):
        if task_id not in self:
            self[task_id] = entry
        return dict.__getitem__(self, task_id)

    def update(self, *args, **kwargs) -> None:
        for task_id, entry in dict(*args, **kwargs).items():
            self[task_id] = entry


class DispatchQueue:
    """Mixin for NodeActor (which provides genome, node_id, directory, events, services, record,
    tell, on_result, observed, routing_failed, shadow_copy and `outstanding`)."""

    queued: list             # (task, envelope) waiting for a place, oldest first (set per actor)
    _draining = False

    def dispatch(self, task: TaskPacket, env, events: list, *, from_queue: bool = False) -> bool:
        """Route `task` to a child with room now, or queue it; False when it stays queued."""
        paused = self.paused_children()
        try:
            decision = choose_child(self.genome, self.node_id, task, paused=paused,
                                    outstanding=self.outstanding.per_child)
        except RoutingError as exc:
            if paused and self._routable_without_pause(task):
                if not from_queue:  # held, never lost: it goes on when the pause is lifted
                    self.queued.append((task, env))
                    self.route_blocked(task, env, events)
                    self.record(events, defer=True)
                return False
            self.routing_failed(task)
            events.append(self.events.other("task_routing_failed", {"task_id": task.id, "error": str(exc)},
                                            task_id=task.id, directive_id=task.directive_id))
            result = TaskResult.failed(task.id, self.node_id, "task could not be routed", str(exc),
                                       metadata={"directive_id": task.directive_id or ""})
            self.record(events)
            self.on_result(result, result_envelope(result, env, self.node_id, self.node_id,
                                                   id=self.services.new_id(), created_at=self.services.now()))
            return True
        if decision.waiting:
            if not from_queue:
                self.queued.append((task, env))
                events.append(self.events.other("task_queued", {
                    "task_id": task.id, "task_title": task.title, "controller_node_id": self.node_id,
                    "queue_length": len(self.queued),
                    "outstanding": dict(sorted(self.outstanding.per_child.items()))},
                    task_id=task.id, directive_id=task.directive_id, correlation_id=env.correlation_id or env.id))
                self.record(events, defer=True)
            return False
        task = evolve(task, assigned_to=decision.child_id, metadata={
            **annotate_outbound(task.metadata, decision.child_id), "routed_by": self.node_id,
            "routing_reason": decision.reason})
        # the envelope carries the task's handoff, management, coordination and command relays
        out = relayed_metadata(routed_task_envelope(task, env, self.node_id, decision, id=self.services.new_id(),
                                                    created_at=self.services.now()), task.metadata)
        events.append(self.events.task_routed(task, self.genome.node(self.node_id).name, decision, env, out,
                                              self.genome.id))
        self.outstanding[task.id] = (decision.child_id, out)
        self.record(events, defer=True)  # the result's way back up usually carries them
        self.tell(self.directory.get(decision.child_id), out)
        if self.evo is not None:
            self.shadow_copy(task, env)
        return True

    def drain_queue(self) -> None:
        """Send what waits, oldest first, while some child has room: a task whose child is still
        busy keeps its place and those behind it (for other children) may go ahead."""
        if self._draining or not self.queued or self.is_leaf:
            return
        # a queued task that can no longer be routed fails through on_result: it must not take the
        # traces of the result being handled now (ResultWithEvents) for its own
        self._draining, observed, self.observed = True, self.observed, ()
        try:
            i = 0
            while i < len(self.queued) and self._room_anywhere():
                task, env = self.queued[i]
                if self.dispatch(task, env, [], from_queue=True):
                    del self.queued[i]
                else:
                    i += 1
        finally:
            self._draining, self.observed = False, observed

    def _routable_without_pause(self, task: TaskPacket) -> bool:
        try:
            choose_child(self.genome, self.node_id, task)
        except RoutingError:
            return False
        return True

    def _room_anywhere(self) -> bool:
        node = self.genome.node(self.node_id)
        loads = self.outstanding.per_child
        return any(has_room(self.genome, self.node_id, c, loads) for c in node.children)
