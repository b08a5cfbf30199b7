"""System 4 probes (issue 12 point 6) against the pure core and the genome files: declarations
are checked with located errors and round trip through both forms; the built-in `ledger_trends`
probe turns a rise of the failure rate or of tokens per task, window over window, into
environment signals that count as pressure for evolution selection; the fold costs the same
however many observations it has seen."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st

from vsm_actors import codec
from vsm_actors.core.control.environment import summarize_pressure
from vsm_actors.core.control.ledger_events import EventFactory
from vsm_actors.core.control.probe_bank import ProbeBank, signal_event, window_event
from vsm_actors.core.control.probes import (
    PROBES, PROBES_KEY, SIGNAL_EVENT, WINDOW_EVENT, LedgerTrends, Observation, ProbeContext, ProbeSpec, Window,
    concise_probe, decode_probes, encode_probes, node_probes, parse_probes, severity,
)
from vsm_actors.core.evolution.activation import pressure_from
from vsm_actors.core.evolution.controller import observe_environment
from vsm_actors.core.evolution.restore import restore_state
from vsm_actors.core.model.node import System4Config
from vsm_actors.files.genome_files import GenomeFileError, genome_to_concise, genome_to_full, parse_genome_text
from vsm_actors.files.schema import genome_file_schema

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
CTX = ProbeContext(node_id="root", now=T0)
_ids = itertools.count()

TEAM = """
id: probed
root:
  name: root
  probes:
    - {{kind: ledger_trends, interval_seconds: 30, watch: [cost, failures]}}{extra}
  children:
    - {{name: coder, leaf_operation: coding}}
