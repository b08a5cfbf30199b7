"""`vsm simulate GENOME --workload FILE --seed N --generations G`: a deterministic in-process run
with evolution generations (DESIGN 3.5). One line (or JSON object) per generation."""

from __future__ import annotations

import json
import os
import sys

import click

from ..files.genome_files import genome_to_concise
from ..files.simulation import SimulationFileError, load_simulation
from ..ledger import MEMORY_URL
from ..simulate import simulate
from ..system import OrganizationError
from ..views.progress import Progress
from .common import BadInput, output_option
from .genome import _render, read_genome


@click.command("simulate")
@click.argument("genome_file", type=click.Path(dir_okay=False))
@click.option("--workload", "workload_file", required=True, type=click.Path(dir_okay=False),
              help="Simulation file (YAML or JSON, DESIGN 3.5): directives and the world's rules.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every draw.")
@click.option("--generations", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--ledger", default=None, help="Keep the ledger here (SQLite path or URL); default: in memory.")
@click.option("--champion-out", "champion_out", type=click.Path(dir_okay=False), default=None,
              help="Write the final champion genome here (.yaml: concise form, else full JSON).")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress on stderr (by default a live bar on a terminal, else a line every 5 s and at the end).")
@output_option
def simulate_cmd(genome_file, workload_file, seed, generations, ledger, champion_out, quiet, output) -> None:
    """Run GENOME_FILE against the scripted world in --workload for G generations, in process."""
    genome = read_genome(genome_file)
    try:
        workload = load_simulation(workload_file)
    except SimulationFileError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"{workload_file}: cannot read: {exc.strerror or exc}") from None
    if ledger and os.path.exists(ledger) and os.path.getsize(ledger) > 0:
        raise BadInput(f"{ledger}: exists already; a simulation writes a fresh ledger")
    progress = Progress(workload.per_generation * generations, "simulate", enabled=not quiet)

    def line(result) -> None:
        data = result.to_json()
        if output == "text":
            progress.echo(f"gen {result.generation:>3}  {result.tree}  ok {result.succeeded}/{result.directives}  "
                       f"tokens {result.tokens}  fitness {result.mean_score:.3f}  trials +{result.trials_started} "
                       f"promoted {result.trials_promoted} pruned {result.trials_pruned}")
        elif output == "jsonl":
            progress.echo(json.dumps(data, separators=(",", ":")))

    try:
        with progress:
            results = simulate(genome, workload, seed=seed, generations=generations, ledger_url=ledger or MEMORY_URL,
                               on_generation=line, on_batch=progress.set_running,
                               on_done=lambda done: progress.advance(done.ok),
                               champion_sink=(lambda g: _write_champion(g, champion_out)) if champion_out else None)
    except OrganizationError as exc:
        click.echo(f"vsm simulate: {exc}", err=True)
        sys.exit(1)
    if output == "json":
        click.echo(json.dumps([r.to_json() for r in results], indent=2))


def _write_champion(genome, path: str) -> None:
    from ..files.genome_files import genome_to_full
    yaml_out = path.endswith((".yaml", ".yml"))
    text = _render(genome_to_concise(genome) if yaml_out else genome_to_full(genome), yaml_out=yaml_out)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise BadInput(f"{path}: cannot write: {exc.strerror or exc}") from None
