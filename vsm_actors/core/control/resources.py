"""System 3 resource bargaining (reference §3.7), as a pure decider over a folded epoch account.

A child asks its metasystem for tokens, tool permissions and context refs; the answer follows the
reference's `system3_genome_resource_policy_v1` (genome switches, channel budgets per hourly
epoch, caps from the child's context policy, the 3-4 homeostat and System 2 pressure). What the
reference lacks: budgets are **hierarchical** — a metasystem's grants to all its children in an
epoch never exceed the budget its own parent's channel gives it, so no grant anywhere exceeds
what the level above has left — and the account is a fold of the decisions (`EpochAccount`), not
a rescan of the latest 10,000 events per decision. Exhaustion is reported (`exhausted`) so the
shell raises an algedonic pain signal upward instead of failing silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from attrs import evolve, field, frozen

from ..model.channel import VsmChannelType
from ..model.genome import OrganizationalGenome
from ..model.payloads import ResourceAllocationDecision, ResourceAllocationStatus, ResourceBargain
from .environment import PressureSummary

POLICY = "system3_genome_resource_policy_v1"


def epoch_key(now: datetime) -> str:
    """Hourly epochs, as the reference keys them."""
    return now.strftime("%Y-%m-%dT%H:00:00Z")


@frozen(kw_only=True)
class EpochAccount:
    """What a metasystem granted in the current epoch: messages and tokens per child."""

    epoch: str = ""
    messages: Mapping[str, int] = field(factory=dict)
    tokens: Mapping[str, int] = field(factory=dict)

    def for_epoch(self, key: str) -> EpochAccount:
        return self if self.epoch == key else EpochAccount(epoch=key)

    def granted(self) -> int:
        return sum(self.tokens.values())

    def record(self, decision: ResourceAllocationDecision, key: str) -> EpochAccount:
        """Every bargain costs a message (denied ones too); approved tokens count against budget."""
        return self.record_grant(decision.requested_by, decision.approved_tokens or 0, key)

    def record_grant(self, who: str, tokens: int, key: str) -> EpochAccount:
        """The same from a recorded decision's payload (the fold of `resource_allocation_decision`)."""
        account = self.for_epoch(key)
        return evolve(account, messages={**account.messages, who: account.messages.get(who, 0) + 1},
                      tokens={**account.tokens, who: account.tokens.get(who, 0) + tokens})


@frozen(kw_only=True)
class CoordinationPressure:
    """System 2 evidence on the requester (§3.8) as it bears on token grants."""

    affects_allocation: bool = False
    max_severity: int = 0
    oscillation_count: int = 0
    pressure: float = 0.0


@frozen(kw_only=True)
class Allocation:
    decision: ResourceAllocationDecision
    metadata: dict[str, str]
    exhausted: str | None = None   # which budget ran out, for an algedonic pain signal upward


def channel_budgets(genome: OrganizationalGenome, a: str, b: str) -> tuple[int | None, int | None]:
    """(tokens, messages) per epoch on the ResourceBargaining channels between a and b: the
    smallest declared in either direction, None when none is."""
    tokens, messages = [], []
    for channel in genome.channels:
        if channel.channel_type is not VsmChannelType.ResourceBargaining or {channel.from_, channel.to} != {a, b}:
            continue
        if channel.max_token_budget_per_epoch is not None:
            tokens.append(channel.max_token_budget_per_epoch)
        if channel.max_messages_per_epoch is not None:
            messages.append(channel.max_messages_per_epoch)
    return (min(tokens) if tokens else None), (min(messages) if messages else None)


def parent_allowance(genome: OrganizationalGenome, controller: str, account: EpochAccount) -> int | None:
    """What the controller may still grant this epoch under its own parent's channel budget."""
    node = genome.node(controller)
    if node.parent_id is None:
        return None
    budget, _ = channel_budgets(genome, node.parent_id, controller)
    return None if budget is None else max(budget - account.granted(), 0)


_FROM_GENOME = object()


