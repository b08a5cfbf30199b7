"""System 2 coordination (reference §3.8), as pure deciders.

A metasystem's System 2 damps the oscillations among its System 1 units. Two things live here:

- `decide_signal`: a `System2CoordinationSignal` (contention, oscillation, a blocked dependency)
  is recorded, and when it is strong enough a dampening task is built for the affected child,
  exactly as the reference builds it (title, goal, dependencies, risk, the `coordination_*`
  metadata), travelling on System2Coordination;
- `CoordinationState`: the coordination evidence about each child, a **fold** of the node's
  `system2_coordination_signal` events (`observe` one event at a time), from which `summary(child)`
  answers in constant time what the reference recomputes by rescanning its latest 100 signal
  events on every resource bargain. Unlike the reference (§9.12) evidence also decays: a signal
  older than `HORIZON` no longer counts. The summary is what `resources.allocate` reads
  (`CoordinationSummary.pressure()`);
Peer handoffs and the channel annotations of routed tasks are in `lineage.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from attrs import field, frozen

from ..model.channel import VsmChannelType
from ..model.genome import OrganizationalGenome
from ..model.ids import IdFactory, NodeId, TaskId
from ..model.messages import MessageEnvelope
from ..model.payloads import System2CoordinationKind, System2CoordinationSignal
from ..model.task import RiskClass, TaskPacket
from ..model.variants import debug_name
from .resources import CoordinationPressure

SIGNAL_EVENT = "system2_coordination_signal"
DAMPENING_EVENT = "system2_dampening_task_created"
DAMPENING_POLICY = "system2_dampening_v1"
MAPPED_DAMPENING = "system2_dampening_signal"          # the TaskMapped policy of a dampening task

WINDOW = 100                      # the reference's latest 100 signal events ...
HORIZON = timedelta(hours=1)      # ... of the last hour (the reference keeps them forever)
MAX_REASONS = 8
_COUNTED = {"Contention": 4, "Oscillation": 5, "DependencyBlocked": 3}  # pressure weight in quarters


# -- signals and dampening ------------------------------------------------------------------------


def kind_name(kind: Any) -> str:
    """A coordination kind as the reference's Debug prints it (`Contention`, `Other("x")`); also
    reads the wire form `{"Other": "x"}` of a recorded payload."""
    if isinstance(kind, Mapping) and len(kind) == 1:
        (tag, value), = kind.items()
        return f'{tag}("{value}")'
    return debug_name(kind) if kind is not None else "Other"


def needs_dampening(signal: System2CoordinationSignal) -> bool:
    """Contention or oscillation of severity 5 or more, a blocked dependency of 7 or more."""
    severity = signal.severity or 0
    if signal.kind in (System2CoordinationKind.Contention, System2CoordinationKind.Oscillation):
        return severity >= 5
    return signal.kind is System2CoordinationKind.DependencyBlocked and severity >= 7


@frozen(kw_only=True)
class SignalDecision:
    """What a signal makes the node do: record `event` (name, payload, links, metadata) and, when
    dampening is needed, map and route `task` as if it arrived in `envelope`."""

    event: tuple[str, dict, dict]
    task: TaskPacket | None = None
    envelope: MessageEnvelope | None = None


def decide_signal(signal: System2CoordinationSignal, env: MessageEnvelope, controller: str,
                  genome: OrganizationalGenome, *, new_id: IdFactory, now: datetime) -> SignalDecision:
    kind = kind_name(signal.kind)
    payload = {
        "coordinator_node_id": signal.coordinator_node_id, "source_node_id": signal.source_node_id,
        "target_node_id": signal.target_node_id, "affected_node_ids": list(signal.affected_node_ids),
        "affected_task_ids": list(signal.affected_task_ids), "kind": kind, "summary": signal.summary,
        "evidence": list(signal.evidence), "severity": signal.severity,
        "source_channel": env.channel_type.value, "source_payload_type": env.payload_type,
        "causation_id": env.causation_id, "correlation_id": env.correlation_id,
        "metadata": dict(sorted(signal.metadata.items())), "receiving_node_id": controller,
    }
    metadata = {"source_channel": env.channel_type.value, "coordination_kind": kind}
    if signal.severity is not None:
        metadata["severity"] = str(signal.severity)
    links = {"task_id": signal.affected_task_ids[0] if signal.affected_task_ids else None,
             "correlation_id": env.correlation_id, "metadata": metadata}
    event = (SIGNAL_EVENT, payload, links)
    if not needs_dampening(signal) or not genome.node(controller).children:
        return SignalDecision(event=event)
    task = dampening_task(signal, env, controller, genome, new_id)
    synthetic = MessageEnvelope.new(
        VsmChannelType.System2Coordination, task, id=new_id(), created_at=now,
        source_node_id=NodeId(controller), target_node_id=NodeId(controller),
        correlation_id=env.correlation_id or env.id, causation_id=env.id, trace=env.trace,
        metadata={"coordination_policy": DAMPENING_POLICY, "coordination_signal_message_id": env.id})
    return SignalDecision(event=event, task=task, envelope=synthetic)


def dampening_task(signal: System2CoordinationSignal, env: MessageEnvelope, controller: str,
                   genome: OrganizationalGenome, new_id: IdFactory) -> TaskPacket:
    """The reference's dampening task: for the first of the target and the affected nodes that
    is a direct child of the controller (else whichever child the router picks)."""
    kind = kind_name(signal.kind)
    goal = f"Coordinate affected System 1 units to dampen {kind}. Summary: {signal.summary}"
    if signal.evidence:
        goal += " Evidence: " + "; ".join(signal.evidence)
    meta = {"coordination_policy": DAMPENING_POLICY, "coordination_kind": kind,
            "coordination_signal_message_id": env.id,
            "coordination_source_node_id": signal.source_node_id or signal.coordinator_node_id}
    if signal.target_node_id:
        meta["coordination_target_node_id"] = meta["target_child"] = signal.target_node_id
    if signal.severity is not None:
        meta["coordination_severity"] = str(signal.severity)
    if signal.affected_node_ids:
        meta["coordination_affected_node_ids"] = ",".join(signal.affected_node_ids)
    if signal.affected_task_ids:
        meta["coordination_affected_task_ids"] = ",".join(signal.affected_task_ids)
    meta.update({"requires_code_write": "false", "decomposition_authority": "system2",
                 "vsm_coordination_summary": signal.summary})
    children = genome.node(controller).children
    candidates = [c for c in (signal.target_node_id, *signal.affected_node_ids) if c]
    assigned = next((c for c in candidates if c in children), None)
    return TaskPacket(id=TaskId(new_id()), title=f"Dampen System 2 {kind}", goal=goal,
                      dependencies=tuple(signal.affected_task_ids),
                      risk=RiskClass.High if (signal.severity or 0) >= 8 else RiskClass.Medium,
                      assigned_to=None if assigned is None else NodeId(assigned), metadata=meta)


def dampening_event(task: TaskPacket, child_id: str | None, signal: System2CoordinationSignal,
                    env: MessageEnvelope, *, queued: bool = False) -> tuple[str, dict, dict]:
    payload = {"coordination_task_id": task.id, "child_node_id": child_id, "kind": kind_name(signal.kind),
               "severity": signal.severity, "affected_task_ids": list(signal.affected_task_ids),
               "source_channel": env.channel_type.value, "correlation_id": env.correlation_id,
               "causation_id": env.causation_id, "queued": queued}
    return DAMPENING_EVENT, payload, {"task_id": task.id}


# -- the evidence fold ----------------------------------------------------------------------------


@frozen(kw_only=True)
class CoordinationSummary:
    """The reference's `CoordinationPressureSummary` for one child."""

    event_count: int = 0
    contention_count: int = 0
    oscillation_count: int = 0
    dependency_blocked_count: int = 0
    pressure: float = 0.0
    max_severity: int = 0
    reasons: tuple[str, ...] = ()

    @property
    def affects_allocation(self) -> bool:
        return self.event_count > 0 and (self.max_severity >= 5 or self.pressure >= 8.0)

    def pressure_for_grants(self) -> CoordinationPressure:
        """What `resources.allocate` reads."""
        return CoordinationPressure(affects_allocation=self.affects_allocation, max_severity=self.max_severity,
                                    oscillation_count=self.oscillation_count, pressure=self.pressure)

    def metadata(self) -> dict[str, str]:
        """The `coordination_*` keys of a resource decision's event and reply."""
        out = {"coordination_pressure_count": str(self.event_count),
               "coordination_contention_count": str(self.contention_count),
               "coordination_oscillation_count": str(self.oscillation_count),
               "coordination_dependency_blocked_count": str(self.dependency_blocked_count),
               "coordination_pressure": f"{self.pressure:.3f}",
               "coordination_max_severity": str(self.max_severity)}
        if self.reasons:
            out["coordination_pressure_reasons"] = "|".join(self.reasons)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"event_count": self.event_count, "contention_count": self.contention_count,
                "oscillation_count": self.oscillation_count,
                "dependency_blocked_count": self.dependency_blocked_count, "pressure": self.pressure,
                "max_severity": self.max_severity, "reasons": list(self.reasons)}


