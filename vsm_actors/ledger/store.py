"""`PeeweeLedger`: the durable ledger on SQLite (embedded, the default) or PostgreSQL (shared).

One schema (`_models`), one code path. The engine differences are few: how a connection is
opened (`_database`), how a batch of rows is sent (`insert_rows`), and that PostgreSQL needs
`COLLATE "C"` for ids to order by code point as Python and SQLite do. Every write is one
transaction and every error surfaces as a `LedgerError`; storage faults in plain words (`faults`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import peewee as pw

from ..core.model.events import EventFilter, LedgerEvent, TraceWindow
from ..core.model.genome import OrganizationalGenome
from ..core.model.ids import GenomeId, NodeId
from ..core.model.records import GenomeSnapshot, GenomeSnapshotRole, role_storage_key
from ..core.model.trace import TaskTrace
from . import _rows
from ._checkpoint import WalCheckpointer
from ._database import (
    Target, conflict_error, connection_lost, insert_rows, make_database, masked_error, parse_target, translate_errors,
)
from ._evolution_store import EvolutionRecordStore
from ._compact import unpack_blob
from ._models import READABLE_VERSIONS, SCHEMA_VERSION, make_models
from .base import Ledger, LedgerError, champion_snapshot, utc_now
from .query import effective_limit, normalize, timestamp_us

T = TypeVar("T")

_CHUNK = 1000


class PeeweeLedger(EvolutionRecordStore, Ledger):
    """A ledger in the database `url` names (see `_database` for the forms)."""

    def __init__(self, url: str, *, clock: Callable[[], datetime] = utc_now,
                 background_checkpoints: bool = False, read_only: bool = False) -> None:
        """`background_checkpoints`: on SQLite, WAL checkpoints run on a thread of their own
        (`_checkpoint`) instead of inside the commit that fills the log; for a dedicated writer.
        `read_only`: a reader that never writes: no schema is created, and a database without a
        vsm ledger's tables is refused (`LedgerError`, "not a vsm ledger")."""
        self.clock = clock
        self.target: Target = parse_target(url)
        self._where = self.target.describe()
        self._sqlite = self.target.engine == "sqlite"
        self._file = self.target.database if self._sqlite else None  # whose disk may fill up
        background = background_checkpoints and self._sqlite and not read_only
        self._db = make_database(self.target, auto_checkpoint=not background, read_only=read_only)
        self._collation = None if self._sqlite else '"C"'
        self.m = make_models(self._db)
        self._pid = os.getpid()
        self._closed = False
        try:
            with translate_errors("opening the ledger", self._where, self._file):
                self._db.connect()
                self._check_schema() if read_only else self._create_schema()
            self._checkpointer = WalCheckpointer(self.target.database) if background else None
        except BaseException:
            if not self._db.is_closed():
                self._db.close()
            raise

    # -- connection and schema -----------------------------------------------------------------

    def _check_schema(self) -> None:
        tables = set(self._db.get_tables(schema=self.target.schema or None))
        wanted = {m._meta.table_name for m in self.m.all if m is not self.m.Blob}  # version 1 has none
        if not wanted <= tables:
            found = ", ".join(sorted(tables)[:5]) or "no tables"
            raise LedgerError(f"{self._where} is not a vsm ledger (it has {found})")
        versions = [v.version for v in self.m.SchemaVersion.select()]
        if not versions or max(versions) not in READABLE_VERSIONS:
            raise LedgerError(f"ledger at {self._where} has schema version {max(versions, default=None)}; "
                              f"this vsm_actors reads versions {', '.join(map(str, READABLE_VERSIONS))}")

    def _create_schema(self) -> None:
        if self.target.schema:
            self._db.execute_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.target.schema}"')
        with self._db.atomic():
            self._db.create_tables(self.m.all, safe=True)
            versions = [v.version for v in self.m.SchemaVersion.select()]
            if not versions or max(versions) in READABLE_VERSIONS and max(versions) < SCHEMA_VERSION:
                # new, or an upgrade: the tables a newer version adds were just created
                self.m.SchemaVersion.create(version=SCHEMA_VERSION, applied_us=timestamp_us(utc_now()))
            elif max(versions) != SCHEMA_VERSION:
                raise LedgerError(
                    f"ledger at {self._where} has schema version {max(versions)}; this vsm_actors reads "
                    f"version {SCHEMA_VERSION} and has no migration between them")

    def _ready(self) -> pw.Database:
        if self._closed:
            raise LedgerError(f"the ledger at {self._where} is closed")
        # A connection inherited through fork() must never be used by the child (it corrupts
        # SQLite, and interleaves a PostgreSQL session): drop it unclosed and open our own.
        if os.getpid() != self._pid:
            self._db._state.reset()
            self._pid = os.getpid()
        elif not self._sqlite and connection_lost(self._db):
            # the server went away (restart, pg_terminate_backend): the write that noticed has
            # failed with the plain reason; this one gets a fresh session instead of the dead one
            self._db._state.reset()
        if self._db.is_closed():
            self._db.connect()
        return self._db

    def _write(self, action: str, work: Callable[[], T]) -> T:
        with translate_errors(action, self._where, self._file):
            db = self._ready()
            try:
                with db.atomic():
                    return work()
            except pw.OperationalError as exc:
                raise masked_error(exc) from None

    def _read(self, action: str, query: Callable[[], T]) -> T:
        with translate_errors(action, self._where, self._file):
            self._ready()
            return query()

    def _desc(self, field: pw.Field) -> pw.Ordering:
        return field.desc(collation=self._collation) if isinstance(field, pw.TextField) else field.desc()

    def _asc(self, field: pw.Field) -> pw.Ordering:
        return field.asc(collation=self._collation) if isinstance(field, pw.TextField) else field.asc()

    def _insert(self, model: type[pw.Model], rows: list[dict[str, Any]], conflict: list[str] | None = None) -> None:
        insert_rows(self._db, model._meta.table_name, rows, conflict, sqlite=self._sqlite)

    # -- events --------------------------------------------------------------------------------

    def append_events(self, events: Sequence[LedgerEvent]) -> None:
        self._append_rows([_rows.event_row(e) for e in events])

    def _append_rows(self, rows: list[_rows.Row]) -> None:
        if not rows:
            return
        blobs = _rows.take_blobs(rows)

        def work() -> None:
            if blobs:  # a text already kept (same key, same content) is left as it is
                self._insert(self.m.Blob, blobs, conflict=["key"])
            self._insert(self.m.Event, rows)

        try:
            self._write("appending events", work)
        except LedgerError as exc:
            if isinstance(exc.__cause__, pw.IntegrityError):
                raise self._read("naming the conflicting event", lambda: conflict_error(self.m.Event, rows)) from exc
            raise

    def write_batch(self, events: Sequence[LedgerEvent], traces: Sequence[TaskTrace]) -> None:
        self.write_rows([_rows.event_row(e) for e in events], _rows.trace_rows(traces))

    def write_rows(self, event_rows: list[_rows.Row], trace_rows: list[tuple[_rows.Row, list[str]]]) -> None:
        """`write_batch` for rows already built (`_rows`); the ledger writer process builds them."""
        # the inner writes become savepoints: one commit for the ledger actor's whole group
        with translate_errors("writing a batch", self._where, self._file):
            with self._ready().atomic():
                self._append_rows(event_rows)
                self._put_traces(trace_rows)
        if self._checkpointer is not None:
            self._checkpointer.committed(len(event_rows) + len(trace_rows))

    def events(self, filter: EventFilter | None = None) -> list[LedgerEvent]:
        q = normalize(filter)
        E = self.m.Event

        def run() -> list[LedgerEvent]:
            query = E.select(*(getattr(E, name) for name in _rows.EVENT_COLUMNS))
            if q.kind_keys:
                query = query.where(E.kind.in_(sorted(q.kind_keys)))
            for name, value in q.links.items():
                query = query.where(getattr(E, name) == value)
            if q.since_us is not None:
                query = query.where(E.created_us >= q.since_us)
            if q.after_id is not None:
                at, seq = self._cursor(q.after_id, "after_id")
                query = query.where((E.created_us > at) | ((E.created_us == at) & (E.seq > seq)))
            if q.before_id is not None:
                at, seq = self._cursor(q.before_id, "before_id")
                query = query.where((E.created_us < at) | ((E.created_us == at) & (E.seq < seq)))
            if q.keep == "newest":
                query = query.order_by(E.created_us.desc(), E.seq.desc())
            else:
                query = query.order_by(E.created_us.asc(), E.seq.asc())
            if q.limit is not None:
                query = query.limit(q.limit)
            rows = list(query.dicts())
            if q.keep == "newest":
                rows.reverse()
            return self._decode_events(rows)

        return self._read("reading events", run)

    def _cursor(self, event_id: str, name: str) -> tuple[int, int]:
        E = self.m.Event
        row = E.select(E.created_us, E.seq).where(E.id == event_id).tuples().first()
        if row is None:
            raise LedgerError(f"{name} names an event that is not in the ledger: {event_id!r}")
        return row

    def get_event(self, event_id: str) -> LedgerEvent | None:
        E = self.m.Event

        def run() -> LedgerEvent | None:
            rows = list(E.select(*(getattr(E, name) for name in _rows.EVENT_COLUMNS)).where(E.id == event_id).dicts())
            return self._decode_events(rows)[0] if rows else None

        return self._read("reading an event", run)

    # -- following the ledger by position (readers that tail it: the dashboard) -------------------

    def stored_rows_after(self, seq: int, limit: int) -> list[_rows.Row]:
        """The next `limit` stored event rows after ledger position `seq`, oldest first, as they
        are stored (`seq` and the event columns; `event_json` in its compact form), undecoded:
        a follower decodes only what it reads (`decode_rows`). Positions are exact while one
        ledger actor writes, as one organization's does."""
        E = self.m.Event
        names = ("seq", *_rows.EVENT_COLUMNS)
        query = E.select(*(getattr(E, n) for n in names)).where(E.seq > seq).order_by(E.seq).limit(limit)
        # the driver's own tuples: peewee's per-value conversion cost as much as the read itself
        return [dict(zip(names, r)) for r in self._read(
            "reading new events", lambda: self._db.execute_sql(*query.sql()).fetchall())]

    def decode_rows(self, rows: list[_rows.Row]) -> list[LedgerEvent]:
        """The events rows from `stored_rows_after` hold (their long texts fetched)."""
        return self._read("reading new events", lambda: self._decode_events(rows))

    def _decode_events(self, rows: list[_rows.Row]) -> list[LedgerEvent]:
        keys = sorted(_rows.referenced_blob_keys(rows))
        texts: dict[str, str] = {}
        B = self.m.Blob
        for start in range(0, len(keys), _CHUNK):
            for key, body in B.select(B.key, B.body).where(B.key.in_(keys[start:start + _CHUNK])).tuples():
                texts[key] = unpack_blob(body)
        return [_rows.decode_event(row, texts) for row in rows]

    # -- traces --------------------------------------------------------------------------------

    def write_traces(self, traces: Sequence[TaskTrace]) -> None:
        self._put_traces(_rows.trace_rows(traces))

    def _put_traces(self, trace_rows: list[tuple[_rows.Row, list[str]]]) -> None:
        unique = _rows.dedupe_last(trace_rows, key=lambda pair: pair[0]["id"])
        if not unique:
            return
        rows = [row for row, _ in unique]
        subjects = [{"trace_id": row["id"], "node_id": n, "started_us": row["started_us"]}
                    for row, nodes in unique for n in nodes]
        ids = [row["id"] for row in rows]
        TN = self.m.TraceNode

        def work() -> None:
            # an upsert may change the ancestors: replace the trace's side rows wholesale
            for start in range(0, len(ids), _CHUNK):
                TN.delete().where(TN.trace_id.in_(ids[start:start + _CHUNK])).execute()
            self._insert(self.m.Trace, rows, conflict=["id"])
            self._insert(TN, subjects)

        self._write("writing traces", work)

    def get_trace(self, trace_id: str) -> TaskTrace | None:
        T_ = self.m.Trace
        text = self._read("reading a trace", lambda: T_.select(T_.trace_json).where(T_.id == trace_id).scalar())
        return None if text is None else _rows.decode(text, TaskTrace, f"trace {trace_id!r}")

    def recent_task_traces(self, window: TraceWindow | None = None) -> list[TaskTrace]:
        T_ = self.m.Trace
        return self._window(T_.select(T_.id, T_.trace_json), T_.started_us, T_.id, window)

    def subtree_task_traces(self, node_id: str, window: TraceWindow | None = None) -> list[TaskTrace]:
        T_, TN = self.m.Trace, self.m.TraceNode
        query = (T_.select(T_.id, T_.trace_json).join(TN, on=(TN.trace_id == T_.id))
                 .where(TN.node_id == node_id))
        return self._window(query, TN.started_us, TN.trace_id, window)

    def _window(self, query: pw.Select, started: pw.Field, trace_id: pw.Field,
                window: TraceWindow | None) -> list[TaskTrace]:
        window = window if window is not None else TraceWindow()
        if window.since is not None:
            query = query.where(started >= timestamp_us(window.since))
        query = query.order_by(started.desc(), self._desc(trace_id))
        limit = effective_limit(window.limit)
        if limit is not None:
            query = query.limit(limit)
        rows = self._read("reading traces", lambda: list(query.tuples()))
        return [_rows.decode(text, TaskTrace, f"trace {tid!r}") for tid, text in reversed(rows)]

    # -- genome snapshots and champion pointers ------------------------------------------------

    def save_genome_snapshot(self, snapshot: GenomeSnapshot) -> None:
        row = _rows.snapshot_row(snapshot)
        self._write("saving a genome snapshot", lambda: self._insert(self.m.Snapshot, [row], ["genome_id"]))

    def get_genome_snapshot(self, genome_id: str) -> GenomeSnapshot | None:
        S = self.m.Snapshot
        return self._one(S.select(S.snapshot_json).where(S.genome_id == genome_id), GenomeSnapshot,
                         f"genome snapshot {genome_id!r}")

    def genome_snapshots(
        self, limit: int | None = None, role: GenomeSnapshotRole | None = None,
    ) -> list[GenomeSnapshot]:
        S = self.m.Snapshot
        query = S.select(S.snapshot_json)
        if role is not None:
            query = query.where(S.role == role_storage_key(role))
        query = query.order_by(S.saved_us.desc(), self._desc(S.genome_id))
        return self._many(query, limit, GenomeSnapshot, "genome snapshot")

    def set_champion_genome(
        self, controller_node_id: str, genome: OrganizationalGenome, *,
        saved_at: datetime | None = None, metadata: dict[str, str] | None = None,
    ) -> GenomeSnapshot:
        now = self.clock()
        snapshot = champion_snapshot(genome, saved_at or now, metadata)
        row = _rows.snapshot_row(snapshot)
        pointer = {"controller_node_id": controller_node_id, "genome_id": genome.id, "updated_us": timestamp_us(now)}

        def work() -> None:
            self._insert(self.m.Snapshot, [row], ["genome_id"])
            self._insert(self.m.Champion, [pointer], ["controller_node_id"])

        self._write("saving the champion genome", work)
        return snapshot

    def set_champion_genome_id(self, controller_node_id: str, genome_id: str) -> None:
        pointer = {"controller_node_id": controller_node_id, "genome_id": genome_id,
                   "updated_us": timestamp_us(self.clock())}
        self._write("setting the champion genome",
                    lambda: self._insert(self.m.Champion, [pointer], ["controller_node_id"]))

    def get_champion_genome_id(self, controller_node_id: str) -> GenomeId | None:
        C = self.m.Champion
        value = self._read("reading the champion pointer", lambda: C.select(C.genome_id).where(
            C.controller_node_id == controller_node_id).scalar())
        return None if value is None else GenomeId(value)

    def champion_genome_ids(self) -> dict[NodeId, GenomeId]:
        C = self.m.Champion
        query = C.select(C.controller_node_id, C.genome_id).order_by(self._asc(C.controller_node_id))
        rows = self._read("reading champion pointers", lambda: list(query.tuples()))
        return {NodeId(c): GenomeId(g) for c, g in rows}

    # -- reading helpers -----------------------------------------------------------------------

    def _one(self, query: pw.Select, cls: type[T], what: str) -> T | None:
        text = self._read(f"reading {what}", query.scalar)
        return None if text is None else _rows.decode(text, cls, what)

    def _many(self, query: pw.Select, limit: int | None, cls: type[T], what: str) -> list[T]:
        limit = effective_limit(limit)
        if limit is not None:
            query = query.limit(limit)
        texts = self._read(f"reading {what}s", lambda: [row[0] for row in query.tuples()])
        return [_rows.decode(text, cls, what) for text in texts]

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        if self._checkpointer is not None and os.getpid() == self._pid:
            self._checkpointer.close()
        if os.getpid() != self._pid:
            self._db._state.reset()  # the parent's connection: not ours to close
            return
        if not self._db.is_closed():
            self._db.close()

    def __repr__(self) -> str:
        return f"PeeweeLedger({self._where!r})"
