"""Environment signals and the pressure they put on a metasystem (reference §3.12).

A `vsm.environment_signal` is recorded under a name that says where it came from (its channel);
three of those names and the 3-4 homeostat's signal count as pressure. The summary of the latest
100 such events of a node is what selection reads (environment-pressure bonuses, §3.14.6) and
what resource caps and decomposition read (the metasystem-control issue). A node's own System 4
probes (probes.py) record their signals as if they arrived on FutureProbeToEnvironment, so they
count as pressure exactly as a probe signal from outside does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen

# arrival channel -> event name; any other channel gives "environment_signal", not pressure
SIGNAL_EVENT_BY_CHANNEL = {
    "OperationToEnvironment": "operation_environment_signal",
    "FutureProbeToEnvironment": "future_probe_environment_signal",
    "EnvironmentToEnvironment": "environment_interaction_signal",
}
HOMEOSTAT_EVENT = "three_four_homeostat_signal"
PRESSURE_EVENTS = frozenset({*SIGNAL_EVENT_BY_CHANNEL.values(), HOMEOSTAT_EVENT})
PRESSURE_WINDOW = 100
MAX_REASONS = 8

_RISK_KINDS = {"Risk": 1.0, "DependencyChange": 0.75, "FutureRisk": 1.0, "PresentConstraint": 1.0,
               "ResourceImbalance": 1.0, "CoordinationDebt": 1.0}
_OPPORTUNITY_KINDS = {"Opportunity": 1.0, "CapabilityChange": 0.75, "FutureOpportunity": 1.0, "CapabilityGap": 1.0}
_FEEDBACK_KINDS = {"UserFeedback": 1.0}


def event_name(event: Any) -> str:
    """The event's name without the `other:` of kinds outside the reference's enum."""
    key = event.storage_key
    return key[6:] if key.startswith("other:") else key


def is_pressure_event(event: Any) -> bool:
    return event_name(event) in PRESSURE_EVENTS


def signal_event_name(channel: str) -> str:
    return SIGNAL_EVENT_BY_CHANNEL.get(channel, "environment_signal")


@frozen(kw_only=True)
class PressureSummary:
    event_count: int = 0
    risk_pressure: float = 0.0
    opportunity_pressure: float = 0.0
    feedback_pressure: float = 0.0
    future_probe_count: int = 0
    environment_interaction_count: int = 0
    homeostat_count: int = 0
    max_severity: int = 0
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"event_count": self.event_count, "risk_pressure": self.risk_pressure,
                "opportunity_pressure": self.opportunity_pressure, "feedback_pressure": self.feedback_pressure,
                "future_probe_count": self.future_probe_count,
                "environment_interaction_count": self.environment_interaction_count,
                "homeostat_count": self.homeostat_count, "max_severity": self.max_severity,
                "reasons": list(self.reasons)}

    def metadata(self) -> dict[str, str]:
        out = {"environment_signal_count": str(self.event_count),
               "environment_risk_pressure": f"{self.risk_pressure:.3f}",
               "environment_opportunity_pressure": f"{self.opportunity_pressure:.3f}",
               "environment_feedback_pressure": f"{self.feedback_pressure:.3f}",
               "environment_max_severity": str(self.max_severity),
               "three_four_homeostat_count": str(self.homeostat_count)}
        if self.reasons:
            out["environment_pressure_reasons"] = "|".join(self.reasons)
        return out


def summarize_pressure(events: Iterable[Any]) -> PressureSummary:
    """The pressure of the latest `PRESSURE_WINDOW` pressure events (oldest first), each an object
    with `storage_key`, `payload` (a mapping) and `metadata`; other events are skipped."""
    relevant = [e for e in events if event_name(e) in PRESSURE_EVENTS][-PRESSURE_WINDOW:]
    count = probes = interactions = homeostats = max_severity = 0
    risk = opportunity = feedback = 0.0
    reasons: list[str] = []
    for event in relevant:
        payload: Mapping[str, Any] = event.payload if isinstance(event.payload, Mapping) else {}
        count += 1
        raw = payload.get("severity")
        severity = min(raw if isinstance(raw, int) and not isinstance(raw, bool) else 1, 10)
        max_severity = max(max_severity, severity)
        kind = _kind_name(payload.get("kind"))
        channel = str(payload.get("source_channel") or event.metadata.get("source_channel") or "Unknown")
        p = max(severity, 1)
        risk += _RISK_KINDS.get(kind, 0.0) * p
        opportunity += _OPPORTUNITY_KINDS.get(kind, 0.0) * p
        feedback += _FEEDBACK_KINDS.get(kind, 0.0) * p
        if channel == "FutureProbeToEnvironment":
            probes += 1
            opportunity += 0.35 * p if kind != "Opportunity" else 0.0
        elif channel == "EnvironmentToEnvironment":
            interactions += 1
            risk += 0.35 * p if kind != "Risk" else 0.0
        elif channel == "ThreeFourHomeostat":
            homeostats += 1
            balance = _kind_name(payload.get("balance")) or "Balanced"
            if balance == "FutureDominant":
                opportunity += 0.5 * p
            elif balance in ("PresentDominant", "Conflict"):
                risk += 0.5 * p
            else:
                feedback += 0.25 * p
        if event_name(event) == HOMEOSTAT_EVENT and channel != "ThreeFourHomeostat":
            homeostats += 1
        if len(reasons) < MAX_REASONS:
            reasons.append(f"environment_signal channel={channel} kind={kind} severity={severity}")
    return PressureSummary(event_count=count, risk_pressure=risk, opportunity_pressure=opportunity,
                           feedback_pressure=feedback, future_probe_count=probes,
                           environment_interaction_count=interactions, homeostat_count=homeostats,
                           max_severity=max_severity, reasons=tuple(reasons))


def _kind_name(value: Any) -> str:
    """A kind as the wire writes it: "Risk", or {"Other": "x"} for a kind outside the enum."""
    if value is None:
        return "Observation"
    if isinstance(value, Mapping) and len(value) == 1:
        return str(next(iter(value.values())))
    return str(getattr(value, "value", value))
