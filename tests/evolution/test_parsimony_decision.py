"""A simpler candidate at the end of its trial: promoted when no worse, and — parsimony breaking
the tie — when it is within one standard error of "no worse" and certainly cheaper; pruned when
it is clearly worse, however much it saves, or when it saves nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from attrs import evolve

from vsm_actors.core.evolution.candidates import build_candidate
from vsm_actors.core.evolution.trials import ActiveTrial, TrialDecision, evaluate_trial, token_saving
from vsm_actors.core.model.genes import TrialSettings
from vsm_actors.core.model.ids import EPOCH
from vsm_actors.core.model.patch import RemoveSubtree
from vsm_actors.core.model.records import StoredTrialRecord
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialSafetyLimits
from vsm_actors.core.model.trace import TaskTrace
from vsm_actors.files.genome_files import parse_genome_text

GENOME = parse_genome_text("""
id: parsimony
root:
  id: root
  name: root
  children:
    - {name: coder, leaf_operation: coding}
    - {name: docs-writer, leaf_operation: coding}
""", name="parsimony.yaml")
SETTINGS = TrialSettings(min_tasks_before_decision=1, max_trial_tasks=10)


def trial(outcomes, tokens, baseline):
    suggestion = GeneSuggestion(id="s-1", suggested_by_node_id="root", target_node_id="root",
                                source=GeneSuggestionSourceKind.System3StarAudit,
                                patch=RemoveSubtree(node_id="docs-writer"), hypothesis="the writer adds nothing",
                                safety_limits=TrialSafetyLimits(max_tasks=len(outcomes)))
    candidate = build_candidate(GENOME, suggestion, "cand")
    traces = tuple(TaskTrace(id=f"tr-{i}", task_id=f"t-{i}", genome_id="cand", assigned_node_id="coder",
                             started_at=EPOCH + timedelta(seconds=i), merged=ok, input_tokens=tokens,
                             metadata={"task_class": "docs"}) for i, ok in enumerate(outcomes))
    record = evolve(StoredTrialRecord.active("root", GENOME.id, "cand", suggestion, EPOCH),
                    routed_tasks=len(outcomes), trace_count=len(outcomes))
    return ActiveTrial(record=record, candidate=candidate, traces=traces, baseline=tuple(baseline))


def champion(successes, failures, tokens):
    return [("docs", 10.0, tokens + i % 7) for i in range(successes)] + [
        ("docs", -5.0, tokens + i % 5) for i in range(failures)]


def decide(t):
    return evaluate_trial(t, GENOME, SETTINGS, EPOCH + timedelta(minutes=1))


def test_within_noise_and_cheaper_is_promoted():
    # 7 of 10 against the champion's 8 of 10: worse by 1.5 per task on its face, but not beyond noise
    verdict = decide(trial([True] * 7 + [False] * 3, 1200, champion(8, 2, 3500)))
    assert verdict.difference < -1.0
    assert verdict.decision is TrialDecision.Promote and "cheaper by" in verdict.reason


def test_within_noise_but_no_cheaper_is_pruned():
    verdict = decide(trial([True] * 7 + [False] * 3, 3500, champion(8, 2, 3500)))
    assert verdict.decision is TrialDecision.Prune


def test_clearly_worse_is_pruned_however_cheap():
    verdict = decide(trial([True] * 2 + [False] * 8, 10, champion(19, 1, 3500)))
    assert verdict.decision is TrialDecision.Prune


def test_no_worse_is_promoted_without_any_saving():
    verdict = decide(trial([True] * 8 + [False] * 2, 3500, champion(8, 2, 3500)))
    assert verdict.decision is TrialDecision.Promote and "no worse" in verdict.reason


@pytest.mark.parametrize("mine, theirs, saves", [
    ([1000.0] * 5, [3000, 3100, 2900, 3050], True),
    ([1000.0, 5000.0, 200.0], [1500, 1400, 1600], False),     # noisy: no certain saving
    ([3000.0] * 4, [1000, 1100], False),                      # dearer
    ([1000.0], [3000, 3000], False),                          # too little evidence
])
def test_token_saving_needs_a_certain_saving(mine, theirs, saves):
    traces = [TaskTrace(id=f"x{i}", task_id=f"t{i}", genome_id="g", assigned_node_id="n", started_at=EPOCH,
                        input_tokens=int(m)) for i, m in enumerate(mine)]
    compared = [("docs", 0.0, t) for t in theirs] + [("docs", -5.0, None)]  # unrouted work has no tokens
    assert (token_saving(traces, compared, 2.0) is not None) is saves
