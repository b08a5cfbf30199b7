"""Algedonic signals (reference §3.9) as a pure decider: the override order, pause and resume of
subtrees (a pause covers the target's whole subtree, a later resume lifts it), one-hop escalation,
the freeze hook, and pause state rebuilt from recorded events as it was built live."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from vsm_actors.core.control.algedonic import PauseState, decide
from vsm_actors.core.model.events import LedgerEvent
from vsm_actors.core.model.payloads import (
    AlgedonicOverridePolicy, AlgedonicSignal, AlgedonicSourceKind, AlgedonicValence,
)
from vsm_actors.core.model.variants import Other
from vsm_actors.files.genome_files import parse_genome_text

T0 = datetime(2026, 12, 6, tzinfo=timezone.utc)
GENOME = parse_genome_text("""
id: alg
root:
  id: root
  name: root
  children:
    - name: team
      children:
        - {name: coder, leaf_operation: coding}
        - {name: tester, leaf_operation: tester}
    - {name: solo, leaf_operation: coding}
""", name="alg.yaml")


def signal(target=None, **policy):
    return AlgedonicSignal(source=AlgedonicSourceKind.Ci, valence=AlgedonicValence.Pain, severity=8,
                           target_node_id=target, message="CI is red",
                           override_policy=AlgedonicOverridePolicy(**policy) if policy else None, created_at=T0)


def test_no_policy_changes_nothing():
    out = decide(signal(), "root", GENOME, PauseState(), now=T0)
    assert out.actions == () and out.events == ()


def test_the_override_order_and_its_actions():
    out = decide(signal("team", freeze_mutation=True, pause_subtree=True, escalate_to_root=True,
                        require_human_confirmation=True), "team", GENOME, PauseState(), now=T0, active_trial_id="tr-1")
    assert out.actions == ("freeze_mutation", "freeze_mutation_no_related_suggestion_active_trial",
                           "active_trial_frozen=tr-1", "subtree_paused=team", "escalated_to_parent",
                           "require_human_confirmation")
    assert out.freeze and out.pause == "team" and out.escalate
    assert [name for name, _ in out.events] == ["algedonic_subtree_paused", "algedonic_escalated",
                                                "algedonic_override_applied"]
    root = decide(signal(escalate_to_root=True), "root", GENOME, PauseState(), now=T0)
    assert root.at_root and not root.escalate and root.actions == ("escalation_at_root",)
    nothing = decide(signal(freeze_mutation=True), "root", GENOME, PauseState(), now=T0)
    assert not nothing.freeze and nothing.actions == ("freeze_mutation", "freeze_mutation_no_related_suggestion")


def test_a_pause_covers_the_subtree_until_a_later_resume():
    out = decide(signal("team", pause_subtree=True), "root", GENOME, PauseState(), now=T0)
    state = out.state
    assert state.pause_for(GENOME, "coder").reason == "CI is red"
    assert state.pause_for(GENOME, "team") is not None and state.pause_for(GENOME, "solo") is None
    assert state.pause_for(GENOME, "coder").metadata()["algedonic_paused_target_node_id"] == "team"
    resumed = decide(signal("team", resume_subtree=True), "root", GENOME, state, now=T0 + timedelta(seconds=1)).state
    assert resumed.pause_for(GENOME, "coder") is None
    again = decide(signal("team", pause_subtree=True), "root", GENOME, resumed, now=T0 + timedelta(seconds=2)).state
    assert again.pause_for(GENOME, "tester") is not None


def as_events(outcomes_and_times):
    events = []
    for n, (out, at) in enumerate(outcomes_and_times):
        for name, payload in out.events:
            events.append(LedgerEvent(id=f"e{n}-{name}", kind=Other(name), created_at=at, node_id="root",
                                      payload=payload))
    return events


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["team", "coder", "solo", "root"]), st.booleans()), max_size=12))
def test_pause_state_folded_from_events_equals_the_live_state(steps):
    state, history = PauseState(), []
    for n, (target, pause) in enumerate(steps):
        at = T0 + timedelta(seconds=n)
        out = decide(signal(target, pause_subtree=pause, resume_subtree=not pause), "root", GENOME, state, now=at)
        state = out.state
        history.append((out, at))
    restored = PauseState.fold(as_events(history))
    for node in GENOME.nodes:
        live, again = state.pause_for(GENOME, node), restored.pause_for(GENOME, node)
        assert (live is None) == (again is None)
        if live is not None:
            assert (live.target, live.at, live.reason) == (again.target, again.at, again.reason)
