"""Progress and streaming for `vsm run` (issue 13 point 1): results print as they complete, a live
bar goes to stderr when it is a terminal (a real pty here), a plain closing line when it is not,
and `-q` silences it."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys


GENOMES = os.path.join(os.path.dirname(__file__), "..", "genomes", "two_level.yaml")


def run(tmp_path, *extra, stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "vsm_actors", "run", GENOMES, "--fresh", "--ledger", str(tmp_path / "l.sqlite"),
            "--directive", "Add a check", "--directive", "Review PR 2", *extra]
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=120)


def test_off_a_terminal_results_stream_and_a_closing_line_goes_to_stderr(tmp_path):
    proc = run(tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.count("ok   ") == 2
    assert proc.stderr.splitlines()[-1].startswith("run: 2/2 (2 done, 0 failed, 0 running)")
    lines = run(tmp_path, "-o", "jsonl", "-q")
    assert lines.stderr == "" or "restored" in lines.stderr
    assert [json.loads(line)["ok"] for line in lines.stdout.splitlines()] == [True, True]


def test_on_a_terminal_stderr_gets_a_live_bar(tmp_path):
    leader, follower = pty.openpty()
    try:
        proc = run(tmp_path, "-o", "json", stderr=follower)
        os.close(follower)
        follower = None
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0 and len(json.loads(proc.stdout)) == 2
    text = seen.decode(errors="replace")
    assert "\x1b[" in text and "run: 2/2 (2 done, 0 failed, 0 running)" in text
