"""Durable evolution state: genome snapshots, trial records, the population archive, generations.

These are what a restarted system reads back to recover its champion genome and trial state.
Status enums carry the snake_case `storage_key` that ledger backends index on.
"""

from __future__ import annotations

from datetime import datetime

from attrs import evolve, field, frozen

from .genome import OrganizationalGenome
from .ids import GenomeId, NodeId, SuggestionId
from .storage_keys import StorageKeyed, open_from_storage_key, open_storage_key
from .suggestion import GeneSuggestion
from .variants import Other

# --- genome snapshots ---------------------------------------------------------------------------


class GenomeSnapshotRoleKind(StorageKeyed):
    Champion = "Champion"
    Candidate = "Candidate"
    Archived = "Archived"


GenomeSnapshotRole = GenomeSnapshotRoleKind | Other


def role_storage_key(role: GenomeSnapshotRole) -> str:
    """`champion`, `candidate`, `archived`, or `other:<name>`."""
    return open_storage_key(role if isinstance(role, Other) else GenomeSnapshotRoleKind(role))


def role_from_storage_key(key: str) -> GenomeSnapshotRole:
    """Inverse of `role_storage_key`; an unknown key without the prefix reads as `Other(key)`."""
    return open_from_storage_key(key, GenomeSnapshotRoleKind)


@frozen(kw_only=True)
class GenomeSnapshot:
    genome_id: GenomeId
    role: GenomeSnapshotRole
    saved_at: datetime
    genome: OrganizationalGenome
    metadata: dict[str, str] = field(factory=dict)

    @classmethod
    def new(
        cls, genome: OrganizationalGenome, role: GenomeSnapshotRole, saved_at: datetime, **changes: object,
    ) -> GenomeSnapshot:
        return cls(genome_id=genome.id, role=role, saved_at=saved_at, genome=genome, **changes)


# --- trials ---------------------------------------------------------------------------------------


class StoredTrialStatus(StorageKeyed):
    Queued = "Queued"
    Active = "Active"
    Promoted = "Promoted"
    Pruned = "Pruned"
    Rejected = "Rejected"
    Frozen = "Frozen"
    Archived = "Archived"

    @property
    def is_completed(self) -> bool:
        return self in COMPLETED_TRIAL_STATUSES


COMPLETED_TRIAL_STATUSES = frozenset({
    StoredTrialStatus.Promoted, StoredTrialStatus.Pruned, StoredTrialStatus.Rejected,
    StoredTrialStatus.Frozen, StoredTrialStatus.Archived,
})


class StoredTrialDecision(StorageKeyed):
    Continue = "Continue"
    Promote = "Promote"
    Prune = "Prune"


@frozen(kw_only=True)
class StoredTrialRecord:
    """The durable state of one trial; its id is the id of the suggestion it tests."""

    trial_id: SuggestionId
    controller_node_id: NodeId
    base_genome_id: GenomeId
    candidate_genome_id: GenomeId
    suggestion: GeneSuggestion
    status: StoredTrialStatus
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    routed_tasks: int = 0
    consumed_tokens: int = 0
    trace_count: int = 0
    total_score: float = 0.0
    decision: StoredTrialDecision | None = None
    registered_candidate_workers: tuple[NodeId, ...] = ()
    metadata: dict[str, str] = field(factory=dict)

    @classmethod
    def active(
        cls, controller_node_id: str, base_genome_id: str, candidate_genome_id: str,
        suggestion: GeneSuggestion, now: datetime, **changes: object,
    ) -> StoredTrialRecord:
        return cls._fresh(StoredTrialStatus.Active, controller_node_id, base_genome_id, candidate_genome_id,
                          suggestion, now, **changes)

    @classmethod
    def queued(
        cls, controller_node_id: str, base_genome_id: str, candidate_genome_id: str,
        suggestion: GeneSuggestion, now: datetime, **changes: object,
    ) -> StoredTrialRecord:
        return cls._fresh(StoredTrialStatus.Queued, controller_node_id, base_genome_id, candidate_genome_id,
                          suggestion, now, **changes)

    @classmethod
    def _fresh(
        cls, status: StoredTrialStatus, controller_node_id: str, base_genome_id: str, candidate_genome_id: str,
        suggestion: GeneSuggestion, now: datetime, **changes: object,
    ) -> StoredTrialRecord:
        return cls(
            trial_id=suggestion.id, controller_node_id=NodeId(controller_node_id),
            base_genome_id=GenomeId(base_genome_id), candidate_genome_id=GenomeId(candidate_genome_id),
            suggestion=suggestion, status=status, started_at=now, updated_at=now, **changes,
        )

    def mark_active(self, now: datetime) -> StoredTrialRecord:
        """Activation restarts the clock: exposure limits count from here, not from queueing."""
        return evolve(self, status=StoredTrialStatus.Active, started_at=now, updated_at=now,
                      completed_at=None, decision=None)

    def mark_rejected(self, reason: str, now: datetime) -> StoredTrialRecord:
        return evolve(self, status=StoredTrialStatus.Rejected, updated_at=now, completed_at=now, decision=None,
                      metadata={**self.metadata, "rejection_reason": reason})

    def mark_frozen(self, reason: str, now: datetime) -> StoredTrialRecord:
        return evolve(self, status=StoredTrialStatus.Frozen, updated_at=now, completed_at=now, decision=None,
                      metadata={**self.metadata, "freeze_reason": reason})


