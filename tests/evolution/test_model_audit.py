"""The model-directed auditor: a model's JSON answer becomes validated suggestions; anything
invalid is recorded as rejected and dropped, and the audit still completes."""

from __future__ import annotations

import json

import pytest

from vsm_actors import codec
from vsm_actors.core.evolution.audit import AUDIT_LIMITS, AuditInput
from vsm_actors.core.evolution.controller import Ctx, EvolutionState, run_audit
from vsm_actors.core.evolution.intake import ingest_audit_report
from vsm_actors.core.evolution.model_audit import (
    AUDIT_OPERATION, AnswerError, CombinedAuditor, ModelDirectedAuditor, parse_answer,
)
from vsm_actors.core.evolution.audit import RuleBasedAuditor
from vsm_actors.core.model.ids import SequentialIds, SteppingClock
from vsm_actors.core.model.patch import AddChild, AddRoutingRule, Batch, PATCH_TYPES
from vsm_actors.core.model.payloads import AuditFinding, AuditReport
from vsm_actors.core.model.trace import TaskTrace
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.files.patch_files import PatchFileError, decode_patch
from vsm_actors.providers.base import ModelRequest
from vsm_actors.providers.scripted import ScriptedProvider

GENOME = parse_genome_text("""
id: audit-model
root:
  id: root
  name: root
  children:
    - {name: coder, leaf_operation: coding}
audit_policies:
  - {id: a, node_id: root, window_tasks: 100, min_traces: 2, failure_ratio_threshold: 0.4, suggestion: model}
""", name="audit.yaml")

REVIEWER = {"AddChild": {"parent_id": "root", "child": {"name": "model-reviewer", "leaf_operation": "reviewer",
                                                        "status": "Probation"}}}
GOOD = {"findings": [{"title": "Coder fails reviews", "evidence": ["3 of 4 failed"], "severity": 7}],
        "suggestions": [{"patch": REVIEWER, "hypothesis": "a reviewer catches it", "evidence": ["review class"]}]}


def traces(n=4, failing=3):
    from datetime import datetime, timezone
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = SequentialIds("tr")
    return tuple(TaskTrace.started(f"t{i}", "audit-model", "coder", new_id=ids, started_at=at, merged=i >= failing,
                                   input_tokens=10, output_tokens=5) for i in range(n))


