"""Trace scoring and direct/attributed fitness summaries (reference §1.12, tests in §8 fitness.rs)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from attrs import evolve

from vsm_actors.core.evolution.fitness import (
    AttributionWeights,
    FitnessWeights,
    coordination_units,
    score_trace,
    summarize_attributed_fitness,
    summarize_direct_fitness,
)
from vsm_actors.core.model.ids import SequentialIds
from vsm_actors.core.model.trace import DelayedTraceAdjustment, TaskTrace

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def make_trace(node: str = "leaf", ancestors: tuple[str, ...] = (), outcome: float = 0.0, **changes) -> TaskTrace:
    trace = TaskTrace.started("task", "genome", node, new_id=SequentialIds("trace"), started_at=T0)
    return evolve(trace, responsible_ancestor_ids=ancestors, outcome_score=outcome, **changes)


def fixture_trace() -> TaskTrace:
    """The reference's TaskTrace.json, built field by field."""
    return TaskTrace(
        id="trace-1", task_id="task-1", genome_id="genome-1", assigned_node_id="coder",
        responsible_ancestor_ids=("root",), related_suggestion_ids=("sugg-1",),
        started_at=T0, completed_at=T0 + timedelta(milliseconds=500),
        input_tokens=100, output_tokens=20, tool_calls=0, latency_ms=500,
        lines_added=10, lines_deleted=-2, merged=True, outcome_score=1.0,
        delayed_adjustments=(
            DelayedTraceAdjustment(created_at=T0, source="ci", reason="late regression", delta_score=-3.5),
        ),
        metadata={"status": "Completed"},
    )


class TestScoreTrace:
    def test_reference_fixture_scores_7_4863(self):
        """1.0 − 3.5 + 10 − 0.0012 (tokens) − 0.0005 (latency) − 0.012 (|lines|) with default weights."""
        score = score_trace(fixture_trace(), FitnessWeights())

        assert 7.4863 == round(score, 4)

    def test_default_weights_argument(self):
        """Omitting the weights uses the reference defaults."""
        trace = fixture_trace()

        assert score_trace(trace, FitnessWeights()) == score_trace(trace)

    def test_merge_outcomes(self):
        """merged=True earns the merge value, merged=False costs the failure penalty, None neither."""
        w = FitnessWeights()

        assert 10.0 == score_trace(make_trace(merged=True), w)
        assert -5.0 == score_trace(make_trace(merged=False), w)
        assert 0.0 == score_trace(make_trace(merged=None), w)

    def test_revert_regression_and_override_penalties_stack(self):
        """Each Some(true) flag subtracts its own penalty; Some(false) subtracts nothing."""
        trace = make_trace(merged=True, reverted=True, post_merge_regression=True, human_override=True)

        assert 10.0 - 30.0 - 25.0 - 20.0 == score_trace(trace)
        assert 10.0 == score_trace(evolve(trace, reverted=False, post_merge_regression=False, human_override=False))

    def test_penalizes_coordination_evidence_from_channel_metadata(self):
        """Reference test 5: 1.5 + 0.75 + 2 + 1 + 0.5 + 1 = 6.75 units at weight 1.0 → 10 − 6.75."""
        trace = make_trace(outcome=10.0, metadata={
            "task_metadata.vsm_source_channel": "System2Coordination",
            "vsm_outbound_channel": "System2Coordination",
            "task_metadata.dependency_task_ids": "task-a,task-b",
            "task_metadata.handoff_kind": "DependencyReady",
            "decomposition_role": "review",
            "trial_shadow": "true",
        })

        assert 6.75 == coordination_units(trace)
        assert 3.25 == pytest.approx(score_trace(trace, FitnessWeights(coordination_message_weight=1.0)))


