"""Property: a simulation is a function of (genome, workload, seed): the same three give a
byte-identical ledger export, and another seed gives another history."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from vsm_actors.commands.ledger import event_data, iter_events
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.files.simulation import load_simulation
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.simulate import simulate

GENOME = parse_genome_text("""
id: determinism
root:
  id: root
  name: root
  children:
    - {name: coder, leaf_operation: coding}
audit_policies:
  - {id: a, node_id: root, window_tasks: 20, min_traces: 5, failure_ratio_threshold: 0.2}
""", name="determinism.yaml")
WORKLOAD = load_simulation(b"""
name: determinism
per_generation: 20
approve_trials: true
directives:
  - {class: feature, weight: 2, title: "Implement feature {n}", metadata: {requires_code_write: "true"}}
  - {class: review, title: "Review change {n}", metadata: {required_capability: review}}
world:
  default: {success: 0.7, tokens: [100, 900], latency_ms: [10, 500]}
  rules:
    - when: {class: review, operation: reviewing}
      then: {success: 0.95}
""", name="determinism.yaml")


def export(path) -> str:
    with open_ledger(str(path)) as ledger:
        return "\n".join(json.dumps(event_data(e), sort_keys=True) for e in iter_events(ledger, EventQuery()))


def run(tmp_path, name, seed) -> str:
    path = tmp_path / f"{name}.sqlite"
    simulate(GENOME, WORKLOAD, seed=seed, generations=2, ledger_url=str(path))
    return export(path)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**31), other=st.integers(min_value=1, max_value=1000))
def test_same_seed_same_export_other_seed_other_export(tmp_path_factory, seed, other):
    tmp_path = tmp_path_factory.mktemp("sim")
    first, again, different = run(tmp_path, "a", seed), run(tmp_path, "b", seed), run(tmp_path, "c", seed + other)
    assert first == again
    assert first != different
    assert '"kind_storage_key": "trial_started"' in first or '"kind_storage_key": "audit_completed"' in first
