"""`vsm ledger plot` (issue 13 point 4): throughput, latency percentiles and tokens over time and
champion fitness per generation with promotions marked, as PNG or SVG, from a real ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vsm_actors.cli import main
from vsm_actors.core.model.events import TraceWindow
from vsm_actors.files.genome_files import load_genome
from vsm_actors.files.simulation import load_simulation
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors.simulate import simulate
from vsm_actors.views.plots import series

WORLDS = Path(__file__).resolve().parent.parent / "benchmarks" / "worlds"


@pytest.fixture(scope="module")
def evolved(tmp_path_factory) -> str:
    """A simulated ledger in which generations ran and a trial was promoted."""
    path = str(tmp_path_factory.mktemp("plot") / "sim.sqlite")
    simulate(load_genome(WORLDS / "parsimony.genome.yaml"), load_simulation(WORLDS / "parsimony.yaml"), seed=1,
             generations=4, ledger_url=path)
    return path


def vsm(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("kind", ["throughput", "latency", "tokens", "fitness"])
@pytest.mark.parametrize("ext, magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_every_plot_is_written(evolved, tmp_path, kind, ext, magic):
    out = tmp_path / f"{kind}.{ext}"
    result = vsm("ledger", "plot", kind, "--ledger", evolved, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(magic)


def test_fitness_is_per_generation_with_the_promotions_marked(evolved):
    with open_ledger(evolved, read_only=True) as ledger:
        traces = ledger.recent_task_traces(TraceWindow(limit=None))
        events = list(ledger.events(EventQuery()))
    generations = sum(e.storage_key == "evolution_generation_created" for e in events)
    promoted = sum(e.storage_key == "trial_promoted" for e in events)
    data = series("fitness", traces, events)
    assert generations and data.title == "Champion fitness per generation"
    assert len(data.x) == generations + 1 and len(data.marks) == promoted
    latency = series("latency", traces, events, bucket_seconds=0.5)
    assert set(latency.lines) == {"p50", "p95"} and all(a <= b for a, b in zip(*latency.lines.values()))


def test_bad_plot_requests_are_exit_2(evolved, tmp_path):
    assert vsm("ledger", "plot", "fitness", "--ledger", evolved, "--out", str(tmp_path / "f.jpg")).exit_code == 2
    assert vsm("ledger", "plot", "fitness", "--ledger", evolved, "--out", str(tmp_path / "no" / "f.png")).exit_code == 2
    assert vsm("ledger", "plot", "speed", "--ledger", evolved, "--out", str(tmp_path / "f.png")).exit_code == 2
    empty = str(tmp_path / "empty.sqlite")
    open_ledger(empty).close()
    result = vsm("ledger", "plot", "throughput", "--ledger", empty, "--out", str(tmp_path / "e.png"))
    assert result.exit_code == 2 and "nothing to plot" in result.output
