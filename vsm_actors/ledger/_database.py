"""Opening the database a ledger URL names, writing batches of rows fast, and turning driver
errors into ledger errors.

    path/to/ledger.sqlite | sqlite:///path | sqlite:///:memory: | :memory:   SQLite
    postgresql://user[:password]@host[:port]/dbname[?schema=name]           PostgreSQL

SQLite runs in WAL mode with synchronous=NORMAL (committed transactions survive a process
crash; reliability.md §1.4), foreign keys on and a busy timeout, and takes the write lock at BEGIN
(`IMMEDIATE`) so a second writer waits instead of failing half-way. `schema=` puts the tables of
a PostgreSQL ledger in their own schema (created if missing), which is how tests and several
organizations share one database.

Storage faults are told in plain words (`faults.py`): "ledger disk is full (…)", not the failed
ROLLBACK that follows one. A PostgreSQL connection the server dropped is replaced at the next use.
"""

from __future__ import annotations

import contextlib
import operator
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import peewee as pw
from attrs import frozen

from .base import LedgerConflictError, LedgerError
from .faults import storage_error

BUSY_TIMEOUT_S = 5.0
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": int(BUSY_TIMEOUT_S * 1000),
    # the ledger's nine event indexes outgrow SQLite's 2 MB default page cache within a few
    # thousand directives, after which every append reads index pages back (benchmarks/throughput.py
    # --growth); 64 MB keeps their right edges hot
    "cache_size": -64 * 1024,
}
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@frozen
class Target:
    """A parsed ledger URL."""

    engine: str  # "sqlite" or "postgresql"
    database: str
    user: str | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    schema: str | None = None

    def describe(self) -> str:
        """For messages: never includes the password."""
        if self.engine == "sqlite":
            return f"sqlite:{self.database}"
        where = f"{self.host or 'localhost'}:{self.port or 5432}/{self.database}"
        return f"postgresql://{self.user + '@' if self.user else ''}{where}" + (
            f"?schema={self.schema}" if self.schema else "")


def mask_url(url: str) -> str:
    """`url` with any password replaced by `***`, for messages."""
    if "://" not in url or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{netloc[1]}").geturl()


def parse_target(url: str) -> Target:
    if url.startswith(("postgresql://", "postgres://")):
        return _parse_postgres(url)
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        # sqlite:///rel/or/abs -> the path after the third slash, as SQLAlchemy reads it
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise LedgerError(f"ledger URL {mask_url(url)!r} names no database file")
        return Target("sqlite", unquote(path))
    if "://" in url:
        raise LedgerError(f"unsupported ledger URL {mask_url(url)!r}: use a file path, sqlite:///PATH, "
                          "postgresql://USER@HOST:PORT/DB or memory://")
    return Target("sqlite", url)


