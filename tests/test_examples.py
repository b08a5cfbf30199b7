"""The examples run as written, from a clean process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_minimal_genome_example(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "minimal_genome.py")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "generalist-coder" in out
    assert "primary-code-service [leaf:Coding]: write_code" in out  # before
    assert "primary-code-service [metasystem]" in out  # after
    assert "generalist-coder [leaf:Coding]: write_code" in out
    assert list(tmp_path.iterdir()) == []  # offline: nothing written


def test_controller_audit_smoke_example(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "controller_audit_smoke.py")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "finding: High child failure ratio severity 6 | 5 failed/reverted traces across 5 observed traces" in out
    assert "suggested patches: 1" in out
    assert "events: ['audit_started', 'gene_suggestion_created', 'trial_queued', 'audit_completed']" in out
    assert "live genome unchanged: True" in out


def test_local_evolution_cycle_example_completes(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "local_evolution_cycle.py")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "5. trial Promoted" in result.stdout
    assert "'review-probation-leaf'" in result.stdout
