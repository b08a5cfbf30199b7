"""Peer lineage (reference §3.4, §3.11), as pure deciders: peer handoffs
(`vsm.operation_handoff`) become tasks for the named child, and every task routed from
OperationToOperation or ManagementToOperation traffic carries its channel's annotations on the
task, its envelope and the route event (`annotate_incoming`, `annotate_outbound`,
`relayed_metadata`).
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import evolve, frozen

from ..model.channel import VsmChannelType
from ..model.genome import OrganizationalGenome
from ..model.ids import IdFactory, TaskId
from ..model.messages import MessageEnvelope
from ..model.payloads import OperationHandoff, OperationHandoffKind
from ..model.task import RiskClass, TaskPacket
from .coordination import kind_name

HANDOFF_EVENT = "operation_handoff_received"
MAPPED_HANDOFF = "operation_handoff"
REJECTED_EVENT = "coordination_payload_rejected"


# -- peer handoffs (OperationToOperation) ----------------------------------------------------------


@frozen(kw_only=True)
class HandoffDecision:
    events: tuple[tuple[str, dict, dict], ...]
    task: TaskPacket | None = None
    error: str | None = None


def decide_handoff(handoff: OperationHandoff, env: MessageEnvelope, controller: str, genome: OrganizationalGenome,
                   *, new_id: IdFactory) -> HandoffDecision:
    """A peer's handoff to a sibling, through their metasystem (reference §3.11)."""
    kind = kind_name(handoff.kind)
    received = (HANDOFF_EVENT, {
        "source_node_id": handoff.source_node_id, "target_node_id": handoff.target_node_id,
        "related_task_id": handoff.related_task_id, "dependency_task_ids": list(handoff.dependency_task_ids),
        "kind": kind, "title": handoff.title, "summary": handoff.summary, "artifact_count": len(handoff.artifacts),
        "evidence": list(handoff.evidence), "metadata": dict(sorted(handoff.metadata.items())),
        "source_channel": env.channel_type.value, "source_payload_type": env.payload_type,
        "correlation_id": env.correlation_id, "causation_id": env.causation_id,
    }, {"task_id": handoff.related_task_id or (handoff.dependency_task_ids[0] if handoff.dependency_task_ids else None),
        "correlation_id": env.correlation_id,
        "metadata": {"source_channel": env.channel_type.value, "handoff_operation_kind": kind}})
    if handoff.target_node_id not in genome.node(controller).children:
        error = f"no routeable child found for node {controller} and task {handoff.title}"
        return HandoffDecision(events=(received, rejected(env, error, handoff.related_task_id)), error=error)
    goal = f"Continue operation handoff from {handoff.source_node_id} to {handoff.target_node_id}. " \
           f"Summary: {handoff.summary}"
    if handoff.artifacts:
        goal += " Artifacts: " + ", ".join(a.kind for a in handoff.artifacts) + "."
    if handoff.evidence:
        goal += " Evidence: " + "; ".join(handoff.evidence)
    meta = {"handoff_kind": "operation_to_operation", "handoff_operation_kind": kind,
            "handoff_source_node_id": handoff.source_node_id, "handoff_target_node_id": handoff.target_node_id,
            "handoff_envelope_id": env.id, "handoff_artifact_count": str(len(handoff.artifacts)),
            "handoff_summary": handoff.summary}
    if handoff.related_task_id:
        meta["handoff_related_task_id"] = handoff.related_task_id
    if handoff.dependency_task_ids:
        meta["handoff_dependency_task_ids"] = ",".join(handoff.dependency_task_ids)
    uris = tuple(a.uri for a in handoff.artifacts if a.uri)
    if uris:
        meta["handoff_artifact_refs"] = ",".join(uris)
    meta.update({f"handoff_metadata.{k}": v for k, v in handoff.metadata.items()})
    meta.update({"requires_code_write": "false", "source_payload_type": env.payload_type})
    task = TaskPacket(id=TaskId(new_id()), title=handoff.title, goal=goal, parent_task_id=handoff.related_task_id,
                      dependencies=handoff.dependency_task_ids, context_refs=uris,
                      risk=RiskClass.High if handoff.kind is OperationHandoffKind.DependencyBlocked else RiskClass.Medium,
                      assigned_to=handoff.target_node_id, metadata=meta)
    return HandoffDecision(events=(received,), task=task)