def _parse_postgres(url: str) -> Target:
    parts = urlsplit(url)
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise LedgerError(f"ledger URL {mask_url(url)!r} names no database (postgresql://USER@HOST:PORT/DB)")
    query = parse_qs(parts.query)
    schema = query.pop("schema", [None])[-1]
    if query:
        raise LedgerError(f"ledger URL {mask_url(url)!r}: unknown parameter(s) {', '.join(sorted(query))}; "
                          "only schema= is understood")
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise LedgerError(f"ledger URL {mask_url(url)!r}: schema must be a plain identifier, got {schema!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise LedgerError(f"ledger URL {mask_url(url)!r}: {exc}") from None
    return Target("postgresql", database, user=unquote(parts.username) if parts.username else None,
                  password=unquote(parts.password) if parts.password else None,
                  host=parts.hostname, port=port, schema=schema)


# a reader's connection: it sets nothing that writes (the journal mode is the writer's business)
SQLITE_READER_PRAGMAS = {"busy_timeout": SQLITE_PRAGMAS["busy_timeout"], "cache_size": SQLITE_PRAGMAS["cache_size"],
                         "query_only": 1}


def make_database(target: Target, *, auto_checkpoint: bool = True, read_only: bool = False) -> pw.Database:
    """`read_only`: SQLite opened through a `mode=ro` URI (never creates or changes the file; a WAL
    reader does not wait for the writer), PostgreSQL in read-only transactions."""
    if target.engine == "sqlite" and read_only:
        uri = f"file:{quote(os.path.abspath(target.database))}?mode=ro"
        return pw.SqliteDatabase(uri, uri=True, pragmas=SQLITE_READER_PRAGMAS, timeout=BUSY_TIMEOUT_S)
    if target.engine == "sqlite":
        pragmas = SQLITE_PRAGMAS if auto_checkpoint else {**SQLITE_PRAGMAS, "wal_autocheckpoint": 0}
        return pw.SqliteDatabase(target.database, pragmas=pragmas, timeout=BUSY_TIMEOUT_S,
                                 lock_type="IMMEDIATE")
    params: dict[str, object] = {"connect_timeout": 10}
    for name in ("user", "password", "host", "port"):
        value = getattr(target, name)
        if value is not None:
            params[name] = value
    options = [f"-c search_path={target.schema}"] if target.schema else []
    if read_only:
        options.append("-c default_transaction_read_only=on")
    if options:
        params["options"] = " ".join(options)
    return pw.PostgresqlDatabase(target.database, **params)


@contextlib.contextmanager
def translate_errors(action: str, where: str, path: str | None = None) -> Iterator[None]:
    """Driver errors become `LedgerStorageError`s naming the action and the database; a storage
    fault (full disk, read-only or locked database, lost connection) in plain words (`faults`).
    `path`: a SQLite file, whose filesystem's free space tells a full disk from a failing one."""
    try:
        yield
    except LedgerError:
        raise
    except pw.PeeweeException as exc:
        raise storage_error(exc, where, action, free_bytes=free_bytes(path)) from exc


def free_bytes(path: str | None) -> int | None:
    """Space an ordinary process may still use on the filesystem holding `path` (None: unknown)."""
    if not path or path == ":memory:":
        return None
    try:
        stat = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def connection_lost(db: pw.Database) -> bool:
    """Has the server dropped this PostgreSQL connection? psycopg2 marks it closed, but peewee
    keeps handing it out, so every later statement would fail with "connection already closed"."""
    conn = None if db.is_closed() else db._state.conn
    return bool(getattr(conn, "closed", 0)) and not db.in_transaction()


def masked_error(exc: pw.OperationalError) -> Exception:
    """The error a failed ROLLBACK hides, else `exc` itself.

    SQLite rolls a transaction back by itself on SQLITE_FULL and I/O errors; the ROLLBACK peewee
    then sends fails with "no transaction is active", and that error would mask the one that
    matters (a full disk must surface as `LedgerFullError`).
    """
    if "no transaction is active" not in str(exc):
        return exc
    cause = exc.__context__
    while cause is not None and (not isinstance(cause, pw.PeeweeException) or "no transaction is active" in str(cause)):
        cause = cause.__context__
    return cause if isinstance(cause, Exception) else exc


_CHUNK = 1000


def _quote(name: str) -> str:
    # only our own table and column names; both engines read "double quotes" as identifiers
    return f'"{name}"'


def insert_rows(db: pw.Database, table: str, rows: list[dict[str, Any]], conflict: list[str] | None,
                *, sqlite: bool) -> None:
    """Insert `rows` (an upsert on the `conflict` key columns) inside the caller's transaction.

    The SQL is written here rather than by peewee's `insert_many`: building its query tree cost
    ~90 us a row, more than encoding and storing the row (benchmarks/ledger.py). SQLite gets one
    prepared statement `executemany`d; PostgreSQL one multi-row VALUES per chunk of 1,000 rows,
    because psycopg2's executemany is a round trip per row.
    """
    if not rows:
        return
    columns = list(rows[0])
    head = f"INSERT INTO {_quote(table)} ({', '.join(map(_quote, columns))}) VALUES "
    tail = ""
    if conflict is not None:
        updates = ", ".join(f"{_quote(c)} = EXCLUDED.{_quote(c)}" for c in columns if c not in conflict)
        tail = f" ON CONFLICT ({', '.join(map(_quote, conflict))}) DO UPDATE SET {updates}"
    values = list(map(operator.itemgetter(*columns), rows)) if len(columns) > 1 else [(row[columns[0]],) for row in rows]
    with pw.__exception_wrapper__:
        if sqlite:
            db.cursor().executemany(head + f"({', '.join('?' * len(columns))})" + tail, values)
            return
        one = f"({', '.join(['%s'] * len(columns))})"
        for start in range(0, len(values), _CHUNK):
            chunk = values[start:start + _CHUNK]
            db.execute_sql(head + ", ".join([one] * len(chunk)) + tail, [v for row in chunk for v in row])


def conflict_error(event_model: type[pw.Model], rows: list[dict[str, Any]]) -> Exception:
    """Name the first id that made an event batch fail, exactly as the in-memory twin does."""
    ids = list(dict.fromkeys(row["id"] for row in rows))
    stored: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        stored.update(r.id for r in event_model.select(event_model.id).where(event_model.id.in_(chunk)))
    seen: set[str] = set()
    for row in rows:
        if row["id"] in stored or row["id"] in seen:
            return LedgerConflictError(row["id"])
        seen.add(row["id"])
    return LedgerError("an event batch violated a constraint of the ledger")
