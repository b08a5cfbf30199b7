"""The local evolution cycle, end to end, in process: a primary coding leaf that fails, a System 3*
audit that suggests a probationary reviewer, a queued candidate that starts as a trial, a review
directive that the candidate serves, and a promotion that changes the running organization.

The reference's own version of this example stops at step 3 (its audit only logs suggestions).

    python examples/local_evolution_cycle.py [LEDGER]
"""

from __future__ import annotations

import sys

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.system import Organization, make_directive

GENOME = """
id: local-cycle
root:
  id: root
  name: root-codebase-system
  children:
    - name: primary-code-service
      leaf_operation: coding
audit_policies:
  - {id: root-audit, node_id: root, window_tasks: 20, min_traces: 1, failure_ratio_threshold: 0.1}
"""

SCRIPT = {"rules": [
    {"match": {"node_name": "primary-code-service"}, "outcome": "failed",
     "error": "intentional local-cycle primary failure"},
    {"output_text": "candidate reviewer accepted local-cycle task", "input_tokens": 20, "output_tokens": 5},
]}


def main(ledger: str = "memory://") -> dict:
    genome = parse_genome_text(GENOME, name="local-cycle.yaml")
    config = RuntimeConfig(ledger_url=ledger, provider=ProviderSpec(name="scripted", options={"script": SCRIPT}))
    with Organization.start(genome, config, restore=False) as org:
        failed = org.run(make_directive("Implement the failing change", metadata={"requires_code_write": "true"}))
        print("1. directive:", "ok" if failed.ok else "failed", failed.results[0].error)
        audit = org.evolution("audit")
        trial = audit.active
        print("2-3. audit queued and started trial", trial.trial_id if trial else None,
              "for", trial.suggestion.patch.child.name if trial else None)
        org.evolution("approve", trial_id=trial.trial_id, by="example")
        for n in range(3):
            done = org.run(make_directive(f"Review candidate change {n}", metadata={
                "required_capability": "review", "requires_code_write": "false"}))
            print(f"4. review directive {n}:", "ok" if done.ok else "failed", "by", done.results[0].produced_by)
        status = org.evolution("status")
        record = next(r for r in status.records if r.trial_id == trial.trial_id)
        genome_now = org.genome
        print("5. trial", record.status.value, record.metadata.get("decision_reason"))
        print("6. champion", genome_now.id, "children:", [genome_now.node(c).name for c in genome_now.root.children])
        return {"status": record.status.value, "champion": genome_now.id, "candidate": record.candidate_genome_id,
                "children": [genome_now.node(c).name for c in genome_now.root.children]}


if __name__ == "__main__":
    main(*sys.argv[1:])