def rejected(env: MessageEnvelope, error: str, task_id: str | None = None) -> tuple[str, dict, dict]:
    """What the reference raised (and so stopped its controller): an event, and the node goes on."""
    return REJECTED_EVENT, {"payload_type": env.payload_type, "envelope_id": env.id, "error": error,
                            "source_channel": env.channel_type.value}, {"task_id": task_id,
                                                                        "correlation_id": env.correlation_id}


# -- channel lineage (§3.4) -----------------------------------------------------------------------

_LINEAGE = {VsmChannelType.OperationToOperation: ("handoff", "operation_to_operation"),
            VsmChannelType.ManagementToOperation: ("management", "management_to_operation")}


def annotate_incoming(task: TaskPacket, env: MessageEnvelope | None, controller: str) -> TaskPacket:
    """A task arriving on OperationToOperation or ManagementToOperation carries where it came
    from (`handoff_*` / `management_*`); any other task is returned as it is."""
    lineage = _LINEAGE.get(env.channel_type) if env is not None else None
    if lineage is None:
        return task
    prefix, kind = lineage
    meta = {**task.metadata, f"{prefix}_kind": kind, f"{prefix}_channel": env.channel_type.value,
            f"{prefix}_via_controller_node_id": controller, f"{prefix}_envelope_id": env.id}
    for key, value in (("source_node_id", env.source_node_id), ("correlation_id", env.correlation_id),
                       ("causation_id", env.causation_id)):
        if value:
            meta[f"{prefix}_{key}"] = value
    return evolve(task, metadata=meta)


def annotate_outbound(metadata: Mapping[str, str], child_id: str) -> Mapping[str, str]:
    """At publication: the child a handoff or management task went to."""
    out = metadata
    if metadata.get("handoff_kind") == "operation_to_operation":
        out = {**out, "handoff_target_node_id": child_id}
    if metadata.get("management_kind") == "management_to_operation":
        out = {**out, "management_target_node_id": child_id}
    return out


# task metadata copied onto the outbound envelope (reference §3.6 publish_routed_task, step 5)
RELAYED_KEYS = frozenset({
    *(f"handoff_{k}" for k in ("kind", "channel", "source_node_id", "target_node_id", "via_controller_node_id",
                               "correlation_id", "causation_id", "envelope_id", "operation_kind", "artifact_count",
                               "related_task_id", "dependency_task_ids", "artifact_refs", "summary")),
    *(f"management_{k}" for k in ("kind", "channel", "source_node_id", "target_node_id", "via_controller_node_id",
                                  "correlation_id", "causation_id", "envelope_id", "operation_kind",
                                  "directive_message_id", "policy", "related_task_id", "dependency_task_ids")),
    *(f"coordination_{k}" for k in ("policy", "kind", "signal_message_id", "source_node_id", "target_node_id",
                                    "severity", "affected_node_ids", "affected_task_ids")),
    *(f"command_{k}" for k in ("issued_by", "target_node_id", "non_negotiable", "legal_or_policy_basis",
                               "system5_identity", "policy_values", "policy_constraints", "denied_capabilities")),
    "system5_denied_capabilities",
})


def relayed_metadata(out: MessageEnvelope, task_metadata: Mapping[str, str]) -> MessageEnvelope:
    """The routed envelope with the relayed task metadata added (itself when there is none)."""
    keys = RELAYED_KEYS.intersection(task_metadata)
    if not keys:
        return out
    return evolve(out, metadata={**out.metadata, **{k: task_metadata[k] for k in sorted(keys)}})

