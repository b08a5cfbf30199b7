"""Ledger backends for the contract suite: in-memory, a SQLite file, and PostgreSQL on 127.0.0.1
(the `postgres_url` schemas of tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vsm_actors.core.model.ids import SteppingClock
from vsm_actors.ledger import Ledger, MemoryLedger, PeeweeLedger

OpenLedger = Callable[[], Ledger]


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
