"""Chaos: kill -9 of a whole organization at random moments, hostile frames to every port, and
secrets planted where they could leak — real processes, real SQLite, counted, not asserted.

    python benchmarks/chaos.py [--kills 20] [--base simple|multiproc|both] [--directives 3000]

1. Kills: a client process streams directives through an organization (in process or
   multiprocess) into a SQLite ledger and prints each directive id as its completion arrives;
   it is killed with SIGKILL at a random moment. Then: acknowledged directives missing from the
   ledger (lost), directives answered twice (duplicated), the ledger's integrity check, and
   whether the next boot on that ledger works. Aim: 0 lost, 0 duplicated, integrity ok.
2. Hostile frames: a canary pickle to every listening port of a `vsm up` organization. Aim: 0 run.
3. Secrets: a password in the ledger URL and a provider option, looked for in `ps`, the state
   directory and the command's output. Aim: 0 occurrences.
4. Each kind of process: while directives stream through a multiprocess two_level organization,
   kill -9 a leaf, the team (a metasystem), the root, the ledger actor, the supervisor (its
   actors exit with it and the client that started it boots a new one), and SIGSTOP a leaf; then
   the seconds until it is replaced and the directives submitted around it that got no answer
   within a minute. Aim: every kind noticed within 5 s, 0 unanswered.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENOME = ROOT / "genomes" / "two_level.yaml"
CLIENT = r"""
import sys
from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.files.genome_files import load_genome
from vsm_actors.system import Organization, make_directive
genome, ledger, base, n = load_genome(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
with Organization.start(genome, RuntimeConfig(ledger_url=ledger), base=base, if_changed="resume") as org:
    for start in range(0, n, 10):  # batches, so acknowledgements stream out while work goes on
        items = [make_directive(f"Add feature {i}") for i in range(start, min(start + 10, n))]
        org.run_many(items, on_done=lambda d: print(d.directive_id, flush=True))
"""


def one_kill(tmp: Path, base: str, directives: int, rng: random.Random) -> dict:
    ledger, acks = tmp / "chaos.sqlite", tmp / "acknowledged.txt"
    with open(acks, "w") as out:  # a file, not a pipe: the client never waits on us to read it
        proc = subprocess.Popen([sys.executable, "-c", CLIENT, str(GENOME), str(ledger), base, str(directives)],
                                stdout=out, stderr=subprocess.DEVNULL, cwd=tmp)
    time.sleep(rng.uniform(1.0, 4.0))  # the random moment of the kill
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it finished (or failed) first: counted all the same
    proc.wait()
    # only whole lines: the kill may cut the last one short
    acknowledged = [line[:-1] for line in acks.read_text().splitlines(keepends=True) if line.endswith("\n")]
    time.sleep(1.5)  # the owner watch takes its actors down within about a second
    left = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            left += str(ledger) in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            pass
    integrity, answered = "ok", []
    if ledger.exists():  # killed before it booted: nothing acknowledged, nothing to lose
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'ledger_events'").fetchone():
                answered = conn.execute(
                    "SELECT directive_id, COUNT(*) FROM ledger_events WHERE kind = 'task_result_received' "
                    "AND node_id = 'root' GROUP BY directive_id").fetchall()
    answered_ids = {d for d, _ in answered}
    lost = [d for d in acknowledged if d not in answered_ids]
    duplicated = [d for d, c in answered if c > 1]
    reboot = subprocess.run([sys.executable, "-m", "vsm_actors", "run", str(GENOME), "--ledger", str(ledger),
                             "--resume", "--directive", "After the kill"], capture_output=True, text=True,
                            timeout=120, cwd=tmp)
    return {"acknowledged": len(acknowledged), "lost": len(lost), "duplicated": len(duplicated),
            "integrity": integrity, "reboot_ok": reboot.returncode == 0, "left": left}


def kills(args) -> None:
    rng = random.Random(args.seed)
    for base in (["simple", "multiproc"] if args.base == "both" else [args.base]):
        totals = {"acknowledged": 0, "lost": 0, "duplicated": 0, "bad_integrity": 0, "failed_reboots": 0, "left": 0}
        for _ in range(args.kills):
            with tempfile.TemporaryDirectory() as tmp:
                r = one_kill(Path(tmp), base, args.directives, rng)
            totals["acknowledged"] += r["acknowledged"]
            totals["lost"] += r["lost"]
            totals["duplicated"] += r["duplicated"]
            totals["bad_integrity"] += r["integrity"] != "ok"
            totals["failed_reboots"] += not r["reboot_ok"]
            totals["left"] += r["left"]
        print(f"[kills    ] {base:<9} {args.kills} kill -9 of the client: {totals['acknowledged']} acknowledged "
              f"directives, lost {totals['lost']}, duplicated {totals['duplicated']}, integrity failures "
              f"{totals['bad_integrity']}, failed reboots {totals['failed_reboots']}, processes left 1.5 s after "
              f"{totals['left']} (aim: all 0)", flush=True)


class Canary:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def listening_ports_of_session(session: int) -> list[int]:
    from vsm_actors._posix import session_members
    inodes = set()
    for pid in session_members(session):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    ports = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        parts = line.split()
        if parts[3] == "0A" and parts[9] in inodes:
            ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def hostile_and_secrets() -> None:
    secret = "chaos-secret-4242"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        up = subprocess.run([sys.executable, "-m", "vsm_actors", "up", str(GENOME), "--provider-option",
                             f"prefix={secret}"], capture_output=True, text=True, cwd=tmp, timeout=120)
        try:
            state = json.loads((tmp / ".vsm" / "organization.json").read_text())
            ports = [p for s in state["sessions"] for p in listening_ports_of_session(s)]
            for n, port in enumerate(ports):
                payload = pickle.dumps(Canary(str(tmp / f"canary-{n}")))
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(f"{len(payload)}>".encode() + payload)
            time.sleep(1)  # give a canary time to run, were it to be unpickled
            canaries = len([p for p in os.listdir(tmp) if p.startswith("canary")])
            print(f"[hostile  ] canary pickles to {len(ports)} listening ports: {canaries} ran (aim: 0)")
            leaks = 0
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    leaks += secret in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
                except OSError:
                    pass
            for path in (tmp / ".vsm").iterdir():
                leaks += secret in path.read_text(errors="replace")
            leaks += secret in up.stdout + up.stderr
            print(f"[secrets  ] provider option secret: {leaks} occurrences in ps, the state directory and output "
                  "(aim: 0)")
        finally:
            subprocess.run([sys.executable, "-m", "vsm_actors", "down"], cwd=tmp, capture_output=True, timeout=120)


def process_kinds(rounds: int) -> None:
    from vsm_actors.actors.protocol import RuntimeConfig
    from vsm_actors.files.genome_files import load_genome
    from vsm_actors.system import Organization, OrganizationTimeout

    genome = load_genome(GENOME)
    cases = [("leaf", "backend-coder", signal.SIGKILL), ("metasystem", "backend-team", signal.SIGKILL),
             ("root", "root", signal.SIGKILL), ("ledger actor", None, signal.SIGKILL),
             ("supervisor", "supervisor", signal.SIGKILL),
             ("stopped leaf", "backend-coder", signal.SIGSTOP)]
    for kind, node, sig in cases:
        noticed, unanswered, failed = [], 0, 0
        for r in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                config = RuntimeConfig(ledger_url=str(Path(tmp) / "l.sqlite"), watchdog_seconds=0.25, hang_seconds=1.0)
                with Organization.start(genome, config, base="multiproc", restore=False) as org:
                    org.run_many([f"warm {i}" for i in range(5)])
                    status = org.status()
                    pid = _pid_of(org, status, node)
                    sent = [org.submit(f"around {r}-{i}") for i in range(30)]
                    t0 = time.monotonic()
                    os.kill(pid, sig)
                    while True:
                        current = _pid_of(org, org.status(), node)  # a dead supervisor: replaced here
                        if current not in (None, pid):
                            noticed.append(time.monotonic() - t0)
                            break
                        if time.monotonic() - t0 > 30:
                            noticed.append(float("inf"))
                            break
                        time.sleep(0.02)  # polling the organization's view, not ordering messages
                    try:
                        answers = org.wait(sent, timeout=60)
                        failed += sum(not d.ok for d in answers)
                    except OrganizationTimeout:
                        unanswered += len(sent) - len(org._stash)  # what never came
        worst = max(noticed)
        print(f"[process  ] {kind:13} noticed and replaced in {statistics_text(noticed)} (worst {worst:.2f}s); "
              f"{unanswered} of {30 * rounds} directives around it unanswered, {failed} answered failed")
        sys.stdout.flush()


def _pid_of(org, status, node: str | None) -> int | None:
    if node == "supervisor":
        return org.booted.supervisor_pid
    return status.ledger_pid if node is None else status.pids.get(node)


def statistics_text(values: list[float]) -> str:
    values = sorted(values)
    return f"median {values[len(values) // 2]:.2f}s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--directives", type=int, default=3000)
    ap.add_argument("--base", choices=("simple", "multiproc", "both"), default="both")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--process-rounds", type=int, default=3, help="rounds per kind of process (part 4)")
    ap.add_argument("--only-processes", action="store_true", help="run part 4 alone")
    args = ap.parse_args()
    if not args.only_processes:
        kills(args)
        hostile_and_secrets()
    process_kinds(args.process_rounds)


if __name__ == "__main__":
    main()
