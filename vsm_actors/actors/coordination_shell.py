"""The node actor's System 2 and System 5 half: interprets core.control.coordination and
core.control.commands.

- A System 2 signal is recorded and folded into the node's coordination evidence (what token
  grants read, `coordination_summary`); a strong one becomes a dampening task routed on
  System2Coordination. Peer handoffs and management-to-operation directives become tasks for the
  named child, with their lineage.
- A command becomes a task carrying its constraints; the capabilities it denies are denied for the
  receiving node's whole subtree from then on: the node tells every node below it (each records
  the relay and holds it), fails what it has queued that needs them, and refuses to route any
  later task that needs them. Every metasystem checks a task before routing it (`admit`), every
  leaf before executing it (`check_executable(..., denied=self.policy.denied)`), against its
  genome's System 5 policies and those of its ancestors as well.

Both states are folds of the node's recorded events, restored at boot with the pause events
(`NodeSetup.pauses`, ledger/evolution_state.load_pauses).
"""

from __future__ import annotations

from ..core.control.commands import (
    MAPPED_COMMAND, MAPPED_MANAGEMENT, PolicyState, command_event, decide_management, denied_event, is_relay,
    refusal, relay_envelope, relay_event, stamped, task_from_command,
)
from ..core.control.coordination import (
    MAPPED_DAMPENING, CoordinationState, CoordinationSummary, dampening_event, decide_signal,
)
from ..core.control.lineage import MAPPED_HANDOFF, annotate_incoming, decide_handoff
from ..core.control.routing import result_envelope
from ..core.model.messages import MessageEnvelope
from ..core.model.payloads import Command, ManagementOperationDirective, OperationHandoff, System2CoordinationSignal
from ..core.model.task import TaskPacket, TaskResult
from .protocol_control import DeliverEnvelope, Delivered


