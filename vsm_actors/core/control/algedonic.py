"""Algedonic signals (reference §3.9): pain and pleasure that bypass the normal channels, and the
pause state of a metasystem's subtrees, as a pure decider and a fold of the node's events.

`decide` applies a signal's override policy in the reference's fixed order — freeze mutation
trials, pause, resume, escalate one level up, require human confirmation — and returns what the
shell must do (record, freeze the trial, forward to the parent). `PauseState` is folded from the
node's `algedonic_subtree_paused` / `_resumed` events, so a pause survives a restart: the state is
rebuilt from the ledger the same way it was built live.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from attrs import evolve, field, frozen

from ..model.genome import OrganizationalGenome
from ..model.payloads import AlgedonicSignal

PAUSED_EVENT = "algedonic_subtree_paused"
RESUMED_EVENT = "algedonic_subtree_resumed"
DEFAULT_PAUSE_REASON = "algedonic pause_subtree"


@frozen(kw_only=True)
class Pause:
    target: str
    at: datetime
    reason: str = DEFAULT_PAUSE_REASON
    severity: int = 1
    require_human_confirmation: bool = False

    def metadata(self) -> dict[str, str]:
        return {"algedonic_subtree_paused": "true", "algedonic_paused_target_node_id": self.target,
                "algedonic_paused_at": self.at.isoformat(), "algedonic_pause_reason": self.reason,
                "algedonic_pause_severity": str(self.severity),
                "algedonic_require_human_confirmation": str(self.require_human_confirmation).lower()}


@frozen(kw_only=True)
class PauseState:
    """The latest pause and resume of each target this controller has recorded."""

    pauses: dict[str, Pause] = field(factory=dict)
    resumes: dict[str, datetime] = field(factory=dict)

    def paused(self, target: str, pause: Pause) -> PauseState:
        return evolve(self, pauses={**self.pauses, target: pause})

    def resumed(self, target: str, at: datetime) -> PauseState:
        return evolve(self, resumes={**self.resumes, target: at})

    def active_targets(self) -> tuple[str, ...]:
        """Targets paused now (not resumed since)."""
        return tuple(sorted(t for t, p in self.pauses.items()
                            if (r := self.resumes.get(t)) is None or r < p.at))

    def pause_for(self, genome: OrganizationalGenome, node_id: str) -> Pause | None:
        """The pause covering `node_id` (a pause of it or of an ancestor, later than its resume)."""
        found = None
        for target, pause in self.pauses.items():
            if target not in genome.nodes or node_id not in genome.subtree_ids(target):
                continue
            resumed = self.resumes.get(target)
            if resumed is not None and resumed >= pause.at:
                continue
            if found is None or pause.at > found.at:
                found = pause
        return found

    @classmethod
    def fold(cls, events: Iterable[Any]) -> PauseState:
        """From the controller's pause and resume events, oldest first (name, payload, created_at)."""
        state = cls()
        for event in events:
            name = event.storage_key.removeprefix("other:")
            payload = event.payload if isinstance(event.payload, dict) else {}
            target = payload.get("target_node_id")
            if not target:
                continue
            if name == PAUSED_EVENT:
                severity = payload.get("severity")
                state = state.paused(target, Pause(
                    target=target, at=event.created_at, reason=payload.get("message") or DEFAULT_PAUSE_REASON,
                    severity=min(severity if isinstance(severity, int) and not isinstance(severity, bool) else 1, 10),
                    require_human_confirmation=bool(payload.get("require_human_confirmation"))))
            elif name == RESUMED_EVENT:
                state = state.resumed(target, event.created_at)
        return state


@frozen(kw_only=True)
class AlgedonicOutcome:
    actions: tuple[str, ...] = ()
    freeze: bool = False            # end the active trial as frozen (the evolution shell's freeze hook)
    pause: str | None = None        # subtree to pause
    resume: str | None = None       # subtree to resume
    escalate: bool = False          # forward the signal to the parent, one hop
    at_root: bool = False           # escalation asked for at the root: nowhere further
    state: PauseState = field(factory=PauseState)
    events: tuple[tuple[str, dict], ...] = ()   # (event name, payload) to record, in order


def decide(signal: AlgedonicSignal, controller: str, genome: OrganizationalGenome, state: PauseState, *,
           now: datetime, active_trial_id: str | None = None) -> AlgedonicOutcome:
    policy = signal.override_policy
    if policy is None:  # valence and severity alone change nothing
        return AlgedonicOutcome(state=state)
    actions: list[str] = []
    events: list[tuple[str, dict]] = []
    target = signal.target_node_id or controller
    freeze = pause = resume = None
    escalate = at_root = False
    if policy.freeze_mutation:
        actions.append("freeze_mutation")
        if signal.related_suggestion_id is None and active_trial_id is None:
            actions.append("freeze_mutation_no_related_suggestion")
        else:
            if signal.related_suggestion_id is None:
                actions.append("freeze_mutation_no_related_suggestion_active_trial")
            freeze = True
            actions.append(f"active_trial_frozen={signal.related_suggestion_id or active_trial_id}")
    payload = {"target_node_id": target, "message": signal.message, "severity": signal.severity,
               "source": getattr(signal.source, "value", str(signal.source)),
               "require_human_confirmation": policy.require_human_confirmation}
    if policy.pause_subtree:
        pause = target
        state = state.paused(target, Pause(target=target, at=now, reason=signal.message or DEFAULT_PAUSE_REASON,
                                           severity=min(max(signal.severity, 1), 10),
                                           require_human_confirmation=policy.require_human_confirmation))
        events.append((PAUSED_EVENT, payload))
        actions.append(f"subtree_paused={target}")
    if policy.resume_subtree:
        resume = target
        state = state.resumed(target, now)
        events.append((RESUMED_EVENT, payload))
        actions.append(f"subtree_resumed={target}")
    if policy.escalate_to_root:
        if genome.node(controller).parent_id is not None:
            escalate = True
            events.append(("algedonic_escalated", {**payload, "escalated_to": genome.node(controller).parent_id}))
            actions.append("escalated_to_parent")
        else:
            at_root = True
            events.append(("algedonic_escalation_at_root", payload))
            actions.append("escalation_at_root")
    if policy.require_human_confirmation:
        actions.append("require_human_confirmation")
    flags = {k: getattr(policy, k) for k in ("pause_subtree", "resume_subtree", "escalate_to_root",
                                             "freeze_mutation", "require_human_confirmation")}
    events.append(("algedonic_override_applied", {"actions": actions, **flags, "target_node_id": target}))
    return AlgedonicOutcome(actions=tuple(actions), freeze=bool(freeze), pause=pause, resume=resume,
                            escalate=escalate, at_root=at_root, state=state, events=tuple(events))
