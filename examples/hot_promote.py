"""Hot promotion of a running leaf: boot single_coder, run a directive, promote
primary-code-service live (same actor, now a metasystem; a new generalist-coder actor takes its
operation), run another directive, and show the new tree and both traces.

Run: python examples/hot_promote.py [--base multiproc]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.core.model.events import TraceWindow
from vsm_actors.files.genome_files import load_genome
from vsm_actors.files.genome_render import render_tree
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization

GENOMES = Path(__file__).resolve().parent.parent / "genomes"


def main(base: str = "simple") -> None:
    genome = load_genome(GENOMES / "single_coder.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        ledger_path = str(Path(tmp) / "ledger.sqlite")
        with Organization.start(genome, RuntimeConfig(ledger_url=ledger_path), base=base) as org:
            before = org.run("Add a health check endpoint")
            applied = org.promote("primary-code-service", "generalist-coder")
            live = org.status().genome
            assert not live.node("primary-code-service").capabilities().can_write_code
            after = org.run("Add a readiness probe")
            print(render_tree(live))
            print(f"\npromotion applied live in {applied.elapsed_ms:.2f} ms; new genome {applied.genome_id}")
        with open_ledger(ledger_path) as ledger:
            traces = ledger.recent_task_traces(TraceWindow(limit=None))
    for done, trace in zip((before, after), traces):
        print(f"trace {trace.task_id[:8]}: executed by {trace.assigned_node_id}, "
              f"ancestors {list(trace.responsible_ancestor_ids)}, status {done.results[0].status.value}")
    assert traces[0].assigned_node_id == "primary-code-service"
    assert traces[1].assigned_node_id == "generalist-coder"
    assert list(traces[1].responsible_ancestor_ids) == ["primary-code-service", "root"]


if __name__ == "__main__":
    main("multiproc" if "--base" in sys.argv and sys.argv[-1] == "multiproc" else "simple")
