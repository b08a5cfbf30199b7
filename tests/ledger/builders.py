"""Test values built with the core constructors (no hand-written JSON)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.events import EventKind, LedgerEvent
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.node import NodeLifecycleStatus, ViableNode
from vsm_actors.core.model.patch import SetNodeStatus
from vsm_actors.core.model.records import (
    CandidateObjectiveSnapshot, EvolutionGenerationRecord, PopulationArchiveRecord, PopulationArchiveStatus,
    StoredTrialRecord,
)
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialMode
from vsm_actors.core.model.trace import TaskTrace

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(event_id: str, kind: EventKind, seconds: float = 0, payload: object = None, **links: object) -> LedgerEvent:
    return LedgerEvent.new(kind, {"n": event_id} if payload is None else payload, id=event_id,
                           created_at=at(seconds), **links)


def trace(trace_id: str, node: str, seconds: float, ancestors: tuple[str, ...] = (), **changes: object) -> TaskTrace:
    return TaskTrace(id=trace_id, task_id=f"task-{trace_id}", genome_id="g1", assigned_node_id=node,
                     responsible_ancestor_ids=ancestors, started_at=at(seconds), **changes)


def genome(genome_id: str = "g1", leaves: int = 1) -> OrganizationalGenome:
    g = OrganizationalGenome.with_root(genome_id, ViableNode.metasystem("root", "Root"))
    for i in range(leaves):
        g = g.add_child("root", ViableNode.leaf(f"coder-{i}", f"Coder {i}", LeafOperationSpec.coding()))
    return g


def suggestion(suggestion_id: str, target: str = "coder-0") -> GeneSuggestion:
    return GeneSuggestion(
        id=suggestion_id, suggested_by_node_id="root", target_node_id=target,
        source=GeneSuggestionSourceKind.System3StarAudit,
        patch=SetNodeStatus(node_id=target, status=NodeLifecycleStatus.Probation),
        evidence=("three failed reviews",), hypothesis="probation lowers the revert rate",
        trial_mode=TrialMode.Canary,
    )


def queued(trial_id: str, seconds: float, controller: str = "root") -> StoredTrialRecord:
    return StoredTrialRecord.queued(controller, "g1", f"cand-{trial_id}", suggestion(trial_id), at(seconds))


def archive(
    trial_id: str, seconds: float, status: PopulationArchiveStatus, controller: str = "root",
) -> PopulationArchiveRecord:
    return PopulationArchiveRecord.for_trial(
        queued(trial_id, 0, controller), status, selection_policy="pareto_empirical_candidate_score_v1",
        selection_score=1.25, pareto_frontier_size=3, now=at(seconds),
        objectives=CandidateObjectiveSnapshot(expected_value=2.0, safety=0.5), metadata={"why": "test"},
    )


def generation(number: int, controller: str = "root", champion: str = "g1") -> EvolutionGenerationRecord:
    return EvolutionGenerationRecord(
        controller_node_id=controller, generation=number, champion_genome_id=champion, created_at=at(number),
        updated_at=at(number), policy="system3_deterministic_ga_v1", parent_trial_ids=("s1",),
        offspring_trial_ids=(f"s{number}a", f"s{number}b"), mutation_operator_counts={"add_reviewer": 2},
    )
