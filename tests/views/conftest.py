"""Ledgers built by real organization runs, on SQLite and on PostgreSQL (127.0.0.1, db `test`),
for the view tests. PostgreSQL is required: if it cannot be reached the tests fail, they do not
skip. Each PostgreSQL ledger lives in its own schema, dropped when the session ends."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest
from attrs import evolve
from click.testing import CliRunner

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.cli import main
from vsm_actors.files.genome_files import load_genome
from vsm_actors.system import Organization, make_directive

GENOMES = Path(__file__).resolve().parent.parent.parent / "genomes"
POSTGRES_URL = os.environ.get("VSM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SESSION_PREFIX = f"vsm_views_{uuid.uuid4().hex[:8]}"

# price table in the genome's metadata: the coder runs `local-worker`, the others the default model
PRICES = {"price_per_1k_tokens.local-worker": "0.002",
          "price_per_1k_input_tokens.unbound": "0.001", "price_per_1k_output_tokens.unbound": "0.004"}
BUILD_ERROR = "compile error: missing semicolon on line 3"
SCRIPT = {"rules": [
    {"match": {"task_title": "Break"}, "outcome": "failed", "error": BUILD_ERROR,
     "input_tokens": 100, "output_tokens": 20, "latency_ms": 1200},
    {"match": {"node_id": "backend-reviewer"}, "input_tokens": 300, "output_tokens": 100, "latency_ms": 400},
    {"input_tokens": 500, "output_tokens": 250, "latency_ms": 800},
]}
# (title, metadata): two coding tasks, a failing build, a review, and work nobody can take
DIRECTIVES = (
    ("Add a health endpoint", {"task_class": "feature"}),
    ("Break the build", {"task_class": "feature"}),
    ("Review PR 12", {"task_class": "review"}),
    ("Fix the login bug", {}),
    ("Deploy the release", {"required_capability": "mutate_child_topology"}),
)


def priced_genome():
    genome = load_genome(GENOMES / "two_level.yaml")
    return evolve(genome, metadata={**genome.metadata, **PRICES})


def build_ledger(url: str) -> str:
    """Run the organization over DIRECTIVES into the ledger at `url`."""
    config = RuntimeConfig(ledger_url=url, provider=ProviderSpec(name="scripted", options={"script": SCRIPT}))
    with Organization.start(priced_genome(), config, base="simple") as org:
        org.run_many([make_directive(title, metadata=meta) for title, meta in DIRECTIVES])
    return url


def vsm(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _admin() -> pw.PostgresqlDatabase:
    url = POSTGRES_URL.removeprefix("postgresql://")
    user, _, rest = url.rpartition("@")
    hostport, _, dbname = rest.partition("/")
    host, _, port = hostport.partition(":")
    return pw.PostgresqlDatabase(dbname, user=user or None, host=host, port=int(port or 5432))


def drop_schemas(pattern: str) -> None:
    db = _admin()
    with db:
        names = [r[0] for r in db.execute_sql(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (pattern,)).fetchall()]
        for name in names:
            db.execute_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session")
def postgres_prefix() -> Iterator[str]:
    yield SESSION_PREFIX
    drop_schemas(SESSION_PREFIX + "%")


@pytest.fixture
def postgres_url(postgres_prefix: str) -> str:
    """A fresh schema for one test (dropped with the session's)."""
    return f"{POSTGRES_URL}?schema={postgres_prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def run_ledger(request, tmp_path_factory, postgres_prefix) -> str:
    """A ledger written by a real run of DIRECTIVES, on each backend."""
    if request.param == "sqlite":
        return build_ledger(str(tmp_path_factory.mktemp("views") / "ledger.sqlite"))
    return build_ledger(f"{POSTGRES_URL}?schema={postgres_prefix}_run")
