"""Genome snapshots, trial records, archive records and their storage keys."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.node import NodeLifecycleStatus, ViableNode
from vsm_actors.core.model.patch import SetNodeStatus
from vsm_actors.core.model.records import (
    COMPLETED_TRIAL_STATUSES,
    EvolutionPolicy,
    GenomeSnapshot,
    GenomeSnapshotRoleKind,
    PopulationArchiveRecord,
    PopulationArchiveStatus,
    StoredTrialDecision,
    StoredTrialRecord,
    StoredTrialStatus,
    role_from_storage_key,
    role_storage_key,
)
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind
from vsm_actors.core.model.variants import Other

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
T1 = T0 + timedelta(minutes=5)


def suggestion() -> GeneSuggestion:
    return GeneSuggestion(
        id="sugg-1", suggested_by_node_id="root", target_node_id="root",
        source=GeneSuggestionSourceKind.System3StarAudit,
        patch=SetNodeStatus(node_id="coder", status=NodeLifecycleStatus.Retired), hypothesis="retire coder",
    )


class TestStorageKeys:
    @pytest.mark.parametrize(("enum", "expected"), [
        (StoredTrialStatus, ["queued", "active", "promoted", "pruned", "rejected", "frozen", "archived"]),
        (StoredTrialDecision, ["continue", "promote", "prune"]),
        (PopulationArchiveStatus, ["dominated", "pareto_frontier", "selected_for_trial", "promoted", "pruned",
                                   "rejected", "archived"]),
    ])
    def test_status_keys_round_trip(self, enum, expected):
        """Each status has the reference's snake_case key, and the key reads back as the status."""
        assert expected == [m.storage_key for m in enum]
        assert list(enum) == [enum.from_storage_key(k) for k in expected]

    def test_unknown_status_key_is_an_error(self):
        """Closed enums reject keys they do not know."""
        with pytest.raises(ValueError, match="StoredTrialStatus"):
            StoredTrialStatus.from_storage_key("paused")

    @pytest.mark.parametrize(("role", "key"), [
        (GenomeSnapshotRoleKind.Champion, "champion"), (GenomeSnapshotRoleKind.Archived, "archived"),
        (Other("foo"), "other:foo"),
    ])
    def test_role_keys(self, role, key):
        """Roles are open: `Other(x)` is stored as `other:x`."""
        assert key == role_storage_key(role)
        assert role == role_from_storage_key(key)

    def test_unprefixed_unknown_role_reads_as_other(self):
        """The reference reads an unknown bare key as `Other(key)`."""
        assert Other("mystery") == role_from_storage_key("mystery")


class TestTrialRecord:
    def test_queued_then_active_restarts_the_clock(self):
        """Activation resets started_at, clears completion and decision, keeps counters."""
        queued = StoredTrialRecord.queued("root", "genome-1", "genome-2", suggestion(), T0)

        active = queued.mark_active(T1)

        assert ("sugg-1", StoredTrialStatus.Queued, T0, T0, None) == (
            queued.trial_id, queued.status, queued.started_at, queued.updated_at, queued.completed_at)
        assert (StoredTrialStatus.Active, T1, T1, None, None) == (
            active.status, active.started_at, active.updated_at, active.completed_at, active.decision)

    def test_rejected_and_frozen_complete_with_a_reason(self):
        """Rejection and freezing end the trial now and record why in metadata."""
        record = StoredTrialRecord.active("root", "genome-1", "genome-2", suggestion(), T0, metadata={"k": "v"})

        rejected = record.mark_rejected("base genome superseded", T1)
        frozen = record.mark_frozen("algedonic freeze_mutation", T1)

        assert (StoredTrialStatus.Rejected, T1, T1) == (rejected.status, rejected.updated_at, rejected.completed_at)
        assert {"k": "v", "rejection_reason": "base genome superseded"} == rejected.metadata
        assert {"k": "v", "freeze_reason": "algedonic freeze_mutation"} == frozen.metadata
        assert rejected.status.is_completed and frozen.status.is_completed
        assert not record.status.is_completed

    def test_completed_statuses(self):
        """Everything but Queued and Active counts as completed."""
        assert set(StoredTrialStatus) - {StoredTrialStatus.Queued, StoredTrialStatus.Active} == COMPLETED_TRIAL_STATUSES


class TestArchiveAndSnapshots:
    def test_archive_record_copies_trial_ids(self):
        """An archive entry names the same trial, controller and genomes as its trial record."""
        trial = StoredTrialRecord.queued("root", "genome-1", "genome-2", suggestion(), T0)

        entry = PopulationArchiveRecord.for_trial(
            trial, PopulationArchiveStatus.SelectedForTrial, selection_policy="p", selection_score=12.5,
            pareto_frontier_size=1, now=T1)

        assert ("sugg-1", "root", "genome-1", "genome-2", T1, T1) == (
            entry.trial_id, entry.controller_node_id, entry.base_genome_id, entry.candidate_genome_id,
            entry.archived_at, entry.updated_at)
        assert entry.status.is_pareto_member
        assert not PopulationArchiveStatus.Dominated.is_pareto_member

    def test_snapshot_copies_genome_id(self):
        """`GenomeSnapshot.new` takes its id from the genome."""
        genome = OrganizationalGenome.with_root("genome-7", ViableNode.metasystem("root", "root"))

        snap = GenomeSnapshot.new(genome, GenomeSnapshotRoleKind.Champion, T0)

        assert ("genome-7", GenomeSnapshotRoleKind.Champion, T0, {}) == (
            snap.genome_id, snap.role, snap.saved_at, snap.metadata)

    def test_evolution_policy_defaults(self):
        """The reference GA defaults."""
        policy = EvolutionPolicy()

        assert ("system3_deterministic_ga_v1", 6, 4, 4, 200, -5.0) == (
            policy.name, policy.population_size, policy.elite_count, policy.max_offspring_per_generation,
            policy.recent_trace_limit, policy.retirement_average_score_below)
