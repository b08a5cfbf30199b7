"""Metasystems in disjoint subtrees run their own trials at the same time (the reference allows one
in the whole system), each with its own traces and attribution, and both are promoted into the
one live organization — on both Thespian bases."""

from __future__ import annotations

import pytest

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.genes import RoutingRule
from vsm_actors.core.model.ids import SequentialIds
from vsm_actors.core.model.node import ViableNode
from vsm_actors.core.model.patch import AddChild, AddRoutingRule, Batch
from vsm_actors.core.model.records import StoredTrialStatus
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialMode, TrialSafetyLimits
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.system import Organization, make_directive

GENOME = """
id: two-teams
root:
  id: root
  name: root
  children:
    - name: team-a
      children: [{name: coder-a, leaf_operation: coding}]
    - name: team-b
      children: [{name: coder-b, leaf_operation: coding}]
routing_rules:
  - {id: alpha-to-a, node_id: root, target_child: team-a, task_class: alpha}
  - {id: beta-to-b, node_id: root, target_child: team-b, task_class: beta}
audit_policies:
  - {id: a-audit, node_id: team-a, window_tasks: 1000}
  - {id: b-audit, node_id: team-b, window_tasks: 1000}
trial_settings: {min_tasks_before_decision: 3, max_trial_tasks: 3}
"""
SCRIPT = {"rules": [{"match": {"node_name": ["coder-a", "coder-b"]}, "outcome": "failed", "error": "old coder"},
                    {"output_text": "done"}]}


def second_coder(team: str, task_class: str, ids) -> GeneSuggestion:
    leaf = ViableNode.leaf(f"{team}-coder-2", f"{team}-coder-2", LeafOperationSpec.coding())
    patch = Batch(patches=(AddChild(parent_id=team, child=leaf), AddRoutingRule(rule=RoutingRule(
        id=f"{task_class}-to-new", node_id=team, target_child=leaf.id, task_class=task_class))))
    return GeneSuggestion.new(team, team, GeneSuggestionSourceKind.System3StarAudit, patch, "a better coder", ids,
                              trial_mode=TrialMode.Direct, safety_limits=TrialSafetyLimits(max_tasks=3))


@pytest.mark.parametrize("base", ["simple", "multiproc"])
def test_two_teams_trial_at_once_and_both_promote(tmp_path, base):
    path = str(tmp_path / "teams.sqlite")
    config = RuntimeConfig(ledger_url=path, provider=ProviderSpec(name="scripted", options={"script": SCRIPT}))
    with Organization.start(parse_genome_text(GENOME, name="teams.yaml"), config, base=base, timeout=60) as org:
        ids = SequentialIds("sg")
        a = org.evolution("suggest", "team-a", suggestion=second_coder("team-a", "alpha", ids)).active
        b = org.evolution("suggest", "team-b", suggestion=second_coder("team-b", "beta", ids)).active
        assert a is not None and b is not None and a.trial_id != b.trial_id  # both active at once
        work = [make_directive(f"{cls} change {n}", metadata={"task_class": cls, "requires_code_write": "true"})
                for n in range(3) for cls in ("alpha", "beta")]
        dones = org.run_many(work)
        assert all(d.ok for d in dones)
        assert {d.results[0].produced_by for d in dones} == {"team-a-coder-2", "team-b-coder-2"}
        genome = org.status().genome
        assert {"team-a-coder-2", "team-b-coder-2"} <= set(genome.nodes)
        for team, trial in (("team-a", a), ("team-b", b)):
            (record,) = [r for r in org.evolution("status", team).records if r.trial_id == trial.trial_id]
            assert record.status is StoredTrialStatus.Promoted and record.trace_count == 3
    with open_ledger(path) as ledger:
        recorded = [e for e in ledger.events(EventQuery()) if e.storage_key == "trial_trace_recorded"]
        traces = {t.task_id: t for t in ledger.recent_task_traces()}
    # attribution kept apart: each trial saw only its own team's traces
    for event in recorded:
        team = "team-a" if event.suggestion_id == a.trial_id else "team-b"
        assert event.node_id == team
        assert traces[event.payload["task_id"]].assigned_node_id == f"{team}-coder-2"
    assert sorted(e.suggestion_id for e in recorded) == sorted([a.trial_id] * 3 + [b.trial_id] * 3)
