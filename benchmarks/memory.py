"""Memory over a long run: RSS of an in-process organization as directives stream through it,
beside raw Thespian passing as many messages in a process of its own, measured in the same run.

    python benchmarks/memory.py [--directives 100000] [--chunk 10000] [--genome two_level]

Prints the RSS after each chunk and the growth per directive from the third chunk (the bounded
windows full, caches warm) to the last. Aim (issue 11): flat — per-directive
state in every actor is bounded (the leaf's executed-task window, the root's recent answers, the
supervisor's forwarded directives), so growth per directive should be near the raw loop's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.files.genome_files import load_genome
from vsm_actors.system import Organization, make_directive

GENOMES = Path(__file__).resolve().parent.parent / "genomes"

RAW = r"""
import sys
from thespian.actors import Actor, ActorSystem

class Echo(Actor):
    def receiveMessage(self, msg, sender):
        if isinstance(msg, tuple):
            self.send(sender, msg)

def rss() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0

n, chunk = int(sys.argv[1]), int(sys.argv[2])
asys = ActorSystem("simpleSystemBase")
echo = asys.createActor(Echo)
sizes = []
for start in range(0, n, chunk):
    for i in range(start, start + chunk):
        asys.tell(echo, ("task", i, "x" * 100))
    got = 0
    while got < chunk:
        if asys.listen(5) is not None:
            got += 1
    sizes.append(rss())
asys.shutdown()
print(" ".join(map(str, sizes)))
"""


def rss() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def growth(sizes: list[int], chunk: int) -> float:
    return (sizes[-1] - sizes[0]) / (chunk * (len(sizes) - 1)) if len(sizes) > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--directives", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--genome", default="two_level")
    args = ap.parse_args()
    raw = [int(x) for x in subprocess.run([sys.executable, "-c", RAW, str(args.directives), str(args.chunk)],
                                          capture_output=True, text=True, check=True).stdout.split()]
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        config = RuntimeConfig(ledger_url=str(Path(tmp) / "ledger.sqlite"))
        with Organization.start(load_genome(GENOMES / f"{args.genome}.yaml"), config, restore=False) as org:
            for start in range(0, args.directives, args.chunk):
                dones = org.run_many([make_directive(f"directive {i}") for i in range(start, start + args.chunk)],
                                     timeout=3600)
                assert all(d.ok for d in dones)
                sizes.append(rss())
                print(f"[memory   ] after {start + args.chunk:>7,} directives  RSS {sizes[-1] / 2**20:7.1f} MiB"
                      f"   raw thespian after as many messages {raw[len(sizes) - 1] / 2**20:6.1f} MiB", flush=True)
    # the first two chunks fill the bounded windows (10,000 task ids a leaf, 10,000 forwarded
    # directives) and the allocator's pools; growth after them is what would go on forever
    settled = sizes[2:] if len(sizes) > 3 else sizes
    ours, base = growth(settled, args.chunk), growth(raw[2:] if len(raw) > 3 else raw, args.chunk)
    print(f"[memory   ] {args.genome}: {ours:,.1f} bytes of RSS per directive once the windows are full "
          f"(raw thespian {base:,.1f} per message; difference {ours - base:,.1f})")


if __name__ == "__main__":
    main()