class CoordinationNode:
    """Mixin for NodeActor (genome, node_id, directory, events, services, record, tell, route,
    on_result, outstanding, queued, pending...)."""

    coordination: CoordinationState = CoordinationState()
    policy: PolicyState = PolicyState()

    def setup_control(self, events) -> None:
        events = tuple(events or ())
        self.coordination = CoordinationState.fold(events)
        self.policy = PolicyState.fold(events)

    def _event(self, spec: tuple[str, dict, dict]):
        name, payload, links = spec
        return self.events.other(name, payload, **links)

    # -- the checks every routed and executed task passes -------------------------------------------

    def admit(self, task: TaskPacket, env: MessageEnvelope | None, events: list) -> TaskPacket | None:
        """The task as this metasystem routes it (its channel lineage, the denials it holds), or
        None when a System 5 denial refuses it: then it has failed with a result and an event."""
        task = annotate_incoming(task, env, self.node_id)
        standing = self.policy.denied
        why = refusal(self.genome, self.node_id, task, standing)
        if why is None:
            return stamped(task, standing)
        self.refuse(task, env, events, why)
        return None

    def refuse(self, task: TaskPacket, env: MessageEnvelope | None, events: list, why) -> None:
        events.append(self._event(denied_event(task, self.node_id, why)))
        result = TaskResult.failed(task.id, self.node_id, "task needs a capability denied by System 5 policy",
                                   why.error, metadata={"directive_id": task.directive_id or "",
                                                        "system5_denied_capability": why.capability})
        self.record(events)
        self.on_result(result, result_envelope(result, env, self.node_id, self.node_id, id=self.services.new_id(),
                                               created_at=self.services.now()))

    def refuse_queued(self) -> None:
        """What waits here and needs a capability denied now fails instead of going on later."""
        for task, env in list(self.queued):
            why = refusal(self.genome, self.node_id, task, self.policy.denied)
            if why is not None:
                self.queued.remove((task, env))
                self.refuse(task, env, [], why)

    def coordination_summary(self, child: str) -> CoordinationSummary:
        """The recent System 2 evidence about `child` (what its token grants are capped by)."""
        self.coordination = self.coordination.expire(self.services.now())
        return self.coordination.summary(child)

    # -- payloads --------------------------------------------------------------------------------

    def on_coordination_payload(self, env: MessageEnvelope) -> bool:
        payload = env.payload
        if isinstance(payload, Command):
            self.on_command(env, payload)
            return True
        if self.is_leaf:
            return False  # coordination is a metasystem's: a leaf records it as ignored
        if isinstance(payload, System2CoordinationSignal):
            self.on_signal(env, payload)
        elif isinstance(payload, OperationHandoff):
            decision = decide_handoff(payload, env, self.node_id, self.genome, new_id=self.services.new_id)
            self.route_decided(decision, env, MAPPED_HANDOFF)
        elif isinstance(payload, ManagementOperationDirective):
            decision = decide_management(payload, env, self.node_id, self.genome, new_id=self.services.new_id)
            self.route_decided(decision, env, MAPPED_MANAGEMENT)
        else:
            return False
        return True

    def route_decided(self, decision, env: MessageEnvelope, policy: str) -> None:
        events = [self._event(e) for e in decision.events]
        if decision.task is None:
            return self.record(events)
        events.append(self.events.task_mapped(decision.task, env, policy))
        self.route(decision.task, env, events)

    def on_signal(self, env: MessageEnvelope, signal: System2CoordinationSignal) -> None:
        decision = decide_signal(signal, env, self.node_id, self.genome, new_id=self.services.new_id,
                                 now=self.services.now())
        event = self._event(decision.event)
        self.coordination = self.coordination.observe(event)
        if decision.task is None:
            return self.record([event])
        task = decision.task
        self.route(task, decision.envelope, [event, self.events.task_mapped(task, decision.envelope, MAPPED_DAMPENING)])
        out = self.outstanding.get(task.id)
        queued = out is None and any(t.id == task.id for t, _ in self.queued)
        self.record([self._event(dampening_event(task, out[0] if out else None, signal, decision.envelope,
                                                 queued=queued))])

    def on_command(self, env: MessageEnvelope, command: Command) -> None:
        if is_relay(env):  # a node above received the command: its denials hold here too
            event = self._event(relay_event(command, env))
            self.policy = self.policy.observe(event)
            self.record([event])
            return self.refuse_queued()
        subtree = self.genome.subtree_ids(self.node_id)
        task = task_from_command(command, self.services.new_id)
        event = self._event(command_event(command, task, env, self.node_id, subtree))
        self.policy = self.policy.observe(event)
        events = [event, self.events.task_mapped(task, env, MAPPED_COMMAND)]
        if command.denied_capabilities:
            for node_id in subtree[1:]:
                self.tell(self.directory.get(node_id), relay_envelope(
                    env, self.node_id, node_id, id=self.services.new_id(), created_at=self.services.now()))
            self.record(events)
            events = []
            self.refuse_queued()
        self.route(task, env, events)

    # -- a client's envelope -----------------------------------------------------------------------

    def receiveMsg_DeliverEnvelope(self, msg: DeliverEnvelope, sender) -> None:
        reply_to, env = msg.reply_to or sender, msg.envelope
        key = env.correlation_id or env.id
        registered = msg.await_results and self.node_id is not None and key not in self.pending
        if registered:
            self.pending[key] = {"reply_to": reply_to, "directive_id": "", "expected": 1, "results": []}
        self.receiveMsg_MessageEnvelope(env, sender)
        awaiting = False
        if registered:
            if key not in self.pending or self._working_on(key):
                awaiting = True  # the result came back already, or will
            else:
                del self.pending[key]
        self.tell(reply_to, Delivered(node_id=self.node_id or msg.node_id, envelope_id=env.id, correlation_id=key,
                                      awaiting=awaiting))

    def _working_on(self, correlation: str) -> bool:
        return any(out.correlation_id == correlation for _, out in self.outstanding.values()) or any(
            (e.correlation_id or e.id) == correlation for _, e in self.queued)