# --- population archive ---------------------------------------------------------------------------


class PopulationArchiveStatus(StorageKeyed):
    Dominated = "Dominated"
    ParetoFrontier = "ParetoFrontier"
    SelectedForTrial = "SelectedForTrial"
    Promoted = "Promoted"
    Pruned = "Pruned"
    Rejected = "Rejected"
    Archived = "Archived"

    @property
    def is_pareto_member(self) -> bool:
        return self in PARETO_ARCHIVE_STATUSES


PARETO_ARCHIVE_STATUSES = frozenset({
    PopulationArchiveStatus.ParetoFrontier, PopulationArchiveStatus.SelectedForTrial,
    PopulationArchiveStatus.Promoted,
})


@frozen(kw_only=True)
class CandidateObjectiveSnapshot:
    """The Pareto objectives a candidate was selected on (higher is better for the first four)."""

    expected_value: float = 0.0
    safety: float = 0.0
    historical_fit: float = 0.0
    replay_fit: float = 0.0
    complexity_cost: float = 0.0
    exposure_cost: float = 0.0


@frozen(kw_only=True)
class PopulationArchiveRecord:
    trial_id: SuggestionId
    controller_node_id: NodeId
    base_genome_id: GenomeId
    candidate_genome_id: GenomeId
    status: PopulationArchiveStatus
    archived_at: datetime
    updated_at: datetime
    selection_policy: str
    selection_score: float
    pareto_frontier_size: int
    objectives: CandidateObjectiveSnapshot = CandidateObjectiveSnapshot()
    metadata: dict[str, str] = field(factory=dict)

    @classmethod
    def for_trial(
        cls, trial: StoredTrialRecord, status: PopulationArchiveStatus, *, selection_policy: str,
        selection_score: float, pareto_frontier_size: int, now: datetime, **changes: object,
    ) -> PopulationArchiveRecord:
        """An archive entry for an evaluated candidate, with the trial's ids copied over."""
        return cls(
            trial_id=trial.trial_id, controller_node_id=trial.controller_node_id,
            base_genome_id=trial.base_genome_id, candidate_genome_id=trial.candidate_genome_id,
            status=status, archived_at=now, updated_at=now, selection_policy=selection_policy,
            selection_score=selection_score, pareto_frontier_size=pareto_frontier_size, **changes,
        )


# --- evolution generations ------------------------------------------------------------------------


@frozen(kw_only=True)
class EvolutionGenerationRecord:
    controller_node_id: NodeId
    generation: int
    champion_genome_id: GenomeId
    created_at: datetime
    updated_at: datetime
    policy: str
    parent_trial_ids: tuple[SuggestionId, ...] = ()
    offspring_trial_ids: tuple[SuggestionId, ...] = ()
    mutation_operator_counts: dict[str, int] = field(factory=dict)
    metadata: dict[str, str] = field(factory=dict)


@frozen(kw_only=True)
class EvolutionPolicy:
    """Knobs of the deterministic generation planner; the defaults are the reference's."""

    name: str = "system3_deterministic_ga_v1"
    population_size: int = 6
    elite_count: int = 4
    max_offspring_per_generation: int = 4
    recent_trace_limit: int = 200
    min_pressure_traces: int = 5
    high_average_token_threshold: int = 120_000
    probation_max_tasks: int = 10
    probation_token_budget: int = 100_000
    canary_traffic_share_basis_points: int = 1_000
    retirement_min_tasks: int = 5
    retirement_average_score_below: float = -5.0
