"""Shared fixtures: repository paths, ready-made genomes, and PostgreSQL schemas.

PostgreSQL (127.0.0.1, db `test`) is a real server and is required: if it cannot be reached the
tests fail, they do not skip. Each test gets its own schema (`?schema=` in the ledger URL) inside
one session-unique prefix; every schema with that prefix is dropped when the session ends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

POSTGRES_URL = os.environ.get("VSM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SESSION_PREFIX = f"vsm_test_{uuid.uuid4().hex[:8]}"

ROOT = Path(__file__).resolve().parent.parent
GENOMES = ROOT / "genomes"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "reference-wire"


@pytest.fixture
def genomes_dir() -> Path:
    return GENOMES


@pytest.fixture
def fixtures_dir() -> Path:
    assert FIXTURES.is_dir(), f"reference fixtures missing at {FIXTURES}"
    return FIXTURES


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
def postgres_base_url() -> str:
    return POSTGRES_URL


@pytest.fixture(scope="session")
def postgres_prefix() -> Iterator[str]:
    yield SESSION_PREFIX
    _drop_schemas(SESSION_PREFIX + "%")


@pytest.fixture
def postgres_url(postgres_prefix: str) -> Iterator[str]:
    """A fresh schema for one test, dropped after it."""
    schema = f"{postgres_prefix}_{uuid.uuid4().hex[:8]}"
    yield f"{POSTGRES_URL}?schema={schema}"
    _drop_schemas(schema)


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request, tmp_path) -> str:
    """A fresh ledger location: a SQLite file, then a PostgreSQL schema (views must read both)."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite")
    return request.getfixturevalue("postgres_url")

