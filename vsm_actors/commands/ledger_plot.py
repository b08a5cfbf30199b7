"""`vsm ledger plot throughput|latency|tokens|fitness --out FILE.png|svg`: the series of
views/plots.py drawn with matplotlib (the optional `plots` extra)."""

from __future__ import annotations

import os

import click

from ..core.model.events import LedgerEventKind, TraceWindow
from ..ledger import EventQuery
from ..views.plots import KINDS, series
from .common import BadInput
from .ledger import ledger_group, ledger_option, read_ledger


@ledger_group.command("plot")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="FILE.png or FILE.svg")
@click.option("--bucket", "bucket", type=click.FloatRange(min=0.001, max=86400), default=1.0, show_default=True,
              help="Seconds per point (throughput, latency, tokens; fitness without generations).")
@ledger_option
def plot_cmd(kind: str, out: str, bucket: float, ledger_url: str | None) -> None:
    """Plot throughput, latency percentiles, tokens over time, or champion fitness per generation
    with promotions marked."""
    if not out.endswith((".png", ".svg")):
        raise BadInput(f"{out}: --out must end in .png or .svg")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise BadInput(f"{out}: no such directory {parent}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BadInput("plots need matplotlib: pip install 'vsm_actors[plots]'") from None
    with read_ledger(ledger_url) as ledger:
        traces = ledger.recent_task_traces(TraceWindow(limit=None))
        events = ledger.events(EventQuery(kinds=(LedgerEventKind.EvolutionGenerationCreated,
                                                 LedgerEventKind.TrialPromoted)))
    data = series(kind, traces, events, bucket)
    if not data.x:
        raise BadInput("nothing to plot: the ledger holds no task traces")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, ys in data.lines.items():
        ax.plot(data.x, ys, marker="o" if len(data.x) < 40 else None, label=label)
    for x, label in data.marks:
        ax.axvline(x, color="tab:green", linestyle="--", linewidth=1)
        ax.annotate(label, (x, ax.get_ylim()[1]), rotation=90, va="top", ha="right", fontsize=8)
    ax.set(title=data.title, xlabel=data.x_label, ylabel=data.y_label)
    ax.grid(alpha=0.3)
    if len(data.lines) > 1:
        ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(out)
    except OSError as exc:
        raise BadInput(f"{out}: cannot write: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    click.echo(f"{out}: {data.title.lower()}, {len(data.x)} points", err=True)
