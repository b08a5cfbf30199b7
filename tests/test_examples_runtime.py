"""The runtime examples run as real subprocesses and succeed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("args, expected", [
    (["harness_in_memory.py"], "node is not executable as a leaf: root"),
    (["controller_worker_in_memory.py"], "Completed by backend-reviewer"),
    (["hot_promote.py"], "executed by generalist-coder"),
    (["hot_promote.py", "--base", "multiproc"], "executed by generalist-coder"),
])
def test_example_runs(args, expected):
    proc = subprocess.run([sys.executable, str(EXAMPLES / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
