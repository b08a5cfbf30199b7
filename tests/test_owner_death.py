"""Nothing outlives its owner (issue 11 point 3): kill -9 of the process that started a
multiprocess organization makes every actor process, the admin included, exit within seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from vsm_actors._posix import alive, session_members

from test_live_cli import live_dir, wait_until_dead  # noqa: F401  (live_dir: a fixture)

CLIENT = r"""
import json, sys, time
from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.files.genome_files import load_genome
from vsm_actors.system import Organization
org = Organization.start(load_genome(sys.argv[1]), RuntimeConfig(ledger_url=sys.argv[2]), base="multiproc")
assert org.run("Add a health check").ok
print(json.dumps({"sessions": sorted(org._sessions), "pids": sorted(org.status().pids.values())}), flush=True)
time.sleep(600)
"""


def test_kill_9_of_the_client_takes_every_organization_process_with_it(tmp_path, genomes_dir):
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(genomes_dir / "two_level.yaml"),
                               str(tmp_path / "l.sqlite")], stdout=subprocess.PIPE, text=True)
    started: dict = {"pids": []}
    try:
        started = json.loads(client.stdout.readline())
        members = set(started["pids"]) | {p for s in started["sessions"] for p in session_members(s)}
        assert len(members) >= 5 and all(alive(p) for p in members)
        os.kill(client.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in members) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the kernel's view of other processes
        assert not [p for p in members if alive(p)], "organization processes outlived their owner"
    finally:
        client.kill()
        client.wait()
        for p in started["pids"]:  # whatever a failed test left
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_vsm_down_with_a_dead_admin_still_stops_everything(live_dir, genomes_dir):  # noqa: F811
    from vsm_actors._posix import listener_of
    from test_live_cli import organization_pids, vsm, wait_until_dead

    vsm(live_dir, "up", str(genomes_dir / "two_level.yaml"))
    pids = organization_pids(live_dir)
    state = json.loads((live_dir / ".vsm" / "organization.json").read_text())
    admin = listener_of(state["admin_port"])
    assert admin in pids
    os.kill(admin, signal.SIGKILL)
    wait_until_dead([admin])
    down = vsm(live_dir, "down")
    assert "organization down" in down.stdout
    wait_until_dead(pids)  # every process the state file's sessions held, not only the admin
    assert not (live_dir / ".vsm" / "organization.json").exists()


def test_under_vsm_up_a_dead_supervisor_is_replaced_and_send_and_status_carry_on(live_dir, genomes_dir):  # noqa: F811
    """`vsm up`'s server stays as the supervisor's keeper: it boots a replacement from the ledger,
    names it in the state file, and attached clients go on with it."""
    from test_live_cli import status_json, vsm

    vsm(live_dir, "up", str(genomes_dir / "two_level.yaml"))
    state_file = live_dir / ".vsm" / "organization.json"
    state = json.loads(state_file.read_text())
    assert alive(state["keeper_pid"])
    old_nodes = set(status_json(live_dir)["pids"].values())
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    sent = vsm(live_dir, "send", "anyone there?", "-o", "json", check=False, timeout=120)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)[0]["ok"]
    after = json.loads(state_file.read_text())
    assert after["supervisor_pid"] != state["supervisor_pid"] and after["supervisor_restarts"] == 1
    status = status_json(live_dir)
    assert status["supervision"]["supervisor_restarts"] == 1
    assert not set(status["pids"].values()) & old_nodes  # the old actors exited with their supervisor
    assert not any(alive(p) for p in old_nodes)
    keeper = after["keeper_pid"]
    vsm(live_dir, "down")
    wait_until_dead([keeper])


def test_vsm_send_when_nothing_replaces_the_supervisor_says_what_to_do(live_dir, genomes_dir):  # noqa: F811
    from test_live_cli import vsm

    vsm(live_dir, "up", str(genomes_dir / "single_coder.yaml"))
    state = json.loads((live_dir / ".vsm" / "organization.json").read_text())
    os.kill(state["keeper_pid"], signal.SIGKILL)
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    wait_until_dead([state["keeper_pid"], state["supervisor_pid"]])
    sent = vsm(live_dir, "send", "anyone there?", check=False, timeout=60)
    assert sent.returncode == 2 and "supervisor" in sent.stderr and "vsm down" in sent.stderr
    assert "Traceback" not in sent.stderr
    vsm(live_dir, "down")


SLOW_AGENT = "import os, sys, time\nopen(sys.argv[1], 'a').close()\ntime.sleep(30)\nprint('done')\n"


def test_a_vsm_send_waiting_when_the_supervisor_dies_gets_its_answer_from_the_replacement(live_dir, genomes_dir):  # noqa: F811
    from test_live_cli import vsm

    agent, marker = live_dir / "slow_agent.py", live_dir / "started"
    agent.write_text(SLOW_AGENT)
    vsm(live_dir, "up", str(genomes_dir / "single_coder.yaml"), "--provider", "command", "--provider-option",
        f"argv={json.dumps([sys.executable, str(agent), str(marker)])}")
    state = json.loads((live_dir / ".vsm" / "organization.json").read_text())
    send = subprocess.Popen([sys.executable, "-m", "vsm_actors", "send", "slow work", "-o", "json", "-q"],
                            cwd=live_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # polling another process's effect on disk
        assert marker.exists(), "the leaf never started the directive"
        os.kill(state["supervisor_pid"], signal.SIGKILL)
        out, err = send.communicate(timeout=90)
    finally:
        send.kill()
    assert send.returncode == 1, err  # answered, failed: it was in flight
    (answer,) = json.loads(out)
    assert not answer["ok"] and "supervisor died" in answer["error"]
    assert "Traceback" not in err
    after = json.loads((live_dir / ".vsm" / "organization.json").read_text())
    assert after["supervisor_restarts"] == 1 and alive(after["supervisor_pid"])
