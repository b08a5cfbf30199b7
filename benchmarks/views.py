"""Ledger views and dashboard endpoints on ledgers of 10,000, 100,000 (and, with --max-events,
1,000,000) events, beside raw sqlite3 on the same file measured in the same run.

    python benchmarks/views.py [--sizes 10000,100000] [--max-events 1000000] [--reps 5] [--keep DIR]
                               [--only stats,tree,dashboard] [--whole-ledger-ids]

Each ledger is built through the ledger API (`write_batch`, so schema, indexes and the stored form
are the real ones) from a template: the events and traces of a few directives that a real two_level
organization ran, copied with fresh ids and shifted times until the ledger holds the size asked.

Timed, median of --reps:
- `vsm ledger stats` and `vsm ledger tree --limit 100`, run in process through the CLI (click's
  runner), so each figure is the command minus interpreter start-up; ratios against a raw
  `SELECT count(*)` (stats reads every trace) and a raw paged `SELECT ... LIMIT 100` (tree shows 100);
  then `vsm ledger tree --directive ID` for a short id the tree printed (newest and 100th newest),
  the filter path; with --whole-ledger-ids also the tree with its short ids computed over every id
  the ledger holds (the rule before the recency rule of `commands/ledger_ids.py`), for comparison;
- the dashboard: its first read of the ledger (`LedgerSource.warm`, once, before the URL is
  printed), then `/api/tree` and `/api/directives?limit=100` through Starlette's test client, both
  as a poll of an idle ledger (a cached answer) and right after the ledger grew (the fold reads
  only the new rows, then the answer is rebuilt), a text search over every directive, a timeline,
  and `/api/fitness` (every trace: a full scan); ratios against the raw paged SELECT.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from attrs import evolve
from click.testing import CliRunner
from starlette.testclient import TestClient

from vsm_actors import codec
from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.cli import main
from vsm_actors.commands import ledger_ids
from vsm_actors.core.model.events import EventFilter, LedgerEvent, TraceWindow
from vsm_actors.core.model.trace import TaskTrace
from vsm_actors.dashboard.app import create_app
from vsm_actors.dashboard.source import LedgerSource
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization
from vsm_actors.views.short_ids import MIN_LENGTH

GENOMES = Path(__file__).resolve().parent.parent / "genomes"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TEMPLATE_DIRECTIVES = 5
VIEWS = ("stats", "tree", "dashboard")
BATCH_EVENTS = 5000


class Template:
    """A real run's events and traces as JSON text, copied with new ids and times."""

    def __init__(self, tmp: Path) -> None:
        path = tmp / "template.sqlite"
        genome = load_genome(GENOMES / "two_level.yaml")
        titles = ["Add a health check", "Review the retry logic", "Run the test suite", "Fix the login bug",
                  "Write the runbook"][:TEMPLATE_DIRECTIVES]
        with Organization.start(genome, RuntimeConfig(ledger_url=str(path)), base="simple", restore=False) as org:
            org.run_many(titles, timeout=120)
        with open_ledger(str(path)) as ledger:
            boot = [e for e in ledger.events(EventFilter()) if e.directive_id is None and e.task_id is None]
            events = [e for e in ledger.events(EventFilter()) if e not in boot]
            traces = ledger.recent_task_traces(TraceWindow(limit=None))
            self.boot, self.champion = boot, ledger.get_champion_genome(genome.id)
        self.origin = min(e.created_at for e in events)
        self.span = max(e.created_at for e in events) - self.origin + timedelta(milliseconds=1)
        self.events = [codec.dumps(e) for e in events]
        self.traces = [codec.dumps(t) for t in traces]
        self.per_copy = len(self.events)
        self.rng = random.Random(7)

    def copy(self, n: int) -> tuple[list[LedgerEvent], list[TaskTrace]]:
        """Copy `n`: every id fresh (random, so short ids are what real ones would need), every
        time shifted past copy n - 1."""
        fresh: dict[str, str] = {}

        def new_id(match: re.Match) -> str:
            old = match.group()
            if old not in fresh:
                fresh[old] = "%08x-%04x-7%03x-8%03x-%012x" % (
                    self.rng.getrandbits(32), self.rng.getrandbits(16), self.rng.getrandbits(12),
                    self.rng.getrandbits(12), self.rng.getrandbits(48))
            return fresh[old]

        shift = self.span * n
        events = [codec.from_wire(json.loads(UUID.sub(new_id, text)), LedgerEvent) for text in self.events]
        traces = [codec.from_wire(json.loads(UUID.sub(new_id, text)), TaskTrace) for text in self.traces]
        events = [evolve(e, created_at=e.created_at + shift) for e in events]
        traces = [evolve(t, started_at=t.started_at + shift,
                         completed_at=None if t.completed_at is None else t.completed_at + shift) for t in traces]
        return events, traces

    def append(self, ledger, copies: range) -> None:
        events, traces = [], []
        for n in copies:
            e, t = self.copy(n)
            events += e
            traces += t
            if len(events) >= BATCH_EVENTS:
                ledger.write_batch(events, traces)
                events, traces = [], []
        if events:
            ledger.write_batch(events, traces)


