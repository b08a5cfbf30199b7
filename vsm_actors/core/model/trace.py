"""Task traces: the empirical record of one task execution that fitness, trials and replay score."""

from __future__ import annotations

from datetime import datetime

from attrs import field, frozen

from .ids import GenomeId, IdFactory, NodeId, SuggestionId, TaskId, TraceId


@frozen(kw_only=True)
class DelayedTraceAdjustment:
    """Credit or blame that arrives after the trace was written (late CI failure, revert, review)."""

    created_at: datetime
    source: str
    reason: str
    delta_score: float


@frozen(kw_only=True)
class TaskTrace:
    id: TraceId
    task_id: TaskId
    genome_id: GenomeId
    assigned_node_id: NodeId
    # immediate parent first, root last: attribution decays with this position
    responsible_ancestor_ids: tuple[NodeId, ...] = ()
    related_suggestion_ids: tuple[SuggestionId, ...] = ()
    started_at: datetime
    completed_at: datetime | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    latency_ms: int = 0
    files_touched: tuple[str, ...] = ()
    # signed on the wire (i64); fitness uses absolute values
    lines_added: int = 0
    lines_deleted: int = 0
    tests_run: tuple[str, ...] = ()
    tests_passed: bool | None = None
    review_passed: bool | None = None
    merged: bool | None = None
    reverted: bool | None = None
    post_merge_regression: bool | None = None
    human_override: bool | None = None
    outcome_score: float = 0.0
    delayed_adjustments: tuple[DelayedTraceAdjustment, ...] = ()
    metadata: dict[str, str] = field(factory=dict)

    @classmethod
    def started(
        cls, task_id: str, genome_id: str, assigned_node_id: str, *,
        new_id: IdFactory, started_at: datetime, **changes: object,
    ) -> TaskTrace:
        """A fresh trace: counters zero, outcomes unknown, score 0.0."""
        return cls(
            id=TraceId(new_id()), task_id=TaskId(task_id), genome_id=GenomeId(genome_id),
            assigned_node_id=NodeId(assigned_node_id), started_at=started_at, **changes,
        )

    def total_score(self) -> float:
        """Outcome score plus every delayed adjustment."""
        return self.outcome_score + sum(a.delta_score for a in self.delayed_adjustments)

    def token_total(self) -> int:
        return self.input_tokens + self.output_tokens
