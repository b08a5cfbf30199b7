"""Scoring traces, and summing scores per node directly or with credit decaying up the tree."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from attrs import frozen

from ..model.ids import NodeId
from ..model.trace import TaskTrace


@frozen(kw_only=True)
class FitnessWeights:
    accepted_merge_value: float = 10.0
    failed_task_penalty: float = 5.0
    reverted_penalty: float = 30.0
    regression_penalty: float = 25.0
    human_override_penalty: float = 20.0
    token_cost_weight: float = 0.00001
    latency_ms_weight: float = 0.000001
    line_delta_weight: float = 0.001
    coordination_message_weight: float = 0.05
    org_complexity_weight: float = 0.25


@frozen(kw_only=True)
class AttributionWeights:
    direct_weight: float = 1.0
    ancestor_initial_weight: float = 1.0
    ancestor_decay: float = 0.5

    def ancestor_weight(self, depth: int) -> float:
        """Weight of the ancestor at `depth` (0 = immediate parent)."""
        return self.ancestor_initial_weight * self.ancestor_decay**depth


DEFAULT_WEIGHTS = FitnessWeights()
DEFAULT_ATTRIBUTION = AttributionWeights()

# Coordination cost of a channel, in message units; unknown names cost nothing.
CHANNEL_COORDINATION_UNITS: dict[str, float] = {
    "ResourceBargaining": 0.0,
    "OperationToEnvironment": 0.0,
    "Command": 1.0,
    "ManagementToOperation": 1.0,
    "System2Coordination": 1.5,
    "OperationToOperation": 1.5,
    "Audit": 1.5,
    "ThreeFourHomeostat": 1.0,
    "FutureProbeToEnvironment": 0.5,
    "EnvironmentToEnvironment": 0.5,
    "Algedonic": 2.0,
}

_TASK_METADATA_PREFIX = "task_metadata."
_U32 = re.compile(r"\+?[0-9]+")
_U32_MAX = 2**32 - 1


def _lookup(metadata: Mapping[str, str], key: str) -> str | None:
    # workers copy task metadata into the trace under a prefix; a direct key wins
    value = metadata.get(key)
    return value if value is not None else metadata.get(_TASK_METADATA_PREFIX + key)


def _channel_units(name: str | None) -> float:
    return 0.0 if name is None else CHANNEL_COORDINATION_UNITS.get(name, 0.0)


def _parse_float(text: str) -> float | None:
    # Rust's f64 parser rejects surrounding whitespace, Python's accepts it; non-finite values
    # would poison every sum they enter, so they count as unparsable too
    if text != text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _parse_u32(text: str) -> int | None:
    if not _U32.fullmatch(text):
        return None
    value = int(text)
    return value if value <= _U32_MAX else None


def _truthy(text: str) -> bool:
    return text in ("true", "1") or text.lower() == "yes"


def coordination_units(trace: TaskTrace) -> float:
    """How much coordination a trace shows, from the channel and handoff facts in its metadata."""
    meta = trace.metadata
    units = 0.0
    count = _lookup(meta, "coordination_message_count")
    if count is not None and (parsed := _parse_float(count)) is not None:
        units += parsed
    source = _lookup(meta, "vsm_source_channel")
    units += _channel_units(source if source is not None else _lookup(meta, "source_channel"))
    units += _channel_units(_lookup(meta, "vsm_outbound_channel")) * 0.5
    deps = _lookup(meta, "dependency_task_ids")
    if deps is not None:
        units += sum(1 for item in re.split(r"[,|]", deps) if item.strip())
    if _lookup(meta, "handoff_kind") is not None:
        units += 1.0
    if _lookup(meta, "management_kind") is not None:
        units += 1.0
    depth = _lookup(meta, "decomposition_revision_depth")
    if depth is not None and (parsed_depth := _parse_u32(depth)) is not None and parsed_depth > 0:
        units += 1.0
    role = _lookup(meta, "decomposition_role")
    if role is not None and role != "implementation":
        units += 0.5
    shadow = _lookup(meta, "trial_shadow")
    if shadow is not None and _truthy(shadow):
        units += 1.0
    return max(units, 0.0)


def score_trace(trace: TaskTrace, weights: FitnessWeights = DEFAULT_WEIGHTS) -> float:
    """Outcome plus merge value, minus failure/revert/regression/override penalties and costs."""
    w = weights
    score = trace.total_score()
    if trace.merged is True:
        score += w.accepted_merge_value
    elif trace.merged is False:
        score -= w.failed_task_penalty
    if trace.reverted is True:
        score -= w.reverted_penalty
    if trace.post_merge_regression is True:
        score -= w.regression_penalty
    if trace.human_override is True:
        score -= w.human_override_penalty
    score -= trace.token_total() * w.token_cost_weight
    score -= trace.latency_ms * w.latency_ms_weight
    score -= (abs(trace.lines_added) + abs(trace.lines_deleted)) * w.line_delta_weight
    score -= coordination_units(trace) * w.coordination_message_weight
    return score


@frozen(kw_only=True)
class FitnessSummary:
    node_id: NodeId
    task_count: int = 0
    merged_count: int = 0
    reverted_count: int = 0
    regression_count: int = 0
    human_override_count: int = 0
    tokens: int = 0
    latency_ms: int = 0
    raw_score: float = 0.0
    complexity_penalty: float = 0.0
    final_score: float = 0.0


_DIRECT_INTS = (
    "task_count", "merged_count", "reverted_count", "regression_count", "human_override_count",
    "tokens", "latency_ms",
)


def summarize_direct_fitness(
    traces: Iterable[TaskTrace],
    weights: FitnessWeights = DEFAULT_WEIGHTS,
    complexity_by_node: Mapping[str, float] | None = None,
) -> dict[NodeId, FitnessSummary]:
    """Per assigned node, in node-id order: counts, costs and the sum of `score_trace`."""
    acc: dict[NodeId, dict[str, float]] = {}
    for trace in traces:
        a = acc.setdefault(trace.assigned_node_id, {**dict.fromkeys(_DIRECT_INTS, 0), "raw_score": 0.0})
        a["task_count"] += 1
        a["merged_count"] += trace.merged is True
        a["reverted_count"] += trace.reverted is True
        a["regression_count"] += trace.post_merge_regression is True
        a["human_override_count"] += trace.human_override is True
        a["tokens"] += trace.token_total()
        a["latency_ms"] += trace.latency_ms
        a["raw_score"] += score_trace(trace, weights)
    complexity = complexity_by_node or {}
    out = {}
    for node in sorted(acc):
        a = acc[node]
        penalty = complexity.get(node, 0.0) * weights.org_complexity_weight
        out[node] = FitnessSummary(
            node_id=node, **a, complexity_penalty=penalty, final_score=a["raw_score"] - penalty,
        )
    return out


@frozen(kw_only=True)
class AttributedFitnessSummary:
    node_id: NodeId
    direct_task_count: int = 0
    descendant_task_count: int = 0
    subtree_task_count: int = 0
    direct_tokens: int = 0
    subtree_tokens: int = 0
    direct_latency_ms: int = 0
    subtree_latency_ms: int = 0
    attribution_weight_total: float = 0.0
    direct_score: float = 0.0
    descendant_score: float = 0.0
    raw_score: float = 0.0
    complexity_penalty: float = 0.0
    final_score: float = 0.0


_ATTRIBUTED_INTS = (
    "direct_task_count", "descendant_task_count", "subtree_task_count",
    "direct_tokens", "subtree_tokens", "direct_latency_ms", "subtree_latency_ms",
)
_ATTRIBUTED_FLOATS = ("attribution_weight_total", "direct_score", "descendant_score")


def summarize_attributed_fitness(
    traces: Iterable[TaskTrace],
    weights: FitnessWeights = DEFAULT_WEIGHTS,
    attribution: AttributionWeights = DEFAULT_ATTRIBUTION,
    complexity_by_node: Mapping[str, float] | None = None,
) -> dict[NodeId, AttributedFitnessSummary]:
    """Credit each trace to its worker in full and to its ancestors with decaying weight.

    An ancestor equal to the worker, or listed twice, is skipped, but still occupies its depth,
    so the weights of the ancestors above it do not shift.
    """
    acc: dict[NodeId, dict[str, float]] = {}

    def entry(node: NodeId) -> dict[str, float]:
        return acc.setdefault(node, {**dict.fromkeys(_ATTRIBUTED_INTS, 0), **dict.fromkeys(_ATTRIBUTED_FLOATS, 0.0)})

    for trace in traces:
        score = score_trace(trace, weights)
        tokens = trace.token_total()
        node = trace.assigned_node_id
        d = entry(node)
        d["direct_task_count"] += 1
        d["subtree_task_count"] += 1
        d["direct_tokens"] += tokens
        d["subtree_tokens"] += tokens
        d["direct_latency_ms"] += trace.latency_ms
        d["subtree_latency_ms"] += trace.latency_ms
        d["attribution_weight_total"] += attribution.direct_weight
        d["direct_score"] += score * attribution.direct_weight
        seen = {node}
        for depth, ancestor in enumerate(trace.responsible_ancestor_ids):
            if ancestor in seen:
                continue
            seen.add(ancestor)
            weight = attribution.ancestor_weight(depth)
            if weight == 0.0:
                continue
            e = entry(ancestor)
            e["descendant_task_count"] += 1
            e["subtree_task_count"] += 1
            e["subtree_tokens"] += tokens
            e["subtree_latency_ms"] += trace.latency_ms
            e["attribution_weight_total"] += weight
            e["descendant_score"] += score * weight
    complexity = complexity_by_node or {}
    out = {}
    for node in sorted(acc):
        a = acc[node]
        raw = a["direct_score"] + a["descendant_score"]
        penalty = complexity.get(node, 0.0) * weights.org_complexity_weight
        out[node] = AttributedFitnessSummary(
            node_id=node, **a, raw_score=raw, complexity_penalty=penalty, final_score=raw - penalty,
        )
    return out
