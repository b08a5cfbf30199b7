"""One actor per genome node. Its behaviour is chosen from the node's *current* state on every
message: a node with children acts as a metasystem (maps, routes, forwards results), a leaf
executes through its model provider. Promotion is therefore a state change, not a restart.

Every handler catches its own errors (Thespian would otherwise retry the message and repeat side
effects) and turns them into failed results and ledger events.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from datetime import timedelta

from attrs import evolve
from thespian.actors import WakeupMessage

from .._posix import exit_when_gone
from ..core.model.channel import VsmChannelType
from ..core.model.events import LedgerEventKind
from ..core.control.harness import NotExecutable, Outcome, check_executable, finish
from ..core.control.ledger_events import EventFactory
from ..core.control.seen_ids import SeenIds
from ..core.control.mapping import (
    MAPPED_SINGLE_TASK, MAPPED_SPLIT_ROOT, SPLIT_POLICY, DirectiveTaskMapper, decompose, wants_decomposition,
)
from ..core.model.messages import MessageEnvelope
from ..core.control.routing import result_envelope
from ..core.model.task import Directive, TaskPacket, TaskResult
from ..providers import ModelProviderError, runs_off_thread
from .algedonic_shell import AlgedonicNode
from .answers_shell import DirectiveAnswers
from .protocol_control import Ping, Pong
from .signed_frames import rejected_frames
from .budget_shell import BudgetNode
from .base import VsmActor
from .coordination_shell import CoordinationNode
from .probe_shell import ProbeNode
from .dispatch_queue import DispatchQueue, OutstandingTasks
from .evolution_shell import EvolvingNode
from .leaf_calls import LeafCalls
from .leaf_worker import POLL_PAYLOAD, OffThreadCalls
from .protocol import (
    ChildRestarted, EventsFlushed, FlushEvents, GenomeAck, GenomeChanged, LedgerWrite, NodeReady,
    NodeSetup, ResultWithEvents, SubmitDirective,
)
from .runtime import Services

log = logging.getLogger("vsm.node")


class NodeActor(EvolvingNode, BudgetNode, AlgedonicNode, CoordinationNode, ProbeNode, DispatchQueue, LeafCalls,
                OffThreadCalls, DirectiveAnswers, VsmActor):
    def __init__(self) -> None:
        super().__init__()
        self.node_id: str | None = None
        self.genome = None
        self.directory: dict = {}
        self.provider = None
        self.executed = SeenIds()                # leaf: task ids started, newest 10,000 (at-most-once)
        self.outstanding = OutstandingTasks()    # metasystem: task id -> (child id, envelope)
        self.queued: list = []                   # metasystem: (task, envelope) waiting for a child with room
        self.pending: dict[str, dict] = {}       # root: correlation id -> directive bookkeeping
        self.recent_answers = OrderedDict()      # root: its latest answers (answers_shell)
        self.early: list = []                    # traffic that beat NodeSetup here (multiprocess)
        self._instructions: tuple = (None, "")   # leaf: (node, its system prompt)
        self.deferred: list = []                 # events held back for the next write (multiprocess)
        self.held_traces: tuple = ()             # traces held likewise
        self.defer_after: timedelta | None = None
        self.flush_armed = False
        self.observed: tuple = ()                # traces of the subtree that came with this result

    # -- wiring ------------------------------------------------------------------------------

    def receiveMsg_NodeSetup(self, msg: NodeSetup, sender) -> None:
        self.node_id, self.genome, self.directory = msg.node_id, msg.genome, msg.directory
        self.ledger, self.supervisor, self.provider_spec, self.config = msg.ledger, msg.supervisor, msg.provider, msg.config
        self.services = Services(msg.id_owner or msg.node_id, msg.config.deterministic_ids)
        self.events = EventFactory(msg.node_id, self.services.new_id, self.services.now, self.services.to_json,
                                   genome_id=msg.genome.id)
        self.mapper = DirectiveTaskMapper()
        own_process = msg.organization_pid is not None and msg.organization_pid != os.getpid()
        self.defer_after = timedelta(milliseconds=msg.config.node_defer_ms) \
            if own_process and msg.config.node_defer_ms > 0 else None
        self.off_thread = not own_process  # in process, blocking provider calls leave the actor thread
        if own_process:
            exit_when_gone(msg.organization_pid)  # an orphan of a dead supervisor would run beside its successor
        self.setup_evolution(msg.evolution)
        self.setup_pauses(msg.pauses)
        self.setup_control(msg.pauses)  # System 2 evidence and System 5 denials, restored with the pauses
        self.setup_budgets(msg.pauses)  # the epoch's budget account, restored likewise
        self.setup_probes(msg.pauses)   # System 4 probes: their last closed windows, restored likewise
        self.tell(sender, NodeReady(node_id=msg.node_id, pid=os.getpid()))
        early, self.early = self.early, []
        for env, origin in early:
            self.receiveMsg_MessageEnvelope(env, origin)

    def receiveMsg_GenomeChanged(self, msg: GenomeChanged, sender) -> None:
        if self.node_id in msg.genome.nodes:
            was_evolving = self.evo is not None
            self.genome, self.directory = msg.genome, msg.directory
            self.events.genome_id = msg.genome.id
            if was_evolving:
                self.champion_moved(msg.genome)
            else:
                self.setup_evolution(None)
            self.drain_queue()  # a new child, or a leaf promoted to a metasystem, may have room
        # the supervisor answers a live patch only once every node acts on the new genome
        self.tell(sender, GenomeAck(node_id=self.node_id, genome_id=msg.genome.id))

    def receiveMsg_ChildRestarted(self, msg: ChildRestarted, sender) -> None:
        self.directory = msg.directory
        for task_id, (child_id, env) in list(self.outstanding.items()):
            if child_id != msg.node_id:
                continue
            retried = env.metadata.get("crash_retry") == "1"
            if self.config.crash_policy == "retry" and not retried:
                again = evolve(env, metadata={**env.metadata, "crash_retry": "1"})
                self.outstanding[task_id] = (child_id, again)
                self.record([self.events.other("task_retried_after_crash", {"task_id": task_id, "child_node_id": child_id},
                                               task_id=task_id)])
                self.tell(self.directory.get(child_id), again)
            else:
                kind = "leaf" if self.genome.node(child_id).is_leaf else "metasystem"
                error = f"{kind} process of {child_id} died while the task was in it"
                self.record([self.events.other("task_failed_after_crash", {"task_id": task_id, "child_node_id": child_id,
                                                                           "error": error}, task_id=task_id)])
                result = TaskResult.failed(task_id, child_id, "worker process died", error,
                                           metadata={"directive_id": env.payload.directive_id or ""})
                self.on_result(result, result_envelope(result, env, child_id, self.node_id, id=self.services.new_id(),
                                                       created_at=self.services.now()))
        self.drain_queue()

    def receiveMsg_Ping(self, msg: Ping, sender) -> None:
        self.tell(sender, Pong(node_id=self.node_id or "", seq=msg.seq, rejected_frames=rejected_frames()))

    def receiveMsg_FlushEvents(self, msg: FlushEvents, sender) -> None:
        self.record([])
        self.tell(sender, EventsFlushed(node_id=self.node_id or ""))

    def receiveMsg_ResultWithEvents(self, msg: ResultWithEvents, sender) -> None:
        self.hold(msg.events, msg.traces)
        self.observed = msg.observed
        try:
            self.receiveMsg_MessageEnvelope(msg.envelope, sender)
        finally:
            self.observed = ()

    def receiveMsg_PatchesApplied(self, msg, sender) -> None:
        if msg.error:
            log.warning("node %s: promotion was not applied: %s", self.node_id, msg.error)

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender) -> None:
        if msg.payload == _FLUSH:
            self.flush_armed = False
            self.record([])
        elif msg.payload == POLL_PAYLOAD:
            self.poll_calls()
        else:
            self.probe_wakeup(msg.payload)

    # -- traffic -----------------------------------------------------------------------------

    def receiveMsg_SubmitDirective(self, msg: SubmitDirective, sender) -> None:
        env = MessageEnvelope.new(_ENV_CHANNEL, msg.directive, id=self.services.new_id(), created_at=self.services.now(),
                                  target_node_id=self.node_id)
        self.pending[env.id] = {"reply_to": msg.reply_to or sender, "directive_id": msg.directive.id, "expected": 1,
                                "results": [], "accepted_at": env.created_at}
        self.receiveMsg_MessageEnvelope(env, sender)

    def receiveMsg_MessageEnvelope(self, env: MessageEnvelope, sender) -> None:
        if self.node_id is None:
            self.early.append((env, sender))
            return
        try:
            events = [self.events.message(_RECEIVED, env)] if self.config.message_events else []
            payload = env.payload
            if isinstance(payload, TaskResult):
                self.on_result(payload, env, events)
            elif isinstance(payload, TaskPacket):
                (self.execute if self.is_leaf else self.route)(payload, env, events)
            elif isinstance(payload, Directive):
                self.on_directive(payload, env, events)
            elif self.on_evolution_payload(env) or self.on_control_payload(env):
                self.record(events)
            else:
                events.append(self.events.other("payload_ignored", {"payload_type": env.payload_type,
                                                                    "envelope_id": env.id}))
                self.record(events)
        except Exception as exc:  # noqa: BLE001 - an actor never dies of a message
            log.exception("node %s failed handling %s", self.node_id, env.payload_type)
            self.fail_envelope(env, f"handler error: {exc}")

    @property
    def is_leaf(self) -> bool:
        return self.genome.node(self.node_id).is_leaf

    # -- metasystem ----------------------------------------------------------------------------

    def on_directive(self, directive: Directive, env: MessageEnvelope, events: list) -> None:
        node = self.genome.node(self.node_id)
        task = self.mapper.map(directive, self.services.new_id, controller_node_id=self.node_id)
        events.append(self.events.directive_accepted(directive, self.genome.id, env))
        plan = decompose(task, node, self.genome, self.services.new_id, directive_metadata=directive.metadata) \
            if node.is_metasystem and wants_decomposition(directive, node) else None
        if plan is None:
            events.append(self.events.task_mapped(task, env, MAPPED_SINGLE_TASK))
            return self.route(task, env, events)
        # System 3 capability split: the root task is recorded, never routed; each plan travels
        # on its own channel inside the directive's correlation, and the directive completes when
        # every plan has reported
        events.append(self.events.task_mapped(plan.root, env, MAPPED_SPLIT_ROOT))
        if env.id in self.pending:
            self.pending[env.id]["expected"] = len(plan.plans)
        for planned in plan.plans:
            synthetic = MessageEnvelope.new(
                planned.channel, planned.task, id=self.services.new_id(), created_at=self.services.now(),
                source_node_id=self.node_id, target_node_id=self.node_id,
                correlation_id=env.correlation_id or env.id, causation_id=env.id, trace=env.trace,
                metadata={"decomposition_policy": SPLIT_POLICY, "decomposition_role": planned.role.value,
                          "source_directive_message_id": env.id})
            events.append(self.events.task_mapped(planned.task, synthetic, planned.role.mapped_policy))
            self.route(planned.task, synthetic, events)
            events = []

    def route(self, task: TaskPacket, env: MessageEnvelope, events: list) -> None:
        if self.is_leaf:
            return self.execute(task, env, events)
        task = self.admit(task, env, events)  # its channel lineage; None: a System 5 denial refused it
        if task is None or (self.evo is not None and self.try_trial_route(task, env, events)):
            return
        self.dispatch(task, env, events)  # to the least loaded able child with room, else queued

    def on_result(self, result: TaskResult, env: MessageEnvelope, events: list | None = None) -> None:
        events = events if events is not None else []
        if result.metadata.get("trial_shadow") == "true" and self.evo is not None:
            return self.shadow_result(result, env, events)  # evidence only: never forwarded
        if self.outstanding.pop(result.task_id, None) is not None:
            self.drain_queue()  # a place is free: what waits goes first (its events before this result's)
        observed = self.observed
        if self.evo is not None:
            self.observe(observed)
            if getattr(self, "retiring", None):
                self.release_candidates()
        directive_id = result.metadata.get("directive_id") or None
        events.append(self.events.result_received(result, env, directive_id))
        self.booked(result, events)  # the subtree's spending rolls up
        self.probe_result(result, observed, events)  # System 4: the subtree's trends
        node = self.genome.node(self.node_id)
        if node.parent_id is not None and env.correlation_id not in self.pending:
            up = result_envelope(result, env, self.node_id, node.parent_id, id=self.services.new_id(),
                                 created_at=self.services.now(), forwarded=True)
            return self.send_up(node.parent_id, up, events, observed=observed)
        waiting = self.pending.get(env.correlation_id)
        if waiting is None:
            events.append(self.events.other("result_without_directive", {"task_id": result.task_id},
                                            task_id=result.task_id))
            return self.record(events)
        waiting["results"].append(result)
        if len(waiting["results"]) < waiting["expected"]:
            return self.record(events)
        del self.pending[env.correlation_id]
        self.answer(waiting, env.correlation_id, events)

    # -- leaf ----------------------------------------------------------------------------------

    def execute(self, task: TaskPacket, env: MessageEnvelope, events: list) -> None:
        if task.id in self.executed:  # duplicate delivery or a retried handler: never run twice
            events.append(self.events.other("duplicate_task_ignored", {"task_id": task.id, "envelope_id": env.id},
                                            task_id=task.id))
            return self.record(events)
        self.executed.add(task.id)
        if not self.admits(task, env, events):  # no budget left: failed, naming it
            return
        started, t0 = self.services.now(), time.perf_counter()
        node = self.genome.node(self.node_id)
        try:
            check_executable(self.genome, self.node_id, task, denied=self.policy.denied)
            request = self.request_for(node, task)
            provider = self.provider_for()
        except (NotExecutable, ModelProviderError) as exc:
            return self.executed_with(task, env, events, started, self.outcome(node, None, exc, _ms_since(t0)))
        if self.off_thread and runs_off_thread(provider):
            # the outcome comes back as this actor's own message (leaf_worker); the others work meanwhile
            self.record(events)
            return self.call_off_thread(lambda: provider.complete(request), lambda value, error, seconds: self.resume(
                task, env, node, started, value, error, int(seconds * 1000)))
        try:
            response, error = provider.complete(request), None
        except ModelProviderError as exc:
            response, error = None, exc
        self.executed_with(task, env, events, started, self.outcome(node, response, error, _ms_since(t0)))

    def resume(self, task: TaskPacket, env: MessageEnvelope, node, started, response, error, ms: int) -> None:
        """A provider call that ran off the actor's thread is done: finish the task here."""
        try:
            if error is not None and not isinstance(error, ModelProviderError):
                raise error
            self.executed_with(task, env, [], started, self.outcome(node, response, error, ms))
        except Exception as exc:  # noqa: BLE001 - as in receiveMsg_MessageEnvelope
            log.exception("node %s failed finishing %s", self.node_id, task.id)
            self.fail_envelope(env, f"handler error: {exc}")

    def executed_with(self, task: TaskPacket, env: MessageEnvelope, events: list, started, outcome: Outcome) -> None:
        result, trace = finish(self.genome, self.node_id, task, env, outcome, trace_id=self.services.new_id(),
                               started_at=started, completed_at=self.services.now())
        result = self.spent(task, result, trace, events)  # booked here, and carried up to every ancestor
        events.append(self.events.trace_written(trace))
        target = env.source_node_id or self.genome.node(self.node_id).parent_id
        up = result_envelope(result, env, self.node_id, target, id=self.services.new_id(),
                             created_at=self.services.now())
        if target is None:  # a one-node organization: the root ran the directive itself
            self.record(events, traces=(trace,))
            return self.on_result(result, up, [])
        self.send_up(target, up, events, traces=(trace,), observed=(trace,))

    # -- shared --------------------------------------------------------------------------------

    def fail_envelope(self, env: MessageEnvelope, error: str) -> None:
        task_id = getattr(env.payload, "id", None) or getattr(env.payload, "task_id", None) or env.id
        events = [self.events.other("handler_failed", {"envelope_id": env.id, "payload_type": env.payload_type,
                                                       "error": error}, task_id=task_id)]
        # a directive this node accepted from a client still gets its answer, whatever failed
        key = env.id if isinstance(env.payload, Directive) else env.correlation_id
        waiting = self.pending.pop(key, None) if isinstance(env.payload, (Directive, TaskResult)) else None
        if waiting is not None:
            return self.answer(waiting, env.correlation_id or env.id, events, error=error)
        self.record(events)
        if isinstance(env.payload, TaskPacket):
            result = TaskResult.failed(task_id, self.node_id, "node failed to handle task", error,
                                       metadata={"directive_id": env.payload.directive_id or ""})
            target = env.source_node_id
            self.tell(self.directory.get(target), result_envelope(
                result, env, self.node_id, target, id=self.services.new_id(), created_at=self.services.now()))

    def record(self, events: list, then=None, to=None, traces: tuple = (), defer: bool = False) -> None:
        """Send events to the ledger, any held back first (order is kept). With `defer` and
        `defer_after` set, hold them instead: a task routed down comes back up through this node,
        and its result carries them (`send_up`); a wakeup sends them otherwise."""
        if defer and self.defer_after is not None:
            return self.hold(events)
        if self.deferred or self.held_traces:
            events, self.deferred = [*self.deferred, *events], []
            traces, self.held_traces = (*self.held_traces, *traces), ()
        if events or traces or then is not None:
            self.tell(self.ledger, LedgerWrite(events=tuple(events), traces=traces, then=then, to=to))

    def hold(self, events, traces: tuple = ()) -> None:
        self.deferred.extend(events)
        self.held_traces += tuple(traces)
        if self.defer_after is not None and not self.flush_armed and (self.deferred or self.held_traces):
            self.flush_armed = True
            self.wakeupAfter(self.defer_after, payload=_FLUSH)

    def send_up(self, target: str | None, up: MessageEnvelope, events: list, traces: tuple = (),
                observed: tuple = ()) -> None:
        """A result to the node that sent the task. On the multiprocess base, where every message
        costs hundreds of microseconds, the events and traces this node would write ride with it,
        with all it holds: the root writes a directive's events in one message, and the
        directive's completion follows every level's events, not only the root's."""
        address = self.directory.get(target)
        if self.defer_after is None or address is None:
            self.record(events, traces=traces)
            # the metasystems above observe the subtree's traces (audit window, trial evidence)
            return self.tell(address, ResultWithEvents(envelope=up, observed=observed)
                             if observed and self.config.evolution else up)
        events, self.deferred = (*self.deferred, *events), []
        traces, self.held_traces = (*self.held_traces, *traces), ()
        self.tell(address, ResultWithEvents(envelope=up, events=events, traces=traces, observed=observed))


def _ms_since(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)


_FLUSH = "vsm.flush-held-events"
_ENV_CHANNEL = VsmChannelType.OperationToEnvironment
_RECEIVED = LedgerEventKind.MessageReceived
