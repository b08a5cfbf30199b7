"""The single-trial lifecycle in the running actors, with recovery at each step:

queue a candidate-reviewer suggestion -> the trial starts (its leaf gets an actor) -> the
organization stops and a new one restores the same active trial from the ledger -> a review
directive approved for the trial is routed to the candidate reviewer -> its trace decides the
trial: promoted -> the champion is the candidate, in the live organization and after another
restart. Prints the traces and the lifecycle events in ledger order.

    python examples/controller_trial_smoke.py [LEDGER.sqlite]
"""

from __future__ import annotations

import os
import sys
import tempfile

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.ids import SequentialIds
from vsm_actors.core.model.node import ModelSpec, NodeLifecycleStatus, System5Policy, ViableNode
from vsm_actors.core.model.patch import AddChild
from vsm_actors.core.model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialMode
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.system import Organization, make_directive

GENOME = """
id: trial-smoke
root:
  id: root-controller
  name: root-controller
  children:
    - name: primary-code-service
      leaf_operation: coding
trial_settings: {min_tasks_before_decision: 1, promote_margin: 0.1, prune_below: -1.0}
"""
LIFECYCLE = ("trial_queued", "trial_started", "trial_task_routed", "trial_trace_recorded",
             "trial_decision_recorded", "trial_promoted", "genome_patch_applied")


def reviewer_suggestion() -> GeneSuggestion:
    reviewer = ViableNode.leaf(
        "candidate-reviewer", "candidate-reviewer", LeafOperationSpec.reviewer(), model=ModelSpec(provider="echo"),
        status=NodeLifecycleStatus.Probation,
        system_5=System5Policy(identity="Candidate reviewer leaf for bounded mutation trial.",
                               values=("review safely before integration",),
                               non_negotiable_constraints=("Do not write code.",), denied_capabilities=("write_code",)))
    return GeneSuggestion.new("root-controller", "root-controller", GeneSuggestionSourceKind.System3StarAudit,
                              AddChild(parent_id="root-controller", child=reviewer),
                              "A bounded reviewer improves review work.", SequentialIds("smoke-suggestion"),
                              trial_mode=TrialMode.Probation)


def start(ledger: str, restore: bool) -> Organization:
    config = RuntimeConfig(ledger_url=ledger, provider=ProviderSpec(name="echo"))
    return Organization.start(parse_genome_text(GENOME, name="trial-smoke.yaml"), config, restore=restore)


def main(ledger: str | None = None) -> dict:
    ledger = ledger or os.path.join(tempfile.mkdtemp(prefix="trial-smoke-"), "ledger.sqlite")
    suggestion = reviewer_suggestion()
    with start(ledger, restore=False) as org:
        reply = org.evolution("suggest", suggestion=suggestion)
        assert reply.active is not None and reply.active.trial_id == suggestion.id, reply
        print("1. queued and started trial", reply.active.trial_id, "candidate", reply.active.candidate_genome_id)
    with start(ledger, restore=True) as org:  # recovery: the same active trial, from the ledger
        active = org.evolution("status").active
        assert active is not None and active.trial_id == suggestion.id
        print("2. restored active trial", active.trial_id)
        for n in range(3):  # a decision needs at least three traces (the reference decides on one)
            done = org.run(make_directive(f"Review a candidate change {n}", metadata={
                "requires_code_write": "false", "required_capability": "review", "trial_approved": suggestion.id}))
            print(f"3. review directive {n}:", "ok" if done.ok else "failed", "by", done.results[0].produced_by)
        record = next(r for r in org.evolution("status").records if r.trial_id == suggestion.id)
        print("4. trial", record.status.value, "champion", org.genome.id)
    with start(ledger, restore=True) as org:  # the promoted champion is what boots now
        champion = org.genome
        print("5. restored champion", champion.id, "has candidate-reviewer:", "candidate-reviewer" in champion.nodes)
    with open_ledger(ledger) as led:
        traces = list(led.subtree_task_traces("root-controller"))
        events = [e.storage_key for e in led.events(EventQuery()) if e.storage_key in LIFECYCLE]
    for trace in traces:
        print("trace:", trace.assigned_node_id, "score", round(trace.outcome_score, 3), "trial",
              trace.metadata.get("trial_id", "-"))
    print("lifecycle events:", events)
    return {"status": record.status.value, "champion": champion.id, "candidate": record.candidate_genome_id,
            "has_reviewer": "candidate-reviewer" in champion.nodes, "events": events}


if __name__ == "__main__":
    main(*sys.argv[1:])
