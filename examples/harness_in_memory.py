"""The leaf worker harness on its own, in memory: capability check, prompt, provider, result and
trace, written to the in-memory ledger. A metasystem given the same task refuses it with a
failed result and never calls its provider.

Run: python examples/harness_in_memory.py
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

from vsm_actors import codec
from vsm_actors.core.model.events import TraceWindow
from vsm_actors.core.control.harness import NotExecutable, Outcome, check_executable, finish
from vsm_actors.core.control.prompt import build_instructions
from vsm_actors.core.model.task import TaskPacket
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.providers import EchoProvider, ModelRequest

GENOMES = Path(__file__).resolve().parent.parent / "genomes"


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime:
    return datetime.now(timezone.utc)


def execute(genome, node_id: str, task: TaskPacket, provider) -> tuple:
    started = now()
    try:
        check_executable(genome, node_id, task)
        node = genome.node(node_id)
        response = provider.complete(ModelRequest(model=node.model, instructions=build_instructions(node),
                                                  input=codec.dumps(task, indent=2),
                                                  metadata={"node_id": node.id, "task_id": task.id}))
        outcome = Outcome(output_text=response.output_text, input_tokens=response.usage.input_tokens,
                          output_tokens=response.usage.output_tokens, provider=provider.name)
    except NotExecutable as exc:
        outcome = Outcome(error=str(exc), provider=provider.name)
    return finish(genome, node_id, task, None, outcome, trace_id=new_id(), started_at=started, completed_at=now())


def main() -> None:
    genome = load_genome(GENOMES / "single_coder.yaml")
    ledger = open_ledger("memory://")
    provider = EchoProvider()
    task = TaskPacket.new("Add health check", "Expose /health", new_id, metadata={"requires_code_write": "true"})
    for node_id in ("primary-code-service", "root"):
        result, trace = execute(genome, node_id, task, provider)
        ledger.write_task_trace(trace)
        print(f"{node_id:>22}: {result.status.value:<9} tokens={trace.token_total()} "
              f"score={trace.outcome_score:+.1f} {result.error or result.summary.splitlines()[0]}")
    traces = ledger.recent_task_traces(TraceWindow(limit=None))
    assert [t.assigned_node_id for t in traces] == ["primary-code-service", "root"]
    assert traces[0].responsible_ancestor_ids == ("root",)
    assert traces[1].merged is False  # the metasystem refused: a failed result, not a dropped task
    print(f"{len(traces)} traces in the in-memory ledger")


if __name__ == "__main__":
    main()
