"""Ledger events a node emits, built from what it just decided (ids, clock and JSON encoder are
passed in). Payload shapes follow reference §2.2, keeping the keys a lineage query needs."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from ..model.events import LedgerEvent, LedgerEventKind
from ..model.messages import MessageEnvelope
from .routing import RouteDecision
from ..model.task import Directive, TaskPacket, TaskResult
from ..model.variants import Other

# task metadata keys copied into TaskRouted payloads when present (handoff, management,
# coordination and command relays)
_RELAYED_PREFIXES = ("handoff_", "management_", "coordination_", "command_", "trial_")


DIRECTIVE_COMPLETED, DIRECTIVE_FAILED = Other("directive_completed"), Other("directive_failed")
ENDING_KINDS = (DIRECTIVE_COMPLETED, DIRECTIVE_FAILED)  # the one answer every directive gets


def directive_ending(directive_id: str, results, error: str | None, latency_ms: int | None) -> tuple[Other, dict]:
    """`directive_completed` or `directive_failed` and its payload: the one answer a directive
    gets, without the outputs (they are in the results' events); what views and a resuming run read."""
    failed = [r for r in results if not r.succeeded]
    ok = error is None and not failed
    payload = {
        "directive_id": directive_id, "status": "Completed" if ok else "Failed",
        "task_ids": [r.task_id for r in results], "produced_by": sorted({r.produced_by for r in results}),
        "error": error if error is not None else (failed[0].error if failed else None),
        "failed_tasks": len(failed), "latency_ms": latency_ms,
    }
    return (DIRECTIVE_COMPLETED if ok else DIRECTIVE_FAILED), payload


class EventFactory:
    """Builds events for one node; `new_id`, `now` and `to_json` come from the actor shell.
    `genome_id` (the genome the node runs on, kept current by the shell) is set on every event
    that does not name another (a trial route names its candidate's)."""

    def __init__(self, node_id: str, new_id: Callable[[], str], now: Callable[[], datetime],
                 to_json: Callable[[object], object], genome_id: str | None = None) -> None:
        self.node_id, self.new_id, self.now, self.to_json = node_id, new_id, now, to_json
        self.genome_id = genome_id

    def _event(self, kind, payload, **links) -> LedgerEvent:
        links.setdefault("node_id", self.node_id)
        if links.get("genome_id") is None:
            links["genome_id"] = self.genome_id
        return LedgerEvent(id=self.new_id(), kind=kind, created_at=self.now(), payload=payload, **links)

    def directive_accepted(self, directive: Directive, genome_id: str, env: MessageEnvelope) -> LedgerEvent:
        return self._event(LedgerEventKind.DirectiveAccepted, self.to_json(directive), directive_id=directive.id,
                           genome_id=genome_id, correlation_id=env.correlation_id or env.id)

    def task_mapped(self, task: TaskPacket, env: MessageEnvelope, policy: str) -> LedgerEvent:
        payload = {
            "controller_node_id": self.node_id, "task_id": task.id, "task_title": task.title,
            "directive_id": task.directive_id, "parent_task_id": task.parent_task_id,
            "dependency_task_ids": list(task.dependencies), "decomposition_policy": policy,
            "decomposition_authority": task.metadata.get("decomposition_authority", "system3"),
            "source_channel": env.channel_type.value, "source_payload_type": env.payload_type,
            "causation_id": env.causation_id, "correlation_id": env.correlation_id,
            "target_state": task.target_state, "risk": task.risk.value, "metadata": dict(sorted(task.metadata.items())),
        }
        return self._event(LedgerEventKind.TaskMapped, payload, task_id=task.id, directive_id=task.directive_id,
                           correlation_id=env.correlation_id or env.id)

    def task_routed(self, task: TaskPacket, parent_name: str, decision: RouteDecision, incoming: MessageEnvelope | None,
                    outbound: MessageEnvelope, genome_id: str) -> LedgerEvent:
        payload = {
            "parent_node_id": self.node_id, "child_node_id": decision.child_id, "task_id": task.id,
            "task_title": task.title, "directive_id": task.directive_id, "parent_task_id": task.parent_task_id,
            "dependency_task_ids": list(task.dependencies), "reason": decision.reason, "parent_name": parent_name,
            "is_trial_route": "trial_id" in task.metadata, "is_shadow_route": task.metadata.get("trial_shadow") == "true",
            "suggestion_id": task.metadata.get("trial_id"), "routed_genome_id": genome_id,
            "source_channel": incoming.channel_type.value if incoming else None,
            "outbound_channel": outbound.channel_type.value, "channel_priority": outbound.priority.value,
            "causation_id": incoming.causation_id if incoming else None,
            "correlation_id": outbound.correlation_id, "envelope_id": outbound.id,
            # what chose the child: a routing rule (and the word it matched) or the capabilities
            "routing_rule_id": decision.rule_id, "routing_keyword": decision.keyword,
            "routing_capabilities": list(decision.capabilities),
        }
        relayed = [k for k in task.metadata if k.startswith(_RELAYED_PREFIXES)]
        payload.update((k, task.metadata[k]) for k in sorted(relayed))
        return self._event(LedgerEventKind.TaskRouted, payload, task_id=task.id, directive_id=task.directive_id,
                           genome_id=genome_id, correlation_id=outbound.correlation_id)

    def result_received(self, result: TaskResult, env: MessageEnvelope, directive_id: str | None) -> LedgerEvent:
        return self._event(LedgerEventKind.TaskResultReceived, self.to_json(result), task_id=result.task_id,
                           directive_id=directive_id, correlation_id=env.correlation_id)

    def directive_ended(self, directive_id: str, correlation_id: str, results, error: str | None,
                        accepted_at: datetime | None) -> LedgerEvent:
        now = self.now()
        latency = None if accepted_at is None else max(0, int((now - accepted_at).total_seconds() * 1000))
        kind, payload = directive_ending(directive_id, results, error, latency)
        return self._event(kind, payload, directive_id=directive_id, correlation_id=correlation_id)

    def other(self, name: str, payload: dict, **links) -> LedgerEvent:
        return self._event(Other(name), payload, **links)

    def message(self, kind: LedgerEventKind, env: MessageEnvelope) -> LedgerEvent:
        return LedgerEvent.for_message(kind, env, id=self.new_id(), created_at=self.now(), to_json=self.to_json)

    def trace_written(self, trace) -> LedgerEvent:
        return LedgerEvent.for_trace(trace, id=self.new_id(), created_at=self.now(), to_json=self.to_json,
                                     directive_id=trace.metadata.get("directive_id"),
                                     correlation_id=trace.metadata.get("correlation_id"))
