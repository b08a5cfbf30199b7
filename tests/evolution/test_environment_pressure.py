"""Environment pressure (reference §3.12): the summary of a node's latest environment and 3-4
homeostat events, the reference's worked example, its use in selection, and homeostat patches
queued as bounded canary candidates."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from vsm_actors import codec
from vsm_actors.core.control.environment import (
    PRESSURE_WINDOW, event_name, signal_event_name, summarize_pressure,
)
from vsm_actors.core.evolution.activation import start_next_trial
from vsm_actors.core.evolution.controller import Ctx, EvolutionState, observe_environment, queue_candidate
from vsm_actors.core.evolution.intake import ingest_homeostat, suggestions_from_homeostat
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.events import LedgerEvent
from vsm_actors.core.model.ids import SequentialIds, SteppingClock
from vsm_actors.core.model.node import ViableNode
from vsm_actors.core.model.patch import AddChild
from vsm_actors.core.model.payloads import (
    ThreeFourHomeostatBalance, ThreeFourHomeostatKind, ThreeFourHomeostatSignal,
)
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialMode
from vsm_actors.core.model.variants import Other
from vsm_actors.files.genome_files import parse_genome_text

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
GENOME = parse_genome_text("""
id: env
root:
  id: root
  name: root
  children:
    - {name: coder, leaf_operation: coding}