"""


def factory() -> EventFactory:
    return EventFactory("root", lambda: f"e-{next(_ids)}", lambda: T0, codec.to_wire)


def spec(**changes) -> ProbeSpec:
    return ProbeSpec(**{"kind": "ledger_trends", "interval_seconds": 0, "min_tasks": 4, **changes})


def windows(bank: ProbeBank, *batches, ctx=CTX):
    """Feed each batch (a list of (failed, tokens)) and tick after each; the outcomes per tick."""
    out = []
    for batch in batches:
        for failed, tokens in batch:
            bank = bank.observe(Observation(failed=failed, tokens=tokens))
        bank, outcomes = bank.tick(ctx)
        out.append(outcomes)
    return bank, out


# -- declarations ------------------------------------------------------------------------------------


def test_a_declaration_takes_defaults_and_encodes_canonically():
    (s,), errors = parse_probes([{"kind": "ledger_trends"}])
    assert not errors and s == ProbeSpec(kind="ledger_trends", interval_seconds=60, watch=(), threshold=1.5,
                                         min_tasks=10)
    assert s.watching(PROBES["ledger_trends"]) == ("cost", "failures")
    text = encode_probes([s])
    assert json.loads(text) == [{"kind": "ledger_trends", "interval_seconds": 60, "watch": [], "threshold": 1.5,
                                 "min_tasks": 10}]
    assert decode_probes(text) == ((s,), [])
    assert concise_probe(s) == {"kind": "ledger_trends"}
    assert concise_probe(ProbeSpec(kind="ledger_trends", threshold=2.0)) == {"kind": "ledger_trends", "threshold": 2.0}


@pytest.mark.parametrize("raw, path, message", [
    ({"kind": "ledger_trends"}, (), "must be a list"),
    (["x"], (0,), "must be a mapping"),
    ([{"interval_seconds": 3}], (0,), "needs a `kind`"),
    ([{"kind": "weather"}], (0, "kind"), "unknown probe kind 'weather'"),
    ([{"kind": "ledger_trends", "every": 3}], (0, "every"), "unknown probe field 'every'"),
    ([{"kind": "ledger_trends", "interval_seconds": -1}], (0, "interval_seconds"), "0 or more"),
    ([{"kind": "ledger_trends", "interval_seconds": True}], (0, "interval_seconds"), "whole number"),
    ([{"kind": "ledger_trends", "watch": ["cpu"]}], (0, "watch", 0), "cannot watch 'cpu'"),
    ([{"kind": "ledger_trends", "watch": ["cost", "cost"]}], (0, "watch", 1), "watched twice"),
    ([{"kind": "ledger_trends", "watch": "cost"}], (0, "watch"), "must be a list"),
    ([{"kind": "ledger_trends", "threshold": 1}], (0, "threshold"), "more than 1"),
    ([{"kind": "ledger_trends", "min_tasks": 0}], (0, "min_tasks"), "1 or more"),
    ([{"kind": "ledger_trends"}, {"kind": "ledger_trends"}], (1,), "declared twice"),
])
def test_a_bad_declaration_is_reported_at_its_field(raw, path, message):
    specs, errors = parse_probes(raw)
    assert specs == ()
    assert any(p == path and message in m for p, m in errors), errors


def test_a_genome_file_stores_probes_in_node_metadata_and_round_trips_both_forms():
    genome = parse_genome_text(TEAM.format(extra=""), name="probed.yaml")
    (s,) = node_probes(genome.root)
    assert s == ProbeSpec(kind="ledger_trends", interval_seconds=30, watch=("cost", "failures"))
    assert genome.root.metadata == {PROBES_KEY: encode_probes([s])}
    concise = genome_to_concise(genome)
    assert concise["root"]["probes"] == [{"kind": "ledger_trends", "interval_seconds": 30,
                                          "watch": ["cost", "failures"]}]
    assert "metadata" not in concise["root"]
    assert parse_genome_text(json.dumps(concise), name="c.json") == genome
    assert parse_genome_text(json.dumps(genome_to_full(genome)), name="f.json") == genome
    # nodes without probes, and other metadata, are as they were
    other = parse_genome_text(TEAM.format(extra="").replace("  probes:", "  metadata: {team: a}\n  probes:"),
                              name="m.yaml")
    assert other.root.metadata["team"] == "a" and genome_to_concise(other)["root"]["metadata"] == {"team": "a"}
    assert genome.node("coder").metadata == {}


def test_a_non_canonical_metadata_value_stays_in_metadata():
    full = genome_to_full(parse_genome_text(TEAM.format(extra=""), name="probed.yaml"))
    full["nodes"]["root"]["metadata"][PROBES_KEY] = '[{"kind": "ledger_trends"}]'
    genome = parse_genome_text(json.dumps(full), name="f.json")
    assert node_probes(genome.root) == (ProbeSpec(kind="ledger_trends"),)
    concise = genome_to_concise(genome)
    assert "probes" not in concise["root"] and concise["root"]["metadata"][PROBES_KEY] == '[{"kind": "ledger_trends"}]'
    assert parse_genome_text(json.dumps(concise), name="c.json") == genome


def test_load_errors_name_file_line_and_column():
    with pytest.raises(GenomeFileError) as err:
        parse_genome_text(TEAM.format(extra="\n    - {kind: ledger_trends, threshold: 0.9, watch: [cpu]}"),
                          name="bad.yaml")
    lines = str(err.value).splitlines()
    assert "bad.yaml:7:53: ledger_trends cannot watch 'cpu'; it watches cost, failures" in lines, lines
    assert any(line.startswith("bad.yaml:7:29: threshold must be a number more than 1") for line in lines), lines
    both = TEAM.format(extra="").replace("  probes:", f"  metadata: {{{PROBES_KEY}: '[]'}}\n  probes:")
    with pytest.raises(GenomeFileError, match="give them in one place"):
        parse_genome_text(both, name="both.yaml")
    full = genome_to_full(parse_genome_text(TEAM.format(extra=""), name="probed.yaml"))
    full["nodes"]["root"]["metadata"][PROBES_KEY] = '[{"kind": "ledger_trends", "min_tasks": 0}]'
    with pytest.raises(GenomeFileError, match=r"f\.json:\d+:\d+: system4_probes\[0\]\.min_tasks: min_tasks must"):
        parse_genome_text(json.dumps(full), name="f.json")


def test_the_schema_accepts_probes_and_rejects_unknown_fields():
    schema = genome_file_schema()
    concise = {"id": "p", "root": {"name": "root", "probes": [{"kind": "ledger_trends", "watch": ["cost"]}],
                                   "children": [{"name": "c", "leaf_operation": "coding"}]}}
    jsonschema.validate(concise, schema)
    concise["root"]["probes"][0]["every"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(concise, schema)


def test_future_probes_off_in_system_4_runs_none():
    genome = parse_genome_text(TEAM.format(extra="").replace("  probes:", "  system_4: {future_probe_enabled: false}"
                                                                          "\n  probes:"), name="off.yaml")
    assert genome.root.system_4 == System4Config(future_probe_enabled=False)
    assert node_probes(genome.root) == ()


# -- the ledger_trends probe ---------------------------------------------------------------------------


def test_the_first_full_window_is_the_baseline_and_a_failure_rise_is_a_risk_signal():
    bank = ProbeBank.of([spec(watch=("failures",))])
    ok, bad = [(False, 100)] * 4, [(False, 100), (True, 100), (True, 100), (False, 100)]
    bank, (first, second) = windows(bank, ok, bad)
    assert len(first) == 1 and first[0].run.previous is None and not first[0].run.signals
    assert first[0].run.closed == Window(tasks=4, failures=0, tokens=400)
    (out,) = second
    (signal,) = out.run.signals
    assert signal.kind.value == "Risk" and signal.source_environment == "ledger"
    assert signal.observed_by_node_id == "root" and signal.created_at == T0
    assert "rose from 0% to 50%" in signal.summary
    assert "ratio=2.000" in signal.evidence and signal.severity == severity(2.0) == 6
    assert signal.metadata["probe_watch"] == "failures"


def test_a_cost_rise_is_a_resource_imbalance_signal_and_flat_windows_are_quiet():
    bank = ProbeBank.of([spec()])
    bank, ticks = windows(bank, [(False, 100)] * 4, [(False, 110)] * 4, [(False, 400)] * 4)
    assert [len(t) for t in ticks] == [1, 1, 1]
    assert ticks[1][0].run.signals == ()   # +10%: no rise
    (signal,) = ticks[2][0].run.signals
    assert codec.to_wire(signal)["kind"] == {"Other": "ResourceImbalance"}
    assert signal.metadata["probe_watch"] == "cost" and "from 110 to 400" in signal.summary


def test_a_window_stays_open_until_it_has_min_tasks_and_its_interval_passed():
    bank = ProbeBank.of([spec(interval_seconds=30)])
    bank, (t0,) = windows(bank, [(False, 1)] * 3)
    assert t0 == () and not bank.ready                       # 3 < min_tasks
    bank, (t1,) = windows(bank, [(False, 1)])
    assert t1[0].run.closed.tasks == 4 and t1[0].run.previous is None   # the baseline: closed once full
    later = ProbeContext(node_id="root", now=T0 + timedelta(seconds=10))
    bank, (t2,) = windows(bank, [(False, 1)] * 4, ctx=later)
    assert t2 == () and bank.ready                           # full, but its interval has not passed
    assert bank.wait_seconds(later.now) == 20.0              # what a shell may skip ticks for
    assert ProbeBank.of([spec()]).wait_seconds(T0) is None   # nothing ready, nothing to wait for
    bank, (t3,) = windows(bank, [(True, 1)] * 3, ctx=ProbeContext(node_id="root", now=T0 + timedelta(seconds=30)))
    assert t3[0].run.closed.tasks == 7 and t3[0].run.signals  # everything seen meanwhile is in it: 3/7 failed
    bank, (t4,) = windows(bank, [(True, 1)] * 3, ctx=ProbeContext(node_id="root", now=T0 + timedelta(seconds=90)))
    assert t4 == ()                                          # due, but 3 < min_tasks: still open
    assert bank.timer_seconds == 30 and ProbeBank.of([spec()]).timer_seconds is None


def test_a_restarted_bank_folds_its_baseline_back_from_the_window_events():
    events = factory()
    bank, (first,) = windows(ProbeBank.of([spec()]), [(False, 100)] * 4)
    name, payload, links = window_event(first[0], "root")
    recorded = events.other(name, payload, **links)
    assert recorded.storage_key == f"other:{WINDOW_EVENT}" and payload["window"]["tasks"] == 4
    restored = ProbeBank.of([spec()]).fold([recorded])
    _, (second,) = windows(restored, [(True, 100)] * 4)
    assert second[0].run.previous == Window(tasks=4, failures=0, tokens=400) and second[0].run.signals
    # another declaration's events are not its own
    assert ProbeBank.of([spec(threshold=3.0)]).fold([recorded]).slots[0].state.previous is None
    # an unchanged declaration keeps its state across a genome change
    kept = ProbeBank.of([spec(), spec(kind="ledger_trends", min_tasks=9)], kept=bank)
    assert kept.slots[0].state == bank.slots[0].state and kept.slots[1].state.previous is None


# -- the signals are environment pressure ---------------------------------------------------------------


def test_a_probe_signal_is_recorded_as_future_probe_pressure_that_selection_reads():
    bank = ProbeBank.of([spec()])
    _, (_, (out,)) = windows(bank, [(False, 100)] * 4, [(True, 900)] * 4)
    assert len(out.run.signals) == 2
    events = factory()
    recorded = [events.other(*signal_event(s, codec.to_wire)[:2], **signal_event(s, codec.to_wire)[2])
                for s in out.run.signals]
    assert {e.storage_key for e in recorded} == {f"other:{SIGNAL_EVENT}"}
    assert recorded[0].payload["source_channel"] == "FutureProbeToEnvironment"
    summary = summarize_pressure(recorded)
    assert summary.event_count == 2 and summary.future_probe_count == 2
    # each is a risk (Risk, ResourceImbalance) plus the probe channel's 0.35 x severity of opportunity
    severities = [s.severity for s in out.run.signals]
    assert summary.risk_pressure == pytest.approx(sum(severities))
    assert summary.opportunity_pressure == pytest.approx(0.35 * sum(severities))
    genome = parse_genome_text(TEAM.format(extra=""), name="probed.yaml")
    state = restore_state("root", genome, None)
    for event in recorded:
        state = observe_environment(state, event)
    assert pressure_from(summarize_pressure(state.environment)).risk["future_probe"] == pytest.approx(sum(severities))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5000)), max_size=200), st.integers(1, 20))
def test_windows_partition_the_observations(observations, min_tasks):
    """Every observation is in exactly one closed window or the open one, whatever the sizes."""
    bank, closed = ProbeBank.of([spec(min_tasks=min_tasks)]), []
    for failed, tokens in observations:
        bank, outcomes = bank.observe(Observation(failed=failed, tokens=tokens)).tick(CTX)
        closed += [o.run.closed for o in outcomes]
    current = bank.slots[0].state.current
    assert all(w.tasks == min_tasks for w in closed) and current.tasks < min_tasks
    assert sum(w.tasks for w in closed) + current.tasks == len(observations)
    assert sum(w.failures for w in closed) + current.failures == sum(f for f, _ in observations)
    assert sum(w.tokens for w in closed) + current.tokens == sum(t for _, t in observations)


def test_the_registry_is_the_extension_point():
    assert isinstance(PROBES["ledger_trends"], LedgerTrends)
    assert severity(1.0) == 4 and severity(8.0) == 10 and severity(float("inf")) == 10
