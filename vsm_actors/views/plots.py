"""The series `vsm ledger plot` draws, from the ledger's traces and events (pure; the command
renders them with matplotlib, an optional extra).

- throughput: tasks finished per time bucket;
- latency: p50 and p95 task latency per bucket;
- tokens: tokens per bucket;
- fitness: mean trace fitness per evolution generation (per bucket when no generation ran),
  with the promotions marked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from attrs import field, frozen

from ..core.evolution.fitness import score_trace
from ..core.model.events import LedgerEvent
from ..core.model.trace import TaskTrace

KINDS = ("throughput", "latency", "tokens", "fitness")


@frozen(kw_only=True)
class Series:
    title: str
    x_label: str
    y_label: str
    x: tuple[float, ...] = ()
    lines: dict[str, tuple[float, ...]] = field(factory=dict)
    marks: tuple[tuple[float, str], ...] = ()   # (x, label): promotions


def _finished(trace: TaskTrace) -> datetime:
    return trace.completed_at or trace.started_at


def _buckets(traces: Sequence[TaskTrace], seconds: float) -> tuple[datetime | None, dict[int, list[TaskTrace]]]:
    if not traces:
        return None, {}
    start = min(_finished(t) for t in traces)
    out: dict[int, list[TaskTrace]] = {}
    for t in traces:
        out.setdefault(int((_finished(t) - start).total_seconds() // seconds), []).append(t)
    return start, out


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def series(kind: str, traces: Iterable[TaskTrace], events: Iterable[LedgerEvent], bucket_seconds: float = 1.0
           ) -> Series:
    if kind not in KINDS:
        raise ValueError(f"unknown plot {kind!r}; expected one of {', '.join(KINDS)}")
    traces = sorted(traces, key=_finished)
    if kind == "fitness":
        return _fitness(traces, list(events), bucket_seconds)
    _, buckets = _buckets(traces, bucket_seconds)
    xs = tuple(float(b * bucket_seconds) for b in range(max(buckets, default=-1) + 1))
    per = [buckets.get(b, []) for b in range(len(xs))]
    x_label = f"seconds since the first task (buckets of {bucket_seconds:g} s)"
    if kind == "throughput":
        return Series(title="Throughput", x_label=x_label, y_label="tasks finished per second", x=xs,
                      lines={"tasks/s": tuple(len(b) / bucket_seconds for b in per)})
    if kind == "tokens":
        return Series(title="Tokens", x_label=x_label, y_label="tokens per bucket", x=xs,
                      lines={"tokens": tuple(float(sum(t.token_total() for t in b)) for b in per)})
    return Series(title="Latency", x_label=x_label, y_label="task latency (ms)", x=xs,
                  lines={q: tuple(_percentile([t.latency_ms for t in b], p) for b in per)
                         for q, p in (("p50", 0.5), ("p95", 0.95))})


def _fitness(traces: list[TaskTrace], events: list[LedgerEvent], bucket_seconds: float) -> Series:
    name = lambda e: e.storage_key.removeprefix("other:")  # noqa: E731
    generations = sorted(e.created_at for e in events if name(e) == "evolution_generation_created")
    promotions = sorted((e.created_at, (e.payload or {}).get("trial_id", "")) for e in events
                        if name(e) == "trial_promoted")
    if generations:
        edges = [*generations, datetime.max.replace(tzinfo=generations[0].tzinfo)]
        groups: list[list[TaskTrace]] = [[] for _ in edges]
        for t in traces:
            groups[next(i for i, edge in enumerate(edges) if _finished(t) <= edge)].append(t)
        xs = tuple(float(i) for i in range(len(groups)))
        means = tuple(sum(score_trace(t) for t in g) / len(g) if g else 0.0 for g in groups)
        marks = tuple((float(next(i for i, edge in enumerate(edges) if at <= edge)), f"promoted {tid[-6:]}")
                      for at, tid in promotions)
        return Series(title="Champion fitness per generation", x_label="generation (0: before the first)",
                      y_label="mean trace fitness", x=xs, lines={"fitness": means}, marks=marks)
    start, buckets = _buckets(traces, bucket_seconds)
    xs = tuple(float(b * bucket_seconds) for b in range(max(buckets, default=-1) + 1))
    means = tuple(sum(score_trace(t) for t in buckets.get(b, [])) / max(len(buckets.get(b, [])), 1)
                  for b in range(len(xs)))
    marks = tuple(((at - start).total_seconds(), f"promoted {tid[-6:]}") for at, tid in promotions) if start else ()
    return Series(title="Fitness", x_label=f"seconds since the first task (buckets of {bucket_seconds:g} s)",
                  y_label="mean trace fitness", x=xs, lines={"fitness": means}, marks=marks)
