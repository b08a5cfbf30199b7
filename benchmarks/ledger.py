"""Ledger append throughput: PeeweeLedger on a SQLite file against raw sqlite3 in the same run.

    .venv/bin/python benchmarks/ledger.py [--events 20000] [--reps 5] [--batches 100,1000]

Workload: ledger-like TaskRouted events with ~500-byte JSON payloads, appended in batches, one
transaction per batch, into a fresh WAL/NORMAL file per measurement. Three contenders, run
alternately so machine noise hits them alike (guides/performance.md):

- raw:        sqlite3 `executemany` of rows already encoded (the storage ceiling);
- raw+codec:  the same, encoding each event with the codec inside the timed loop (what any
              ledger storing codec JSON must at least do);
- ledger:     `PeeweeLedger.append_events` (encode, insert, commit).

The table for the raw contenders is created from the DDL the ledger itself wrote (same columns,
same indexes), so the comparison is of the code paths, not of the schemas.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from vsm_actors.core.model.events import LedgerEvent, LedgerEventKind
from vsm_actors.ledger import PeeweeLedger
from vsm_actors.ledger._rows import EVENT_COLUMNS, event_row

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_events(n: int) -> list[LedgerEvent]:
    out = []
    for i in range(n):
        payload = {
            "parent_node_id": "node-root", "child_node_id": f"node-leaf-{i % 7}", "task_id": f"task-{i}",
            "task_title": f"Implement feature {i} of the billing service", "directive_id": f"dir-{i // 5}",
            "dependency_task_ids": [f"task-{i - 1}", f"task-{i - 2}"], "is_trial_route": False,
            "is_shadow_route": False, "routed_genome_id": "genome-champion-1",
            "reason": "routing rule matched keywords: billing, invoice, ledger; child has code-write capability",
            "outbound_channel": "System3Command", "channel_priority": "Normal",
            "metadata": {f"key{k}": f"value-{k}-{i}" for k in range(5)},
        }
        out.append(LedgerEvent.new(
            LedgerEventKind.TaskRouted, payload, id=str(uuid.UUID(int=i + 1)),
            created_at=T0 + timedelta(microseconds=i),
            node_id="node-root", task_id=f"task-{i}", directive_id=f"dir-{i // 5}", genome_id="genome-champion-1",
        ))
    return out


def ledger_ddl(tmp: Path) -> list[str]:
    path = tmp / "ddl.sqlite"
    PeeweeLedger(str(path)).close()
    with sqlite3.connect(path) as conn:
        return [sql for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'ledger_events' AND sql IS NOT NULL "
            "ORDER BY type DESC")]  # table before its indexes


def batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_raw(path: Path, ddl: list[str], events: list[LedgerEvent], size: int, encode: bool,
            pre_rows: list[tuple] | None) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=wal", "synchronous=normal", "foreign_keys=1", "busy_timeout=5000"):
        conn.execute(f"PRAGMA {pragma}")
    for sql in ddl:
        conn.execute(sql)
    insert = f"INSERT INTO ledger_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    start = time.perf_counter()
    if encode:
        for batch in batches(events, size):
            rows = [tuple(event_row(e).values()) for e in batch]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, rows)
            conn.execute("COMMIT")
    else:
        assert pre_rows is not None
        for rows in batches(pre_rows, size):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, rows)
            conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(events) / elapsed


def run_ledger(path: Path, events: list[LedgerEvent], size: int) -> float:
    ledger = PeeweeLedger(str(path))
    start = time.perf_counter()
    for batch in batches(events, size):
        ledger.append_events(batch)
    elapsed = time.perf_counter() - start
    ledger.close()
    return len(events) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batches", default="100,1000")
    args = parser.parse_args()
    events = make_events(args.events)
    pre_rows = [tuple(event_row(e).values()) for e in events]
    payload_bytes = statistics.mean(len(r[-1]) for r in pre_rows)
    print(f"{args.events} events per run, event JSON {payload_bytes:.0f} bytes on average, {args.reps} reps")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ddl = ledger_ddl(tmp)
        for size in (int(s) for s in args.batches.split(",")):
            rates: dict[str, list[float]] = {"raw": [], "raw+codec": [], "ledger": []}
            for rep in range(args.reps):
                # alternate the order each repetition so drift does not favour one contender
                order = ["raw", "raw+codec", "ledger"] if rep % 2 == 0 else ["ledger", "raw+codec", "raw"]
                for name in order:
                    path = tmp / f"{name}-{size}-{rep}.sqlite"
                    if name == "ledger":
                        rates[name].append(run_ledger(path, events, size))
                    else:
                        rates[name].append(run_raw(path, ddl, events, size, name == "raw+codec", pre_rows))
            med = {k: statistics.median(v) for k, v in rates.items()}
            print(f"\nbatch {size}:")
            for name, values in rates.items():
                print(f"  {name:10s} median {med[name]:>9,.0f} events/s   "
                      f"(min {min(values):,.0f}, max {max(values):,.0f})")
            print(f"  ratio ledger / raw+codec = {med['ledger'] / med['raw+codec']:.2f}   "
                  f"(storage path; target >= 0.5)")
            print(f"  ratio ledger / raw       = {med['ledger'] / med['raw']:.2f}   "
                  f"(includes the codec, which raw does not pay)")


if __name__ == "__main__":
    main()
