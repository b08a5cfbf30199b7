"""Runs end cleanly however they end (issue 10 point 5): SIGINT or SIGTERM during `vsm run` keeps
the results that finished, says how far it got, records `run_interrupted` with the directives left
unanswered and exits 130; `--timeout` prints what finished; a one-node organization runs its
directives; a bad `--timeout` is a usage error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from vsm_actors.ledger import EventQuery, open_ledger

SLOW = "default: {latency_ms: 400}\n"  # with the provider option sleep=true the latency is real
ONE_NODE = "id: one\nroot:\n  id: solo\n  name: solo\n  leaf_operation: coding\n"


def start(tmp_path, *extra):
    (tmp_path / "slow.yaml").write_text(SLOW)
    (tmp_path / "work.txt").write_text("".join(f"Add feature {n}\n" for n in range(30)))
    argv = [sys.executable, "-m", "vsm_actors", "run", os.path.join(os.path.dirname(__file__), "..", "genomes",
                                                                    "two_level.yaml"),
            "--ledger", str(tmp_path / "l.sqlite"), "--provider", "scripted", "--script", str(tmp_path / "slow.yaml"), "--provider-option", "sleep=true",
            "--directives", str(tmp_path / "work.txt"), "-o", "jsonl", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def interrupted_event(tmp_path) -> dict:
    with open_ledger(str(tmp_path / "l.sqlite"), read_only=True) as ledger:
        (event,) = [e for e in ledger.events(EventQuery()) if e.storage_key == "other:run_interrupted"]
    return event.payload


@pytest.mark.parametrize("sig, base", [(signal.SIGINT, "simple"), (signal.SIGTERM, "simple"),
                                       (signal.SIGINT, "multiproc")])
def test_a_signal_keeps_what_finished_and_records_the_rest(tmp_path, sig, base):
    proc = start(tmp_path, "--base", base)
    first = proc.stdout.readline()  # one result has been printed: the run is under way
    assert json.loads(first)["ok"]
    proc.send_signal(sig)
    rest, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    done = [json.loads(line) for line in [first, *rest.splitlines()] if line.strip()]
    assert "interrupted after" in stderr and "of 30 directives" in stderr and "Traceback" not in stderr
    payload = interrupted_event(tmp_path)
    assert payload["reason"] == "interrupted" and payload["total"] == 30
    assert payload["completed"] == len(done) < 30
    assert len(payload["unanswered_directive_ids"]) == 30 - len(done)
    assert not {d["directive_id"] for d in done} & set(payload["unanswered_directive_ids"])


def test_a_timeout_prints_what_finished(tmp_path):
    proc = start(tmp_path, "--timeout", "1.5")
    out, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "timed out after" in stderr and "Traceback" not in stderr
    assert interrupted_event(tmp_path)["reason"] == "timed out"
    assert all(json.loads(line)["ok"] for line in out.splitlines())


def test_a_one_node_organization_runs_its_directives(tmp_path):
    (tmp_path / "one.yaml").write_text(ONE_NODE)
    for base in ("simple", "multiproc"):
        proc = subprocess.run([sys.executable, "-m", "vsm_actors", "run", str(tmp_path / "one.yaml"), "--ledger",
                               str(tmp_path / f"{base}.sqlite"), "--directive", "Add x", "--base", base, "--timeout",
                               "60", "-o", "json"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)[0]["results"][0]["produced_by"] == "solo"


@pytest.mark.parametrize("value", ["-1", "0", "soon"])
def test_a_bad_timeout_is_a_usage_error(tmp_path, value):
    (tmp_path / "one.yaml").write_text(ONE_NODE)
    proc = subprocess.run([sys.executable, "-m", "vsm_actors", "run", str(tmp_path / "one.yaml"), "--directive", "x",
                           "--timeout", value], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and "--timeout" in proc.stderr and not (tmp_path / "vsm-ledger.sqlite").exists()


def test_vsm_down_during_a_send_returns_the_send_with_what_finished(tmp_path):
    from test_live_cli import vsm as live_vsm
    (tmp_path / "slow.yaml").write_text(SLOW)
    genome = os.path.join(os.path.dirname(__file__), "..", "genomes", "single_coder.yaml")
    live_vsm(tmp_path, "up", genome, "--provider", "scripted", "--script", str(tmp_path / "slow.yaml"),
             "--provider-option", "sleep=true")
    try:
        (tmp_path / "work.txt").write_text("".join(f"Add feature {n}\n" for n in range(40)))
        sender = subprocess.Popen([sys.executable, "-m", "vsm_actors", "send", "--directives",
                                   str(tmp_path / "work.txt"), "-o", "jsonl"], cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = sender.stdout.readline()
        assert json.loads(first)["ok"]
    finally:
        live_vsm(tmp_path, "down", check=False)
    rest, stderr = sender.communicate(timeout=120)
    assert sender.returncode == 1 and "the organization stopped" in stderr and "Traceback" not in stderr
    assert "of 40 directives finished" in stderr


def test_resume_continues_where_an_interrupted_run_stopped(tmp_path):
    proc = start(tmp_path)
    assert json.loads(proc.stdout.readline())["ok"]
    proc.send_signal(signal.SIGINT)
    first_out, _ = proc.communicate(timeout=120)
    first = 1 + len([line for line in first_out.splitlines() if line.strip()])
    again = start(tmp_path, "--resume")
    out, stderr = again.communicate(timeout=180)
    assert again.returncode == 0, stderr
    assert f"resuming: {first} of 30 directives finished in an earlier run" in stderr
    assert len(out.splitlines()) == 30 - first
    with open_ledger(str(tmp_path / "l.sqlite"), read_only=True) as ledger:
        events = list(ledger.events(EventQuery()))
    answered = {e.directive_id for e in events if e.storage_key == "task_result_received" and e.node_id == "root"}
    titles = [e.payload["title"] for e in events if e.storage_key == "directive_accepted" and e.directive_id in answered]
    assert sorted(titles) == sorted(f"Add feature {n}" for n in range(30))  # each line answered exactly once
