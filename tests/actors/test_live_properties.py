"""Property: whatever stream of directives and live promotions arrives, only nodes that are
leaves in the genome current at the time execute (write traces), and every directive completes.

simpleSystemBase only (hundreds of organizations; the same code paths run on TCP in the
behaviour tests)."""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vsm_actors.actors import base as actor_base
from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.system import Organization, make_directive

from .conftest import GENOMES, scripted

DIRECTIVE_METADATA = (
    {},
    {"required_capability": "review", "requires_code_write": "false"},
    {"required_capability": "run_tests", "requires_code_write": "false"},
    {"target_child": "backend-tester", "requires_code_write": "false"},
)

steps = st.lists(st.one_of(
    st.tuples(st.just("directives"), st.lists(st.sampled_from(range(len(DIRECTIVE_METADATA))), min_size=1,
                                              max_size=4)),
    st.tuples(st.just("promote"), st.integers(min_value=0, max_value=50)),
), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genome_name=st.sampled_from(["single_coder", "two_level"]), plan=steps,
       fail_rate=st.sampled_from([0.0, 0.3]))
def test_only_current_leaves_execute_and_every_directive_completes(genome_name, plan, fail_rate):
    old = actor_base.PICKLE_CHECK
    actor_base.PICKLE_CHECK = True
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ledger.sqlite")
            provider = scripted({"rules": [{"failure_rate": fail_rate}]} if fail_rate else {})
            org = Organization.start(load_genome(GENOMES / f"{genome_name}.yaml"),
                                     RuntimeConfig(ledger_url=path, provider=provider), restore=False, timeout=20)
            try:
                check_run(org, plan, path)
            finally:
                org.shutdown()
    finally:
        actor_base.PICKLE_CHECK = old


def check_run(org: Organization, plan, path: str) -> None:
    genomes = {}
    genome = org.status().genome
    genomes[genome.id] = genome
    submitted, done = [], []
    promotions = 0
    for kind, arg in plan:
        if kind == "directives":
            batch = [make_directive(f"directive {len(submitted) + i}", metadata=DIRECTIVE_METADATA[m])
                     for i, m in enumerate(arg)]
            submitted += batch
            done += org.run_many(batch)
        else:
            leaves = sorted(n.id for n in genome.leaves())
            target = leaves[arg % len(leaves)]
            applied = org.promote(target, f"promoted-{promotions}")
            promotions += 1
            assert applied.error is None, applied.error
            genome = org.status().genome
            assert genome.id == applied.genome_id
            assert genome.node(target).is_metasystem
            assert not genome.node(target).capabilities().allows("write_code")
            genomes[genome.id] = genome

    # every directive completed, with exactly one result
    assert [d.directive_id for d in done] == [d.id for d in submitted]
    assert all(len(d.results) == 1 for d in done)

    with open_ledger(path) as ledger:
        traces = ledger.recent_task_traces()
        written = [e for e in ledger.events(EventQuery()) if e.storage_key == "trace_written"]
    # only leaves of the genome current when the work ran ever executed
    for trace in traces:
        snapshot = genomes[trace.genome_id]
        assert snapshot.node(trace.assigned_node_id).is_leaf, (trace.assigned_node_id, trace.genome_id)
    for event in written:
        assert genomes[event.genome_id].node(event.node_id).is_leaf
    # each result produced by a leaf has its trace; results made by a metasystem are routing failures
    by_task = {t.task_id: t for t in traces}
    for d in done:
        (result,) = d.results
        if result.task_id in by_task:
            assert by_task[result.task_id].assigned_node_id == result.produced_by
        else:
            assert "no routeable child" in (result.error or ""), result
    assert len(traces) == len(by_task) == len(written)