def allocate(genome: OrganizationalGenome, controller: str, bargain: ResourceBargain, account: EpochAccount, *,
             now: datetime, pressure: PressureSummary = PressureSummary(),
             coordination: CoordinationPressure = CoordinationPressure(),
             paused: str | None = None, own_budget: int | None | object = _FROM_GENOME,
             per_task: bool = True) -> Allocation:
    """`own_budget`: what the controller itself holds this epoch (the grant its parent made it,
    core.control.budgets), when the caller knows it; by default its parent's channel budget.
    `per_task=False` for an epoch grant: the per-task caps (System 3 default task budget, the
    child's context cap) bound one task, not a whole epoch, so they do not apply."""
    key = epoch_key(now)
    account = account.for_epoch(key)
    who = bargain.requested_by
    task_id = bargain.task_id if bargain.task_id is not None else (
        bargain.proposed_task.id if bargain.proposed_task is not None else None)
    meta = {"resource_epoch_key": key, "requested_by": who}

    def denied(*reasons: str, exhausted: str | None = None) -> Allocation:
        decision = ResourceAllocationDecision(
            requested_by=who, task_id=task_id, status=ResourceAllocationStatus.Denied,
            denied_tool_permissions=bargain.requested_tool_permissions,
            denied_context_refs=bargain.requested_context_refs, reasons=reasons, allocation_policy=POLICY,
            created_at=now)
        return Allocation(decision=decision, metadata={**meta, "allocation_status": "Denied"}, exhausted=exhausted)

    if bargain.task_id and bargain.proposed_task is not None and bargain.task_id != bargain.proposed_task.id:
        return denied(f"resource bargain task_id {bargain.task_id} does not match proposed_task id "
                      f"{bargain.proposed_task.id}")
    if paused is not None:
        return denied(f"ResourceBargaining denied because subtree {who} is paused by algedonic signal: {paused}")
    if controller not in genome.nodes:
        return denied(f"controller node unavailable: {controller}")
    if who not in genome.nodes:
        return denied(f"requesting node unavailable: {who}")
    if genome.node(who).parent_id != controller:
        return denied("requesting node is not a direct System 1 child of this System 3 controller")
    parent, child = genome.node(controller), genome.node(who)
    if not parent.system_3.can_allocate_budget:
        return denied("System 3 resource allocation disabled by genome policy")
    token_budget, message_budget = channel_budgets(genome, controller, who)
    used_tokens, used_messages = account.tokens.get(who, 0), account.messages.get(who, 0)
    if message_budget is not None and message_budget - used_messages <= 0:
        out = denied("ResourceBargaining message budget exhausted for this epoch", exhausted="messages")
        out.metadata.update(epoch_metadata(key, used_messages, used_tokens, 0, token_budget, message_budget))
        return out

    reasons: list[str] = []
    approved_tokens, exhausted = None, None
    requested = bargain.requested_tokens
    if requested is not None:
        caps = [c for c in (parent.system_3.default_task_budget_tokens, child.context_policy.max_total_task_tokens)
                if c is not None] if per_task else []
        cap = min(caps) if caps else None
        cap = _pressure_cap(requested, cap, pressure, coordination, reasons)
        remaining = None if token_budget is None else max(token_budget - used_tokens, 0)
        allowance = parent_allowance(genome, controller, account) if own_budget is _FROM_GENOME else (
            None if own_budget is None else max(own_budget - account.granted(), 0))
        for left, what in ((remaining, "ResourceBargaining epoch budget"), (allowance, "the parent's budget")):
            if left is None:
                continue
            if left == 0:
                reasons.append("ResourceBargaining token budget exhausted for this epoch" if what.startswith("Res")
                               else f"token budget from {parent.parent_id or 'the environment'} exhausted "
                                    f"for this epoch")
                exhausted = "tokens"
            elif (cap is None or left < cap) and requested > left:
                reasons.append(f"requested_tokens={requested} capped_to={left} by {what}")
            cap = left if cap is None else min(cap, left)
        if cap == 0:
            reasons.append("token request denied because effective token cap is zero")
        elif cap is not None and cap < requested:
            approved_tokens = cap
            reasons.append(f"requested_tokens={requested} capped_to={cap} by System 3 resource policy")
        else:
            approved_tokens = requested

    tools_ok, tools_no = _split(bargain.requested_tool_permissions, lambda p: _tool_allowed(child, p))
    refs_ok, refs_no = _split(bargain.requested_context_refs, lambda r: _ref_allowed(child, r))
    reasons += [f"tool_permission_denied={p}" for p in tools_no] + [f"context_ref_denied={r}" for r in refs_no]
    requested_count = (requested is not None) + len(bargain.requested_tool_permissions) + len(
        bargain.requested_context_refs)
    approved_count = (approved_tokens is not None) + len(tools_ok) + len(refs_ok)
    denied_count = len(tools_no) + len(refs_no) + (requested is not None and approved_tokens is None) + (
        approved_tokens is not None and requested is not None and approved_tokens < requested)
    if requested_count == 0:
        status = ResourceAllocationStatus.Denied
        reasons.append("no concrete resource request supplied")
    elif approved_count == requested_count and denied_count == 0:
        status = ResourceAllocationStatus.Approved
        reasons.append("resource bargain approved within System 3 policy")
    elif approved_count > 0:
        status = ResourceAllocationStatus.PartiallyApproved
    else:
        status = ResourceAllocationStatus.Denied
    meta.update(epoch_metadata(key, used_messages, used_tokens, approved_tokens or 0, token_budget, message_budget))
    decision = ResourceAllocationDecision(
        requested_by=who, task_id=task_id, status=status, approved_tokens=approved_tokens,
        approved_tool_permissions=tools_ok, denied_tool_permissions=tools_no, approved_context_refs=refs_ok,
        denied_context_refs=refs_no, reasons=tuple(reasons), allocation_policy=POLICY, created_at=now)
    return Allocation(decision=decision, metadata={**meta, "allocation_status": status.value}, exhausted=exhausted)


