"""The pure parts of the views: prices, percentiles and the price table's warnings."""

from __future__ import annotations

from datetime import datetime, timezone

from attrs import evolve

from vsm_actors.core.model.trace import TaskTrace
from vsm_actors.views.costs import Cost, Pricing, format_cost, node_price, price_problems
from vsm_actors.views.stats import compute_stats, percentile

from .conftest import priced_genome

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def trace(n: int, node: str, tokens: tuple[int, int], latency: int, status: str = "Completed") -> TaskTrace:
    return TaskTrace(id=f"tr-{n}", task_id=f"t-{n}", genome_id="two-level", assigned_node_id=node,
                     responsible_ancestor_ids=("backend-team", "root"), started_at=AT, input_tokens=tokens[0],
                     output_tokens=tokens[1], latency_ms=latency, metadata={"status": status})


def test_prices_from_genome_metadata_by_model():
    genome = priced_genome()
    coder = node_price(genome, "backend-coder")  # model local-worker: one price both ways
    assert coder is not None and coder.of(500, 250) == 750 * 0.002 / 1000
    reviewer = node_price(genome, "backend-reviewer")  # model unbound: input and output priced apart
    assert reviewer is not None and reviewer.of(300, 100) == (300 * 0.001 + 100 * 0.004) / 1000
    # provider/model wins over model, and a node's own metadata over the genome's
    genome = evolve(genome, metadata={**genome.metadata, "price_per_1k_tokens.local/local-worker": "1"})
    assert node_price(genome, "backend-coder").of(1000, 0) == 1.0
    nodes = dict(genome.nodes)
    nodes["backend-coder"] = evolve(nodes["backend-coder"], metadata={"price_per_1k_tokens.local-worker": "5"})
    assert node_price(evolve(genome, nodes=nodes), "backend-coder").of(1000, 0) == 5.0


def test_bad_prices_are_reported_and_ignored():
    genome = evolve(priced_genome(), metadata={"price_per_1k_tokens.local-worker": "cheap"})
    assert node_price(genome, "backend-coder") is None
    assert price_problems(genome) == [
        "genome: metadata price_per_1k_tokens.local-worker='cheap' is not a price (a number >= 0); ignored"]


def test_costs_sum_priced_traces_and_count_the_rest():
    pricing = Pricing({"two-level": priced_genome()})
    total = pricing.total([trace(1, "backend-coder", (1000, 0), 5), trace(2, "nobody", (10, 10), 5)])
    assert (total.priced, total.unpriced) == (1, 1) and abs(total.amount - 0.002) < 1e-12
    assert Cost().value is None and total.value == total.amount
    assert format_cost(None) == "-" and format_cost(0.002) == "0.002000" and format_cost(12.5) == "12.5000"


def test_percentiles_are_nearest_rank():
    assert percentile([], 50) is None
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile([7], 95) == 7


def test_stats_by_node_count_subtrees_and_failures():
    traces = [trace(1, "backend-coder", (500, 250), 800), trace(2, "backend-coder", (0, 0), 1, "Failed"),
              trace(3, "backend-reviewer", (300, 100), 400)]
    stats = compute_stats(traces, "node", Pricing({"two-level": priced_genome()}),
                          node_order=["root", "backend-team", "backend-coder", "backend-reviewer"])
    rows = {r.key: r for r in stats.rows}
    assert [r.key for r in stats.rows] == ["root", "backend-team", "backend-coder", "backend-reviewer"]
    assert (rows["backend-coder"].tasks, rows["backend-coder"].failures, rows["backend-coder"].scope) == (2, 1, "leaf")
    assert (rows["root"].tasks, rows["root"].scope, rows["root"].tokens) == (3, "subtree", 1150)
    assert stats.total.p50_ms == 400 and stats.total.p95_ms == 800
