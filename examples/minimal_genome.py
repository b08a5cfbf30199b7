"""The seed's first structural mutation, offline: promote primary-code-service.

    root-codebase-system
    └── primary-code-service [leaf, can write code]

becomes

    root-codebase-system
    └── primary-code-service [metasystem, cannot write code]
        └── generalist-coder [leaf, can write code]

Run: python examples/minimal_genome.py
"""

from __future__ import annotations

from pathlib import Path

from vsm_actors.core.model.patch import PromoteLeafToMetasystem, apply_patch
from vsm_actors.core.model.validation import check_genome
from vsm_actors.files.genome_files import load_genome
from vsm_actors.files.genome_render import render_tree

GENOMES = Path(__file__).resolve().parent.parent / "genomes"


def main() -> None:
    seed = load_genome(GENOMES / "single_coder.yaml")
    service = seed.resolve("primary-code-service")
    print("before:")
    print(render_tree(seed))
    assert service.capabilities().can_write_code

    promoted = check_genome(apply_patch(seed, PromoteLeafToMetasystem(
        node_id=service.id, extracted_child_name="generalist-coder")))
    print("\nafter PromoteLeafToMetasystem:")
    print(render_tree(promoted))

    parent = promoted.node(service.id)
    child = promoted.find_child(service.id, "generalist-coder")
    assert parent.is_metasystem and not parent.capabilities().can_write_code
    assert child is not None and child.capabilities().can_write_code
    assert child.leaf_operation == service.leaf_operation
    print(f"\n{parent.name} lost code-writing authority; {child.name} holds it "
          f"(extracted_from_node_id={child.metadata['extracted_from_node_id']}).")


if __name__ == "__main__":
    main()
