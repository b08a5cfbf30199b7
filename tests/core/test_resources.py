"""System 3 resource bargaining (reference §3.7 and its tests 51-57) as a pure decider, plus what
the reference lacks: hierarchical budgets (a metasystem never grants more in an epoch than its own
parent's channel gives it) and exhaustion reported for an algedonic pain signal."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st

from vsm_actors.core.control.environment import PressureSummary
from vsm_actors.core.control.resources import (
    CoordinationPressure, EpochAccount, allocate, epoch_key,
)
from vsm_actors.core.model.payloads import ResourceAllocationStatus, ResourceBargain
from vsm_actors.core.model.task import TaskPacket
from vsm_actors.files.genome_files import parse_genome_text

NOW = datetime(2026, 12, 6, 21, 40, tzinfo=timezone.utc)


def genome(extra_root="", child="", channels=""):
    return parse_genome_text(f"""
id: rb
root:
  id: root
  name: root
  {extra_root}
  children:
    - name: coder
      leaf_operation: coding
      {child}
{channels}
""", name="rb.yaml")


F1 = genome(extra_root="system_3: {default_task_budget_tokens: 1000}",
            child="permissions: {allowed_tools: [read_filesystem], denied_tools: [network]}\n"
                  "      context_policy: {retrievable_context_refs: ['repo://src']}")


def bargain(tokens=None, tools=(), refs=(), **kw):
    return ResourceBargain(requested_by="coder", requested_tokens=tokens, requested_tool_permissions=tuple(tools),
                           requested_context_refs=tuple(refs), justification="need it", **kw)


def test_51_a_policy_bounded_partial_approval():
    out = allocate(F1, "root", bargain(1500, ["read_filesystem", "network"], ["repo://src", "secret://prod"]),
                   EpochAccount(), now=NOW)
    d = out.decision
    assert d.status is ResourceAllocationStatus.PartiallyApproved and d.approved_tokens == 1000
    assert (d.approved_tool_permissions, d.denied_tool_permissions) == (("read_filesystem",), ("network",))
    assert (d.approved_context_refs, d.denied_context_refs) == (("repo://src",), ("secret://prod",))
    assert out.metadata["allocation_status"] == "PartiallyApproved"


RB = genome(extra_root="system_3: {default_task_budget_tokens: 2000}", channels="""
channels:
  - {id: rb-budget, from: root, to: coder, channel_type: ResourceBargaining, max_token_budget_per_epoch: 1000,
     max_messages_per_epoch: 3}
