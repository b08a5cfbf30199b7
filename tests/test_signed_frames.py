"""Authenticated process traffic (issue 11 point 1): a pickle sent to any port of a running
organization is never unpickled, whoever sends it; the organization keeps working; a client whose
state file names a port another program now holds refuses that program's reply."""

from __future__ import annotations

import json
import os
import pickle
import socket
import threading

import pytest

from vsm_actors.actors.signed_frames import SignedPickle, UnsignedFrame

from test_live_cli import live_dir, organization_pids, status_json, vsm  # noqa: F401
from test_supervision import wait_for


class Canary:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def frame(payload: bytes) -> bytes:
    return f"{len(payload)}>".encode() + payload


def listening_ports(pids) -> list[int]:
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def test_a_canary_pickle_runs_on_no_port_of_a_running_organization(live_dir, genomes_dir):  # noqa: F811
    vsm(live_dir, "up", str(genomes_dir / "single_coder.yaml"))
    try:
        ports = listening_ports(organization_pids(live_dir))
        assert len(ports) >= 3  # the admin and every actor listen
        for n, port in enumerate(ports):
            for forged in (pickle.dumps(Canary(str(live_dir / f"canary-{n}"))),
                           b"VSM1" + b"\0" * 32 + pickle.dumps(Canary(str(live_dir / f"forged-{n}")))):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(frame(forged))
                    s.settimeout(5)
                    try:
                        s.recv(100)  # Thespian answers ACK+DATAERR (or closes)
                    except OSError:
                        pass
        sent = vsm(live_dir, "send", "Still working?", "-o", "json")
        assert json.loads(sent.stdout)[0]["ok"]
        assert not [p for p in os.listdir(live_dir) if p.startswith(("canary", "forged"))]
        # each node's process and the supervisor's count what they refused; vsm status adds them up
        # (the heartbeats carry the nodes' counts): two frames each
        counted = 2 * (len(status_json(live_dir)["pids"]) + 1)
        refused = wait_for(lambda: (lambda n: n if n >= counted else None)(
            status_json(live_dir)["supervision"]["rejected_frames"]), 20, "the refusals to be counted")
        assert refused == counted
    finally:
        vsm(live_dir, "down", check=False)


def test_status_refuses_the_reply_of_a_program_that_took_the_port(live_dir):  # noqa: F811
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    canary = live_dir / "canary-status"

    def answer():
        for _ in range(4):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(frame(pickle.dumps(Canary(str(canary)))))
                except OSError:
                    pass
    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    (live_dir / ".vsm").mkdir()
    state = live_dir / ".vsm" / "organization.json"
    state.write_text(json.dumps({"admin_port": port, "key": "00" * 32, "sessions": [1]}))
    try:
        proc = vsm(live_dir, "status", check=False, timeout=120)
        assert proc.returncode == 2 and "is not part of this organization; nothing was sent" in proc.stderr
        # an old state file without sessions: the frames are still refused
        state.write_text(json.dumps({"admin_port": port, "key": "00" * 32}))
        proc = vsm(live_dir, "status", check=False, timeout=120)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert not canary.exists()
    finally:
        server.close()


def test_signed_pickle_round_trips_and_refuses_anything_else():
    signer, other = SignedPickle(b"k" * 32), SignedPickle(b"j" * 32)
    assert signer.loads(signer.dumps({"a": 1})) == {"a": 1}
    with pytest.raises(UnsignedFrame):
        signer.loads(other.dumps({"a": 1}))  # another organization's key
    with pytest.raises(UnsignedFrame):
        signer.loads(pickle.dumps({"a": 1}))
    tampered = bytearray(signer.dumps("x"))
    tampered[-2] ^= 1
    with pytest.raises(UnsignedFrame):
        signer.loads(bytes(tampered))
    assert signer.loads(pickle.dumps("ACK")) == "ACK" and signer.rejected == 3
