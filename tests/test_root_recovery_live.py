"""A `vsm send` waiting on a directive whose root dies is answered, not left to its timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from test_live_cli import live_dir, status_json, vsm  # noqa: F401  (live_dir is a fixture)
from test_supervision import SLOW_ONCE, events_named, wait_for


def test_an_attached_send_is_answered_when_the_root_dies(live_dir, genomes_dir):  # noqa: F811
    script, marker = live_dir / "slow_once.py", live_dir / "started"
    script.write_text(SLOW_ONCE)
    vsm(live_dir, "up", str(genomes_dir / "two_level.yaml"), "--provider", "command", "--",
        sys.executable, str(script), str(marker))
    send = subprocess.Popen([sys.executable, "-m", "vsm_actors", "send", "Write the slow thing", "-o", "json",
                             "--timeout", "120"], cwd=live_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    try:
        wait_for(marker.exists, 60, "the leaf to start executing")
        root_pid = status_json(live_dir)["pids"]["root"]
        killed_at = time.monotonic()
        os.kill(root_pid, signal.SIGKILL)
        out, err = send.communicate(timeout=60)
        answered_after = time.monotonic() - killed_at
    finally:
        if send.poll() is None:
            send.kill()
    (answer,) = json.loads(out)
    assert answer["ok"] is False and "root restarted" in answer["error"], (out, err)
    assert send.returncode != 0
    assert answered_after < 15.0
    # the new root takes work (the reviewer is free; the coder still runs the old call)
    sent = vsm(live_dir, "send", "Please review PR 12", "-o", "json")
    assert json.loads(sent.stdout)[0]["ok"] is True
    vsm(live_dir, "down")
    ledger = live_dir / "vsm-ledger.sqlite"
    assert len(events_named(ledger, "directive_failed")) == 1