""", name="env.yaml")


def event(name, n=0, **payload):
    return LedgerEvent(id=f"e{n}", kind=Other(name), created_at=AT, node_id="root", payload=payload)


def homeostat(severity=8, balance=ThreeFourHomeostatBalance.Conflict, patches=()):
    return ThreeFourHomeostatSignal(
        system_3_node_id="root", system_4_node_id="probe", target_node_id="root",
        kind=ThreeFourHomeostatKind.ResourceImbalance, balance=balance, recommendation="add review capacity",
        present_summary="queue grows", future_summary="more reviews ahead", severity=severity, created_at=AT,
        evidence=("forecast=review_queue_growth",), suggested_patches=patches)


def test_the_references_worked_example():
    payload = codec.to_wire(homeostat())
    summary = summarize_pressure([event("three_four_homeostat_signal", **payload, source_channel="ThreeFourHomeostat")])
    assert (summary.risk_pressure, summary.homeostat_count, summary.max_severity) == (12.0, 1, 8)
    assert summary.reasons == ("environment_signal channel=ThreeFourHomeostat kind=ResourceImbalance severity=8",)
    assert summary.metadata()["environment_risk_pressure"] == "12.000"


@pytest.mark.parametrize("name, payload, expected", [
    ("operation_environment_signal", {"kind": "Risk", "severity": 3, "source_channel": "OperationToEnvironment"},
     (3.0, 0.0, 0.0)),
    ("operation_environment_signal", {"kind": "DependencyChange", "severity": 4}, (3.0, 0.0, 0.0)),
    ("future_probe_environment_signal", {"kind": "Risk", "severity": 2, "source_channel": "FutureProbeToEnvironment"},
     (2.0, 0.7, 0.0)),
    ("future_probe_environment_signal", {"kind": "Opportunity", "severity": 2,
                                         "source_channel": "FutureProbeToEnvironment"}, (0.0, 2.0, 0.0)),
    ("environment_interaction_signal", {"kind": "UserFeedback", "severity": 20,
                                        "source_channel": "EnvironmentToEnvironment"}, (3.5, 0.0, 10.0)),
    ("environment_interaction_signal", {"kind": {"Other": "Weather"}}, (0.0, 0.0, 0.0)),
    ("environment_signal", {"kind": "Risk", "severity": 9}, None),   # other channels are not pressure
])
def test_pressure_by_kind_and_channel(name, payload, expected):
    summary = summarize_pressure([event(name, **payload)])
    if expected is None:
        assert summary.event_count == 0
        return
    assert (summary.risk_pressure, summary.opportunity_pressure, summary.feedback_pressure) == pytest.approx(expected)


def test_only_the_latest_window_counts_and_reasons_are_capped():
    events = [event("operation_environment_signal", n, kind="Risk", severity=1) for n in range(PRESSURE_WINDOW + 20)]
    summary = summarize_pressure(events)
    assert summary.event_count == PRESSURE_WINDOW and summary.risk_pressure == PRESSURE_WINDOW
    assert len(summary.reasons) == 8
    assert signal_event_name("Algedonic") == "environment_signal"
    assert event_name(events[0]) == "operation_environment_signal"


def ctx():
    return Ctx(now=SteppingClock(), new_id=SequentialIds("c"), to_json=codec.to_wire)


def test_selection_reads_the_pressure_the_state_has_folded():
    c = ctx()
    state = EvolutionState(controller_id="root", champion=GENOME)
    state = observe_environment(state, event("operation_environment_signal", kind="Risk", severity=5,
                                             source_channel="OperationToEnvironment"))
    state = observe_environment(state, event("environment_signal", n=2, kind="Risk", severity=5))  # not pressure
    assert len(state.environment) == 1
    leaf = ViableNode.leaf("reviewer", "reviewer", LeafOperationSpec.reviewer())
    suggestion = GeneSuggestion.new("root", "root", GeneSuggestionSourceKind.AlgedonicSignal,
                                    AddChild(parent_id="root", child=leaf), "pain asks for review", c.new_id)
    state, _ = queue_candidate(state, suggestion, c)
    state, effects = start_next_trial(state, c)
    started = next(e for e in effects.events if e.storage_key == "trial_started")
    assert started.payload["environment_pressure"]["risk_pressure"] == 5.0
    meta = state.active.record.metadata
    assert meta["environment_signal_count"] == "1" and meta["environment_risk_pressure"] == "5.000"
    assert "environment_risk_pressure=5.000" in meta["selection_reasons"]
    assert "environment_bounded_safety_bonus" not in meta["selection_reasons"]  # an unbounded suggestion


def test_homeostat_patches_become_bounded_canary_suggestions():
    patch = AddChild(parent_id="root", child=ViableNode.leaf("future-probe-reviewer", "future-probe-reviewer",
                                                             LeafOperationSpec.reviewer()))
    (s,) = suggestions_from_homeostat(homeostat(patches=(patch,)), "ThreeFourHomeostat", SequentialIds("h"), "corr")
    assert s.source is GeneSuggestionSourceKind.System4FutureProbe and s.suggested_by_node_id == "probe"
    assert s.trial_mode is TrialMode.Canary and s.safety_limits.max_traffic_share_basis_points == 1000
    assert s.safety_limits.requires_approval  # severity 8 (and a conflict)
    assert s.evidence[:4] == ("source_channel=ThreeFourHomeostat", "three_four_kind=ResourceImbalance",
                              "three_four_balance=Conflict", "severity=8")
    assert "forecast=review_queue_growth" in s.evidence and "correlation_id=corr" in s.evidence
    assert "three_four_homeostat_expected_value" in s.measurement_plan.success_metrics
    (mild,) = suggestions_from_homeostat(homeostat(severity=3, balance=ThreeFourHomeostatBalance.Balanced,
                                                   patches=(patch,)), "ThreeFourHomeostat", SequentialIds("m"))
    assert not mild.safety_limits.requires_approval


def test_a_homeostat_signal_is_pressure_and_a_queued_candidate_never_a_change():
    patch = AddChild(parent_id="root", child=ViableNode.leaf("future-probe-reviewer", "future-probe-reviewer",
                                                             LeafOperationSpec.reviewer()))
    signal = homeostat(patches=(patch,))
    recorded = event("three_four_homeostat_signal", **codec.to_wire(signal), source_channel="ThreeFourHomeostat")
    state, effects = ingest_homeostat(EvolutionState(controller_id="root", champion=GENOME), signal, recorded, ctx(),
                                      source_channel="ThreeFourHomeostat")
    assert len(state.environment) == 1 and len(state.queued) == 1
    assert [e.storage_key for e in effects.events] == ["gene_suggestion_created", "trial_queued"]
    assert "future-probe-reviewer" not in state.champion.nodes