def build(template: Template, path: Path, size: int) -> int:
    copies = max(1, (size - len(template.boot)) // template.per_copy)
    with open_ledger(str(path)) as ledger:
        ledger.write_batch(template.boot, [])
        if template.champion is not None:
            ledger.set_champion_genome(template.champion.id, template.champion)
        template.append(ledger, range(copies))
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return db.execute("SELECT count(*) FROM ledger_events").fetchone()[0]


def timed(fn, reps: int) -> float:
    """Median milliseconds of `reps` calls."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def raw(path: Path, reps: int) -> dict[str, float]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        count = timed(lambda: db.execute("SELECT count(*) FROM ledger_events").fetchone(), reps)
        paged = timed(lambda: db.execute("SELECT id, kind, event_json FROM ledger_events ORDER BY created_us DESC, "
                                         "seq DESC LIMIT 100").fetchall(), reps)
        traces = timed(lambda: [json.loads(r[0]) for r in db.execute("SELECT trace_json FROM task_traces")], reps)
    finally:
        db.close()
    return {"count": count, "paged": paged, "traces": traces}


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"vsm {' '.join(args)} exited {result.exit_code}: {result.output}")
    return result.stdout


def report(size: int, label: str, ms: float, base: float, base_name: str, scan: float | None = None) -> None:
    """One figure and its ratio to the raw building block; `scan`: for a view that reads every
    trace, also its ratio to reading and parsing them raw (the floor of any full scan)."""
    extra = f"   {ms / scan:5.1f} x raw trace read" if scan else ""
    print(f"[{size:>9,}] {label:48} {ms:9.1f} ms {ms / base:10.1f} x raw {base_name} ({base:.2f} ms){extra}")


def measure(template: Template, path: Path, size: int, reps: int, only: set[str] = frozenset(VIEWS),
            whole_ledger_ids: bool = False) -> None:
    base = raw(path, reps)
    print(f"[{size:>9,}] raw sqlite3: count(*) {base['count']:.2f} ms, paged SELECT LIMIT 100 "
          f"{base['paged']:.2f} ms, every trace read and parsed {base['traces']:.1f} ms")
    if "stats" in only:
        report(size, "vsm ledger stats", timed(lambda: cli("ledger", "stats", "--ledger", str(path)), reps),
               base["count"], "count(*)", base["traces"])
    if "tree" in only:
        measure_tree(path, size, reps, base, whole_ledger_ids)
    if "dashboard" in only:
        measure_dashboard(template, path, size, reps, base)


def measure_tree(path: Path, size: int, reps: int, base: dict[str, float], whole_ledger_ids: bool) -> None:
    tree = ("ledger", "tree", "--ledger", str(path))
    report(size, "vsm ledger tree --limit 100", timed(lambda: cli(*tree, "--limit", "100"), reps),
           base["paged"], "paged")
    headers = [ln.split()[1] for ln in cli(*tree, "--limit", "100").splitlines() if ln.startswith("directive ")]
    for label, piece in (("newest", headers[-1]), ("100th newest", headers[0])):
        report(size, f"vsm ledger tree --directive ID ({label})", timed(lambda: cli(*tree, "--directive", piece), reps),
               base["paged"], "paged")
    if whole_ledger_ids:
        def every_id(ledger, what, shown, *, to_end=False):
            shown = list(dict.fromkeys(i for i in shown if i))
            return (shown if what == "event" else shown + ledger_ids.candidates(ledger, what)), MIN_LENGTH

        real, ledger_ids.window_basis = ledger_ids.window_basis, every_id
        try:
            report(size, "  the same, short ids over every id (old rule)",
                   timed(lambda: cli(*tree, "--limit", "100"), reps), base["paged"], "paged")
        finally:
            ledger_ids.window_basis = real


def measure_dashboard(template: Template, path: Path, size: int, reps: int, base: dict[str, float]) -> None:
    reader = open_ledger(str(path), read_only=True)
    writer = open_ledger(str(path))
    try:
        source = LedgerSource(reader, str(path))
        t = time.perf_counter()
        source.warm()
        warm = (time.perf_counter() - t) * 1000
        report(size, "dashboard first read of the ledger (once)", warm, base["count"], "count(*)", base["traces"])
        with TestClient(create_app(source), base_url="http://127.0.0.1") as c:
            def get(url: str) -> None:
                response = c.get(url)
                assert response.status_code == 200, (url, response.text)

            report(size, "/api/tree, idle ledger", timed(lambda: get("/api/tree"), reps), base["paged"], "paged")
            report(size, "/api/directives?limit=100, idle ledger",
                   timed(lambda: get("/api/directives?limit=100"), reps), base["paged"], "paged")
            grown = iter(range(10**6, 10**7))
            template.rng = random.Random()  # growth ids differ from run to run: --keep ledgers grow again

            def after_growth(url: str) -> float:
                out = []
                for _ in range(reps):
                    n = next(grown)
                    template.append(writer, range(n, n + 1))  # one more template copy
                    t0 = time.perf_counter()
                    get(url)
                    out.append((time.perf_counter() - t0) * 1000)
                return statistics.median(out)

            per = template.per_copy
            report(size, f"/api/tree, {per} new events since the last poll", after_growth("/api/tree"),
                   base["paged"], "paged")
            report(size, f"/api/directives?limit=100, {per} new events",
                   after_growth("/api/directives?limit=100"), base["paged"], "paged")
            searches = iter(range(10**6))
            report(size, "/api/directives?q=...&limit=100 (every directive)",
                   timed(lambda: get(f"/api/directives?limit=100&q=run%20{next(searches)}"), reps),
                   base["paged"], "paged")
            newest = c.get("/api/directives?limit=1").json()["rows"][0]["short_id"]
            report(size, "/api/directives/ID/timeline",
                   timed(lambda: (source._cache.clear(), get(f"/api/directives/{newest}/timeline")), reps),
                   base["paged"], "paged")
            report(size, "/api/fitness (every trace), after growth", after_growth("/api/fitness"),
                   base["paged"], "paged", base["traces"])
    finally:
        reader.close()
        writer.close()


def main_(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="Ledger sizes in events, comma separated.")
    parser.add_argument("--max-events", type=int, default=None,
                        help="Also a ledger of this many events (e.g. 1000000: minutes to build, ~5 GB).")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--keep", default=None, help="Build the ledgers in this directory and keep them.")
    parser.add_argument("--only", default=",".join(VIEWS),
                        help="Comma separated: which of stats, tree, dashboard to time (the dashboard's "
                             "figures after growth write to the ledger).")
    parser.add_argument("--whole-ledger-ids", action="store_true",
                        help="Also time the tree with short ids over every id (the old rule).")
    args = parser.parse_args(argv)
    only = {v for v in args.only.split(",") if v}
    if only - set(VIEWS):
        parser.error(f"--only: unknown {', '.join(sorted(only - set(VIEWS)))}; choose from {', '.join(VIEWS)}")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.max_events:
        sizes.append(args.max_events)
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(args.keep or scratch)
        where.mkdir(parents=True, exist_ok=True)
        template = Template(Path(scratch))
        print(f"template: {TEMPLATE_DIRECTIVES} directives of two_level, {template.per_copy} events, "
              f"{len(template.traces)} traces; python {sys.version.split()[0]}, {os.cpu_count()} cores")
        for size in sizes:
            path = where / f"views-{size}.sqlite"
            if not path.exists():
                t = time.perf_counter()
                events = build(template, path, size)
                print(f"[{size:>9,}] built {events:,} events in {time.perf_counter() - t:.1f} s "
                      f"({path.stat().st_size / 1e6:.0f} MB)")
            measure(template, path, size, args.reps, only, args.whole_ledger_ids)


if __name__ == "__main__":
    main_()
