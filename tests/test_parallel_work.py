"""Work spreads and runs in parallel (issue 10 point 2), on both bases.

A metasystem sends each task to the least loaded of its equally able children and keeps it queued
while they are all busy; leaves work at once (in process too: a provider that waits on the outside
world runs off the actor thread). Behaviour, not speed: the tests look at the execution intervals the
traces record (started_at .. completed_at per task), never at wall time (benchmarks/parallel.py
measures that).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.node import NodeLifecycleStatus, ViableNode
from vsm_actors.core.model.patch import AddChild, SetNodeStatus
from vsm_actors.files.genome_files import load_genome, parse_genome_text
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.system import Organization, make_directive

from actors.conftest import GENOMES, RunningOrg, base, org_factory, wait_until  # noqa: F401 - fixtures: both bases
from test_supervision import SLOW_ONCE, wait_for

FOUR_CODERS = """
id: four-coders
root:
  id: root
  name: root
  {system_3}
  children:
    - {{name: coder-1, leaf_operation: coding}}
    - {{name: coder-2, leaf_operation: coding}}
    - {{name: reviewer, leaf_operation: reviewer}}
    - {{name: coder-3, leaf_operation: coding}}
    - {{name: coder-4, leaf_operation: coding}}
"""


def four_coders(max_parallel: int | None = None):
    system_3 = f"system_3: {{max_parallel_children: {max_parallel}}}" if max_parallel else ""
    return parse_genome_text(FOUR_CODERS.format(system_3=system_3), name="four_coders.yaml")


def slow(latency_ms: int, **script) -> ProviderSpec:
    """The scripted provider really waiting `latency_ms` per call: a slow, blocking provider."""
    return ProviderSpec(name="scripted", options={"script": {"default": {"latency_ms": latency_ms}, **script},
                                                  "sleep": True})


def intervals(traces) -> list[tuple[str, object, object]]:
    return sorted((t.assigned_node_id, t.started_at, t.completed_at) for t in traces)


def overlapping(a, b) -> bool:
    return a[1] < b[2] and b[1] < a[2]


def most_at_once(spans) -> int:
    points = sorted([(s[1], 1) for s in spans] + [(s[2], -1) for s in spans], key=lambda p: (p[0], p[1]))
    now = peak = 0
    for _, step in points:
        now += step
        peak = max(peak, now)
    return peak


def kinds(org, directive_id: str | None = None) -> Counter:
    links = {} if directive_id is None else {"directive_id": directive_id}
    return Counter(e.storage_key for e in org.events(**links))


# -- spreading and overlap ----------------------------------------------------------------------------

def test_directives_spread_over_capable_leaves_which_work_at_once(org_factory):
    org = org_factory(four_coders(), provider=slow(300))
    dones = org.run_many([f"Implement feature {n}" for n in range(8)])
    assert all(d.ok for d in dones)
    # two tasks each for the four coders, none for the reviewer (it cannot write code)
    assert Counter(d.results[0].produced_by for d in dones) == {f"coder-{i}": 2 for i in range(1, 5)}
    spans = intervals(org.traces())
    assert len(spans) == 8
    # different leaves' executions overlapped; one leaf's never did (one task at a time)
    assert any(overlapping(a, b) for a in spans for b in spans if a[0] != b[0])
    for leaf in {s[0] for s in spans}:
        mine = [s for s in spans if s[0] == leaf]
        assert not any(overlapping(a, b) for a in mine for b in mine if a is not b)
    assert most_at_once(spans) == 4
    # the four that found every coder busy waited in the root's queue, and were routed once each
    counts = kinds(org)
    assert counts["other:task_queued"] == 4
    assert counts["task_routed"] == counts["task_mapped"] == counts["trace_written"] == 8


def test_max_parallel_children_bounds_how_many_children_work_at_once(org_factory):
    org = org_factory(four_coders(max_parallel=2), provider=slow(200))
    dones = org.run_many([f"Implement feature {n}" for n in range(6)])
    assert all(d.ok for d in dones)
    spans = intervals(org.traces())
    assert len(spans) == 6 and most_at_once(spans) == 2
    assert {d.results[0].produced_by for d in dones} == {"coder-1", "coder-2"}


def test_a_blocking_command_provider_runs_off_the_actor_thread(org_factory):
    """A real subprocess (the `command` provider) for each task: leaves still overlap in process."""
    provider = ProviderSpec(name="command", options={
        "argv": ["sh", "-c", "cat > /dev/null; sleep 0.3; echo done"], "timeout_seconds": 30})
    org = org_factory(four_coders(), provider=provider)
    dones = org.run_many([f"Implement feature {n}" for n in range(4)])
    assert all(d.ok for d in dones) and {d.results[0].summary for d in dones} == {"done"}
    spans = intervals(org.traces())
    assert len({s[0] for s in spans}) == 4
    assert any(overlapping(a, b) for a in spans for b in spans if a[0] != b[0])


def test_failures_off_the_thread_are_failed_results(org_factory):
    org = org_factory(four_coders(), provider=slow(50, rules=[{"match": {"node_name": "coder-2"},
                                                               "outcome": "failed", "latency_ms": 50,
                                                               "error": "coder-2 is out"}]))
    dones = org.run_many([f"Implement feature {n}" for n in range(4)])
    failed = [d for d in dones if not d.ok]
    assert len(failed) == 1 and "coder-2 is out" in failed[0].results[0].error
    assert kinds(org)["trace_written"] == 4


# -- queued work is never lost ------------------------------------------------------------------------

MIXED = ({"required_capability": "review"}, {"required_capability": "run_tests"}, {})


def run_mixed(org, needs: list[int], hops: int = 2) -> None:
    """`needs` picks each directive's kind of work (review, tests, code) in two_level, where the
    root routes to the team (`hops` routings a task) and the team to one leaf per kind."""
    directives = [make_directive(f"Task {i}", metadata=MIXED[n]) for i, n in enumerate(needs)]
    dones = org.run_many(directives)
    assert [d.directive_id for d in dones] == [d.id for d in directives]
    # every directive completed exactly once, its task routed and executed exactly once
    done_events = Counter(e.directive_id for e in org.events("task_result_received")
                          if e.node_id == "root")
    assert done_events == Counter({d.id: 1 for d in directives})
    assert Counter(t.task_id for t in org.traces()).most_common(1)[0][1] == 1
    for d in directives:
        counts = kinds(org, d.id)
        assert counts["task_routed"] == hops and counts["trace_written"] == 1, counts
        assert counts["other:task_queued"] <= 1
    assert all(d.ok for d in dones)


def test_a_burst_of_mixed_work_completes_exactly_once(org_factory):
    org = org_factory("two_level", provider=slow(20))
    run_mixed(org, [i % 3 for i in range(24)])
    assert kinds(org)["other:task_queued"] > 0  # the burst did wait


@settings(max_examples=8, deadline=None)
@given(needs=st.lists(st.integers(0, 2), min_size=1, max_size=16))
def test_any_mix_of_queued_work_completes_exactly_once_in_process(needs):
    """In process only (an organization per example; the burst above covers both bases)."""
    genome = load_genome(GENOMES / "two_level.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.sqlite"
        config = RuntimeConfig(ledger_url=str(path), provider=slow(5))
        with Organization.start(genome, config, base="simple", restore=False) as org:
            run_mixed(RunningOrg(org, path, "simple", genome), needs)


ONE_CODER = "id: one\nroot:\n  id: root\n  name: root\n  children:\n    - {name: coder, leaf_operation: coding}\n"


def recorded(org, kind: str, count: int) -> list:
    """The ledger's `kind` events once there are `count`; each look first lets the organization run
    (in process actors run only inside a call on the system)."""
    return wait_until(lambda: org.status() and (lambda es: es if len(es) >= count else None)(org.events(kind)),
                      what=f"{count} {kind} events")


def test_a_child_added_while_work_waits_takes_it_at_once(org_factory):
    """A coder joins while two directives wait for the only one: it takes one at once, not when
    the busy coder is done."""
    org = org_factory(parse_genome_text(ONE_CODER, name="one.yaml"), provider=slow(1000))
    directives = [org.submit(f"Implement feature {n}") for n in range(3)]
    recorded(org, "task_queued", 2)
    coder_2 = ViableNode.leaf("coder-2", "coder-2", LeafOperationSpec.coding())
    assert org.apply([AddChild(parent_id="root", child=coder_2)]).error is None
    assert all(d.ok for d in org.wait(directives, timeout=30))
    routed = sorted(org.events("task_routed"), key=lambda e: e.created_at)
    assert [(e.payload["child_node_id"], e.directive_id) for e in routed[:2]] == [
        ("coder", directives[0].id), ("coder-2", directives[1].id)]
    first, joined = ({t.task_id: t for t in org.traces()}[e.task_id] for e in routed[:2])
    assert joined.started_at < first.completed_at  # it did not wait for the busy coder


def test_waiting_work_no_child_can_take_any_more_fails_instead_of_waiting_forever(tmp_path):
    """Both coders retire while one directive waits: when a result frees a place, the waiting one
    is routed again on the new genome, fails as unroutable, and its directive completes; what the
    coders were doing finishes. In process only: on the multiprocess base a live patch is answered
    once every node has taken it, and a leaf busy in its provider call takes it when the call is
    done, so the waiting work has gone to it by then."""
    genome = parse_genome_text(ONE_CODER.replace("- {name: coder, leaf_operation: coding}\n",
                                                 "- {name: coder, leaf_operation: coding}\n"
                                                 "    - {name: coder-2, leaf_operation: coding}\n"), name="two.yaml")
    path = tmp_path / "ledger.sqlite"
    with Organization.start(genome, RuntimeConfig(ledger_url=str(path), provider=slow(500)), base="simple",
                            restore=False) as started:
        org = RunningOrg(started, path, "simple", genome)
        directives = [org.submit(f"Implement feature {n}") for n in range(3)]
        retire = [SetNodeStatus(node_id=n, status=NodeLifecycleStatus.Retired) for n in ("coder", "coder-2")]
        assert org.apply(retire).error is None
        done = org.wait(directives, timeout=30)
        assert [d.ok for d in done] == [True, True, False]
        assert "could not be routed" in done[2].results[0].summary
        assert kinds(org, directives[2].id)["other:task_queued"] == 1


@pytest.mark.parametrize("policy", ["fail", "retry"])
def test_work_queued_behind_a_leaf_that_dies_is_still_done(tmp_path, policy):
    """A single leaf: the second directive waits in the root's queue while the first runs; the leaf
    is killed; the first is failed or retried by policy, and the queued one then runs, once."""
    script = tmp_path / "slow_once.py"
    script.write_text(SLOW_ONCE)
    marker = tmp_path / "started"
    ledger_path = tmp_path / "ledger.sqlite"
    provider = ProviderSpec(name="command", options={"argv": [sys.executable, str(script), str(marker)],
                                                     "workspace": str(tmp_path), "timeout_seconds": 120})
    genome = parse_genome_text(ONE_CODER, name="one.yaml")
    config = RuntimeConfig(ledger_url=str(ledger_path), provider=provider, crash_policy=policy,
                           watchdog_seconds=0.5)
    with Organization.start(genome, config, base="multiproc", restore=False) as org:
        first, second = org.submit("Write the slow thing"), org.submit("Write the next thing")
        wait_for(marker.exists, 30, "the leaf to start executing")
        os.kill(org.status().pids["coder"], signal.SIGKILL)
        done_first, done_second = org.wait([first, second], timeout=60)
        assert done_first.ok == (policy == "retry")
        assert done_second.ok
    with open_ledger(str(ledger_path)) as ledger:
        events = ledger.events(EventQuery(directive_id=second.id))
    counts = Counter(e.storage_key for e in events)
    assert counts["other:task_queued"] == 1 and counts["task_routed"] == 1 and counts["trace_written"] == 1