@frozen
class _Entry:
    seq: int
    at: datetime
    nodes: tuple[str, ...]     # source, target and affected nodes, each once
    kind: str | None           # a counted kind, or None (recorded, but no pressure)
    severity: int
    reason: str


_NO_SEVERITIES = (0,) * 11


@frozen
class _Tally:
    """One child's running counts over the entries in the window that involve it."""

    count: int = 0
    by_kind: tuple[int, int, int] = (0, 0, 0)     # contention, oscillation, dependency blocked
    quarters: int = 0                             # pressure x 4, exact under subtraction
    severities: tuple[int, ...] = _NO_SEVERITIES  # entries per severity 0..10, for the max
    reasons: tuple[tuple[int, str], ...] = ()     # the newest MAX_REASONS (seq, reason), oldest first

    def step(self, entry: _Entry, sign: int) -> _Tally:
        i = ("Contention", "Oscillation", "DependencyBlocked").index(entry.kind)
        by_kind = tuple(n + sign if j == i else n for j, n in enumerate(self.by_kind))
        severities = tuple(n + sign if s == entry.severity else n for s, n in enumerate(self.severities))
        if sign > 0:
            reasons = (*self.reasons, (entry.seq, entry.reason))[-MAX_REASONS:]
        else:  # the oldest entry leaves: among the newest eight only when there are no more
            reasons = tuple(r for r in self.reasons if r[0] != entry.seq)
        return _Tally(count=self.count + sign, by_kind=by_kind,  # type: ignore[arg-type]
                      quarters=self.quarters + sign * _COUNTED[entry.kind] * max(entry.severity, 1),
                      severities=severities, reasons=reasons)


