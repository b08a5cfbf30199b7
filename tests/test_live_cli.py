"""`vsm up|send|status|promote|down` with real processes, and restart from the ledger after
`vsm down` and after SIGKILL of every organization process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from vsm_actors.ledger import open_ledger


def vsm(cwd, *args, check=True, timeout=120):
    proc = subprocess.run([sys.executable, "-m", "vsm_actors", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"vsm {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def status_json(cwd):
    return json.loads(vsm(cwd, "status", "-o", "json").stdout)


def organization_pids(cwd) -> list[int]:
    """Every process of the running organization: the actors and Thespian's admin."""
    state = json.loads((cwd / ".vsm" / "organization.json").read_text())
    pids = set(status_json(cwd)["pids"].values())
    port = f":{state['admin_port']:X}".upper()
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            for line in open(table).read().splitlines()[1:]:
                parts = line.split()
                if parts[1].upper().endswith(port) and parts[3] == "0A":
                    inodes.add(parts[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").strip("socket:[]") in inodes:
                    pids.add(int(pid))
        except OSError:
            continue
    # `vsm up` starts the organization in a session of its own: every process in it belongs to it
    sessions = {session_of(pid) for pid in pids} - {None, os.getsid(0)}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if session_of(int(pid)) in sessions:
            pids.add(int(pid))
    return sorted(pids)


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def wait_until_dead(pids, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, f"still alive after SIGKILL: {[p for p in pids if alive(p)]}"
        time.sleep(0.02)  # SIGKILL delivery is asynchronous; polling the kernel's view of it


def session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


@pytest.fixture
def live_dir(tmp_path):
    yield tmp_path
    if (tmp_path / ".vsm" / "organization.json").exists():
        vsm(tmp_path, "down", check=False)
    leftovers = [int(p) for p in filter(str.isdigit, os.listdir("/proc"))
                 if alive(int(p)) and str(tmp_path) in cmdline(int(p))]
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not leftovers, f"organization processes outlived the test: {leftovers}"


def test_up_send_promote_down_and_restore(live_dir, genomes_dir):
    genome = str(genomes_dir / "single_coder.yaml")
    up = vsm(live_dir, "up", genome)
    assert "2 nodes" in up.stdout
    sent = vsm(live_dir, "send", "Add a health check", "-o", "json")
    assert json.loads(sent.stdout)[0]["results"][0]["produced_by"] == "primary-code-service"
    promoted = vsm(live_dir, "promote", "primary-code-service", "--child-name", "generalist-coder")
    assert "generalist-coder" in promoted.stdout
    tree = status_json(live_dir)["tree"]["root"]["children"][0]
    assert tree["kind"] == "metasystem" and "write_code" not in tree["capabilities"]
    assert tree["children"][0]["name"] == "generalist-coder" and "write_code" in tree["children"][0]["capabilities"]
    sent = vsm(live_dir, "send", "Add a readiness probe", "-o", "json")
    assert json.loads(sent.stdout)[0]["results"][0]["produced_by"] == "generalist-coder"
    vsm(live_dir, "down")
    assert not (live_dir / ".vsm" / "organization.json").exists()
    with pytest.raises(AssertionError, match="no running organization"):
        vsm(live_dir, "send", "nobody home")

    up = vsm(live_dir, "up", genome)
    assert "3 nodes" in up.stdout and "restored" in up.stdout
    sent = vsm(live_dir, "send", "After restart", "-o", "json")
    assert json.loads(sent.stdout)[0]["results"][0]["produced_by"] == "generalist-coder"


def test_restore_after_kill_9_of_every_process(live_dir, genomes_dir):
    genome = str(genomes_dir / "single_coder.yaml")
    vsm(live_dir, "up", genome)
    vsm(live_dir, "promote", "primary-code-service", "--child-name", "generalist-coder")
    pids = organization_pids(live_dir)
    assert len(pids) >= 4  # admin, supervisor, ledger or node actors
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until_dead(pids)
    up = vsm(live_dir, "up", genome)  # the stale state file names a port nobody answers
    assert "3 nodes" in up.stdout and "restored" in up.stdout
    with open_ledger(str(live_dir / "vsm-ledger.sqlite")) as ledger:
        champion = ledger.get_champion_genome("single-coder")
    assert champion is not None and "generalist-coder" in champion.nodes
    sent = vsm(live_dir, "send", "After kill", "-o", "json")
    assert json.loads(sent.stdout)[0]["results"][0]["produced_by"] == "generalist-coder"


def test_promote_unknown_node_is_bad_input(live_dir, genomes_dir):
    vsm(live_dir, "up", str(genomes_dir / "single_coder.yaml"))
    proc = vsm(live_dir, "promote", "ghost", "--child-name", "x", check=False)
    assert proc.returncode == 2 and "ghost" in proc.stderr


def test_live_trials_evolve_approve_and_promote(live_dir, genomes_dir):
    script = live_dir / "script.yaml"
    script.write_text("rules:\n  - match: {node_name: primary-code-service}\n    outcome: failed\n    error: broken\n")
    vsm(live_dir, "up", str(genomes_dir / "single_coder.yaml"), "--provider", "scripted", "--script", str(script))
    try:
        for n in range(6):
            vsm(live_dir, "send", f"Change {n}", check=False)
        evolved = vsm(live_dir, "evolve")
        assert "active trial" in evolved.stdout
        trials = json.loads(vsm(live_dir, "trials", "-o", "json").stdout)
        (active,) = [t for t in trials if t["status"] == "active"]
        assert active["mode"] == "Probation" and "review" in active["hypothesis"]
        shown = json.loads(vsm(live_dir, "trial", "show", active["trial_id"]).stdout)
        assert shown["suggestion"]["patch"]
        vsm(live_dir, "trial", "approve", active["trial_id"])
        vsm(live_dir, "trial", "promote", active["trial_id"])
        names = json.dumps(status_json(live_dir)["tree"])
        assert "review-probation-leaf" in names
        trials = json.loads(vsm(live_dir, "trials", "-o", "json").stdout)
        assert [t["status"] for t in trials if t["trial_id"] == active["trial_id"]] == ["promoted"]
        bad = vsm(live_dir, "trial", "prune", "no-such-trial", check=False)
        assert bad.returncode == 2 and "no active trial" in bad.stderr
    finally:
        vsm(live_dir, "down", check=False)
