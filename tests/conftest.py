"""Shared fixtures: repository paths and ready-made genomes."""

from __future__ import annotations

from pathlib import Path

import pytest

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
