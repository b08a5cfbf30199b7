"""Evolution in the running actors: audit -> queued candidate -> trial -> promotion or pruning,
on both Thespian bases, and trial state that survives a restart."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.core.model.records import StoredTrialStatus
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.system import Organization, make_directive

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "local_evolution_cycle.py"


def load_example():
    spec = importlib.util.spec_from_file_location("local_evolution_cycle", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kinds(path) -> list[str]:
    with open_ledger(str(path)) as ledger:
        return [e.storage_key for e in ledger.events(EventQuery())]


def test_local_evolution_cycle_promotes_the_reviewer(tmp_path):
    ledger = tmp_path / "cycle.sqlite"
    out = load_example().main(str(ledger))
    assert out["status"] == "Promoted"
    assert out["champion"] == out["candidate"]
    assert out["children"] == ["primary-code-service", "review-probation-leaf"]
    seen = kinds(ledger)
    for kind in ("audit_started", "gene_suggestion_created", "audit_completed", "trial_queued", "trial_started",
                 "trial_task_routed", "trial_trace_recorded", "trial_decision_recorded", "trial_promoted",
                 "genome_patch_applied"):
        assert kind in seen, kind
    assert seen.index("audit_completed") < seen.index("trial_started") < seen.index("trial_promoted")
    with open_ledger(str(ledger)) as led:
        (record,) = [r for r in led.trial_records() if r.status is StoredTrialStatus.Promoted]
        assert led.get_champion_genome("local-cycle").id == record.candidate_genome_id
        archive = led.population_archive_records(record.controller_node_id)
        assert [a.status.storage_key for a in archive] == ["promoted"]


GENOME = """
id: evo-test
root:
  id: root
  name: root
  children:
    - name: coder
      leaf_operation: coding
audit_policies:
  - {id: root-audit, node_id: root, window_tasks: 1000, min_traces: 2, failure_ratio_threshold: 0.4}
"""


def organization(tmp_path, script, base="simple", restore=False):
    genome = parse_genome_text(GENOME, name="evo.yaml")
    config = RuntimeConfig(ledger_url=str(tmp_path / "evo.sqlite"),
                           provider=ProviderSpec(name="scripted", options={"script": script}))
    return Organization.start(genome, config, base=base, restore=restore, timeout=60)


REVIEW = {"required_capability": "review", "requires_code_write": "false"}
FAILING_CODER = {"rules": [{"match": {"node_name": "coder"}, "outcome": "failed", "error": "coder fails"},
                           {"output_text": "reviewed"}]}


@pytest.mark.parametrize("base", ["simple", "multiproc"])
def test_trial_promotion_changes_the_live_actor_tree(tmp_path, base):
    with organization(tmp_path, FAILING_CODER, base) as org:
        org.run_many([make_directive(f"Change {n}", metadata={"requires_code_write": "true"}) for n in range(3)])
        reply = org.evolution("audit")
        assert reply.active is not None and reply.active.status is StoredTrialStatus.Active
        assert "review-probation-leaf" not in org.genome.nodes  # an audit never changes the live genome
        org.evolution("approve", trial_id=reply.active.trial_id)
        dones = org.run_many([make_directive(f"Review {n}", metadata=REVIEW)
                              for n in range(4)])
        assert all(d.ok for d in dones[:3])
        status = org.status()
        assert "review-probation-leaf" in status.genome.nodes
        assert "review-probation-leaf" in status.pids  # the candidate's actor now serves the champion
        # the promoted reviewer takes review work by ordinary routing now
        done = org.run(make_directive("Review after promotion", metadata=REVIEW))
        assert done.ok and done.results[0].produced_by == "review-probation-leaf"


def test_pruned_candidate_leaves_the_champion_untouched_and_no_actor(tmp_path):
    # the candidate reviewer fails as badly as the coder: no better than the champion's baseline
    script = {"rules": [{"outcome": "failed", "error": "everything fails"}]}
    with organization(tmp_path, script) as org:
        org.run_many([make_directive(f"Change {n}", metadata={"requires_code_write": "true"}) for n in range(3)])
        reply = org.evolution("audit")
        trial_id = reply.active.trial_id
        before = org.genome.id
        org.evolution("prune", trial_id=trial_id)
        status = org.evolution("status")
        (record,) = [r for r in status.records if r.trial_id == trial_id]
        assert record.status is StoredTrialStatus.Pruned and status.active is None
        assert org.genome.id == before and "review-probation-leaf" not in org.genome.nodes
        # the candidate's actor is gone: a review directive cannot be served
        done = org.run(make_directive("Review", metadata=REVIEW))
        assert not done.ok


def test_an_active_trial_survives_a_restart(tmp_path):
    with organization(tmp_path, FAILING_CODER) as org:
        org.run_many([make_directive(f"Change {n}", metadata={"requires_code_write": "true"}) for n in range(3)])
        trial_id = org.evolution("audit").active.trial_id
    with organization(tmp_path, FAILING_CODER, restore=True) as org:
        status = org.evolution("status")
        assert status.active is not None and status.active.trial_id == trial_id
        org.evolution("approve", trial_id=trial_id)
        dones = org.run_many([make_directive(f"Review {n}", metadata=REVIEW)
                              for n in range(3)])
        assert all(d.ok for d in dones)
        assert all(d.results[0].produced_by == "review-probation-leaf" for d in dones)
        assert org.evolution("status").active is None
        assert "review-probation-leaf" in org.genome.nodes


def test_a_shadow_trial_copies_work_and_never_answers_for_the_champion(tmp_path):
    from vsm_actors.core.model.capability import LeafOperationSpec
    from vsm_actors.core.model.node import ViableNode
    from vsm_actors.core.model.patch import AddChild, AddRoutingRule
    from vsm_actors.core.model.genes import RoutingRule
    from vsm_actors.core.model.patch import Batch
    from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialMode, TrialSafetyLimits
    script = {"rules": [{"output_text": "done"}]}
    with organization(tmp_path, script) as org:
        leaf = ViableNode.leaf("shadow-coder", "shadow-coder", LeafOperationSpec.coding())
        patch = Batch(patches=(AddChild(parent_id="root", child=leaf), AddRoutingRule(rule=RoutingRule(
            id="all-to-shadow", node_id="root", target_child="shadow-coder", keywords=("change",)))))
        suggestion = GeneSuggestion(id="shadow-1", suggested_by_node_id="root", target_node_id="root",
                                    source=GeneSuggestionSourceKind.System3StarAudit, patch=patch, hypothesis="shadow",
                                    trial_mode=TrialMode.Shadow,
                                    safety_limits=TrialSafetyLimits(max_tasks=3, max_traffic_share_basis_points=10_000))
        reply = org.evolution("suggest", suggestion=suggestion)
        assert reply.active is not None and reply.active.trial_id == "shadow-1"
        dones = org.run_many([make_directive(f"Change {n}", metadata={"requires_code_write": "true"}) for n in range(5)])
        assert all(d.ok and d.results[0].produced_by == "coder" for d in dones)  # the champion answers
        status = org.evolution("status")
        (record,) = [r for r in status.records if r.trial_id == "shadow-1"]
        assert record.routed_tasks == 3 and record.trace_count == 3
