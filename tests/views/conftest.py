"""Ledgers built by real organization runs, on SQLite and on PostgreSQL (127.0.0.1, db `test`),
for the view tests (PostgreSQL schemas: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from attrs import evolve
from click.testing import CliRunner

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.cli import main
from vsm_actors.files.genome_files import load_genome
from vsm_actors.system import Organization, make_directive

GENOMES = Path(__file__).resolve().parent.parent.parent / "genomes"

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


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def run_ledger(request, tmp_path_factory, postgres_prefix, postgres_base_url) -> str:
    """A ledger written by a real run of DIRECTIVES, on each backend."""
    if request.param == "sqlite":
        return build_ledger(str(tmp_path_factory.mktemp("views") / "ledger.sqlite"))
    return build_ledger(f"{postgres_base_url}?schema={postgres_prefix}_run")
