"""The peewee schema, one set of models for SQLite and PostgreSQL.

Models are built per database by `make_models`, not bound globally: two ledgers in one process
(a SQLite file and a PostgreSQL schema, say) must not share a binding.

Storage choices, all for queries that are correct and identical on both engines:
- times are BIGINT microseconds since the epoch, so ORDER BY and `since` are exact and
  chronological whatever the text collation;
- ids are TEXT; values are the codec's JSON in TEXT columns (the columns beside it exist only to
  filter and order);
- events carry an autoincrement `seq`, the tie-break of equal timestamps (append order) and the
  ledger position a reader pages by;
- the nodes a trace belongs to (assignee and responsible ancestors) go to a side table indexed
  by (node, started), so a subtree query is an index range scan, not a LIKE over JSON.
"""

from __future__ import annotations

from types import SimpleNamespace

import peewee as pw

SCHEMA_VERSION = 2
# versions this one reads and upgrades (1 -> 2 adds ledger_blobs; version 1's rows are read as they are)
READABLE_VERSIONS = (1, 2)


def make_models(db: pw.Database) -> SimpleNamespace:
    class Base(pw.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class SchemaVersion(Base):
        version = pw.IntegerField(primary_key=True)
        applied_us = pw.BigIntegerField()

        class Meta:
            table_name = "schema_version"

    class Event(Base):
        seq = pw.BigAutoField()
        id = pw.TextField(unique=True)
        kind = pw.TextField()
        created_us = pw.BigIntegerField()
        genome_id = pw.TextField(null=True)
        node_id = pw.TextField(null=True)
        task_id = pw.TextField(null=True)
        directive_id = pw.TextField(null=True)
        suggestion_id = pw.TextField(null=True)
        correlation_id = pw.TextField(null=True)
        event_json = pw.TextField()

        class Meta:
            table_name = "ledger_events"
            # every filter column leads an index that continues in result order
            indexes = (
                (("created_us", "seq"), False),
                *(((col, "created_us", "seq"), False) for col in (
                    "kind", "node_id", "task_id", "directive_id", "correlation_id", "genome_id",
                    "suggestion_id")),
            )

    class Blob(Base):
        # long event texts, stored once (ledger/_compact.py): key is the text's hash, body zlib
        key = pw.TextField(primary_key=True)
        body = pw.BlobField()

        class Meta:
            table_name = "ledger_blobs"

    class Trace(Base):
        id = pw.TextField(primary_key=True)
        task_id = pw.TextField()
        genome_id = pw.TextField()
        assigned_node_id = pw.TextField()
        started_us = pw.BigIntegerField()
        completed_us = pw.BigIntegerField(null=True)
        outcome_score = pw.DoubleField()
        token_total = pw.BigIntegerField()
        trace_json = pw.TextField()

        class Meta:
            table_name = "task_traces"
            indexes = ((("started_us", "id"), False), (("task_id",), False), (("genome_id",), False),
                       (("assigned_node_id",), False))

    class TraceNode(Base):
        trace_id = pw.TextField()
        node_id = pw.TextField()
        started_us = pw.BigIntegerField()

        class Meta:
            table_name = "trace_nodes"
            primary_key = pw.CompositeKey("trace_id", "node_id")
            indexes = ((("node_id", "started_us", "trace_id"), False),)

    class Snapshot(Base):
        genome_id = pw.TextField(primary_key=True)
        role = pw.TextField()
        saved_us = pw.BigIntegerField()
        snapshot_json = pw.TextField()

        class Meta:
            table_name = "genome_snapshots"
            indexes = ((("saved_us", "genome_id"), False), (("role", "saved_us"), False))

    class Champion(Base):
        controller_node_id = pw.TextField(primary_key=True)
        genome_id = pw.TextField()
        updated_us = pw.BigIntegerField()

        class Meta:
            table_name = "champion_genomes"

    class Trial(Base):
        trial_id = pw.TextField(primary_key=True)
        controller_node_id = pw.TextField()
        base_genome_id = pw.TextField()
        candidate_genome_id = pw.TextField()
        status = pw.TextField()
        started_us = pw.BigIntegerField()
        updated_us = pw.BigIntegerField()
        completed_us = pw.BigIntegerField(null=True)
        record_json = pw.TextField()

        class Meta:
            table_name = "trial_records"
            indexes = ((("controller_node_id", "status", "started_us"), False),
                       (("controller_node_id", "status", "updated_us"), False),
                       (("controller_node_id", "updated_us"), False), (("candidate_genome_id",), False))

    class Archive(Base):
        trial_id = pw.TextField(primary_key=True)
        controller_node_id = pw.TextField()
        candidate_genome_id = pw.TextField()
        status = pw.TextField()
        updated_us = pw.BigIntegerField()
        selection_score = pw.DoubleField()
        record_json = pw.TextField()

        class Meta:
            table_name = "population_archive_records"
            indexes = ((("controller_node_id", "updated_us"), False),
                       (("controller_node_id", "status", "updated_us"), False), (("candidate_genome_id",), False))

    class Generation(Base):
        controller_node_id = pw.TextField()
        generation = pw.BigIntegerField()
        champion_genome_id = pw.TextField()
        updated_us = pw.BigIntegerField()
        record_json = pw.TextField()

        class Meta:
            table_name = "evolution_generation_records"
            primary_key = pw.CompositeKey("controller_node_id", "generation")
            indexes = ((("champion_genome_id",), False),)

    return SimpleNamespace(
        SchemaVersion=SchemaVersion, Event=Event, Blob=Blob, Trace=Trace, TraceNode=TraceNode, Snapshot=Snapshot,
        Champion=Champion, Trial=Trial, Archive=Archive, Generation=Generation,
        all=(SchemaVersion, Event, Blob, Trace, TraceNode, Snapshot, Champion, Trial, Archive, Generation),
    )
