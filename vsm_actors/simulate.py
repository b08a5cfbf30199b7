"""A seeded, in-process simulation: the organization runs a scripted world's directives, then its
evolving metasystems audit, plan a generation and start the next trial, once per generation.

    from vsm_actors.simulate import simulate
    for g in simulate(genome, workload, seed=7, generations=5):
        print(g.generation, g.champion_genome_id, g.succeeded, g.trials_promoted)

Ids and the clock are simulated (RuntimeConfig.deterministic_ids), so the same genome, workload
and seed give the same ledger.
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import asdict, frozen

from .actors.protocol import DirectiveDone, ProviderSpec, RuntimeConfig
from .core.evolution.fitness import score_trace
from .core.model.events import LedgerEventKind, TraceWindow
from .core.model.genome import OrganizationalGenome
from .core.model.task import Directive
from .core.world import SimulationSpec, draw_directive
from .ledger import MEMORY_URL, EventQuery
from .system import Organization

_TRIAL_EVENT_KINDS = (LedgerEventKind.TrialStarted, LedgerEventKind.TrialPromoted, LedgerEventKind.TrialPruned)
TRIAL_KINDS = {"trial_started": "trials_started", "trial_promoted": "trials_promoted", "trial_pruned": "trials_pruned"}


@frozen(kw_only=True)
class GenerationResult:
    generation: int
    champion_genome_id: str
    directives: int
    succeeded: int
    failed: int
    tokens: int
    mean_score: float
    trials_started: int
    trials_promoted: int
    trials_pruned: int
    nodes: int
    tree: str

    def to_json(self) -> dict:
        return asdict(self)


def tree_summary(genome: OrganizationalGenome) -> str:
    """`root(coder, reviewer)`: each metasystem with its children, nested."""
    def render(node_id: str) -> str:
        node = genome.node(node_id)
        return node.name if node.is_leaf else f"{node.name}({', '.join(render(c) for c in node.children)})"
    return render(genome.root_node_id)


def simulate(genome: OrganizationalGenome, workload: SimulationSpec, *, seed: int = 0, generations: int = 1,
             ledger_url: str = MEMORY_URL, on_generation: Callable[[GenerationResult], None] | None = None,
             on_batch: Callable[[int], None] | None = None,
             on_done: Callable[[DirectiveDone], None] | None = None,
             champion_sink: Callable[[OrganizationalGenome], None] | None = None,
             evolution: bool = True) -> list[GenerationResult]:
    """Run `generations` batches of the workload's directives against its scripted world; with
    `evolution` (the default) each generation ends with an audit and an evolution step at every
    evolving metasystem. Returns one result per generation."""
    config = RuntimeConfig(ledger_url=ledger_url, deterministic_ids=True, evolution=evolution,
                           provider=ProviderSpec(name="world", options={"world": workload.world, "seed": seed}),
                           auto_approve="simulation" if workload.approve_trials else None, ledger_writer="inline")
    results: list[GenerationResult] = []
    last_trial_event: str | None = None
    with Organization.start(genome, config, restore=False, timeout=120) as org:
        n = 0
        for generation in range(1, generations + 1):
            batch = []
            for _ in range(workload.per_generation):
                n += 1
                task_class, title, body, metadata = draw_directive(workload, seed, n)
                batch.append(Directive(id=f"sim-directive-{n}", origin="simulation", title=title, body=body,
                                       metadata=metadata))
            if on_batch is not None:
                on_batch(len(batch))
            dones = org.run_many(batch, timeout=600, on_done=on_done)
            wanted = {d.id for d in batch}
            traces = [t for t in org.read_ledger("recent_task_traces", TraceWindow(limit=max(len(batch) * 6, 100)))
                      if t.metadata.get("directive_id") in wanted]
            for controller in _controllers(org) if evolution else ():
                org.evolution("audit", controller)
                org.evolution("evolve", controller)
            counts = dict.fromkeys(TRIAL_KINDS.values(), 0)
            # only the trial events since the last generation (read forward from the last one seen)
            for event in org.read_ledger("events", EventQuery(kinds=_TRIAL_EVENT_KINDS, after_id=last_trial_event,
                                                              keep="oldest")):
                last_trial_event = event.id
                if event.storage_key in TRIAL_KINDS:
                    counts[TRIAL_KINDS[event.storage_key]] += 1
            champion = org.genome
            succeeded = sum(1 for d in dones if d.ok)
            result = GenerationResult(
                generation=generation, champion_genome_id=champion.id, directives=len(batch), succeeded=succeeded,
                failed=len(batch) - succeeded, tokens=sum(t.token_total() for t in traces),
                mean_score=round(sum(score_trace(t) for t in traces) / len(traces), 4) if traces else 0.0,
                nodes=len(champion.nodes), tree=tree_summary(champion), **counts)
            results.append(result)
            if on_generation is not None:
                on_generation(result)
        if champion_sink is not None:
            champion_sink(org.genome)
    return results


def _controllers(org: Organization) -> tuple[str, ...]:
    from .actors.evolution_shell import evolving_controllers
    return evolving_controllers(org.genome)