@frozen(kw_only=True)
class CoordinationState:
    """The latest `WINDOW` signal events of the last `HORIZON`, oldest first, and a tally per
    child of the counted ones involving it. Each step costs the signal's nodes, never the
    ledger's size."""

    window: tuple[_Entry, ...] = ()
    tallies: Mapping[str, _Tally] = field(factory=dict)
    seq: int = 0

    @classmethod
    def fold(cls, events: Iterable[Any]) -> CoordinationState:
        state = cls()
        for event in events:
            state = state.observe(event)
        return state

    def observe(self, event: Any) -> CoordinationState:
        """One recorded event (with `storage_key`, `payload`, `metadata`, `created_at`); other
        events leave the state as it is."""
        if event.storage_key.removeprefix("other:") != SIGNAL_EVENT:
            return self
        payload = event.payload if isinstance(event.payload, Mapping) else {}
        meta = getattr(event, "metadata", None) or {}
        kind = kind_name(payload.get("kind") or meta.get("coordination_kind") or "Other")
        raw = payload.get("severity")
        if not isinstance(raw, int) or isinstance(raw, bool):
            raw = int(meta["severity"]) if str(meta.get("severity", "")).isdigit() else 1
        severity = max(0, min(raw, 10))
        nodes = tuple(dict.fromkeys(n for n in (payload.get("source_node_id"), payload.get("target_node_id"),
                                                 *(payload.get("affected_node_ids") or ())) if isinstance(n, str) and n))
        entry = _Entry(self.seq, event.created_at, nodes, kind if kind in _COUNTED else None, severity,
                       f"system2_coordination kind={kind} severity={severity}")
        tallies = dict(self.tallies)
        if entry.kind is not None:
            for node in nodes:
                tallies[node] = tallies.get(node, _Tally()).step(entry, +1)
        state = CoordinationState(window=(*self.window, entry), tallies=tallies, seq=self.seq + 1)
        return state._evict(len(state.window) - WINDOW, event.created_at - HORIZON)

    def expire(self, now: datetime) -> CoordinationState:
        """Without what is older than `HORIZON` at `now`."""
        return self._evict(0, now - HORIZON)

    def _evict(self, surplus: int, before: datetime) -> CoordinationState:
        n = max(surplus, 0)
        while n < len(self.window) and self.window[n].at < before:
            n += 1
        if n == 0:
            return self
        tallies = dict(self.tallies)
        for entry in self.window[:n]:
            if entry.kind is None:
                continue
            for node in entry.nodes:
                left = tallies[node].step(entry, -1)
                if left.count:
                    tallies[node] = left
                else:
                    del tallies[node]
        return CoordinationState(window=self.window[n:], tallies=tallies, seq=self.seq)

    def summary(self, child: str) -> CoordinationSummary:
        tally = self.tallies.get(child)
        if tally is None:
            return CoordinationSummary()
        contention, oscillation, blocked = tally.by_kind
        return CoordinationSummary(
            event_count=tally.count, contention_count=contention, oscillation_count=oscillation,
            dependency_blocked_count=blocked, pressure=tally.quarters / 4,
            max_severity=max(s for s, n in enumerate(tally.severities) if n), reasons=tuple(r for _, r in tally.reasons))


def summarize(events: Iterable[Any], child: str, *, now: datetime | None = None) -> CoordinationSummary:
    """The summary the reference computes, from a list of events at once (tests, views)."""
    state = CoordinationState.fold(events)
    return (state.expire(now) if now is not None else state).summary(child)
