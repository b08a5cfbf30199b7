"""Cost: tokens times the price of the model that spent them, from the genome's price table.

The genome file has no price field (`ModelSpec` is the reference's wire type, and its fixtures
must re-encode unchanged), so prices live in the genome's `metadata`, keyed by model:

    metadata:
      price_per_1k_tokens.local-worker: "0.002"          # input and output alike
      price_per_1k_input_tokens.gpt-5: "0.00125"          # or each direction on its own
      price_per_1k_output_tokens.gpt-5: "0.01"
      price_per_1k_tokens.openai/gpt-5-mini: "0.0005"     # provider/model wins over model

A node's model is its `model.model` (and `model.provider`); a node's own `metadata` may carry
the same keys, which win over the genome's for that node. The unit is whatever the table is in
(a currency per 1,000 tokens); a trace whose model has no price has no cost (None), and sums
over traces count only the priced ones (`Cost.unpriced` says how many were not).

Pure functions over genomes and traces; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from attrs import frozen

from ..core.model.genome import OrganizationalGenome
from ..core.model.trace import TaskTrace

PRICE_KEY = "price_per_1k_tokens"
INPUT_PRICE_KEY = "price_per_1k_input_tokens"
OUTPUT_PRICE_KEY = "price_per_1k_output_tokens"
PRICE_KEYS = (PRICE_KEY, INPUT_PRICE_KEY, OUTPUT_PRICE_KEY)


@frozen
class Price:
    """Per 1,000 tokens."""

    input_per_1k: float
    output_per_1k: float

    def of(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_1k + output_tokens * self.output_per_1k) / 1000.0


@frozen
class Cost:
    """A sum of costs: `amount` over the priced traces, `unpriced` traces had no price."""

    amount: float = 0.0
    priced: int = 0
    unpriced: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.amount + other.amount, self.priced + other.priced, self.unpriced + other.unpriced)

    @property
    def value(self) -> float | None:
        """The amount, or None when nothing was priced."""
        return self.amount if self.priced else None

    def add(self, amount: float | None) -> Cost:
        return self + (Cost(amount, 1, 0) if amount is not None else Cost(0.0, 0, 1))


def model_keys(provider: str, model: str) -> tuple[str, ...]:
    return (f"{provider}/{model}", model)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def price_in(metadata: Mapping[str, str], provider: str, model: str) -> Price | None:
    """The price of `provider`/`model` a metadata table names, or None."""
    for name in model_keys(provider, model):
        both = _number(metadata.get(f"{PRICE_KEY}.{name}", ""))
        given_in = _number(metadata.get(f"{INPUT_PRICE_KEY}.{name}", ""))
        given_out = _number(metadata.get(f"{OUTPUT_PRICE_KEY}.{name}", ""))
        if both is None and given_in is None and given_out is None:
            continue
        fallback = both if both is not None else 0.0
        return Price(given_in if given_in is not None else fallback,
                     given_out if given_out is not None else fallback)
    return None


def node_price(genome: OrganizationalGenome, node_id: str) -> Price | None:
    """The price of the model `node_id` runs in `genome`: the node's metadata first, then the
    genome's."""
    node = genome.nodes.get(node_id)
    if node is None:
        return None
    provider, model = node.model.provider, node.model.model
    return price_in(node.metadata, provider, model) or price_in(genome.metadata, provider, model)


def price_problems(genome: OrganizationalGenome) -> list[str]:
    """Price entries that are not non-negative numbers (they are ignored), for a warning."""
    out = []
    tables = [("genome", genome.metadata)] + [(f"node {n}", node.metadata) for n, node in genome.nodes.items()]
    for where, metadata in tables:
        for key, value in sorted(metadata.items()):
            if key.split(".", 1)[0] in PRICE_KEYS and _number(value) is None:
                out.append(f"{where}: metadata {key}={value!r} is not a price (a number >= 0); ignored")
    return out


class Pricing:
    """Prices traces with the genome each ran under (`lookup(trace.genome_id)`, a snapshot the
    ledger keeps), falling back to `fallback` (the current champion) when that genome is not
    known or does not hold the node."""

    def __init__(self, lookup: Callable[[str], OrganizationalGenome | None] | Mapping[str, OrganizationalGenome]
                 | None = None, fallback: OrganizationalGenome | None = None) -> None:
        if lookup is None:
            lookup = {}
        self._lookup = lookup.get if isinstance(lookup, Mapping) else lookup
        self.fallback = fallback
        self._genomes: dict[str, OrganizationalGenome | None] = {}
        self._cache: dict[tuple[str, str], Price | None] = {}

    def genome(self, genome_id: str | None) -> OrganizationalGenome | None:
        if not genome_id:
            return None
        if genome_id not in self._genomes:
            self._genomes[genome_id] = self._lookup(genome_id)
        return self._genomes[genome_id]

    def price(self, genome_id: str | None, node_id: str) -> Price | None:
        key = (genome_id or "", node_id)
        if key not in self._cache:
            genome = self.genome(genome_id)
            price = node_price(genome, node_id) if genome is not None and node_id in genome.nodes else None
            if price is None and self.fallback is not None:
                price = node_price(self.fallback, node_id)
            self._cache[key] = price
        return self._cache[key]

    def trace_cost(self, trace: TaskTrace) -> float | None:
        price = self.price(trace.genome_id, trace.assigned_node_id)
        return None if price is None else price.of(trace.input_tokens, trace.output_tokens)

    def usage_cost(self, genome_id: str | None, node_id: str, input_tokens: int, output_tokens: int) -> float | None:
        price = self.price(genome_id, node_id)
        return None if price is None else price.of(input_tokens, output_tokens)

    def total(self, traces: Iterable[TaskTrace]) -> Cost:
        cost = Cost()
        for trace in traces:
            cost = cost.add(self.trace_cost(trace))
        return cost


def format_cost(value: float | None) -> str:
    """A cost for text views: "-" when unknown, 4 significant decimals for small amounts."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.2f}"
    if abs(value) >= 0.01:
        return f"{value:.4f}"
    return f"{value:.6f}"
