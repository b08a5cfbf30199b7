"""Properties of evolution in the running actors, over random sequences of work, audits,
generations, approvals, promotions and prunings (simpleSystemBase; the same paths run on TCP in
tests/test_evolution_runtime.py):

- no node with children ever executes work (every trace's node is a leaf of the genome it ran on);
- a pruned or ended trial leaves no candidate actor behind;
- at most one trial is active per metasystem, and every directive completes.
"""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.core.model.records import StoredTrialStatus
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.system import Organization, make_directive

GENOME = """
id: live-props
root:
  id: root
  name: root
  children:
    - name: team
      children:
        - {name: coder, leaf_operation: coding}
        - {name: tester, leaf_operation: tester}
    - {name: solo, leaf_operation: coding}
audit_policies:
  - {id: team-audit, node_id: team, window_tasks: 1000, min_traces: 2, failure_ratio_threshold: 0.3}
  - {id: root-audit, node_id: root, window_tasks: 1000, min_traces: 2, failure_ratio_threshold: 0.3}
"""
SCRIPT = {"rules": [{"match": {"node_name": "coder"}, "outcome": "failed", "error": "coder fails"},
                    {"match": {"node_name": "solo"}, "failure_rate": 0.5}, {"output_text": "done"}]}
WORK = ({"requires_code_write": "true"}, {"required_capability": "review", "requires_code_write": "false"},
        {"required_capability": "run_tests", "requires_code_write": "false"}, {"task_class": "docs"})

steps = st.lists(st.one_of(
    st.tuples(st.just("work"), st.lists(st.sampled_from(range(len(WORK))), min_size=1, max_size=5)),
    st.tuples(st.sampled_from(["audit", "evolve", "approve", "promote", "prune", "decide"]),
              st.sampled_from(["root", "team"])),
), min_size=2, max_size=10)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_only_leaves_execute_and_ended_trials_leave_no_actor(plan):
    run_plan(plan)


def test_the_property_is_not_vacuous_trials_start_promote_and_prune():
    kinds = run_plan([("work", [0, 0, 0, 0]), ("audit", "team"), ("approve", "team"), ("work", [1, 1, 1]),
                      ("promote", "team"), ("work", [0, 0, 0]), ("audit", "root"), ("prune", "root"),
                      ("work", [2, 3])])
    assert {"trial_started", "trial_promoted", "trial_pruned"} <= kinds


def run_plan(plan) -> set[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ledger.sqlite")
        config = RuntimeConfig(ledger_url=path, provider=ProviderSpec(name="scripted", options={"script": SCRIPT}))
        with Organization.start(parse_genome_text(GENOME, name="props.yaml"), config, restore=False,
                                timeout=30) as org:
            submitted, done = [], []
            for kind, arg in plan:
                if kind == "work":
                    batch = [make_directive(f"Task {len(submitted) + i}", metadata=WORK[m]) for i, m in enumerate(arg)]
                    submitted += batch
                    done += org.run_many(batch)
                    continue
                status = org.evolution("status", arg)
                if kind in ("approve", "promote", "prune", "decide"):
                    if status.active is None:
                        continue
                    org.evolution(kind, arg, trial_id=status.active.trial_id)
                else:
                    org.evolution(kind, arg)
                check_candidates(org)
            assert [d.directive_id for d in done] == [d.id for d in submitted]
        return check_ledger(path)


def check_candidates(org: Organization) -> None:
    """Actors exist for the champion's nodes and for the active trials' candidate-only nodes, nothing else."""
    status = org.status()
    expected = set(status.genome.nodes)
    for controller in ("root", "team"):
        if controller not in status.genome.nodes or not status.genome.node(controller).is_metasystem:
            continue
        reply = org.evolution("status", controller)
        if not reply.ok:
            continue
        assert sum(1 for r in reply.records if r.status is StoredTrialStatus.Active) <= 1
        if reply.active is not None:
            snapshot = org.read_ledger("get_genome_snapshot", reply.active.candidate_genome_id)
            expected |= set(snapshot.genome.nodes)
    leftover = set(status.pids) - expected
    assert not leftover, f"actors outlived their trial: {sorted(leftover)}"


def check_ledger(path: str) -> set[str]:
    with open_ledger(path) as ledger:
        events = list(ledger.events(EventQuery()))
        written = [e for e in events if e.storage_key == "trace_written"]
        for event in written:
            genome = ledger.get_genome_snapshot(event.genome_id).genome
            assert genome.node(event.node_id).is_leaf, (event.node_id, event.genome_id)
    return {e.storage_key for e in events}
