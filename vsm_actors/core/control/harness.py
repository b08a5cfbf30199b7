"""Leaf (System 1) execution decisions, free of I/O: may this node run the task, and what result
and trace does an outcome produce. The actor shell calls the provider in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from attrs import frozen

from ..model.genome import OrganizationalGenome
from .commands import refusal
from .routing import leaf_can_take
from ..model.task import TaskArtifact, TaskPacket, TaskResult
from ..model.trace import TaskTrace
from ..model.messages import MessageEnvelope

# task metadata copied onto results and traces so lineage survives the trip upwards
_PROPAGATED_KEYS = (
    "trial_id", "related_suggestion_id", "candidate_genome_id", "trial_mode", "trial_route_role", "trial_shadow",
    "trial_exposure_basis_points", "trial_exposure_bucket",
    "decomposition_policy", "decomposition_authority", "decomposition_role", "decomposition_parent_task_id",
    "decomposition_task_count", "decomposition_revision_depth", "decomposition_revision_of_task_id",
    "required_capability", "target_child",
)
# channel lineage (reference §4.2): each taken from the task's metadata, else the envelope's
_CHANNEL_KEYS = ("vsm_source_channel", "vsm_outbound_channel")
_CHANNEL_PREFIXES = ("handoff_", "management_", "coordination_")


class NotExecutable(Exception):
    """The node may not execute the task; the message is the failed result's error."""


def check_executable(genome: OrganizationalGenome, node_id: str, task: TaskPacket,
                     denied: Mapping[str, str] = {}) -> None:  # noqa: B006 - read only
    """Raise NotExecutable unless this leaf may run the task: it has no children, holds the
    capabilities the task needs, and none of them is denied by a System 5 policy at or above it
    (the genome's, what the task carries, or `denied`: what commands denied for its subtree)."""
    node = genome.node(node_id)
    if node.children:
        raise NotExecutable(f"node is not executable as a leaf: {node_id}")
    missing = leaf_can_take(node, task)
    if missing is not None:
        raise NotExecutable(f"node lacks required capability: {node_id}: {missing}")
    why = refusal(genome, node_id, task, denied)
    if why is not None:
        raise NotExecutable(f"node may not execute the task: {node_id}: {why.error}")


@frozen(kw_only=True)
class Outcome:
    """What the provider call produced (or why it failed)."""

    output_text: str = ""
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    files_touched: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    provider: str = ""
    model: str = ""
    # what the provider knows of the change's fate (a simulated world, a CI-aware agent); None: unknown
    merged: bool | None = None
    tests_passed: bool | None = None
    review_passed: bool | None = None


def _lineage_metadata(task: TaskPacket, incoming: MessageEnvelope | None) -> dict[str, str]:
    meta = {"task_title": task.title, "task_goal": task.goal}
    if task.directive_id:
        meta["directive_id"] = task.directive_id
    if task.parent_task_id:
        meta["parent_task_id"] = task.parent_task_id
    if task.dependencies:
        meta["dependency_task_ids"] = ",".join(task.dependencies)
    for key in _PROPAGATED_KEYS:
        if key in task.metadata:
            meta[key] = task.metadata[key]
    if incoming is not None:
        meta["vsm_outbound_channel"] = incoming.metadata.get("vsm_outbound_channel", incoming.channel_type.value)
        meta["channel_priority"] = incoming.priority.value
        meta["envelope_id"] = incoming.id
        if incoming.correlation_id:
            meta["correlation_id"] = incoming.correlation_id
        if incoming.causation_id:
            meta["causation_id"] = incoming.causation_id
    sources = (task.metadata, incoming.metadata if incoming is not None else {})
    for key in sorted({k for m in sources for k in m if k in _CHANNEL_KEYS or k.startswith(_CHANNEL_PREFIXES)}):
        meta[key] = task.metadata[key] if key in task.metadata else sources[1][key]
    return meta


def _replay_shape(task: TaskPacket) -> dict[str, str]:
    """Trace-only task shape that offline replay reads (reference §4.2)."""
    shape = {"task_risk": task.risk.value}
    p = task.static_predicates
    for key, values, sep in (("task_scope", task.scope, "\n"), ("task_languages", p.languages, ","),
                             ("task_modules", p.modules, ","), ("task_tags", p.tags, ",")):
        if values:
            shape[key] = sep.join(values)
    return shape


def finish(genome: OrganizationalGenome, node_id: str, task: TaskPacket, incoming: MessageEnvelope | None,
           outcome: Outcome, *, trace_id: str, started_at: datetime, completed_at: datetime) -> tuple[TaskResult, TaskTrace]:
    """Build the result and trace for one execution attempt (success or failure)."""
    meta = _lineage_metadata(task, incoming)
    if outcome.error is None and outcome.merged is False:
        why = "change was not merged" + ("; its tests failed" if outcome.tests_passed is False else "")
        result = TaskResult.failed(task.id, node_id, "worker's change was not merged", why,
                                   metadata={**meta, "provider": outcome.provider, "model": outcome.model})
        score, merged = -1.0, False
    elif outcome.error is None:
        result = TaskResult.completed(
            task.id, node_id, outcome.output_text,
            artifacts=(TaskArtifact.inline("model_output", outcome.output_text),
                       *(TaskArtifact.inline("provider_artifact", a) for a in outcome.artifacts)),
            files_touched=outcome.files_touched,
            metadata={**meta, "provider": outcome.provider, "model": outcome.model},
        )
        score, merged = 1.0, outcome.merged
    else:
        result = TaskResult.failed(task.id, node_id, "worker failed to execute task", outcome.error, metadata=meta)
        score, merged = -1.0, False
    suggestion = task.metadata.get("related_suggestion_id") or task.metadata.get("trial_id")
    node = genome.node(node_id)
    trace = TaskTrace(
        id=trace_id, task_id=task.id, genome_id=genome.id, assigned_node_id=node_id,
        responsible_ancestor_ids=tuple(genome.ancestor_ids(node_id)),
        related_suggestion_ids=(suggestion,) if suggestion else (),
        started_at=started_at, completed_at=completed_at,
        input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens, latency_ms=outcome.latency_ms,
        files_touched=result.files_touched, tests_run=result.tests_run, merged=merged, outcome_score=score,
        tests_passed=outcome.tests_passed, review_passed=outcome.review_passed,
        metadata={**meta, "status": result.status.value, **_replay_shape(task),
                  "node_name": node.name, **{f"task_metadata.{k}": v for k, v in task.metadata.items()}},
    )
    return result, trace
