"""Controller and workers as actors in one process: root → backend-team → leaves. A directive
is mapped to a task packet, routed down two levels, executed by a leaf, and its result flows
back up; the ledger then rebuilds the directive's lineage from events.

Run: python examples/controller_worker_in_memory.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization, make_directive

GENOMES = Path(__file__).resolve().parent.parent / "genomes"


def main() -> None:
    genome = load_genome(GENOMES / "two_level.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        ledger_path = str(Path(tmp) / "ledger.sqlite")
        with Organization.start(genome, RuntimeConfig(ledger_url=ledger_path), base="simple") as org:
            code, review = org.run_many([
                make_directive("Add a /health endpoint in src/api/health.py"),
                make_directive("Review the auth change", metadata={"required_capability": "review",
                                                                    "requires_code_write": "false"}),
            ])
        for done in (code, review):
            result = done.results[0]
            print(f"directive {done.directive_id[:8]}: {result.status.value} by {result.produced_by}")
        assert code.results[0].produced_by == "backend-coder"
        assert review.results[0].produced_by == "backend-reviewer"
        with open_ledger(ledger_path) as ledger:
            lineage = ledger.directive_lineage(code.directive_id)
        for task in lineage.tasks:
            hops = " -> ".join(f"{r.parent_node_id}>{r.child_node_id}" for r in task.routes)
            print(f"task {task.title!r}: {hops}; status {task.status}")
        assert len(lineage.tasks[0].routes) == 2  # root -> backend-team -> backend-coder


if __name__ == "__main__":
    main()
