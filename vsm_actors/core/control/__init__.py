"""What a metasystem decides in present time: mapping, routing, the leaf harness check, prompts,
predicates, and the events those decisions record. Imports `core.model` only."""
