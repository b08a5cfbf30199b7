"""Parallel leaves: wall time of N directives through an organization with L capable leaves, when
every provider call takes a fixed time, beside the serial sum and the ideal measured in the same run.

    .venv/bin/python benchmarks/parallel.py [--directives 8] [--leaves 4] [--latency-ms 1000]
                                            [--bases simple,multiproc] [--providers scripted,command]

Providers (each call really waits):
- scripted: the scripted provider with `sleep: true` (sleeps `latency_ms` in the call);
- command:  the `command` provider running `sh -c 'cat >/dev/null; sleep S'` (a real subprocess).

The genome is a root over L coding leaves (and a reviewer, which cannot take coding work). The
serial sum is N x latency (what a single leaf, or one thread running every call, would take); the
ideal is ceil(N / L) x latency (every leaf busy all the time); the raw figure is a plain thread
pool of L threads sleeping the same calls in this process, measured in the same run. Each figure
is the median of --reps runs, with the share of leaves that did work.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.system import Organization


def genome(leaves: int):
    children = "".join(f"    - {{name: coder-{i}, leaf_operation: coding}}\n" for i in range(1, leaves + 1))
    text = f"id: parallel-{leaves}\nroot:\n  id: root\n  name: root\n  children:\n{children}" \
           "    - {name: reviewer, leaf_operation: reviewer}\n"
    return parse_genome_text(text, name="parallel.yaml")


def provider(kind: str, latency_ms: int) -> ProviderSpec:
    if kind == "scripted":
        return ProviderSpec(name="scripted", options={"script": {"default": {"latency_ms": latency_ms}}, "sleep": True})
    return ProviderSpec(name="command", options={
        "argv": ["sh", "-c", f"cat > /dev/null; sleep {latency_ms / 1000:g}; echo done"], "timeout_seconds": 600})


def run_once(base: str, kind: str, n: int, leaves: int, latency_ms: int, folder: Path, rep: int) -> tuple[float, int]:
    config = RuntimeConfig(ledger_url=str(folder / f"{base}-{kind}-{rep}.sqlite"), provider=provider(kind, latency_ms),
                           evolution=False)
    with Organization.start(genome(leaves), config, base=base, restore=False, timeout=120) as org:
        t0 = time.perf_counter()
        dones = org.run_many([f"Implement feature {i}" for i in range(n)], timeout=600)
        wall = time.perf_counter() - t0
    assert all(d.ok for d in dones), [d.results[0].error for d in dones if not d.ok]
    return wall, len({d.results[0].produced_by for d in dones})


def raw_pool(n: int, leaves: int, latency_ms: int) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(leaves) as pool:
        list(pool.map(lambda _: time.sleep(latency_ms / 1000), range(n)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--directives", type=int, default=8)
    ap.add_argument("--leaves", type=int, default=4)
    ap.add_argument("--latency-ms", type=int, default=1000)
    ap.add_argument("--bases", default="simple,multiproc")
    ap.add_argument("--providers", default="scripted,command")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    n, leaves, latency = args.directives, args.leaves, args.latency_ms
    serial = n * latency / 1000
    ideal = math.ceil(n / leaves) * latency / 1000
    raw = statistics.median(raw_pool(n, leaves, latency) for _ in range(args.reps))
    print(f"{n} directives x {latency} ms provider, {leaves} capable leaves (+1 reviewer), median of {args.reps}")
    print(f"  serial sum {serial:6.2f} s   ideal {ideal:6.2f} s   raw thread pool ({leaves} threads) {raw:6.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for base in args.bases.split(","):
            for kind in args.providers.split(","):
                runs = [run_once(base, kind, n, leaves, latency, Path(tmp), rep) for rep in range(args.reps)]
                wall = statistics.median(w for w, _ in runs)
                used = min(u for _, u in runs)
                print(f"  {base:<9} {kind:<8} wall {wall:6.3f} s  ({serial / wall:4.1f}x the serial sum, "
                      f"+{(wall - ideal) * 1000:5.0f} ms over ideal; {used}/{leaves} leaves worked)")


if __name__ == "__main__":
    main()
