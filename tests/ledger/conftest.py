"""Ledger backends for the contract suite: in-memory, a SQLite file, and PostgreSQL on 127.0.0.1.

PostgreSQL is a real server and is required: if it cannot be reached the tests fail, they do not
skip. Each test gets its own schema (`?schema=` in the ledger URL) inside one session-unique
prefix; every schema with that prefix is dropped when the session ends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import peewee as pw
import pytest

from vsm_actors.core.model.ids import SteppingClock
from vsm_actors.ledger import Ledger, MemoryLedger, PeeweeLedger

POSTGRES_URL = os.environ.get("VSM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SESSION_PREFIX = f"vsm_test_{uuid.uuid4().hex[:8]}"

OpenLedger = Callable[[], Ledger]


def _admin() -> pw.PostgresqlDatabase:
    url = POSTGRES_URL.removeprefix("postgresql://")
    user, _, rest = url.rpartition("@")
    hostport, _, dbname = rest.partition("/")
    host, _, port = hostport.partition(":")
    return pw.PostgresqlDatabase(dbname, user=user or None, host=host, port=int(port or 5432))


def _drop_schemas(pattern: str) -> None:
    db = _admin()
    with db:
        names = [r[0] for r in db.execute_sql(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (pattern,)).fetchall()]
        for name in names:
            db.execute_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session")
def postgres_prefix() -> Iterator[str]:
    yield SESSION_PREFIX
    _drop_schemas(SESSION_PREFIX + "%")


@pytest.fixture
def postgres_url(postgres_prefix: str) -> Iterator[str]:
    schema = f"{postgres_prefix}_{uuid.uuid4().hex[:8]}"
    yield f"{POSTGRES_URL}?schema={schema}"
    _drop_schemas(schema)


def _opener(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> OpenLedger:
    """A function opening *the same* store each call (a fresh deterministic clock each time)."""
    if kind == "memory":
        shared = MemoryLedger(clock=SteppingClock())
        return lambda: shared
    url = str(tmp_path / "ledger.sqlite") if kind == "sqlite" else request.getfixturevalue("postgres_url")
    return lambda: PeeweeLedger(url, clock=SteppingClock())


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def open_ledger_fn(request: pytest.FixtureRequest, tmp_path: Path) -> OpenLedger:
    return _opener(request.param, tmp_path, request)


@pytest.fixture(params=["sqlite", "postgres"])
def open_durable(request: pytest.FixtureRequest, tmp_path: Path) -> OpenLedger:
    return _opener(request.param, tmp_path, request)


@pytest.fixture
def ledger(open_ledger_fn: OpenLedger) -> Iterator[Ledger]:
    opened = open_ledger_fn()
    yield opened
    opened.close()
