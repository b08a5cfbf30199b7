"""The node actor's System 3 budget half: interprets core.control.budgets for every node.

- At a node's first task of an epoch it opens the epoch (`resource_epoch_opened` when it declares
  a budget); a metasystem then grants each child that declares a token budget its share of its
  own allocation (`resource_allocation_decision` with the reference's `resource_epoch_*` keys),
  and tells the child on the ResourceBargaining channel before any task of that epoch reaches it
  (messages from one actor to another keep their order); the child records what it holds
  (`resource_epoch_granted`). A child's own ResourceBargain is decided against the same account.
- Before it takes a task, a node checks its own account (`dispatch` for a metasystem, `admits`
  for a leaf); with no budget left the task fails with a result naming the budget, and the first
  refusal of the epoch raises an algedonic pain signal to the parent (the root records its own).
- Spending rolls up: a leaf books the tokens its provider call used and puts them on the result
  (`resource_used_tokens`); every metasystem the result passes books them again.

The account is a fold of the node's own events (ledger/evolution_state.load_pauses restores it
at boot, `NodeSetup.pauses`); every decision reads and updates it in O(1).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from attrs import evolve

from ..core.control.budgets import (
    DECISION_EVENT, EPOCH_KEY, EXHAUSTED_EVENT, GRANTED_EVENT, OPENED_EVENT, REFUSED_BY, REFUSED_EVENT,
    RESTORED_EVENT, USED_KEY, Book, BudgetPlan, Refusal, bargain, grant, refusal,
)
from ..core.control.resources import Allocation, epoch_key
from ..core.control.routing import result_envelope
from ..core.model.channel import ChannelPriority, VsmChannelType
from ..core.model.messages import MessageEnvelope
from ..core.model.payloads import (
    AlgedonicSignal, AlgedonicSourceKind, AlgedonicValence, ResourceAllocationDecision, ResourceAllocationStatus,
    ResourceBargain,
)
from ..core.model.task import TaskPacket, TaskResult

PAIN_SEVERITY = 7   # a budget ran out: the level above must re-plan, nothing is broken


class BudgetNode:
    """Mixin for NodeActor (genome, node_id, directory, events, services, record, tell, send_up,
    on_result, is_leaf, pause_state, on_algedonic, coordination_summary...). It sits before
    AlgedonicNode and DispatchQueue in the bases: `on_control_payload` and `dispatch` pass
    through it."""

    book: Book = Book()
    _plan: BudgetPlan = BudgetPlan()
    _epoch: str = ""
    _epoch_ends: datetime | None = None   # the cached epoch key is good until then
    _ungranted: frozenset = frozenset()   # children that declare a budget and hold no grant yet
    _restored: Book | None = None         # rebuilt at boot; recorded once as a snapshot

    def setup_budgets(self, events) -> None:
        self.book = Book.fold(events or (), self.node_id)
        self._restored = self.book if self.book.epoch else None
        self._in_flight: set[str] = set()   # tasks taken and not finished (the message count)

    # -- the epoch -------------------------------------------------------------------------------

    def sync_budgets(self, events: list) -> str | None:
        """The current epoch (None when the genome declares no budget): opens it when it is new
        and grants what the children have not been granted yet."""
        changed = self._plan.genome_id != self.genome.id
        if changed:
            self._plan = BudgetPlan.of_genome(self.genome)
        if not self._plan.active:
            return None
        now = self.services.now()
        if self._epoch_ends is None or now >= self._epoch_ends:
            self._epoch = epoch_key(now)
            self._epoch_ends = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        own = self._plan.of(self.node_id)
        if self._epoch != self.book.epoch:
            self.book = self.book.at(self._epoch).declaring(own)
            self._restored, changed = None, True
            if own.declared:
                events.append(self.events.other(OPENED_EVENT, {
                    EPOCH_KEY: self._epoch, "node_id": self.node_id, "budget_tokens": own.tokens_per_epoch,
                    "budget_messages": own.messages_per_epoch}))
        elif changed:
            self.book = self.book.declaring(own)
        if self._restored is not None:  # a view since boot starts from what the node rebuilt
            events.append(self.events.other(RESTORED_EVENT, self.book.snapshot()))
            self._restored = None
        if changed and not self.is_leaf:
            self._ungranted = frozenset(c for c in self.genome.node(self.node_id).children
                                        if self._plan.of(c).tokens_per_epoch is not None
                                        and c not in self.book.grants.messages)
        if self._ungranted:
            self._grant_children(events, now)
        return self._epoch

    def _grant_children(self, events: list, now) -> None:
        own = self._plan.of(self.node_id)
        if own.tokens_per_epoch is not None and self.book.allocation is None and \
                self.genome.node(self.node_id).parent_id is not None:
            return  # it grants from its own grant, which its parent sends before the epoch's first task
        left = set(self._ungranted)
        for child in sorted(self._ungranted):
            if child not in self.genome.nodes:
                left.discard(child)
                continue
            if self.pause_state.pause_for(self.genome, child) is not None:
                continue  # no grants into a paused subtree: it is granted once resumed
            pressure = self.coordination_summary(child).pressure_for_grants()
            self.book, out = grant(self.genome, self.node_id, self.book, child, self._plan.of(child), now=now,
                                   coordination=pressure)
            events.append(self._decision_event(out, grant=True))
            self.tell(self.directory.get(child), self._decision_envelope(out, None, now))
            left.discard(child)
        self._ungranted = frozenset(left)

    # -- the checks ------------------------------------------------------------------------------

    def dispatch(self, task: TaskPacket, env, events: list, *, from_queue: bool = False) -> bool:
        """A metasystem takes a task only while its own account has budget (a queued task was
        taken already)."""
        if self.sync_budgets(events) is not None and not from_queue:
            why = self._refusal()
            if why is not None:
                self._refuse(task, env, events, why)
                return True
            self._in_flight.add(task.id)
        return super().dispatch(task, env, events, from_queue=from_queue)

    def admits(self, task: TaskPacket, env, events: list) -> bool:
        """A leaf, before its provider call: False when the task failed for want of budget."""
        if self.sync_budgets(events) is None:
            return True
        why = self._refusal()
        if why is None:
            self._in_flight.add(task.id)
            return True
        self._refuse(task, env, events, why)
        return False

    def _refusal(self) -> Refusal | None:
        node = self.genome.node(self.node_id)
        parent = self.genome.nodes.get(node.parent_id) if node.parent_id else None
        return refusal(self.book, node.name, in_flight=len(self._in_flight),
                       granted_by=parent.name if parent is not None else None)

    # -- spending --------------------------------------------------------------------------------

    def spent(self, task: TaskPacket, result: TaskResult, trace, events: list) -> TaskResult:
        """A leaf's call is done: book its tokens, and send them up on the result."""
        if self.sync_budgets(events) is None:
            return result
        tokens = trace.token_total()
        self.book = self.book.spent(tokens)
        self._in_flight.discard(task.id)
        return evolve(result, metadata={**result.metadata, USED_KEY: str(tokens)})

    def booked(self, result: TaskResult, events: list) -> None:
        """A result reached this node: its subtree spent what the leaf put on it."""
        if self.sync_budgets(events) is None:
            return
        self._in_flight.discard(result.task_id)
        if result.produced_by == self.node_id or result.metadata.get(REFUSED_BY) == self.node_id:
            return  # its own execution was booked from the trace; its own refusal was never taken
        try:
            tokens = int(result.metadata.get(USED_KEY) or 0)
        except ValueError:
            tokens = 0
        self.book = self.book.spent(tokens)

    # -- refusal and pain ------------------------------------------------------------------------

    def _refuse(self, task: TaskPacket, env, events: list, why: Refusal) -> None:
        """The task fails here, with a result naming the budget; never lost, never held."""
        key = self.book.epoch
        self.book = evolve(self.book, refused=self.book.refused + 1)
        events.append(self.events.other(REFUSED_EVENT, {
            EPOCH_KEY: key, "node_id": self.node_id, "task_id": task.id, "budget": why.budget, "used": why.used,
            "limit": why.limit, "error": why.message}, task_id=task.id, directive_id=task.directive_id))
        pain = self._pain(task, why, events)
        result = TaskResult.failed(task.id, self.node_id, f"{why.budget} budget exhausted", why.message, metadata={
            "directive_id": task.directive_id or "", REFUSED_BY: self.node_id, "resource_budget": why.budget,
            EPOCH_KEY: key})
        now = self.services.now()
        parent = self.genome.node(self.node_id).parent_id
        if not self.is_leaf:
            self.record(events)
            self._send_pain(pain, parent)
            return self.on_result(result, result_envelope(result, env, self.node_id, self.node_id,
                                                          id=self.services.new_id(), created_at=now))
        target = env.source_node_id or parent
        up = result_envelope(result, env, self.node_id, target, id=self.services.new_id(), created_at=now)
        if target is None:  # a one-node organization
            self.record(events)
            self._send_pain(pain, None)
            return self.on_result(result, up, [])
        self._send_pain(pain, parent)  # before the result: the parent hears why first
        self.send_up(target, up, events)

    def _pain(self, task: TaskPacket, why: Refusal, events: list) -> MessageEnvelope | None:
        """The pain signal of this refusal, once per node and epoch (the book remembers)."""
        if self.book.signaled:
            return None
        self.book = evolve(self.book, signaled=True)
        now = self.services.now()
        parent = self.genome.node(self.node_id).parent_id
        signal = AlgedonicSignal(source=AlgedonicSourceKind.CostMonitor, valence=AlgedonicValence.Pain,
                                 severity=PAIN_SEVERITY, target_node_id=self.node_id, related_task_id=task.id,
                                 message=why.message, created_at=now)
        events.append(self.events.other(EXHAUSTED_EVENT, {
            EPOCH_KEY: self.book.epoch, "node_id": self.node_id, "budget": why.budget, "used": why.used,
            "limit": why.limit, "message": why.message, "task_id": task.id, "signaled_to": parent or self.node_id},
            task_id=task.id, directive_id=task.directive_id))
        return MessageEnvelope.new(VsmChannelType.Algedonic, signal, id=self.services.new_id(), created_at=now,
                                   source_node_id=self.node_id, target_node_id=parent or self.node_id,
                                   priority=ChannelPriority.High,
                                   metadata={EPOCH_KEY: self.book.epoch, "resource_budget_exhausted": why.budget})

    def _send_pain(self, pain: MessageEnvelope | None, parent: str | None) -> None:
        if pain is None:
            return
        if parent is None:
            self.on_algedonic(pain, pain.payload)  # nobody above: the root records its own pain
        else:
            self.tell(self.directory.get(parent), pain)

    # -- the ResourceBargaining channel ----------------------------------------------------------

    def on_control_payload(self, env: MessageEnvelope) -> bool:
        payload = env.payload
        if isinstance(payload, ResourceAllocationDecision) and payload.requested_by == self.node_id:
            self._on_decision(env, payload)
            return True
        if isinstance(payload, ResourceBargain) and not self.is_leaf:
            self._on_bargain(env, payload)
            return True
        return super().on_control_payload(env)

    def _on_decision(self, env: MessageEnvelope, decision: ResourceAllocationDecision) -> None:
        """What the parent granted this node: it holds that much more this epoch."""
        events: list = []
        self.sync_budgets(events)  # opens the epoch; its own grants wait for this one
        key = env.metadata.get(EPOCH_KEY) or epoch_key(decision.created_at)
        if key >= self.book.epoch:
            self.book = self.book.at(key).granted(decision.approved_tokens or 0)
        own = self._plan.of(self.node_id)
        events.append(self.events.other(GRANTED_EVENT, {
            EPOCH_KEY: key, "node_id": self.node_id, "granted_by": env.source_node_id,
            "granted_tokens": decision.approved_tokens or 0, "status": decision.status.value,
            "budget_tokens": own.tokens_per_epoch, "budget_messages": own.messages_per_epoch,
            "reasons": list(decision.reasons)}, correlation_id=env.correlation_id))
        if self._ungranted and key == self._epoch:
            self._grant_children(events, self.services.now())
        self.record(events)

    def _on_bargain(self, env: MessageEnvelope, request: ResourceBargain) -> None:
        """A child asks for resources (reference §3.7): decided against the epoch's account,
        recorded, answered on the same channel."""
        events: list = []
        self.sync_budgets(events)
        now = self.services.now()
        who = request.requested_by
        pause = self.pause_state.pause_for(self.genome, who) if who in self.genome.nodes else None
        pressure = self.coordination_summary(who).pressure_for_grants()
        self.book, out = bargain(self.genome, self.node_id, self.book, request, now=now, coordination=pressure,
                                 paused=pause.reason if pause is not None else None)
        events.append(self._decision_event(out, grant=False, env=env))
        self.record(events)
        self.tell(self.directory.get(who), self._decision_envelope(out, env, now))

    def _decision_event(self, out: Allocation, *, grant: bool, env: MessageEnvelope | None = None):
        d = out.decision
        meta = {**out.metadata, "source_channel": VsmChannelType.ResourceBargaining.value,
                "allocation_policy": d.allocation_policy}
        if grant:
            meta["resource_grant"] = "epoch"
        return self.events.other(DECISION_EVENT, self.services.to_json(d), task_id=d.task_id, metadata=meta,
                                 correlation_id=(env.correlation_id or env.id) if env is not None else None)

    def _decision_envelope(self, out: Allocation, request: MessageEnvelope | None, now) -> MessageEnvelope:
        d = out.decision
        meta = {k: v for k, v in out.metadata.items() if k.startswith(("resource_epoch_", "coordination_"))}
        return MessageEnvelope.new(
            VsmChannelType.ResourceBargaining, d, id=self.services.new_id(), created_at=now,
            source_node_id=self.node_id, target_node_id=d.requested_by,
            priority=ChannelPriority.Normal if d.status is ResourceAllocationStatus.Approved else ChannelPriority.High,
            correlation_id=(request.correlation_id or request.id) if request is not None else None,
            causation_id=request.id if request is not None else None,
            trace=(*(request.trace if request is not None else ()), self.node_id),
            metadata={**meta, "allocation_policy": d.allocation_policy, "allocation_status": d.status.value})