""")


def test_52_the_epoch_budget_accumulates_approved_tokens():
    account = EpochAccount()
    first = allocate(RB, "root", bargain(700), account, now=NOW)
    assert first.decision.status is ResourceAllocationStatus.Approved and first.decision.approved_tokens == 700
    assert first.metadata["resource_epoch_budget_tokens"] == "1000"
    assert first.metadata["resource_epoch_remaining_after_tokens"] == "300"
    account = account.record(first.decision, epoch_key(NOW))
    second = allocate(RB, "root", bargain(700), account, now=NOW)
    assert second.decision.status is ResourceAllocationStatus.PartiallyApproved
    assert second.decision.approved_tokens == 300
    assert any("ResourceBargaining epoch budget" in r for r in second.decision.reasons)
    assert (second.metadata["resource_epoch_allocated_before_tokens"], second.metadata[
        "resource_epoch_remaining_before_tokens"], second.metadata["resource_epoch_remaining_after_tokens"]) == (
        "700", "300", "0")
    # the next hour is a new epoch
    later = allocate(RB, "root", bargain(700), account.record(second.decision, epoch_key(NOW)),
                     now=NOW.replace(hour=22))
    assert later.decision.approved_tokens == 700


def test_53_the_message_budget_denies_after_its_cap_and_says_it_ran_out():
    account = EpochAccount()
    for _ in range(3):
        out = allocate(RB, "root", bargain(tools=["read_filesystem"]), account, now=NOW)
        assert out.decision.status is ResourceAllocationStatus.Approved
        account = account.record(out.decision, epoch_key(NOW))
    out = allocate(RB, "root", bargain(tools=["read_filesystem"]), account, now=NOW)
    assert out.decision.status is ResourceAllocationStatus.Denied and out.exhausted == "messages"
    assert "message budget exhausted" in out.decision.reasons[0]
    assert out.metadata["resource_epoch_remaining_messages_before"] == "0"


def test_54_a_proposed_task_lends_its_id():
    task = TaskPacket(id="t-1", title="work", goal="g")
    out = allocate(F1, "root", bargain(500, proposed_task=task), EpochAccount(), now=NOW)
    assert out.decision.status is ResourceAllocationStatus.Approved and out.decision.task_id == "t-1"
    mismatch = allocate(F1, "root", bargain(500, proposed_task=task, task_id="t-2"), EpochAccount(), now=NOW)
    assert mismatch.decision.status is ResourceAllocationStatus.Denied
    assert "does not match proposed_task id t-1" in mismatch.decision.reasons[0]


def test_55_and_56_pressure_constrains_tokens():
    homeostat = PressureSummary(event_count=1, homeostat_count=1, max_severity=8, risk_pressure=12.0)
    out = allocate(F1, "root", bargain(800), EpochAccount(), now=NOW, pressure=homeostat)
    assert out.decision.approved_tokens == 200
    assert any("Three-Four homeostat resource pressure" in r for r in out.decision.reasons)
    contention = CoordinationPressure(affects_allocation=True, max_severity=8, pressure=8.0)
    out = allocate(F1, "root", bargain(800), EpochAccount(), now=NOW, coordination=contention)
    assert out.decision.approved_tokens == 200 and out.decision.status is ResourceAllocationStatus.PartiallyApproved
    assert any("System 2 coordination pressure" in r for r in out.decision.reasons)


def test_57_the_genome_switch_and_a_pause_deny():
    off = genome(extra_root="system_3: {can_allocate_budget: false}")
    out = allocate(off, "root", bargain(100), EpochAccount(), now=NOW)
    assert out.decision.status is ResourceAllocationStatus.Denied and out.decision.approved_tokens is None
    assert "disabled by genome policy" in out.decision.reasons[0]
    paused = allocate(F1, "root", bargain(100), EpochAccount(), now=NOW, paused="CI is red")
    assert "is paused by algedonic signal: CI is red" in paused.decision.reasons[0]


TEAM = parse_genome_text("""
id: hier
root:
  id: root
  name: root
  children:
    - name: team
      children:
        - {name: a, leaf_operation: coding}
        - {name: b, leaf_operation: coding}
channels:
  - {id: root-team, from: root, to: team, channel_type: ResourceBargaining, max_token_budget_per_epoch: 1000}
  - {id: team-a, from: team, to: a, channel_type: ResourceBargaining, max_token_budget_per_epoch: 800}
  - {id: team-b, from: team, to: b, channel_type: ResourceBargaining, max_token_budget_per_epoch: 800}
""", name="hier.yaml")


def test_a_child_is_never_granted_more_than_its_parent_has_left():
    account = EpochAccount()
    a = allocate(TEAM, "team", ResourceBargain(requested_by="a", requested_tokens=700, justification="j"), account,
                 now=NOW)
    assert a.decision.approved_tokens == 700
    account = account.record(a.decision, epoch_key(NOW))
    b = allocate(TEAM, "team", ResourceBargain(requested_by="b", requested_tokens=700, justification="j"), account,
                 now=NOW)
    assert b.decision.approved_tokens == 300  # b's own channel would allow 800; the team has 300 left
    assert any("by the parent's budget" in r for r in b.decision.reasons)
    account = account.record(b.decision, epoch_key(NOW))
    c = allocate(TEAM, "team", ResourceBargain(requested_by="a", requested_tokens=10, justification="j"), account,
                 now=NOW)
    assert c.decision.status is ResourceAllocationStatus.Denied and c.exhausted == "tokens"
    assert any("token budget from root exhausted" in r for r in c.decision.reasons)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 1500)), max_size=12))
def test_grants_in_a_subtree_never_exceed_the_parents_allocation(requests):
    account = EpochAccount()
    for who, tokens in requests:
        out = allocate(TEAM, "team", ResourceBargain(requested_by=who, requested_tokens=tokens, justification="j"),
                       account, now=NOW)
        account = account.record(out.decision, epoch_key(NOW))
        assert account.tokens.get(who, 0) <= 800
    assert account.granted() <= 1000
