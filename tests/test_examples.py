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


def test_controller_trial_smoke_example_promotes_across_restarts(tmp_path: Path) -> None:
    ledger = tmp_path / "smoke.sqlite"
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "controller_trial_smoke.py"), str(ledger)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2. restored active trial smoke-suggestion-1" in out
    assert out.count("by candidate-reviewer") == 3
    assert "4. trial Promoted" in out and "has candidate-reviewer: True" in out
    events = out.split("lifecycle events: ")[1]
    order = ["trial_queued", "trial_started", "trial_task_routed", "trial_trace_recorded",
             "trial_decision_recorded", "trial_promoted", "genome_patch_applied"]
    positions = [events.index(f"'{kind}'") for kind in order]
    assert positions == sorted(positions)
