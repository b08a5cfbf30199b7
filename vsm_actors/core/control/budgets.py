"""Hierarchical budgets in the running organization (issue 12 point 1): each node's account for the
current epoch, as a fold of the node's own ledger events, and the decisions taken on it.

Budgets are declared per node (`NodeBudget`: tokens and task messages per hourly epoch) and
stored where the reference declares them, on the ResourceBargaining channel into the node (the
root's comes from the environment). At the first task of an epoch a metasystem grants every
child that declares a token budget its share, through `resources.allocate` with the metasystem's
own holding as the ceiling: a child's grant never exceeds what its parent has left, and the
grants of one metasystem never sum past its own allocation. Each node then checks its own
account before it takes a task (`refusal`), and spending rolls up: the tokens a leaf's provider
call used ride up on the result (`USED_KEY`), and every ancestor books them.

Why the account is per node and folded from that node's events only: a restarted node rebuilds
it from the ledger alone (`Book.fold`), the views read it the same way, and a decision costs a
few field reads however long the ledger is — the reference rescans 10,000 events per decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from attrs import evolve, field, frozen

from ..model.channel import ChannelConfig, ChannelDirection, VsmChannelType
from ..model.genome import OrganizationalGenome
from ..model.ids import ChannelId, NodeId
from ..model.node import NodeBudget
from ..model.payloads import ResourceBargain
from .resources import Allocation, CoordinationPressure, EpochAccount, allocate, epoch_key

DECISION_EVENT = "resource_allocation_decision"   # a grant the node made (the reference's kind)
GRANTED_EVENT = "resource_epoch_granted"          # a grant the node received
OPENED_EVENT = "resource_epoch_opened"            # a node with a budget of its own starts an epoch
REFUSED_EVENT = "resource_budget_refused"         # a task refused for want of budget
EXHAUSTED_EVENT = "resource_budget_exhausted"     # the first refusal of an epoch: pain raised upward
RESTORED_EVENT = "resource_epoch_restored"        # the account a restarted node rebuilt, as one snapshot
MARK_EVENTS = (OPENED_EVENT, GRANTED_EVENT, DECISION_EVENT, REFUSED_EVENT, EXHAUSTED_EVENT, RESTORED_EVENT)
SPEND_EVENTS = ("task_result_received", "trace_written")   # what spending is folded from

EPOCH_KEY = "resource_epoch_key"
USED_KEY = "resource_used_tokens"                 # result metadata: tokens the leaf's call used
REFUSED_BY = "resource_budget_refused_by"         # result metadata: the node that refused the task
GRANT_JUSTIFICATION = "epoch grant from the parent's allocation"


def environment_channel_id(root: str) -> str:
    return f"environment>{root}:resourcebargaining"


# -- the declarations ------------------------------------------------------------------------

@frozen(kw_only=True)
class BudgetPlan:
    """The budgets a genome declares, by node (only nodes that declare one)."""

    genome_id: str = ""
    budgets: Mapping[str, NodeBudget] = field(factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.budgets)

    def of(self, node_id: str) -> NodeBudget:
        return self.budgets.get(node_id, _NONE)

    @classmethod
    def of_genome(cls, genome: OrganizationalGenome) -> BudgetPlan:
        """One pass over the channels: the smallest budget on any ResourceBargaining channel
        between a node and its parent (either direction; the environment for the root)."""
        tokens: dict[str, int] = {}
        messages: dict[str, int] = {}
        for channel in genome.channels:
            if channel.channel_type is not VsmChannelType.ResourceBargaining or (
                    channel.max_token_budget_per_epoch is None and channel.max_messages_per_epoch is None):
                continue
            node = _budgeted_end(genome, channel)
            if node is None:
                continue
            for value, into in ((channel.max_token_budget_per_epoch, tokens), (channel.max_messages_per_epoch, messages)):
                if value is not None:
                    into[node] = min(value, into.get(node, value))
        budgets = {n: NodeBudget(tokens_per_epoch=tokens.get(n), messages_per_epoch=messages.get(n))
                   for n in sorted({*tokens, *messages})}
        return cls(genome_id=genome.id, budgets=budgets)


_NONE = NodeBudget()


def _budgeted_end(genome: OrganizationalGenome, channel: ChannelConfig) -> str | None:
    a, b = channel.from_, channel.to
    for node, other in ((b, a), (a, b)):
        if node in genome.nodes and genome.node(node).parent_id == other:
            return node  # other is None only for the root: the environment funds it
    return None


def declared_budget(genome: OrganizationalGenome, node_id: str) -> NodeBudget:
    return BudgetPlan.of_genome(genome).of(node_id)


def with_budgets(genome: OrganizationalGenome, budgets: Mapping[str, NodeBudget]) -> OrganizationalGenome:
    """The genome with these budgets on the ResourceBargaining channels into the nodes (added
    where the edge has none; the root's from the environment). What the concise form's `budget:`
    becomes, and how a benchmark puts budgets on an existing genome."""
    channels = list(genome.channels)
    for node_id, budget in budgets.items():
        parent = genome.node(node_id).parent_id
        ends = {parent, node_id}
        found = False
        for i, c in enumerate(channels):
            if c.channel_type is VsmChannelType.ResourceBargaining and {c.from_, c.to} == ends:
                channels[i] = evolve(c, max_token_budget_per_epoch=budget.tokens_per_epoch,
                                     max_messages_per_epoch=budget.messages_per_epoch)
                found = True
        if not found:
            cid = environment_channel_id(node_id) if parent is None else f"{parent}>{node_id}:resourcebargaining"
            channels.append(ChannelConfig(
                id=ChannelId(cid), channel_type=VsmChannelType.ResourceBargaining,
                from_=None if parent is None else NodeId(parent), to=NodeId(node_id),
                direction=ChannelDirection.EnvironmentToNode if parent is None else ChannelDirection.Bidirectional,
                max_token_budget_per_epoch=budget.tokens_per_epoch, max_messages_per_epoch=budget.messages_per_epoch))
    return evolve(genome, channels=tuple(channels))


# -- the account -----------------------------------------------------------------------------

@frozen(kw_only=True)
class Book:
    """One node's account for one epoch: what it may spend, what its subtree spent, what it
    granted its children (`grants`, the resource decider's account)."""

    epoch: str = ""
    budget_tokens: int | None = None      # declared (as the node knew it when the epoch opened)
    budget_messages: int | None = None
    allocation: int | None = None         # granted by the parent this epoch; None: no grant received
    used: int = 0                         # tokens spent by the node's subtree
    messages: int = 0                     # tasks finished
    refused: int = 0
    signaled: bool = False                # pain raised this epoch (once per node and epoch)
    grants: EpochAccount = field(factory=EpochAccount)

    @property
    def limit(self) -> int | None:
        """What the node may spend: its grant, never more than it declares; its declaration
        when no grant came (the root, or a parent without a budget of its own)."""
        caps = [c for c in (self.allocation, self.budget_tokens) if c is not None]
        return min(caps) if caps else None

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    def at(self, key: str) -> Book:
        """This account in epoch `key`: itself, or a fresh one (same declarations) for another epoch."""
        if key == self.epoch:
            return self
        return Book(epoch=key, budget_tokens=self.budget_tokens, budget_messages=self.budget_messages)

    def declaring(self, budget: NodeBudget) -> Book:
        """The declarations of the genome the node runs on now (a live patch may change them)."""
        if (budget.tokens_per_epoch, budget.messages_per_epoch) == (self.budget_tokens, self.budget_messages):
            return self
        return evolve(self, budget_tokens=budget.tokens_per_epoch, budget_messages=budget.messages_per_epoch)

    def spent(self, tokens: int) -> Book:
        return evolve(self, used=self.used + max(tokens, 0), messages=self.messages + 1)

    def granted(self, tokens: int) -> Book:
        return evolve(self, allocation=(self.allocation or 0) + max(tokens, 0))

    def snapshot(self) -> dict[str, Any]:
        return {EPOCH_KEY: self.epoch, "budget_tokens": self.budget_tokens, "budget_messages": self.budget_messages,
                "allocation": self.allocation, "used": self.used, "messages": self.messages, "refused": self.refused,
                "signaled": self.signaled, "granted": dict(sorted(self.grants.tokens.items())),
                "grant_messages": dict(sorted(self.grants.messages.items()))}

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> Book:
        key = str(data.get(EPOCH_KEY) or "")
        return cls(epoch=key, budget_tokens=_int_or_none(data.get("budget_tokens")),
                   budget_messages=_int_or_none(data.get("budget_messages")),
                   allocation=_int_or_none(data.get("allocation")), used=_int(data.get("used")),
                   messages=_int(data.get("messages")), refused=_int(data.get("refused")),
                   signaled=bool(data.get("signaled")),
                   grants=EpochAccount(epoch=key, tokens=_int_map(data.get("granted")),
                                       messages=_int_map(data.get("grant_messages"))))

    # -- the fold ----------------------------------------------------------------------------

    def observe(self, event: Any, node_id: str) -> Book:
        """One of the node's recorded events (`storage_key`, `payload`, `metadata`, `created_at`);
        others leave the account as it is. An event of an earlier epoch than the account's is
        history; one of a later epoch opens that epoch."""
        name = event.storage_key.removeprefix("other:")
        if name not in _FOLDED:
            return self
        payload = event.payload if isinstance(event.payload, Mapping) else {}
        meta = getattr(event, "metadata", None) or {}
        key = str(payload.get(EPOCH_KEY) or meta.get(EPOCH_KEY) or epoch_key(event.created_at)) \
            if name in MARK_EVENTS else epoch_key(event.created_at)
        if key < self.epoch:
            return self
        if name == RESTORED_EVENT:
            return Book.from_snapshot({**payload, EPOCH_KEY: key})
        book = self.at(key)
        if name == "trace_written":
            return book.spent(_int(payload.get("input_tokens")) + _int(payload.get("output_tokens")))
        if name == "task_result_received":
            result_meta = payload.get("metadata") if isinstance(payload.get("metadata"), Mapping) else {}
            if payload.get("produced_by") == node_id or result_meta.get(REFUSED_BY) == node_id:
                return book  # its own execution is booked from its trace; its own refusal was never taken
            return book.spent(_int(result_meta.get(USED_KEY)))
        if name == OPENED_EVENT:
            return evolve(book, budget_tokens=_int_or_none(payload.get("budget_tokens")),
                          budget_messages=_int_or_none(payload.get("budget_messages")))
        if name == GRANTED_EVENT:
            return book.granted(_int(payload.get("granted_tokens")))
        if name == DECISION_EVENT:
            who = payload.get("requested_by")
            return evolve(book, grants=book.grants.record_grant(str(who), _int(payload.get("approved_tokens")), key)) \
                if who else book
        if name == REFUSED_EVENT:
            return evolve(book, refused=book.refused + 1)
        return evolve(book, signaled=True)  # EXHAUSTED_EVENT

    @classmethod
    def fold(cls, events: Iterable[Any], node_id: str) -> Book:
        """The node's account in the latest epoch its events (oldest first) reach."""
        book = cls()
        for event in events:
            book = book.observe(event, node_id)
        return book

    @classmethod
    def fold_epochs(cls, events: Iterable[Any], node_id: str) -> list[Book]:
        """One account per epoch the node's events (oldest first) reach, oldest first."""
        out: list[Book] = []
        book = cls()
        for event in events:
            nxt = book.observe(event, node_id)
            if nxt.epoch != book.epoch and book.epoch:
                out.append(book)
            book = nxt
        if book.epoch:
            out.append(book)
        return out


_FOLDED = frozenset((*MARK_EVENTS, *SPEND_EVENTS))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _int_or_none(value: Any) -> int | None:
    return None if value is None else _int(value)


def _int_map(value: Any) -> dict[str, int]:
    return {str(k): _int(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


# -- the decisions ---------------------------------------------------------------------------

@frozen(kw_only=True)
class Refusal:
    """Why a node takes no more work this epoch."""

    budget: str          # "tokens" or "messages"
    used: int
    limit: int
    message: str


def refusal(book: Book, name: str, *, in_flight: int = 0, granted_by: str | None = None) -> Refusal | None:
    """None when the node may take one more task. Tokens: the subtree spent all the node may
    spend (a task already running may still overshoot: a provider call cannot be stopped
    midway). Messages: finished and running tasks fill the epoch's count."""
    limit = book.limit
    if limit is not None and book.used >= limit:
        why = ""
        if book.allocation is not None and book.budget_tokens is not None and book.allocation < book.budget_tokens:
            why = f" ({granted_by or 'its parent'} granted {book.allocation} of the {book.budget_tokens} it declares)"
        return Refusal(budget="tokens", used=book.used, limit=limit,
                       message=f"token budget of {name} exhausted for epoch {book.epoch}: "
                               f"{book.used} of {limit} used{why}")
    taken = book.messages + in_flight
    if book.budget_messages is not None and taken >= book.budget_messages:
        return Refusal(budget="messages", used=taken, limit=book.budget_messages,
                       message=f"message budget of {name} exhausted for epoch {book.epoch}: "
                               f"{taken} of {book.budget_messages} tasks taken")
    return None


def grant(genome: OrganizationalGenome, controller: str, book: Book, child: str, budget: NodeBudget, *,
          now: datetime, coordination: CoordinationPressure = CoordinationPressure()) -> tuple[Book, Allocation]:
    """The epoch grant of `child`: what it declares, capped by what the controller has left of
    its own allocation (and by System 2 pressure on the child, as the reference caps grants)."""
    bargain = ResourceBargain(requested_by=NodeId(child), requested_tokens=budget.tokens_per_epoch,
                              justification=GRANT_JUSTIFICATION)
    out = allocate(genome, controller, bargain, book.grants, now=now, coordination=coordination,
                   own_budget=book.limit, per_task=False)
    key = out.metadata.get(EPOCH_KEY, book.epoch)
    return evolve(book, grants=book.grants.record(out.decision, key)), out


def bargain(genome: OrganizationalGenome, controller: str, book: Book, request: ResourceBargain, *, now: datetime,
            coordination: CoordinationPressure = CoordinationPressure(), paused: str | None = None,
            pressure=None) -> tuple[Book, Allocation]:
    """A child's own ResourceBargain (reference §3.7), against the same account as the grants."""
    extra = {} if pressure is None else {"pressure": pressure}
    out = allocate(genome, controller, request, book.grants, now=now, coordination=coordination, paused=paused,
                   own_budget=book.limit, **extra)
    key = out.metadata.get(EPOCH_KEY, book.epoch)
    return evolve(book, grants=book.grants.record(out.decision, key)), out
