"""System 3* audit smoke: five failed coder traces in a ledger, the rule-based audit over them.

Prints the findings (one: "High child failure ratio", severity 6), the suggested patch, the queued
candidate, and the audit's events (audit_started, gene_suggestion_created, trial_queued,
audit_completed). The live genome is not changed: the suggestion waits as a candidate.
"""

from __future__ import annotations

from datetime import timedelta

from vsm_actors import codec
from vsm_actors.core.evolution.audit import RuleBasedAuditor
from vsm_actors.core.evolution.controller import Ctx, EvolutionState, observe_trace, run_audit
from vsm_actors.core.model.genes import AuditPolicy
from vsm_actors.core.model.ids import EPOCH, SequentialIds, SteppingClock
from vsm_actors.core.model.trace import TaskTrace
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.ledger import open_ledger

GENOME = """
id: audit-smoke
root:
  id: root-controller
  name: root-controller
  children:
    - {name: primary-code-service, leaf_operation: coding}
"""


def main() -> dict:
    genome = parse_genome_text(GENOME, name="audit-smoke.yaml")
    new_id, now = SequentialIds("smoke"), SteppingClock()
    ctx = Ctx(now=now, new_id=new_id, to_json=codec.to_wire)
    ledger = open_ledger("memory://")
    traces = [TaskTrace(id=f"trace-{i}", task_id=f"task-{i}", genome_id=genome.id,
                        assigned_node_id="primary-code-service", responsible_ancestor_ids=("root-controller",),
                        started_at=EPOCH + timedelta(minutes=i), merged=False, reverted=i % 2 == 0,
                        outcome_score=-10.0, metadata={"seeded_for_example": "true"}) for i in range(5)]
    ledger.write_traces(traces)
    state = EvolutionState(controller_id="root-controller", champion=genome)
    for trace in ledger.subtree_task_traces("root-controller"):
        state, _ = observe_trace(state, trace, ctx)
    policy = AuditPolicy(id="smoke", node_id="root-controller", window_tasks=100, min_traces=5,
                         failure_ratio_threshold=0.25)
    state, effects = run_audit(state, RuleBasedAuditor(), ctx, policy)
    ledger.append_events(effects.events)
    report = effects.events[-1].payload
    for finding in report["findings"]:
        print("finding:", finding["title"], "severity", finding["severity"], "|", "; ".join(finding["evidence"]))
    print("suggested patches:", len(report["suggested_patches"]))
    print("queued candidates:", [r.trial_id for r in state.queued])
    print("events:", [e.storage_key for e in effects.events])
    print("live genome unchanged:", state.champion.id == genome.id and len(state.champion.nodes) == 2)
    return {"findings": report["findings"], "queued": len(state.queued),
            "events": [e.storage_key for e in effects.events]}


if __name__ == "__main__":
    main()
