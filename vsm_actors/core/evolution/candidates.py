"""Candidates: a champion plus one suggestion's patch, with lineage, queued durably.

Every suggestion from every source becomes a queued candidate (the reference only logs audit
suggestions). A patch that does not apply is rejected with a record and an event, never raised
into the actor that asked; a suggestion equal to one already queued, running or refused on the
same champion is skipped, so an audit repeated every N tasks does not flood the queue.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import evolve, frozen

from ..model.genome import GenomeError, OrganizationalGenome
from ..model.patch import GenomePatch, PatchError, apply_patch
from ..model.records import GenomeSnapshot, GenomeSnapshotRoleKind, StoredTrialRecord, StoredTrialStatus
from ..model.suggestion import GeneSuggestion
from ..model.validation import validate_genome

REFUSED = frozenset({StoredTrialStatus.Pruned, StoredTrialStatus.Rejected, StoredTrialStatus.Frozen})


class CandidateError(ValueError):
    """The suggestion's patch cannot make a valid genome from the champion."""


@frozen(kw_only=True)
class ChampionWrite:
    """Save `genome` as the champion of the organization (snapshot and pointer in one step)."""

    genome: OrganizationalGenome


def build_candidate(champion: OrganizationalGenome, suggestion: GeneSuggestion, genome_id: str) -> OrganizationalGenome:
    """champion + patch with lineage (parent = champion, mutation = the suggestion) and a fresh id."""
    try:
        genome = apply_patch(champion, suggestion.patch)
    except (PatchError, GenomeError, KeyError) as exc:
        raise CandidateError(f"patch does not apply to champion {champion.id}: {exc}") from exc
    issues = validate_genome(genome)
    if issues:
        raise CandidateError(f"patch makes an invalid genome: {'; '.join(map(str, issues))}")
    lineage = evolve(genome.lineage, parent_genome_ids=(*champion.lineage.parent_genome_ids, champion.id),
                     mutation_ids=(*champion.lineage.mutation_ids, suggestion.id))
    return evolve(genome, id=genome_id, lineage=lineage)


def rebase(patch: GenomePatch, champion: OrganizationalGenome, suggestion: GeneSuggestion,
           genome_id: str) -> OrganizationalGenome | None:
    """The same patch on a newer champion, or None when it no longer applies."""
    try:
        return build_candidate(champion, evolve(suggestion, patch=patch), genome_id)
    except CandidateError:
        return None


def is_duplicate(suggestion: GeneSuggestion, base_genome_id: str, records: Iterable[StoredTrialRecord]) -> bool:
    """Queued or active with the same patch, or refused with it on this same champion."""
    for record in records:
        if record.suggestion.patch != suggestion.patch or record.trial_id == suggestion.id:
            continue
        if record.status in (StoredTrialStatus.Queued, StoredTrialStatus.Active):
            return True
        if record.status in REFUSED and record.base_genome_id == base_genome_id:
            return True
    return False


def queued_records(controller: str, champion: OrganizationalGenome, candidate: OrganizationalGenome,
                   suggestion: GeneSuggestion, now) -> tuple[StoredTrialRecord, GenomeSnapshot]:
    record = StoredTrialRecord.queued(controller, champion.id, candidate.id, suggestion, now)
    snapshot = GenomeSnapshot.new(candidate, GenomeSnapshotRoleKind.Candidate, now,
                                  metadata={"suggestion_id": suggestion.id, "base_genome_id": champion.id})
    return record, snapshot


def rejected_record(controller: str, champion: OrganizationalGenome, suggestion: GeneSuggestion, reason: str,
                    now) -> StoredTrialRecord:
    return StoredTrialRecord.queued(controller, champion.id, champion.id, suggestion, now).mark_rejected(reason, now)
