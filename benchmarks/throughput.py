"""Directives per second and latency through real organizations, beside raw Thespian for the
same number of hops measured in the same run.

    python benchmarks/throughput.py [--n 2000] [--bases simple,multiproc] [--reps 3]
    python benchmarks/throughput.py --growth 100000

For each genome (single_coder, three_level) and base: our organization (echo provider, durable
SQLite ledger) vs a raw Thespian tree of the same depth that only forwards a token down and back,
run in a process of its own with Thespian as shipped (none of our patches to it).
Also: events written per directive, and the latency of a live promotion.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from thespian.actors import Actor

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.core.model.events import EventFilter
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization, make_directive

GENOMES = Path(__file__).resolve().parent.parent / "genomes"


class Hop(Actor):
    """Raw baseline: forwards ("down", n, reply_to) to its child; the deepest one answers."""

    def receiveMessage(self, msg, sender):
        if isinstance(msg, tuple) and msg[0] == "wire":
            self.child = msg[1]
            self.send(sender, "wired")
        elif isinstance(msg, tuple) and msg[0] == "down":
            _, token, origin = msg
            if getattr(self, "child", None) is None:
                self.send(sender, ("up", token, origin))
            else:
                self.upstream = getattr(self, "upstream", {})
                self.upstream[token] = sender
                self.send(self.child, ("down", token, origin))
        elif isinstance(msg, tuple) and msg[0] == "up":
            _, token, origin = msg
            back = self.upstream.pop(token, None)
            self.send(back if back is not None else origin, ("up", token, origin) if back is not None else token)


def stock_system(base: str):
    """Thespian as shipped: the baseline runs without the speed patches `start_system` applies
    (`actors/thespian_base.py`), in a process of its own so no class is patched yet. Loopback
    binding is kept: it changes where the TCP base listens, not how fast it is."""
    from thespian.actors import ActorSystem

    from vsm_actors.actors.thespian_base import BASES, LOOPBACK, bind_loopback_only, free_port, log_config

    if base == "simple":
        return ActorSystem(BASES[base], transientUnique=True)
    os.environ["THESPIAN_BASE_IPADDR"] = LOOPBACK
    bind_loopback_only()
    port = free_port()
    return ActorSystem(BASES[base], {"Admin Port": port, "Admin Routing": False},
                       logDefs=log_config(os.path.join(tempfile.gettempdir(), f"vsm-raw-{port}.log")))


def raw_chain_stock(base: str, depth: int, n: int) -> tuple[float, list[float]]:
    out = subprocess.run([sys.executable, __file__, "--raw", base, str(depth), str(n)], check=True,
                         capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["rate"], result["lat"]


def raw_chain(base: str, depth: int, n: int) -> tuple[float, list[float]]:
    asys = stock_system(base)
    try:
        actors = [asys.createActor(Hop) for _ in range(depth)]
        for parent, child in zip(actors, actors[1:]):
            asys.ask(parent, ("wire", child), 10)
        head = actors[0]
        t0 = time.perf_counter()
        for i in range(n):
            asys.tell(head, ("down", i, None))
        got = 0
        while got < n:
            if asys.listen(30) is None:
                raise RuntimeError("raw baseline stalled")
            got += 1
        rate = n / (time.perf_counter() - t0)
        lat = []
        for i in range(min(n, 200)):
            t = time.perf_counter()
            asys.ask(head, ("down", f"l{i}", None), 10)
            lat.append((time.perf_counter() - t) * 1000)
        return rate, lat
    finally:
        asys.shutdown()


def ours(base: str, genome_file: str, n: int, tmp: Path) -> dict:
    genome = load_genome(GENOMES / genome_file)
    ledger_path = tmp / f"{genome_file}-{base}-{time.monotonic_ns()}.sqlite"
    config = RuntimeConfig(ledger_url=str(ledger_path))
    with Organization.start(genome, config, base=base, restore=False) as org:
        # steady state: boot done, the ledger writer process (in process) up, caches warm
        org.run_many([make_directive(f"warm up {i}") for i in range(max(50, n // 10))], timeout=600)
        directives = [make_directive(f"directive {i}") for i in range(n)]
        t0 = time.perf_counter()
        dones = org.run_many(directives, timeout=600)
        rate = n / (time.perf_counter() - t0)
        assert all(d.ok for d in dones)
        lat = []
        for i in range(min(n, 200)):
            t = time.perf_counter()
            org.run(f"latency {i}")
            lat.append((time.perf_counter() - t) * 1000)
        promote = {}
        if genome_file == "single_coder.yaml":
            t = time.perf_counter()
            applied = org.promote("primary-code-service", "generalist-coder")
            promote = {"inside_ms": applied.elapsed_ms, "round_trip_ms": (time.perf_counter() - t) * 1000}
    with open_ledger(str(ledger_path)) as ledger:
        events = len(ledger.events(EventFilter()))
    total = n + max(50, n // 10) + len(lat)
    return {"rate": rate, "lat": lat, "events_per_directive": events / total, "promote": promote}


def growth(genome_file: str, total: int, tmp: Path) -> None:
    """Rate per slice as the durable ledger grows from empty to `total` directives: group commit
    and time-ordered ids should keep it flat (guides/performance.md)."""
    genome = load_genome(GENOMES / genome_file)
    config = RuntimeConfig(ledger_url=str(tmp / f"growth-{time.monotonic_ns()}.sqlite"))
    slice_size = max(1, total // 10)
    rates = []
    with Organization.start(genome, config, restore=False) as org:
        org.run_many([make_directive(f"warm up {i}") for i in range(200)], timeout=600)
        done = 0
        while done < total:
            batch = [make_directive(f"directive {done + i}") for i in range(slice_size)]
            t0, c0 = time.perf_counter(), time.process_time()
            assert all(d.ok for d in org.run_many(batch, timeout=3600))
            wall = time.perf_counter() - t0
            rates.append(slice_size / wall)
            done += slice_size
            print(f"[growth   ] {genome_file:18} ledger at {done:7,} directives: {rates[-1]:6.0f} directives/s"
                  f"  (organization process busy {(time.process_time() - c0) / wall:.0%})")
            sys.stdout.flush()
    print(f"[growth   ] {genome_file:18} last slice / first slice = {rates[-1] / rates[0]:.2f}")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--n-multiproc", type=int, default=300)
    ap.add_argument("--bases", default="simple,multiproc")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--growth", type=int, default=0, metavar="N",
                    help="instead: rate per tenth while one in-process ledger grows to N directives")
    ap.add_argument("--raw", nargs=3, metavar=("BASE", "DEPTH", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.raw:
        rate, lat = raw_chain(args.raw[0], int(args.raw[1]), int(args.raw[2]))
        print(json.dumps({"rate": rate, "lat": lat}))
        return
    if args.growth:
        with tempfile.TemporaryDirectory() as tmp:
            growth("three_level.yaml", args.growth, Path(tmp))
        return
    # hops: client -> root -> ... -> leaf; single_coder has 2 actors on the path, three_level 4
    cases = [("single_coder.yaml", 2), ("three_level.yaml", 4)]
    with tempfile.TemporaryDirectory() as tmp:
        for base in args.bases.split(","):
            n = args.n if base == "simple" else args.n_multiproc
            for genome_file, depth in cases:
                raw_rates, our_rates, raw_lat, our_lat, epd, promos = [], [], [], [], [], []
                for _ in range(args.reps):  # alternate baseline and ours in one run
                    r, lr = raw_chain_stock(base, depth, n)
                    o = ours(base, genome_file, n, Path(tmp))
                    raw_rates.append(r)
                    raw_lat += lr
                    our_rates.append(o["rate"])
                    our_lat += o["lat"]
                    epd.append(o["events_per_directive"])
                    if o["promote"]:
                        promos.append(o["promote"])
                rr, orate = statistics.median(raw_rates), statistics.median(our_rates)
                print(f"[{base:9}] {genome_file:18} ours {orate:8.0f} directives/s  raw thespian {rr:8.0f} tasks/s"
                      f"  ratio {orate / rr:.3f}  (spread ours {min(our_rates):.0f}-{max(our_rates):.0f})")
                print(f"{'':12}{'':18} latency p50/p99 ours {pct(our_lat, .5):.2f}/{pct(our_lat, .99):.2f} ms"
                      f"  raw {pct(raw_lat, .5):.3f}/{pct(raw_lat, .99):.3f} ms"
                      f"  events/directive {statistics.median(epd):.1f}")
                if promos:
                    print(f"{'':30} live promotion: {statistics.median(p['inside_ms'] for p in promos):.2f} ms "
                          f"in the supervisor, {statistics.median(p['round_trip_ms'] for p in promos):.2f} ms "
                          f"round trip incl. durable commit")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
