"""Audits in the running actors beyond the rule: a model-directed audit answered by the scripted
provider, an invalid answer recorded and dropped, and audit reports and gene suggestions arriving
as envelopes on their channels — on both Thespian bases."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.core.model.channel import VsmChannelType
from vsm_actors.core.model.messages import MessageEnvelope
from vsm_actors.core.model.payloads import AuditFinding, AuditReport, AuditRequest
from vsm_actors.core.model.records import StoredTrialStatus
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.files.patch_files import decode_patch
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.system import Organization, make_directive

GENOME = """
id: audit-model
root:
  id: root
  name: root
  children:
    - name: coder
      leaf_operation: coding
audit_policies:
  - {id: root-audit, node_id: root, window_tasks: 1000, min_traces: 2, failure_ratio_threshold: 0.4, suggestion: model}
"""
REVIEWER = {"AddChild": {"parent_id": "root", "child": {"name": "model-reviewer", "leaf_operation": "reviewer",
                                                        "status": "Probation"}}}
ANSWER = {"findings": [{"title": "The coder fails", "severity": 6}],
          "suggestions": [{"patch": REVIEWER, "hypothesis": "a reviewer takes the review work"}]}
REVIEW = {"required_capability": "review", "requires_code_write": "false"}


def script(answer):
    return {"rules": [{"match": {"operation_kind": "system_3_star_audit"}, "output_text": answer},
                      {"match": {"node_name": "coder"}, "outcome": "failed", "error": "coder fails"},
                      {"output_text": "reviewed"}]}


def organization(tmp_path, answer, base="simple", genome=GENOME):
    config = RuntimeConfig(ledger_url=str(tmp_path / "audit.sqlite"),
                           provider=ProviderSpec(name="scripted", options={"script": script(answer)}))
    return Organization.start(parse_genome_text(genome, name="audit.yaml"), config, base=base, timeout=60)


def events(tmp_path):
    with open_ledger(str(tmp_path / "audit.sqlite")) as ledger:
        return list(ledger.events(EventQuery()))


@pytest.mark.parametrize("base", ["simple", "multiproc"])
def test_a_model_directed_audit_queues_the_models_patch_and_the_trial_promotes_it(tmp_path, base):
    with organization(tmp_path, json.dumps(ANSWER), base) as org:
        org.run_many([make_directive(f"Change {n}", metadata={"requires_code_write": "true"}) for n in range(3)])
        reply = org.evolution("audit")
        assert reply.active is not None and "auditor=model" in reply.active.suggestion.evidence
        assert "model-reviewer" not in org.genome.nodes
        org.evolution("approve", trial_id=reply.active.trial_id)
        dones = org.run_many([make_directive(f"Review {n}", metadata=REVIEW) for n in range(3)])
        assert all(d.ok for d in dones) and dones[0].results[0].produced_by == "model-reviewer"
        assert "model-reviewer" in org.status().genome.nodes
    kinds = [e.storage_key for e in events(tmp_path)]
    assert kinds.index("audit_started") < kinds.index("trial_queued") < kinds.index("trial_promoted")


def test_an_invalid_model_answer_is_recorded_and_dropped_and_the_organization_keeps_working(tmp_path):
    with organization(tmp_path, "You should hire a reviewer.") as org:
        org.run_many([make_directive(f"Change {n}", metadata={"requires_code_write": "true"}) for n in range(3)])
        reply = org.evolution("audit")
        assert reply.ok and reply.active is None and reply.records == ()
        done = org.run(make_directive("Change again", metadata={"requires_code_write": "true"}))
        assert done.results and done.results[0].produced_by == "coder"
    seen = events(tmp_path)
    (rejected,) = [e for e in seen if e.storage_key == "other:audit_suggestion_rejected"]
    assert "answer: not JSON" in rejected.payload["reason"]
    assert "You should hire a reviewer." in rejected.payload["reason"]
    completed = [e for e in seen if e.storage_key == "audit_completed"]
    assert completed[-1].metadata["rejected_count"] == "1" and completed[-1].metadata["suggestion_count"] == "0"


def envelope(channel, payload, **extra):
    return MessageEnvelope.new(channel, payload, id=f"env-{channel.value}", created_at=datetime.now(timezone.utc),
                               **extra)


RULES = GENOME.replace(", suggestion: model", "")


@pytest.mark.parametrize("base", ["simple", "multiproc"])
def test_an_audit_report_on_the_audit_channel_becomes_a_queued_candidate_not_a_change(tmp_path, base):
    report = AuditReport(target_node_id="root", suggested_patches=(decode_patch(REVIEWER),),
                         findings=(AuditFinding(title="Review bottleneck observed", severity=7),))
    with organization(tmp_path, "{}", base, genome=RULES) as org:
        reply = org.evolution("deliver", envelope=envelope(VsmChannelType.Audit, report, source_node_id="audit-node",
                                                           correlation_id="corr-7"))
        assert reply.ok, reply.error
        (record,) = reply.records
        assert record.suggestion.suggested_by_node_id == "audit-node"
        assert any("Review bottleneck observed" in e for e in record.suggestion.evidence)
        assert record.suggestion.safety_limits.requires_approval
        assert "model-reviewer" not in org.genome.nodes
    seen = events(tmp_path)
    (completed,) = [e for e in seen if e.storage_key == "audit_completed"]
    assert completed.metadata["source_channel"] == "Audit" and completed.metadata["suggestion_count"] == "1"
    (created,) = [e for e in seen if e.storage_key == "gene_suggestion_created"]
    assert created.metadata["source_channel"] == "Audit"


def test_a_gene_suggestion_on_its_channel_is_queued_with_the_channel_in_its_evidence(tmp_path):
    suggestion = GeneSuggestion.new("root", "root", GeneSuggestionSourceKind.System4FutureProbe,
                                    decode_patch(REVIEWER), "forecast: review queue grows", lambda: "sg-1",
                                    evidence=("forecast=review_queue_growth",))
    with organization(tmp_path, "{}", genome=RULES) as org:
        reply = org.evolution("deliver", envelope=envelope(VsmChannelType.ThreeFourHomeostat, suggestion))
        (record,) = reply.records
        assert record.trial_id == "sg-1" and record.status in (StoredTrialStatus.Queued, StoredTrialStatus.Active)
        assert "source_channel=ThreeFourHomeostat" in record.suggestion.evidence
    (created,) = [e for e in events(tmp_path) if e.storage_key == "gene_suggestion_created"]
    assert created.suggestion_id == "sg-1" and created.metadata["source_payload_type"] == "vsm.gene_suggestion"


def test_an_audit_request_on_the_audit_channel_runs_the_audit(tmp_path):
    with organization(tmp_path, "{}", genome=RULES) as org:
        org.run_many([make_directive(f"Change {n}", metadata={"requires_code_write": "true"}) for n in range(3)])
        reply = org.evolution("deliver", envelope=envelope(
            VsmChannelType.Audit, AuditRequest(requested_by="user", target_node_id="root")))
        assert reply.active is not None and reply.active.suggestion.patch.child.name == "review-probation-leaf"
        bad = org.evolution("deliver", envelope=envelope(VsmChannelType.Audit, {"not": "an audit"}, payload_type="x"))
        assert not bad.ok and "is not an audit request" in bad.error


def test_environment_and_homeostat_signals_are_recorded_queued_and_restored(tmp_path):
    from vsm_actors.core.model.payloads import (
        EnvironmentSignal, EnvironmentSignalKind, ThreeFourHomeostatBalance, ThreeFourHomeostatKind,
        ThreeFourHomeostatSignal,
    )
    now = datetime.now(timezone.utc)
    risk = EnvironmentSignal(kind=EnvironmentSignalKind.Risk, source_environment="ci", summary="flaky builds",
                             severity=6, created_at=now)
    signal = ThreeFourHomeostatSignal(
        system_3_node_id="root", system_4_node_id="probe", target_node_id="root",
        kind=ThreeFourHomeostatKind.CapabilityGap, balance=ThreeFourHomeostatBalance.FutureDominant,
        recommendation="add a reviewer", severity=4, created_at=now, suggested_patches=(decode_patch(REVIEWER),))
    with organization(tmp_path, "{}", genome=RULES) as org:
        org.evolution("deliver", envelope=envelope(VsmChannelType.OperationToEnvironment, risk))
        reply = org.evolution("deliver", envelope=envelope(VsmChannelType.ThreeFourHomeostat, signal))
        (record,) = reply.records
        assert record.suggestion.trial_mode.value == "Canary" and not record.suggestion.safety_limits.requires_approval
        assert record.metadata["environment_signal_count"] == "2"  # both were pressure when it was selected
    seen = {e.storage_key: e for e in events(tmp_path)}
    assert seen["other:operation_environment_signal"].payload["source_channel"] == "OperationToEnvironment"
    assert seen["other:three_four_homeostat_signal"].payload["balance"] == "FutureDominant"
    # after a restart the pressure is there again for the next selection
    from vsm_actors.core.evolution.restore import restore_state
    from vsm_actors.ledger.evolution_state import load_evolution
    with open_ledger(str(tmp_path / "audit.sqlite")) as ledger:
        stored = load_evolution(ledger, "root")
    restored = restore_state("root", parse_genome_text(RULES, name="audit.yaml"), stored)
    assert [e.storage_key for e in restored.environment] == ["other:operation_environment_signal",
                                                             "other:three_four_homeostat_signal"]
