"""The evolution records of `PeeweeLedger`: trials, the population archive and generations.

A mixin over the store's own helpers (`_write`, `_insert`, `_one`, `_many`, `_asc`, `_desc`,
the models in `m`), so the event and trace paths stay in `store` and these, each one row of
JSON keyed by trial or generation, stay here.
"""

from __future__ import annotations

from ..core.model.records import (
    COMPLETED_TRIAL_STATUSES, PARETO_ARCHIVE_STATUSES, EvolutionGenerationRecord, PopulationArchiveRecord,
    StoredTrialRecord, StoredTrialStatus,
)
from . import _rows

_COMPLETED = [s.storage_key for s in COMPLETED_TRIAL_STATUSES]
_PARETO = [s.storage_key for s in PARETO_ARCHIVE_STATUSES]


class EvolutionRecordStore:
    # -- trials --------------------------------------------------------------------------------

    def write_trial_record(self, record: StoredTrialRecord) -> None:
        row = _rows.trial_row(record)
        self._write("writing a trial record", lambda: self._insert(self.m.Trial, [row], ["trial_id"]))

    def get_trial_record(self, trial_id: str) -> StoredTrialRecord | None:
        Tr = self.m.Trial
        return self._one(Tr.select(Tr.record_json).where(Tr.trial_id == trial_id), StoredTrialRecord,
                         f"trial record {trial_id!r}")

    def get_active_trial_record(self, controller_node_id: str) -> StoredTrialRecord | None:
        found = self._trials(controller_node_id, [StoredTrialStatus.Active.storage_key], "updated_us", True, 1)
        return found[0] if found else None

    def queued_trial_records(self, controller_node_id: str, limit: int | None = None) -> list[StoredTrialRecord]:
        return self._trials(controller_node_id, [StoredTrialStatus.Queued.storage_key], "started_us", False, limit)

    def completed_trial_records(self, controller_node_id: str, limit: int | None = None) -> list[StoredTrialRecord]:
        return self._trials(controller_node_id, _COMPLETED, "updated_us", True, limit)

    def trial_records(self, controller_node_id: str | None = None, limit: int | None = None) -> list[StoredTrialRecord]:
        return self._trials(controller_node_id, None, "updated_us", True, limit)

    def _trials(self, controller: str | None, statuses: list[str] | None, order: str, descending: bool,
                limit: int | None) -> list[StoredTrialRecord]:
        Tr = self.m.Trial
        query = Tr.select(Tr.record_json)
        if controller is not None:
            query = query.where(Tr.controller_node_id == controller)
        if statuses is not None:
            query = query.where(Tr.status.in_(statuses))
        when = getattr(Tr, order)
        query = query.order_by(*((when.desc(), self._desc(Tr.trial_id)) if descending
                                 else (when.asc(), self._asc(Tr.trial_id))))
        return self._many(query, limit, StoredTrialRecord, "trial record")

    # -- population archive and evolution generations --------------------------------------------

    def write_population_archive_record(self, record: PopulationArchiveRecord) -> None:
        row = _rows.archive_row(record)
        self._write("writing a population archive record",
                    lambda: self._insert(self.m.Archive, [row], ["trial_id"]))

    def get_population_archive_record(self, trial_id: str) -> PopulationArchiveRecord | None:
        A = self.m.Archive
        return self._one(A.select(A.record_json).where(A.trial_id == trial_id), PopulationArchiveRecord,
                         f"population archive record {trial_id!r}")

    def population_archive_records(
        self, controller_node_id: str, limit: int | None = None,
    ) -> list[PopulationArchiveRecord]:
        return self._archive(controller_node_id, None, limit)

    def pareto_archive_records(
        self, controller_node_id: str, limit: int | None = None,
    ) -> list[PopulationArchiveRecord]:
        return self._archive(controller_node_id, _PARETO, limit)

    def _archive(self, controller: str, statuses: list[str] | None, limit: int | None) -> list[PopulationArchiveRecord]:
        A = self.m.Archive
        query = A.select(A.record_json).where(A.controller_node_id == controller)
        if statuses is not None:
            query = query.where(A.status.in_(statuses))
        query = query.order_by(A.updated_us.desc(), self._desc(A.trial_id))
        return self._many(query, limit, PopulationArchiveRecord, "population archive record")

    def write_evolution_generation_record(self, record: EvolutionGenerationRecord) -> None:
        row = _rows.generation_row(record)
        self._write("writing an evolution generation record",
                    lambda: self._insert(self.m.Generation, [row], ["controller_node_id", "generation"]))

    def latest_evolution_generation_record(self, controller_node_id: str) -> EvolutionGenerationRecord | None:
        found = self.evolution_generation_records(controller_node_id, 1)
        return found[0] if found else None

    def evolution_generation_records(
        self, controller_node_id: str, limit: int | None = None,
    ) -> list[EvolutionGenerationRecord]:
        G = self.m.Generation
        query = (G.select(G.record_json).where(G.controller_node_id == controller_node_id)
                 .order_by(G.generation.desc()))
        return self._many(query, limit, EvolutionGenerationRecord, "evolution generation record")