class TestCoordinationUnits:
    def test_no_metadata_means_no_coordination(self):
        """A plain trace has zero coordination units."""
        assert 0.0 == coordination_units(make_trace())

    def test_direct_key_wins_over_task_metadata_fallback(self):
        """`k` is read first; `task_metadata.k` only when `k` is absent."""
        trace = make_trace(metadata={"vsm_source_channel": "Algedonic", "task_metadata.vsm_source_channel": "Audit"})

        assert 2.0 == coordination_units(trace)

    def test_source_channel_falls_back_to_plain_source_channel_key(self):
        """Without `vsm_source_channel` the `source_channel` key is used, at full weight."""
        assert 1.0 == coordination_units(make_trace(metadata={"source_channel": "Command"}))

    def test_unknown_channel_costs_nothing(self):
        """Channel names outside the table (or lowercased ones) add zero units."""
        assert 0.0 == coordination_units(make_trace(metadata={"vsm_source_channel": "command"}))

    @pytest.mark.parametrize(("text", "expected"), [("3", 3.0), ("2.5", 2.5), ("many", 0.0), (" 3", 0.0), ("nan", 0.0)])
    def test_message_count_is_parsed_as_float(self, text, expected):
        """Unparsable counts are ignored rather than failing the score."""
        assert expected == coordination_units(make_trace(metadata={"coordination_message_count": text}))

    def test_dependency_ids_split_on_comma_or_pipe_ignoring_blanks(self):
        """`a, b|c,,  |` lists three dependencies."""
        assert 3.0 == coordination_units(make_trace(metadata={"dependency_task_ids": "a, b|c,,  |"}))

    @pytest.mark.parametrize(("depth", "expected"), [("0", 0.0), ("2", 1.0), ("-1", 0.0), ("x", 0.0)])
    def test_revision_depth_counts_only_when_positive(self, depth, expected):
        """A decomposition revision adds one unit when its depth parses as a positive u32."""
        assert expected == coordination_units(make_trace(metadata={"decomposition_revision_depth": depth}))

    def test_implementation_role_is_free(self):
        """Only non-implementation decomposition roles add half a unit."""
        assert 0.0 == coordination_units(make_trace(metadata={"decomposition_role": "implementation"}))
        assert 0.5 == coordination_units(make_trace(metadata={"decomposition_role": "integration"}))

    @pytest.mark.parametrize(("flag", "expected"), [("true", 1.0), ("1", 1.0), ("YES", 1.0), ("false", 0.0), ("no", 0.0)])
    def test_trial_shadow_truthiness(self, flag, expected):
        """Shadow copies of trial tasks cost one unit."""
        assert expected == coordination_units(make_trace(metadata={"trial_shadow": flag}))

    def test_handoff_and_management_presence(self):
        """Handoff and management kinds each add a unit when present."""
        assert 2.0 == coordination_units(make_trace(metadata={"handoff_kind": "x", "management_kind": "y"}))

    def test_clamped_at_zero(self):
        """A negative message count cannot turn coordination into a bonus."""
        assert 0.0 == coordination_units(make_trace(metadata={"coordination_message_count": "-10", "handoff_kind": "x"}))


class TestDirectFitness:
    def test_counts_costs_and_complexity(self):
        """Per assigned node: counts of true flags, token and latency sums, score minus complexity."""
        traces = [
            make_trace("b", outcome=1.0, merged=True, input_tokens=10, output_tokens=5, latency_ms=7),
            make_trace("b", outcome=2.0, reverted=True),
            make_trace("a", outcome=4.0, human_override=True, post_merge_regression=True),
        ]

        summaries = summarize_direct_fitness(traces, FitnessWeights(), {"b": 2.0})

        assert ["a", "b"] == list(summaries)
        b = summaries["b"]
        assert (2, 1, 1, 0, 0, 15, 7) == (
            b.task_count, b.merged_count, b.reverted_count, b.regression_count, b.human_override_count,
            b.tokens, b.latency_ms,
        )
        assert pytest.approx(score_trace(traces[0]) + score_trace(traces[1])) == b.raw_score
        assert 0.5 == b.complexity_penalty
        assert pytest.approx(b.raw_score - 0.5) == b.final_score
        assert (1, 1, 0.0) == (summaries["a"].regression_count, summaries["a"].human_override_count,
                               summaries["a"].complexity_penalty)

    def test_only_assigned_nodes_get_credit(self):
        """Direct fitness ignores ancestors entirely."""
        assert ["leaf"] == list(summarize_direct_fitness([make_trace("leaf", ("parent",), 3.0)]))


