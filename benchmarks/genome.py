"""Genome file loading and offline patching at scale.

    .venv/bin/python benchmarks/genome.py [--sizes 1000,10000] [--reps 5] [--patches 1000] [--seed 7]

Generates genomes in the full reference JSON form (flat node map, every field, explicit
channels: the standard five-channel bundle of every containment edge) into a temporary folder.
The tree is realistic: every metasystem has up to 8 children, filled breadth first, and each
leaf carries a preset operation (coding, reviewer or tester, round robin) and a model.

For each size, alternating the contenders so machine noise hits them alike:

- json:   `json.loads` of the file's text (the file is read outside the timing), as is and with
          the garbage collector paused, as the loader parses (the floor);
- genome: `load_genome(path)`: read, safe-load (limits, duplicate keys), structure every node
          with the strict converter, and validate the tree invariants.

Then it reports the ratio of the two, the growth from the smallest to the largest size (10x the
nodes should cost about 10x the time), and the time to apply `--patches` patches to the largest
genome, one at a time: a seeded mix of AddTool, SetNodeStatus and PromoteLeafToMetasystem on
random leaves, and AddChild under random metasystems (AddChild under a leaf that has an
operation is refused by design: promote it first).

The default `Limits.max_bytes` is 10 MB; a larger limit is passed when a file needs it, and the
file sizes are printed.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from vsm_actors import codec
from vsm_actors.core.model.capability import OPERATION_PRESETS
from vsm_actors.core.model.channel import standard_bundle
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.node import ModelSpec, NodeLifecycleStatus, System5Policy, ToolSpec, ViableNode
from vsm_actors.core.model.patch import AddChild, AddTool, PromoteLeafToMetasystem, SetNodeStatus, apply_patch
from vsm_actors.core.model.validation import validate_genome
from vsm_actors.files.genome_diff import diff_genomes
from vsm_actors.files.genome_files import genome_to_concise, load_genome
from vsm_actors.files.safe_load import Limits

FAN_OUT = 8
PRESETS = ("coding", "reviewer", "tester")


def make_genome(n: int) -> OrganizationalGenome:
    """A breadth-first tree of `n` nodes, up to FAN_OUT children per metasystem."""
    children: dict[str, list[str]] = {"n0": []}
    parents: dict[str, str | None] = {"n0": None}
    queue, next_index = ["n0"], 1
    while next_index < n:
        parent = queue.pop(0)
        for _ in range(min(FAN_OUT, n - next_index)):
            node_id = f"n{next_index}"
            next_index += 1
            children[parent].append(node_id)
            children[node_id] = []
            parents[node_id] = parent
            queue.append(node_id)
    nodes, channels, leaf_count = {}, [], 0
    for node_id, kids in children.items():
        fields = {}
        if not kids:
            fields = {"leaf_operation": OPERATION_PRESETS[PRESETS[leaf_count % 3]](),
                      "model": ModelSpec(provider="local", model="local-worker")}
            leaf_count += 1
        nodes[node_id] = ViableNode(
            id=node_id, name=f"node-{node_id}", parent_id=parents[node_id], children=tuple(kids),
            system_5=System5Policy(identity=f"{'leaf' if not kids else 'metasystem'} {node_id}"), **fields)
        for kid in kids:
            channels.extend(standard_bundle(node_id, kid))
    return OrganizationalGenome(id=f"bench-{n}", root_node_id="n0", nodes=nodes, channels=tuple(channels))


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    gc.collect()  # start every measurement from the same heap state
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def _loads_gc_paused(text: str):
    gc.disable()
    try:
        return json.loads(text)
    finally:
        gc.enable()


def make_patches(genome: OrganizationalGenome, count: int, seed: int) -> list:
    rng = random.Random(seed)
    leaves = sorted(n.id for n in genome.nodes.values() if n.is_leaf)
    metas = sorted(n.id for n in genome.nodes.values() if n.is_metasystem)
    promoted: set[str] = set()
    patches = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            patches.append(AddTool(node_id=rng.choice(leaves), tool=ToolSpec(name=f"tool-{i}", enabled=True)))
        elif kind == 1:
            status = rng.choice([NodeLifecycleStatus.Probation, NodeLifecycleStatus.Active])
            patches.append(SetNodeStatus(node_id=rng.choice(leaves), status=status))
        elif kind == 2:
            parent = rng.choice(metas)
            patches.append(AddChild(parent_id=parent, child=ViableNode(
                id=f"added-{i}", name=f"added-{i}", leaf_operation=OPERATION_PRESETS["coding"]())))
        else:
            leaf = rng.choice([leaf for leaf in leaves if leaf not in promoted])
            promoted.add(leaf)
            patches.append(PromoteLeafToMetasystem(node_id=leaf, extracted_child_name=f"worker-{i}"))
    return patches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--patches", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    medians: dict[int, tuple[float, float]] = {}
    genomes: dict[int, OrganizationalGenome] = {}
    with tempfile.TemporaryDirectory(prefix="vsm-genome-bench-") as folder:
        for n in sizes:
            genome = make_genome(n)
            path = Path(folder) / f"genome-{n}.json"
            path.write_text(json.dumps(codec.to_wire(genome), ensure_ascii=False, indent=2), encoding="utf-8")
            size = path.stat().st_size
            limits = Limits() if size <= Limits().max_bytes else Limits(max_bytes=2 * size)
            loaded = load_genome(path, limits=limits)  # warm-up, and a correctness check
            assert loaded == genome, "the written genome must load back equal"
            text = path.read_text(encoding="utf-8")
            json_times, json_nogc_times, genome_times = [], [], []
            for _ in range(args.reps):
                json_times.append(timed(json.loads, text)[0])
                json_nogc_times.append(timed(_loads_gc_paused, text)[0])
                genome_times.append(timed(load_genome, path, limits=limits)[0])
            j, g = statistics.median(json_times), statistics.median(genome_times)
            jn = statistics.median(json_nogc_times)
            medians[n] = (j, g)
            genomes[n] = loaded
            note = "" if limits == Limits() else f" (over the default limit: max_bytes={limits.max_bytes:,})"
            print(f"{n:>6} nodes, {len(genome.channels):>6} channels, file {size / 1e6:6.2f} MB{note}")
            print(f"         json.loads         median {j * 1000:8.1f} ms  (min {min(json_times) * 1000:.1f})")
            print(f"         json.loads, gc off median {jn * 1000:8.1f} ms  (min {min(json_nogc_times) * 1000:.1f})"
                  "  (how the loader parses)")
            print(f"         load_genome        median {g * 1000:8.1f} ms  (min {min(genome_times) * 1000:.1f})"
                  f"   ratio {g / j:4.1f}x json.loads, {g / jn:4.1f}x json.loads gc off; "
                  f"{g / n * 1e6:.1f} us/node")
            # the same organization as a hand-written file would hold it: nested, defaults and
            # derived channel bundles left out
            concise = Path(folder) / f"genome-{n}-concise.json"
            concise.write_text(json.dumps(genome_to_concise(genome), ensure_ascii=False), encoding="utf-8")
            assert not diff_genomes(load_genome(concise), genome)
            ctext = concise.read_text(encoding="utf-8")
            cj = statistics.median(timed(json.loads, ctext)[0] for _ in range(args.reps))
            cg = statistics.median(timed(load_genome, concise)[0] for _ in range(args.reps))
            print(f"         concise form, file {concise.stat().st_size / 1e6:.2f} MB: load_genome median "
                  f"{cg * 1000:.1f} ms, json.loads {cj * 1000:.1f} ms, ratio {cg / cj:.1f}x")

        if len(sizes) > 1:
            lo, hi = sizes[0], sizes[-1]
            print(f"growth {lo} -> {hi} nodes ({hi / lo:.0f}x): json.loads {medians[hi][0] / medians[lo][0]:.1f}x, "
                  f"load_genome {medians[hi][1] / medians[lo][1]:.1f}x")

        big = genomes[sizes[-1]]
        patches = make_patches(big, args.patches, args.seed)
        patch_times = []
        for _ in range(max(1, args.reps // 2)):
            start = time.perf_counter()
            genome = big
            for p in patches:
                genome = apply_patch(genome, p)
            patch_times.append(time.perf_counter() - start)
        elapsed = statistics.median(patch_times)
        validate_time, issues = timed(validate_genome, genome)
        assert not issues, issues[:3]
        print(f"{len(patches)} patches on {len(big.nodes)} nodes (AddTool, SetNodeStatus, AddChild, "
              f"PromoteLeafToMetasystem; seed {args.seed}): median {elapsed * 1000:.1f} ms, "
              f"{elapsed / len(patches) * 1e6:.0f} us/patch; result {len(genome.nodes)} nodes, "
              f"validate_genome {validate_time * 1000:.1f} ms")


if __name__ == "__main__":
    main()