def auditor_answering(*answers):
    asked = []

    def ask(prompt):
        asked.append(prompt)
        answer = answers[min(len(asked) - 1, len(answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, str) else json.dumps(answer)
    return ModelDirectedAuditor(ask, decode_patch, tuple(PATCH_TYPES)), asked


def audit(auditor):
    return auditor.audit(AuditInput(genome=GENOME, controller_node_id="root", traces=traces()), SequentialIds("s"))


def test_a_valid_answer_becomes_bounded_suggestions_with_the_model_evidence():
    auditor, asked = auditor_answering(GOOD)
    outcome = audit(auditor)
    assert outcome.rejected == ()
    (suggestion,) = outcome.suggestions
    assert isinstance(suggestion.patch, AddChild) and suggestion.patch.child.id == "model-reviewer"
    assert suggestion.patch.child.leaf_operation.allows_review and not suggestion.patch.child.leaf_operation.allows_code_write
    assert suggestion.safety_limits == AUDIT_LIMITS  # the model cannot widen its own trial
    assert "auditor=model" in suggestion.evidence and "review class" in suggestion.evidence
    assert outcome.report.findings[0].title == "Coder fails reviews" and outcome.report.suggested_patches == (suggestion.patch,)
    (prompt,) = asked
    assert prompt.metadata["operation_kind"] == AUDIT_OPERATION and prompt.metadata["node_id"] == "root"
    evidence = json.loads(prompt.input)
    assert evidence["outcomes"] == [{"node_id": "coder", "task_class": "", "tasks": 4, "failed": 3, "mean_tokens": 15.0}]
    assert [n["id"] for n in evidence["subtree"]] == ["root", "coder"]


def test_a_fenced_answer_with_prose_around_it_is_read():
    text = "Here is my audit:\n```json\n" + json.dumps(GOOD) + "\n```\nThanks."
    assert parse_answer(text) == GOOD
    assert parse_answer("Sure! " + json.dumps(GOOD) + " done") == GOOD


@pytest.mark.parametrize("answer, reason", [
    ("", "answer: empty"),
    ("I think you should add a reviewer.", "answer: not JSON"),
    ("[1, 2]", "answer: must be a JSON object"),
    ({"suggestion": []}, "unknown key(s) ['suggestion']"),
    ({"suggestions": {"patch": REVIEWER}}, "answer.suggestions: must be a list"),
])
def test_an_unusable_answer_is_rejected_with_its_reason_and_nothing_is_suggested(answer, reason):
    outcome = audit(auditor_answering(answer)[0])
    assert outcome.suggestions == ()
    (rejected,) = outcome.rejected
    assert reason in rejected


@pytest.mark.parametrize("bad, reason", [
    ({"patch": {"AddLeaf": {}}}, "answer.suggestions[0].patch: unknown genome patch 'AddLeaf'"),
    ({"patch": {"AddChild": {"parent_id": "root", "child": {"name": "x", "bogus": 1}}}},
     "answer.suggestions[0].patch.AddChild.child: unknown field(s): bogus"),
    ({"patch": {"AddChild": {"parent_id": "nowhere", "child": {"name": "x", "leaf_operation": "tester"}}}},
     "answer.suggestions[0].patch: patch does not apply"),
    ({"patch": {"AddChild": {"parent_id": "root", "child": {"name": "coder", "leaf_operation": "tester"}}}},
     "answer.suggestions[0].patch: patch does not apply"),
    ({"patch": REVIEWER, "trial_mode": "Everywhere"}, "answer.suggestions[0].trial_mode: 'Everywhere'"),
    ({"hypothesis": "no patch"}, "answer.suggestions[0].patch: missing"),
    ({"patch": REVIEWER, "risk": "low"}, "unknown key(s) ['risk']"),
    ("add a reviewer", "answer.suggestions[0]: must be an object"),
])
def test_an_invalid_suggestion_is_dropped_and_the_valid_ones_kept(bad, reason):
    answer = {"suggestions": [bad, GOOD["suggestions"][0]]}
    outcome = audit(auditor_answering(answer)[0])
    assert [s.patch.child.id for s in outcome.suggestions] == ["model-reviewer"]
    (rejected,) = outcome.rejected
    assert rejected.startswith(reason) or reason in rejected, rejected


def test_a_provider_failure_is_an_audit_without_suggestions():
    from vsm_actors.providers.base import ProviderRequestError
    outcome = audit(auditor_answering(ProviderRequestError("quota exhausted"))[0])
    assert outcome.suggestions == () and "quota exhausted" in outcome.rejected[0]


def test_too_many_suggestions_are_cut_and_the_cut_recorded():
    many = {"suggestions": [{"patch": {"AddChild": {"parent_id": "root", "child": {
        "name": f"t{n}", "leaf_operation": "tester"}}}} for n in range(8)]}
    outcome = audit(auditor_answering(many)[0])
    assert len(outcome.suggestions) == 5 and "only the first 5" in outcome.rejected[0]


def test_a_bad_finding_is_dropped_but_its_suggestions_stay():
    answer = {"findings": [{"title": "ok", "severity": 3}, {"title": "bad", "severity": 11}, {"evidence": []}],
              "suggestions": GOOD["suggestions"]}
    outcome = audit(auditor_answering(answer)[0])
    assert [f.title for f in outcome.report.findings] == ["ok"]
    assert len(outcome.rejected) == 2 and len(outcome.suggestions) == 1


def ctx():
    return Ctx(now=SteppingClock(), new_id=SequentialIds("c"), to_json=codec.to_wire)


def test_run_audit_records_rejections_and_queues_the_valid_suggestions():
    state = EvolutionState(controller_id="root", champion=GENOME, observed=traces())
    auditor = auditor_answering({"suggestions": [{"patch": {"Nope": {}}}, GOOD["suggestions"][0]]})[0]
    state, effects = run_audit(state, auditor, ctx())
    kinds = [e.storage_key for e in effects.events]
    assert kinds[0] == "audit_started" and kinds[-1] == "audit_completed"
    assert "other:audit_suggestion_rejected" in kinds and "trial_queued" in kinds
    rejected = next(e for e in effects.events if e.storage_key == "other:audit_suggestion_rejected")
    assert "unknown genome patch 'Nope'" in rejected.payload["reason"]
    assert effects.events[-1].metadata["rejected_count"] == "1"
    (queued,) = state.queued
    assert queued.suggestion.patch.child.id == "model-reviewer"
    assert "model-reviewer" not in state.champion.nodes  # an audit never changes the live genome


def test_rules_and_model_auditors_combine():
    auditor = CombinedAuditor(RuleBasedAuditor(), auditor_answering({"suggestions": [{"patch": {
        "AddChild": {"parent_id": "root", "child": {"name": "model-tester", "leaf_operation": "tester"}}}}]})[0])
    outcome = audit(auditor)
    ids = sorted(getattr(s.patch, "child", None).id if isinstance(s.patch, AddChild)
                 else s.patch.patches[0].child.id for s in outcome.suggestions)
    assert ids == ["model-tester", "review-probation-leaf"]


def test_the_scripted_provider_answers_an_audit_through_its_metadata_rule():
    provider = ScriptedProvider.from_script({"rules": [
        {"match": {"operation_kind": AUDIT_OPERATION}, "output_text": json.dumps(GOOD)},
        {"output_text": "work"}]})

    def ask(prompt):
        return provider.complete(ModelRequest(model=GENOME.root.model, instructions=prompt.instructions,
                                              input=prompt.input, metadata=prompt.metadata)).output_text
    outcome = audit(ModelDirectedAuditor(ask, decode_patch, tuple(PATCH_TYPES)))
    assert [s.patch.child.id for s in outcome.suggestions] == ["model-reviewer"]
    assert [node for node, _ in provider.calls] == ["root"]


def test_an_audit_report_from_a_child_becomes_queued_candidates_with_the_reference_evidence():
    reviewer = decode_patch(REVIEWER)
    report = AuditReport(target_node_id="root", suggested_patches=(reviewer,), findings=(
        AuditFinding(title="Review bottleneck observed", severity=7, evidence=("queue grew",)),))
    state = EvolutionState(controller_id="root", champion=GENOME)
    state, effects = ingest_audit_report(state, report, ctx(), suggested_by="audit-node", source_channel="Audit",
                                         correlation_id="corr-1")
    kinds = [e.storage_key for e in effects.events]
    assert kinds == ["audit_completed", "gene_suggestion_created", "trial_queued"]
    assert effects.events[0].metadata == {"source_channel": "Audit", "suggestion_count": "1"}
    (queued,) = state.queued
    s = queued.suggestion
    assert s.suggested_by_node_id == "audit-node" and s.safety_limits.requires_approval
    assert "finding=Review bottleneck observed severity=7 related_nodes=0 related_tasks=0" in s.evidence
    assert "queue grew" in s.evidence and "correlation_id=corr-1" in s.evidence
    assert s.hypothesis.endswith("Review bottleneck observed")
    assert "model-reviewer" not in state.champion.nodes


def test_a_report_without_findings_says_so_in_its_evidence():
    report = AuditReport(target_node_id="root", suggested_patches=(decode_patch(REVIEWER),))
    state, _ = ingest_audit_report(EvolutionState(controller_id="root", champion=GENOME), report, ctx(),
                                   suggested_by="root")
    assert "audit report supplied suggested patch without findings" in state.queued[0].suggestion.evidence


@pytest.mark.parametrize("raw, message", [
    ({"AddChild": {"parent_id": "root", "child": {"leaf_operation": "tester"}}}, "a node needs a `name`"),
    ({"AddChild": {"parent_id": "root", "child": {"name": "x", "leaf_operation": "poet"}}}, "unknown leaf operation preset 'poet'"),
    ({"AddChild": {"parent_id": "root", "child": {"name": "x", "children": [{"name": "y"}]}}}, "AddChild adds one node"),
    ({"AddRoutingRule": {"rule": {"id": "r", "node_id": "root"}}}, "patch.AddRoutingRule.rule.target_child: required field"),
    ({"Batch": {"patches": [{"Foo": {}}]}}, "patch.Batch.patches[0]: unknown genome patch 'Foo'"),
    ([], "a genome patch is a one-key mapping"),
])
def test_patch_files_name_the_bad_place(raw, message):
    with pytest.raises(PatchFileError, match=None) as info:
        decode_patch(raw)
    assert message in str(info.value)


def test_patch_files_read_the_reference_wire_patches():
    from pathlib import Path
    data = json.loads((Path(__file__).resolve().parents[3] / "shared/fixtures/reference-wire/Patches.json").read_text())
    patches = [decode_patch(p) for p in data]
    assert [codec.to_wire(p) for p in patches] == data
    assert isinstance(decode_patch({"Batch": {"patches": [REVIEWER, {"AddRoutingRule": {"rule": {
        "id": "r", "node_id": "root", "target_child": "model-reviewer", "task_class": "review"}}}]}}).patches[1],
        AddRoutingRule)
    assert Batch


def test_a_genome_naming_an_unknown_auditor_is_refused_at_the_field():
    from vsm_actors.files.genome_files import GenomeFileError
    text = """
id: x
root:
  id: root
  name: root
  children: [{name: coder, leaf_operation: coding}]
audit_policies:
  - {id: a, node_id: root, suggestion: modle}
"""
    with pytest.raises(GenomeFileError) as info:
        parse_genome_text(text, name="bad.yaml")
    assert "bad.yaml" in str(info.value) and "unknown auditor 'modle'" in str(info.value)
    assert "line 8" in str(info.value) or ":8" in str(info.value)
