"""The ledger views end to end, as a user runs them: `vsm run` in a subprocess writes a ledger
(SQLite or PostgreSQL) with a priced genome, `vsm ledger stats|tree|timeline` read it in
subprocesses, and `vsm ledger tail` follows an organization that is running meanwhile, until it
is interrupted (exit 130) or its --timeout passes (exit 0)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.files.genome_files import load_genome
from vsm_actors.system import Organization

GENOMES = Path(__file__).resolve().parent.parent / "genomes"
ERROR = "tests failed: 3 of 12"
SCRIPT = {"rules": [{"match": {"task_title": "Break"}, "outcome": "failed", "error": ERROR},
                    {"input_tokens": 1000, "output_tokens": 500, "latency_ms": 250}]}


def vsm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsm_actors", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def priced_genome_file(tmp_path) -> Path:
    """single_coder with a price for its leaf's model in the genome metadata."""
    text = (GENOMES / "single_coder.yaml").read_text()
    assert "\nid: single-coder\n" in text and "model: local-worker" in text and "\nmetadata:" not in text
    text = text.replace("\nid: single-coder\n",
                        '\nid: single-coder\nmetadata:\n  price_per_1k_tokens.local-worker: "0.01"\n')
    path = tmp_path / "priced.yaml"
    path.write_text(text)
    return path


def test_vsm_run_then_stats_tree_and_timeline(ledger_url, priced_genome_file, tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    run = vsm("run", str(priced_genome_file), "--ledger", ledger_url, "--provider", "scripted", "--script",
              str(script), "--directive", "Add a health check", "--directive", "Break the build")
    assert run.returncode == 1, run.stderr  # one directive failed

    stats = vsm("ledger", "stats", "--ledger", ledger_url, "-o", "json")
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert data["total"]["tasks"] == 2 and data["total"]["failures"] == 1
    assert data["total"]["tokens"] == 1500 and data["total"]["cost"] == pytest.approx(0.015)
    text = vsm("ledger", "stats", "--ledger", ledger_url)
    assert text.returncode == 0 and re.search(r"^total\s+all\s+2\s+1\s+50\.0\s+1500\s+0\.0150\s", text.stdout, re.M)

    tree = vsm("ledger", "tree", "--ledger", ledger_url)
    assert tree.returncode == 0 and ERROR in tree.stdout and "cost 0.0150" in tree.stdout
    header = next(ln for ln in tree.stdout.splitlines() if '"Break the build"' in ln)
    short = header.split()[1]
    assert len(short) < 12  # not the 36-character id
    timeline = vsm("ledger", "timeline", short, "--ledger", ledger_url)
    assert timeline.returncode == 0, timeline.stderr
    assert timeline.stdout.splitlines()[0].startswith(f'directive {short} "Break the build"')
    assert ERROR in timeline.stdout and "|" in timeline.stdout


def _run_org(url: str, *titles: str) -> None:
    genome = load_genome(GENOMES / "single_coder.yaml")
    with Organization.start(genome, RuntimeConfig(ledger_url=url), base="simple") as org:
        for title in titles:
            org.run(title)


def _read_until(proc: subprocess.Popen, wanted: str, deadline: float) -> list[str]:
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if wanted in line:
            return lines
    raise AssertionError(f"{wanted!r} not followed in time; got {lines!r}")


def test_tail_follows_new_events_until_interrupted(ledger_url):
    _run_org(ledger_url, "Add a health check")
    proc = subprocess.Popen([sys.executable, "-m", "vsm_actors", "ledger", "tail", "--ledger", ledger_url,
                             "-n", "0", "--interval", "0.1", "-o", "jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert "following" in proc.stderr.readline()  # it has read the ledger's end and follows it
        _run_org(ledger_url, "Add a readiness probe")
        lines = _read_until(proc, '"kind":"trace_written"', time.monotonic() + 60)
        rows = [json.loads(line) for line in lines]
        accepted = [r for r in rows if r["kind"] == "directive_accepted"]
        # only the new directive: the backlog was -n 0, and nothing is printed twice
        assert [r["payload"]["title"] for r in accepted] == ["Add a readiness probe"]
        assert len({r["id"] for r in rows}) == len(rows)
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err


def test_tail_text_backlog_filters_and_timeout(ledger_url):
    _run_org(ledger_url, "Add a health check", "Document the endpoint")
    tail = vsm("ledger", "tail", "--ledger", ledger_url, "-n", "3", "--kind", "task_result_received",
               "--timeout", "0.5")
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert len(lines) == 2 and all("task_result_received" in ln and " Completed " in ln for ln in lines)
    missing = vsm("ledger", "tail", "--ledger", ledger_url, "--directive", "zz-none", "--timeout", "0")
    assert missing.returncode == 2 and "no directive" in missing.stderr
