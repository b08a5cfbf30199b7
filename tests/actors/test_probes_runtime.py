"""System 4 probes in the running actors (issue 12 point 6), on both Thespian bases: a metasystem
whose genome declares `ledger_trends` records a closed window per batch of results and, when the
subtree's failure rate or tokens per task rise past the threshold, environment signals on the
FutureProbeToEnvironment channel, which evolution selection then reads as pressure; a window
closes on its interval by a wakeup timer when the node has a process of its own, on the next
result in process (where a pending wakeup would hold up the client); a restarted node keeps its
baseline; `vsm ledger events --kind` shows the signals."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.cli import main
from vsm_actors.core.control.probes import SIGNAL_EVENT, WINDOW_EVENT
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.node import ViableNode
from vsm_actors.core.model.patch import AddChild
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialMode
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.system import Organization

from .conftest import DEADLINE, scripted, wait_until

GENOME = """
id: probed-team
root:
  name: root
  probes:
    - {{kind: ledger_trends, interval_seconds: {interval}, min_tasks: {min_tasks}}}
  children:
    - {{name: coder, leaf_operation: coding}}
    - {{name: reviewer, leaf_operation: reviewer}}
"""
# a healthy task spends 100 tokens, an expensive one 1,000; a broken one fails (a failed call reports none)
SCRIPT = {"rules": [{"match": {"task_title": "Broken"}, "outcome": "failed"},
                    {"match": {"task_title": "Expensive"}, "input_tokens": 800, "output_tokens": 200},
                    {"input_tokens": 80, "output_tokens": 20}]}


def probed(interval: int = 0, min_tasks: int = 4):
    return parse_genome_text(GENOME.format(interval=interval, min_tasks=min_tasks), name="probed-team.yaml")


def run_batch(org, title: str, n: int = 4) -> None:
    for i in range(n):
        org.run(f"{title} {i}")


def worse_batch(org) -> None:
    """Half the tasks fail (0% -> 50%), the others cost ten times as much (100 -> 500 per task)."""
    for i in range(4):
        org.run(f"{'Broken' if i % 2 == 0 else 'Expensive'} feature {i}")


def test_a_rise_in_failures_and_cost_becomes_environment_pressure_that_selection_reads(org_factory):
    org = org_factory(probed(), provider=scripted(SCRIPT))
    run_batch(org, "Add feature")
    (baseline,) = org.wait_events(WINDOW_EVENT, node_id="root")
    assert baseline.payload["window"]["tasks"] == 4 and baseline.payload["window"]["failures"] == 0
    assert baseline.payload["window"]["tokens"] == 400 and baseline.payload["previous"] is None
    worse_batch(org)
    signals = org.wait_events(SIGNAL_EVENT, 2, node_id="root")
    by_watch = {e.metadata["probe_watch"]: e for e in signals}
    assert set(by_watch) == {"failures", "cost"}
    failures, cost = by_watch["failures"].payload, by_watch["cost"].payload
    assert failures["kind"] == "Risk" and cost["kind"] == {"Other": "ResourceImbalance"}
    assert failures["source_channel"] == "FutureProbeToEnvironment" and failures["source_environment"] == "ledger"
    assert "rose from 0% to 50%" in failures["summary"] and "from 100 to 500" in cost["summary"]
    assert (failures["severity"], cost["severity"]) == (6, 8)  # a doubling, a five-fold rise
    windows = org.wait_events(WINDOW_EVENT, 2, node_id="root")
    assert windows[-1].payload["signals"] == 2 and windows[-1].payload["previous"]["tasks"] == 4
    # evolution selection at the root reads them: the next trial started under that pressure
    leaf = ViableNode.leaf("coder-2", "coder-2", LeafOperationSpec.coding())
    suggestion = GeneSuggestion(id="probe-pressure-1", suggested_by_node_id="root", target_node_id="root",
                                source=GeneSuggestionSourceKind.System3StarAudit,
                                patch=AddChild(parent_id="root", child=leaf), hypothesis="a second coder",
                                trial_mode=TrialMode.Canary)
    assert org.evolution("suggest", suggestion=suggestion).active is not None
    (started,) = org.wait_events("trial_started", node_id="root")
    pressure = started.payload["environment_pressure"]
    assert pressure["future_probe_count"] == 2 and pressure["event_count"] == 2
    assert pressure["risk_pressure"] == failures["severity"] + cost["severity"]
    # and a person reads them from the ledger
    out = CliRunner().invoke(main, ["ledger", "events", "--ledger", str(org.ledger_path), "--kind", SIGNAL_EVENT,
                                    "-o", "jsonl"])
    assert out.exit_code == 0, out.output
    shown = [json.loads(line) for line in out.output.splitlines()]
    assert len(shown) == 2 and {e["kind"] for e in shown} == {SIGNAL_EVENT}


def test_steady_work_closes_windows_without_signals(org_factory):
    org = org_factory(probed(), provider=scripted(SCRIPT))
    run_batch(org, "Add feature", 12)
    windows = org.wait_events(WINDOW_EVENT, 3, node_id="root")
    assert [w.payload["signals"] for w in windows] == [0, 0, 0]
    assert not org.events(SIGNAL_EVENT)
    assert not org.events(WINDOW_EVENT, node_id="coder")  # leaves declare none, run none


def test_a_window_closes_at_its_interval(org_factory, base):
    org = org_factory(probed(interval=3 if base == "multiproc" else 1, min_tasks=2), provider=scripted(SCRIPT))
    run_batch(org, "Add feature", 2)
    (baseline,) = org.wait_events(WINDOW_EVENT, node_id="root")   # the first closes once full
    run_batch(org, "Add more", 2)                                  # full again, its interval not yet passed
    if base == "multiproc":
        # the node has a process of its own: its wakeup closes the window, with no further result
        _, closed = org.wait_events(WINDOW_EVENT, 2, node_id="root")
        last = max(e.created_at for e in org.events("task_result_received", node_id="root"))
        assert closed.created_at > last and closed.payload["window"]["tasks"] == 2
    else:
        # in process no timer is armed (a pending wakeup would hold up every client listen()):
        # a status round trip stays fast, and the first result after the interval closes it
        t = time.perf_counter()
        org.status()
        assert time.perf_counter() - t < 0.5
        wait_until(lambda: org.run("Add more").ok and len(org.events(WINDOW_EVENT, node_id="root")) == 2,
                   what="a window closed by a result after the interval")


def test_a_restarted_metasystem_keeps_its_baseline(tmp_path, base):
    path = str(tmp_path / "probes.sqlite")
    config = RuntimeConfig(ledger_url=path, provider=scripted(SCRIPT))
    with Organization.start(probed(), config, base=base, restore=False, timeout=DEADLINE) as org:
        run_batch(org, "Add feature")
    with Organization.start(probed(), config, base=base, timeout=DEADLINE) as org:
        worse_batch(org)
    from vsm_actors.ledger import EventQuery, open_ledger
    with open_ledger(path) as ledger:
        events = ledger.events(EventQuery(node_id="root"))
    windows = [e for e in events if e.storage_key == f"other:{WINDOW_EVENT}"]
    signals = [e for e in events if e.storage_key == f"other:{SIGNAL_EVENT}"]
    assert len(windows) == 2 and windows[1].payload["previous"] == windows[0].payload["window"]
    assert {e.metadata["probe_watch"] for e in signals} == {"failures", "cost"}
