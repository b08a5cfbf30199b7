"""Gene suggestions: a proposed genome patch plus how to trial, measure and roll it back."""

from __future__ import annotations

from enum import Enum

from attrs import frozen

from .ids import IdFactory, MutationId, NodeId, SuggestionId
from .patch import GenomePatch
from .variants import Baseline, Other, Sibling


class GeneSuggestionSourceKind(str, Enum):
    System3StarAudit = "System3StarAudit"
    System4FutureProbe = "System4FutureProbe"
    System1ResourceBargain = "System1ResourceBargain"
    System2CoordinationSignal = "System2CoordinationSignal"
    AlgedonicSignal = "AlgedonicSignal"


GeneSuggestionSource = GeneSuggestionSourceKind | Other


class TrialMode(str, Enum):
    Shadow = "Shadow"
    Probation = "Probation"
    Canary = "Canary"
    Direct = "Direct"


@frozen(kw_only=True)
class TrialSafetyLimits:
    max_token_budget: int | None = None
    max_tasks: int | None = None
    max_traffic_share_basis_points: int | None = None
    max_files_touched: int | None = None
    allowed_task_classes: tuple[str, ...] = ()
    requires_approval: bool = False


class CompareAgainstKind(str, Enum):
    CurrentParent = "CurrentParent"
    ChampionGenome = "ChampionGenome"


CompareAgainst = CompareAgainstKind | Sibling | Baseline

DEFAULT_SUCCESS_METRICS = ("accepted_task_value", "regression_rate")
DEFAULT_FAILURE_METRICS = ("token_cost", "revert_rate")
DEFAULT_WINDOW_TASKS = 25


@frozen(kw_only=True)
class MeasurementPlan:
    window_tasks: int | None = None
    window_days: int | None = None
    compare_against: CompareAgainst = CompareAgainstKind.CurrentParent
    success_metrics: tuple[str, ...] = ()
    failure_metrics: tuple[str, ...] = ()

    @classmethod
    def standard(cls) -> MeasurementPlan:
        """The plan every new suggestion starts with: 25 tasks against the current parent."""
        return _STANDARD_PLAN


_STANDARD_PLAN = MeasurementPlan(
    window_tasks=DEFAULT_WINDOW_TASKS,
    success_metrics=DEFAULT_SUCCESS_METRICS,
    failure_metrics=DEFAULT_FAILURE_METRICS,
)


@frozen(kw_only=True)
class RollbackPlan:
    remove_nodes: tuple[NodeId, ...] = ()
    restore_genome_id: str | None = None
    notes: str | None = None


@frozen(kw_only=True)
class GeneSuggestion:
    """A candidate mutation. Its id doubles as the id of the trial that tests it.

    Field defaults are the reference constructor's, so a hand-written suggestion needs only the
    id, the two nodes, the source, the patch and the hypothesis.
    """

    id: SuggestionId
    suggested_by_node_id: NodeId
    target_node_id: NodeId
    source: GeneSuggestionSource
    patch: GenomePatch
    evidence: tuple[str, ...] = ()
    hypothesis: str
    trial_mode: TrialMode = TrialMode.Probation
    safety_limits: TrialSafetyLimits = TrialSafetyLimits()
    measurement_plan: MeasurementPlan = _STANDARD_PLAN
    rollback_plan: RollbackPlan = RollbackPlan()

    @classmethod
    def new(
        cls, suggested_by: str, target: str, source: GeneSuggestionSource, patch: GenomePatch,
        hypothesis: str, new_id: IdFactory, **changes: object,
    ) -> GeneSuggestion:
        return cls(
            id=SuggestionId(new_id()), suggested_by_node_id=NodeId(suggested_by),
            target_node_id=NodeId(target), source=source, patch=patch, hypothesis=hypothesis, **changes,
        )


@frozen(kw_only=True)
class MutationRecord:
    id: MutationId
    patch: GenomePatch
    source: str
    hypothesis: str