class TestAttributedFitness:
    def test_credits_immediate_parent_for_subtree_work(self):
        """Reference test 1: the leaf and its parent both get the full 10."""
        out = summarize_attributed_fitness([make_trace("leaf", ("parent",), 10.0)], FitnessWeights(), AttributionWeights())

        leaf, parent = out["leaf"], out["parent"]
        assert (1, 1, 10.0, 10.0) == (leaf.direct_task_count, leaf.subtree_task_count, leaf.direct_score, leaf.final_score)
        assert (0, 1, 1, 10.0, 10.0) == (
            parent.direct_task_count, parent.descendant_task_count, parent.subtree_task_count,
            parent.descendant_score, parent.final_score,
        )

    def test_decays_credit_for_higher_ancestors(self):
        """Reference test 2: parent gets weight 1.0, root 0.5."""
        out = summarize_attributed_fitness([make_trace("leaf", ("parent", "root"), 8.0)])

        assert (8.0, 1.0) == (out["parent"].descendant_score, out["parent"].attribution_weight_total)
        assert (4.0, 0.5) == (out["root"].descendant_score, out["root"].attribution_weight_total)

    def test_depth_decay_continues_geometrically(self):
        """Each further ancestor gets half the weight of the one below it."""
        out = summarize_attributed_fitness([make_trace("leaf", ("p", "g", "gg", "ggg"), 8.0)])

        assert [8.0, 4.0, 2.0, 1.0] == [out[n].descendant_score for n in ("p", "g", "gg", "ggg")]

    def test_skipped_ancestors_still_occupy_their_depth(self):
        """The worker itself and repeats are skipped, but the next ancestor's depth is its list position."""
        out = summarize_attributed_fitness([make_trace("leaf", ("leaf", "p", "p", "g"), 8.0)])

        assert 1 == out["leaf"].direct_task_count
        assert 0 == out["leaf"].descendant_task_count
        p = out["p"]
        assert (4.0, 0.5, 1) == (p.descendant_score, p.attribution_weight_total, p.descendant_task_count)
        assert 1.0 == out["g"].descendant_score  # depth 3: 0.5 ** 3

    def test_zero_weight_ancestors_get_no_entry(self):
        """With decay 0 only the immediate parent is credited; higher ancestors are not listed at all."""
        out = summarize_attributed_fitness(
            [make_trace("leaf", ("p", "g"), 8.0)], attribution=AttributionWeights(ancestor_decay=0.0),
        )

        assert ["leaf", "p"] == list(out)

    def test_propagates_delayed_adjustments(self):
        """Reference test 3: a −3 delayed adjustment reaches both the worker and its parent."""
        late = DelayedTraceAdjustment(created_at=T0, source="ci", reason="flaky", delta_score=-3.0)
        out = summarize_attributed_fitness([make_trace("leaf", ("parent",), 10.0, delayed_adjustments=(late,))])

        assert 7.0 == out["leaf"].direct_score
        assert 7.0 == out["parent"].descendant_score

    def test_applies_complexity_penalty_per_node(self):
        """Reference test 4: complexity 4 × 0.25 = 1.0 off the leaf only."""
        out = summarize_attributed_fitness(
            [make_trace("leaf", ("parent",), 10.0)], complexity_by_node={"leaf": 4.0},
        )

        assert (10.0, 1.0, 9.0) == (out["leaf"].raw_score, out["leaf"].complexity_penalty, out["leaf"].final_score)
        assert 10.0 == out["parent"].final_score

    def test_subtree_totals_include_descendant_tokens_and_latency(self):
        """An ancestor's subtree counters add the descendant's tokens and latency; direct ones do not."""
        trace = make_trace("leaf", ("parent",), input_tokens=3, output_tokens=4, latency_ms=9)

        parent = summarize_attributed_fitness([trace])["parent"]

        assert (0, 7, 0, 9) == (
            parent.direct_tokens, parent.subtree_tokens, parent.direct_latency_ms, parent.subtree_latency_ms)