def _pressure_cap(requested: int, cap: int | None, pressure: PressureSummary, coordination: CoordinationPressure,
                  reasons: list[str]) -> int | None:
    if pressure.homeostat_count > 0 and pressure.max_severity >= 7 and pressure.risk_pressure >= 7.0:
        divisor = 4 if pressure.max_severity >= 9 or pressure.risk_pressure >= 12.0 else 2
        cap = _tighten(requested, cap, divisor, "Three-Four homeostat resource pressure", reasons)
    if coordination.affects_allocation:
        divisor = 4 if (coordination.max_severity >= 8 or coordination.oscillation_count > 1
                        or coordination.pressure >= 16.0) else 2
        cap = _tighten(requested, cap, divisor, "System 2 coordination pressure", reasons)
    return cap


def _tighten(requested: int, cap: int | None, divisor: int, why: str, reasons: list[str]) -> int:
    pcap = max(requested // divisor, 1)
    if cap is None or pcap < cap:
        reasons.append(f"requested_tokens={requested} capped_to={pcap} by {why}")
        return pcap
    return cap


def _split(items, allowed) -> tuple[tuple[str, ...], tuple[str, ...]]:
    ok = tuple(i for i in items if allowed(i))
    return ok, tuple(i for i in items if i not in ok)


def _tool_allowed(node, permission: str) -> bool:
    spec = node.permissions
    if permission in spec.denied_tools:
        return False
    if spec.allowed_tools:
        return permission in spec.allowed_tools
    if not node.tools:
        return True
    return any(t.enabled and (t.name == permission or permission in t.permissions) for t in node.tools)


def _ref_allowed(node, ref: str) -> bool:
    policy = node.context_policy
    if not policy.fixed_context_refs and not policy.retrievable_context_refs:
        return True
    return ref in policy.fixed_context_refs or ref in policy.retrievable_context_refs


def epoch_metadata(key: str, count: int, allocated: int, approved: int, token_budget: int | None,
                   message_budget: int | None) -> dict[str, str]:
    """The reference's `resource_epoch_*` keys (on the event, the reply and an accepted task)."""
    out = {"resource_epoch_key": key, "resource_epoch_allocation_count_before": str(count),
           "resource_epoch_allocation_count_after": str(count + 1),
           "resource_epoch_allocated_before_tokens": str(allocated), "resource_epoch_approved_tokens": str(approved)}
    if token_budget is not None:
        before = max(token_budget - allocated, 0)
        out.update({"resource_epoch_budget_tokens": str(token_budget),
                    "resource_epoch_remaining_before_tokens": str(before),
                    "resource_epoch_remaining_after_tokens": str(max(before - approved, 0))})
    if message_budget is not None:
        before = max(message_budget - count, 0)
        out.update({"resource_epoch_message_budget": str(message_budget),
                    "resource_epoch_remaining_messages_before": str(before),
                    "resource_epoch_remaining_messages_after": str(max(before - 1, 0))})
    return out
