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
