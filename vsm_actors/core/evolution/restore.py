"""Recovery: an evolving metasystem's state rebuilt from what the ledger holds.

The durable one-active-trial invariant holds across restarts: an Active record is the trial,
whatever the process that ran it; its evidence is the traces tagged with its id since it started.
"""

from __future__ import annotations

from attrs import field, frozen

from ..control.environment import PRESSURE_WINDOW, is_pressure_event
from ..model.events import LedgerEvent
from ..model.genome import OrganizationalGenome
from ..model.records import PopulationArchiveRecord, StoredTrialRecord
from ..model.trace import TaskTrace
from .controller import WINDOW, EvolutionState
from .trials import ActiveTrial, task_class_of_trace
from .fitness import score_trace


@frozen(kw_only=True)
class StoredEvolution:
    active: StoredTrialRecord | None = None
    active_candidate: OrganizationalGenome | None = None
    queued: tuple[StoredTrialRecord, ...] = ()
    candidates: dict[str, OrganizationalGenome] = field(factory=dict)
    completed: tuple[StoredTrialRecord, ...] = ()
    archive: tuple[PopulationArchiveRecord, ...] = ()
    generation: int = 0
    observed: tuple[TaskTrace, ...] = ()   # recent subtree traces, oldest first
    environment: tuple[LedgerEvent, ...] = ()   # recent pressure events at the node, oldest first


def restore_state(controller_id: str, champion: OrganizationalGenome, stored: StoredEvolution | None) -> EvolutionState:
    if stored is None:
        return EvolutionState(controller_id=controller_id, champion=champion)
    active = None
    if stored.active is not None and stored.active_candidate is not None:
        sid = stored.active.trial_id
        since = stored.active.started_at
        evidence = tuple(t for t in stored.observed if sid in t.related_suggestion_ids)
        baseline = tuple((task_class_of_trace(t), score_trace(t), t.token_total()) for t in stored.observed
                         if not t.related_suggestion_ids and t.started_at >= since and t.genome_id == champion.id)
        active = ActiveTrial(record=stored.active, candidate=stored.active_candidate, traces=evidence,
                             baseline=baseline)
    queued = tuple(r for r in stored.queued if r.trial_id in stored.candidates)
    return EvolutionState(
        controller_id=controller_id, champion=champion, active=active, queued=queued,
        candidates={r.trial_id: stored.candidates[r.trial_id] for r in queued}, completed=stored.completed,
        archive=stored.archive, generation=stored.generation, observed=stored.observed[-WINDOW:],
        environment=tuple(e for e in stored.environment if is_pressure_event(e))[-PRESSURE_WINDOW:])


# -- which genome an organization boots on -------------------------------------------------------

@frozen(kw_only=True)
class BootChoice:
    genome: OrganizationalGenome
    restored: bool = False
    error: str | None = None


def canonical(genome: OrganizationalGenome, to_json) -> str:
    """The genome's content without its id, for "is this the same file?"."""
    import json
    data = to_json(genome)
    data.pop("id", None)
    return json.dumps(data, sort_keys=True)


def fresh_id(genome: OrganizationalGenome, to_json) -> str:
    import hashlib
    return f"{genome.id}-{hashlib.sha256(canonical(genome, to_json).encode()).hexdigest()[:8]}"


def choose_boot(file: OrganizationalGenome, champion: OrganizationalGenome | None,
                base: OrganizationalGenome | None, stored_file: OrganizationalGenome | None, *,
                restore: bool, if_changed: str, to_json) -> BootChoice:
    """The genome to boot: the ledger's (possibly evolved) champion when the file is still the
    one it grew from; when the file changed, stop and say so (`stop`), keep the champion
    (`resume`), or start the file as a new lineage (`fresh`). History is never rewritten: a file
    whose id names a different stored genome boots under a new id (`<id>-<content hash>`)."""
    def as_new_lineage() -> OrganizationalGenome:
        if stored_file is not None and canonical(stored_file, to_json) != canonical(file, to_json):
            from attrs import evolve
            return evolve(file, id=fresh_id(file, to_json))
        return file

    if not restore or champion is None:
        return BootChoice(genome=as_new_lineage())
    changed = base is not None and canonical(base, to_json) != canonical(file, to_json)
    if not changed or if_changed == "resume":
        return BootChoice(genome=champion, restored=True)
    if if_changed == "fresh":
        return BootChoice(genome=as_new_lineage())
    return BootChoice(genome=file, error=(
        f"the ledger's champion {champion.id} for genome {file.id!r} grew from a different version of this "
        "file; pass --resume to keep the evolved champion or --fresh to start this file as a new lineage"))
