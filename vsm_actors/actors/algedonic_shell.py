"""The node actor's algedonic half: interprets core.control.algedonic for a metasystem.

A signal arrives as an envelope on the Algedonic channel (from a child, or from a person through
the supervisor: `vsm signal`); the decider says what to record, whether to freeze the evolution
trial, which subtree to pause or resume, and whether to escalate one hop up. While a child is
paused nothing is routed into it: a task for it waits in the queue (an `algedonic_route_blocked`
event each time) and goes on when the pause is lifted. The pause state is a fold of the node's
pause and resume events, restored at boot (`NodeSetup.pauses`).
"""

from __future__ import annotations

from ..core.control.algedonic import PauseState, decide
from ..core.model.channel import ChannelPriority, VsmChannelType
from ..core.model.messages import MessageEnvelope
from ..core.evolution.controller import freeze
from ..core.model.payloads import AlgedonicSignal
from .protocol_control import SignalApplied, SignalNode


class AlgedonicNode:
    """Mixin for NodeActor (genome, node_id, directory, events, services, record, tell, evo...)."""

    pause_state: PauseState = PauseState()

    def setup_pauses(self, events) -> None:
        self.pause_state = PauseState.fold(events or ())

    def paused_children(self) -> frozenset[str]:
        if not self.pause_state.pauses:
            return frozenset()
        node = self.genome.node(self.node_id)
        return frozenset(c for c in node.children if self.pause_state.pause_for(self.genome, c) is not None)

    def route_blocked(self, task, env, events: list) -> None:
        """A task whose only able children are paused: held, with an event naming the pause."""
        pauses = [self.pause_state.pause_for(self.genome, c) for c in self.paused_children()]
        events.append(self.events.other("algedonic_route_blocked", {
            "task_id": task.id, "controller_node_id": self.node_id,
            "paused": sorted({p.target for p in pauses if p}), "reasons": sorted({p.reason for p in pauses if p})},
            task_id=task.id, directive_id=task.directive_id))

    def on_control_payload(self, env: MessageEnvelope) -> bool:
        if isinstance(env.payload, AlgedonicSignal) and not self.is_leaf:
            self.on_algedonic(env, env.payload)
            return True
        # commands, System 2 signals, handoffs, management directives (coordination_shell)
        on_coordination = getattr(self, "on_coordination_payload", None)
        return bool(on_coordination is not None and on_coordination(env))

    def receiveMsg_SignalNode(self, msg: SignalNode, sender) -> None:
        env = MessageEnvelope.new(VsmChannelType.Algedonic, msg.signal, id=self.services.new_id(),
                                  created_at=self.services.now(), target_node_id=self.node_id,
                                  priority=ChannelPriority.Interrupt)
        try:
            self.on_algedonic(env, msg.signal, reply_to=msg.reply_to or sender)
        except Exception as exc:  # noqa: BLE001 - the caller hears of it; the actor carries on
            self.tell(msg.reply_to or sender, SignalApplied(node_id=self.node_id or "", error=str(exc)))

    def on_algedonic(self, env: MessageEnvelope, signal, reply_to=None) -> None:
        active = self.evo.active.trial_id if getattr(self, "evo", None) is not None and self.evo.active else None
        outcome = decide(signal, self.node_id, self.genome, self.pause_state, now=self.services.now(),
                         active_trial_id=active)
        received = self.events.other("algedonic_signal_received", self.services.to_json(signal),
                                     metadata={"severity": str(signal.severity),
                                               "valence": getattr(signal.valence, "value", str(signal.valence))},
                                     correlation_id=env.correlation_id, task_id=signal.related_task_id,
                                     suggestion_id=signal.related_suggestion_id)
        self.pause_state = outcome.state
        self.record([received, *(self.events.other(name, payload) for name, payload in outcome.events)])
        if outcome.freeze and getattr(self, "evo", None) is not None:
            self.evolve_with(freeze, f"algedonic freeze_mutation: {signal.message}", self.evo_ctx)
        if outcome.escalate:
            parent = self.genome.node(self.node_id).parent_id
            up = MessageEnvelope.new(VsmChannelType.Algedonic, signal, id=self.services.new_id(),
                                     created_at=self.services.now(), source_node_id=self.node_id,
                                     target_node_id=parent, priority=ChannelPriority.Interrupt,
                                     correlation_id=env.correlation_id or env.id, causation_id=env.id,
                                     trace=(*env.trace, self.node_id),
                                     metadata={"algedonic_escalation": "true", "escalated_by_node_id": self.node_id})
            self.tell(self.directory.get(parent), up)
        if outcome.resume:
            self.drain_queue()  # what the pause held goes on now
        if reply_to is not None:
            self.tell(reply_to, SignalApplied(node_id=self.node_id, actions=outcome.actions,
                                              paused=self.pause_state.active_targets()))
