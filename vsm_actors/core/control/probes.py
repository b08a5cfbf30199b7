"""System 4 probes (issue 12 point 6): a metasystem's look outward, as pure folds.

A genome enables probes per node (the concise form's `probes:`, stored as canonical JSON in the
node's metadata under `PROBES_KEY`, so the node model and the reference's wire format stay as
they are). Each probe is a `Probe` registered by kind: it folds the observations the metasystem
already makes — one per task result that reaches it, with the tokens of the subtree's traces that
came along — into a small state, and when it runs (every `interval_seconds`, on a timer or on the
next observed result) it may close its current window and turn the comparison with the previous
one into environment signals. The shell records each closed window (`WINDOW_EVENT`, which is also
what a restarted node folds its baseline back from) and each signal under the name the reference
gives a signal on the FutureProbeToEnvironment channel, which counts as environment pressure
(`environment.summarize_pressure`), so evolution selection sees it.

Why windows close on both a count and a clock: a window with fewer than `min_tasks` tasks says
little about a rate, so it stays open until it has them; the first (the baseline) closes as soon
as it is full, each later one `interval_seconds` after the one before at the earliest (0: once
full, as deterministic runs and tests want).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from attrs import frozen

from ..model.payloads import EnvironmentSignal, EnvironmentSignalKind
from ..model.variants import Other
from .environment import signal_event_name

PROBES_KEY = "system4_probes"                    # node metadata: the declared probes, canonical JSON
PROBE_CHANNEL = "FutureProbeToEnvironment"       # what a probe's signal arrives on (reference §3.12)
SIGNAL_EVENT = signal_event_name(PROBE_CHANNEL)  # future_probe_environment_signal: pressure
WINDOW_EVENT = "system4_probe_window_closed"
SPEC_FIELDS = ("kind", "interval_seconds", "watch", "threshold", "min_tasks")


@frozen(kw_only=True)
class ProbeSpec:
    """One declared probe. `watch` empty: everything its kind can watch."""

    kind: str
    interval_seconds: int = 60
    watch: tuple[str, ...] = ()
    threshold: float = 1.5      # latest / previous at or past this is a rise
    min_tasks: int = 10         # a window closes only once it holds this many tasks

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "interval_seconds": self.interval_seconds, "watch": list(self.watch),
                "threshold": self.threshold, "min_tasks": self.min_tasks}

    @property
    def key(self) -> str:
        """Names this probe's window events across restarts (the same declaration, the same key)."""
        return json.dumps(self.to_json(), separators=(",", ":"))

    def watching(self, probe: Probe) -> tuple[str, ...]:
        return self.watch or probe.watches


@frozen
class Observation:
    """One task result that reached the metasystem: did it fail, and what its subtree spent."""

    failed: bool
    tokens: int = 0


@frozen(kw_only=True)
class Window:
    tasks: int = 0
    failures: int = 0
    tokens: int = 0

    @property
    def failure_rate(self) -> float:
        return self.failures / self.tasks if self.tasks else 0.0

    @property
    def tokens_per_task(self) -> float:
        return self.tokens / self.tasks if self.tasks else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "failures": self.failures, "tokens": self.tokens,
                "failure_rate": round(self.failure_rate, 6), "tokens_per_task": round(self.tokens_per_task, 3)}

    @classmethod
    def from_json(cls, data: Any) -> Window | None:
        try:
            return cls(tasks=int(data["tasks"]), failures=int(data["failures"]), tokens=int(data["tokens"]))
        except (KeyError, TypeError, ValueError):  # not one of ours: no baseline rather than a wrong one
            return None


@frozen(kw_only=True)
class ProbeContext:
    node_id: str
    now: datetime


# -- the extension point ---------------------------------------------------------------------------


class Probe(Protocol):
    """A kind of probe. Pure: `observe` folds one observation into the state; `run` decides,
    from the state, whether a window closes and which environment signals that gives."""

    kind: str
    watches: tuple[str, ...]   # what a declaration's `watch` may name

    def initial(self) -> Any: ...
    def observe(self, state: Any, obs: Observation) -> Any: ...
    def run(self, spec: ProbeSpec, state: Any, ctx: ProbeContext) -> ProbeRun: ...
    # the state once a recorded WINDOW_EVENT payload of this probe is folded back in (a restart)
    def restore(self, state: Any, payload: Mapping[str, Any]) -> Any: ...


@frozen(kw_only=True)
class ProbeRun:
    state: Any
    closed: Window | None = None       # the window this run closed; None: it stays open
    previous: Window | None = None     # what it was compared with (None: the first, a baseline)
    signals: tuple[EnvironmentSignal, ...] = ()


PROBES: dict[str, Probe] = {}


def register(probe: Probe) -> Probe:
    """Make a kind declarable in genomes (validation and the runtime both read this registry)."""
    PROBES[probe.kind] = probe
    return probe


# -- the built-in probe: the subtree's own cost and failure trends ---------------------------------


@frozen(kw_only=True)
class TrendState:
    current: Window = Window()
    previous: Window | None = None


class LedgerTrends:
    """Watches the failure rate (`failures`) and the tokens per task (`cost`) of the tasks that
    come back through the node, window by window: a rise to `threshold` times the previous
    window's is a Risk signal (failures) or a ResourceImbalance signal (cost)."""

    kind = "ledger_trends"
    watches = ("cost", "failures")

    def initial(self) -> TrendState:
        return TrendState()

    def observe(self, state: TrendState, obs: Observation) -> TrendState:
        c = state.current
        return TrendState(current=Window(tasks=c.tasks + 1, failures=c.failures + obs.failed, tokens=c.tokens + obs.tokens),
                          previous=state.previous)

    def restore(self, state: TrendState, payload: Mapping[str, Any]) -> TrendState:
        closed = Window.from_json(payload.get("window"))
        return state if closed is None else TrendState(current=state.current, previous=closed)

    def run(self, spec: ProbeSpec, state: TrendState, ctx: ProbeContext) -> ProbeRun:
        latest, previous = state.current, state.previous
        if latest.tasks < spec.min_tasks:
            return ProbeRun(state=state)
        after = TrendState(previous=latest)
        if previous is None or previous.tasks == 0:
            return ProbeRun(state=after, closed=latest)   # the first full window is the baseline
        signals = []
        watch = spec.watching(self)
        if "failures" in watch:
            # no failure before: one failure in a window of that size is the baseline's floor
            before, now = previous.failure_rate, latest.failure_rate
            ratio = now / max(before, 1 / previous.tasks)
            if now > before and ratio >= spec.threshold:
                signals.append(self._signal(spec, ctx, "failures", EnvironmentSignalKind.Risk, ratio, previous, latest,
                                            f"failure rate of the subtree of {ctx.node_id} rose from {before:.0%} "
                                            f"to {now:.0%} ({latest.failures} of {latest.tasks} tasks)",
                                            "failure_rate", f"{before:.3f}", f"{now:.3f}"))
        if "cost" in watch:
            before, now = previous.tokens_per_task, latest.tokens_per_task
            ratio = now / max(before, 1.0)
            if now > before and ratio >= spec.threshold:
                signals.append(self._signal(spec, ctx, "cost", Other("ResourceImbalance"), ratio, previous, latest,
                                            f"tokens per task in the subtree of {ctx.node_id} rose from {before:.0f} "
                                            f"to {now:.0f} ({ratio:.2f}x)",
                                            "tokens_per_task", f"{before:.1f}", f"{now:.1f}"))
        return ProbeRun(state=after, closed=latest, previous=previous, signals=tuple(signals))

    def _signal(self, spec: ProbeSpec, ctx: ProbeContext, watched: str, kind: Any, ratio: float, previous: Window,
                latest: Window, summary: str, metric: str, before: str, now: str) -> EnvironmentSignal:
        evidence = (f"probe_kind={self.kind}", f"watch={watched}", f"previous_tasks={previous.tasks}",
                    f"latest_tasks={latest.tasks}", f"previous_{metric}={before}", f"latest_{metric}={now}",
                    f"ratio={ratio:.3f}", f"threshold={spec.threshold}")
        return EnvironmentSignal(
            observed_by_node_id=ctx.node_id, target_node_id=ctx.node_id, source_environment="ledger",
            kind=kind, summary=summary, evidence=evidence, severity=severity(ratio),
            metadata={"probe_kind": self.kind, "probe_watch": watched, "probe_ratio": f"{ratio:.3f}",
                      "source_channel": PROBE_CHANNEL},
            created_at=ctx.now)


def severity(ratio: float) -> int:
    """4 at a rise of 1x-1.4x, one more per doubling half-step, 10 at 8x: a doubling of failures
    (6) is serious, not yet an emergency; the pressure it adds scales with it."""
    if not math.isfinite(ratio):
        return 10
    return max(1, min(10, 4 + int(2 * math.log2(max(ratio, 1.0)))))


register(LedgerTrends())


# -- declarations: parsed and checked where genome files and the runtime both read them -------------


def parse_probes(raw: Any) -> tuple[tuple[ProbeSpec, ...], list[tuple[tuple, str]]]:
    """Declared probes from plain data (a list of mappings), and the problems found, each with its
    path inside the list; no probe is returned when there is a problem."""
    if not isinstance(raw, list):
        return (), [((), "probes must be a list of mappings, each with a `kind`")]
    specs, errors = [], []
    for i, item in enumerate(raw):
        spec, problems = _spec(item)
        errors += [((i, *p), m) for p, m in problems]
        if spec is not None and any(s.key == spec.key for s in specs):
            errors.append(((i,), f"probe {spec.kind!r} is declared twice with the same settings"))
        if spec is not None:
            specs.append(spec)
    return (() if errors else tuple(specs)), errors


def _spec(item: Any) -> tuple[ProbeSpec | None, list[tuple[tuple, str]]]:
    kinds = ", ".join(sorted(PROBES))
    if not isinstance(item, Mapping):
        return None, [((), f"a probe must be a mapping with a `kind` (one of {kinds})")]
    errors = [((k,), f"unknown probe field {k!r}; expected one of {', '.join(SPEC_FIELDS)}")
              for k in item if k not in SPEC_FIELDS]
    kind = item.get("kind")
    if "kind" not in item:
        return None, [*errors, ((), f"a probe needs a `kind` (one of {kinds})")]
    probe = PROBES.get(kind) if isinstance(kind, str) else None
    if probe is None:
        return None, [*errors, (("kind",), f"unknown probe kind {kind!r}; expected one of {kinds}")]
    interval, min_tasks = item.get("interval_seconds", 60), item.get("min_tasks", 10)
    threshold, watch = item.get("threshold", 1.5), item.get("watch", [])
    if not _is_int(interval) or interval < 0:
        errors.append((("interval_seconds",), f"interval_seconds must be a whole number of seconds, 0 or more, "
                                              f"got {interval!r}"))
    if not isinstance(watch, list) or not all(isinstance(w, str) for w in watch):
        errors.append((("watch",), f"watch must be a list of: {', '.join(probe.watches)}"))
        watch = []
    for j, w in enumerate(watch):
        if w not in probe.watches:
            errors.append((("watch", j), f"{kind} cannot watch {w!r}; it watches {', '.join(probe.watches)}"))
        elif w in watch[:j]:
            errors.append((("watch", j), f"{w!r} is watched twice"))
    if not (_is_int(threshold) or isinstance(threshold, float)) or not threshold > 1 or not math.isfinite(threshold):
        errors.append((("threshold",), f"threshold must be a number more than 1 (latest / previous window), "
                                       f"got {threshold!r}"))
    if not _is_int(min_tasks) or min_tasks < 1:
        errors.append((("min_tasks",), f"min_tasks must be a whole number, 1 or more, got {min_tasks!r}"))
    if errors:
        return None, errors
    return ProbeSpec(kind=kind, interval_seconds=interval, watch=tuple(watch), threshold=float(threshold),
                     min_tasks=min_tasks), []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def encode_probes(specs: Iterable[ProbeSpec]) -> str:
    """The canonical metadata value: every field, in declaration order, compact."""
    return json.dumps([s.to_json() for s in specs], separators=(",", ":"))


def decode_probes(text: str) -> tuple[tuple[ProbeSpec, ...], list[tuple[tuple, str]]]:
    try:
        raw = json.loads(text)
    except (TypeError, ValueError) as exc:
        return (), [((), f"{PROBES_KEY} is not JSON: {exc}")]
    return parse_probes(raw)


def concise_probe(spec: ProbeSpec) -> dict[str, Any]:
    """A declaration as people write it: the kind and what differs from the defaults."""
    blank = ProbeSpec(kind=spec.kind).to_json()
    return {k: v for k, v in spec.to_json().items() if k == "kind" or v != blank[k]}


def node_probes(node: Any) -> tuple[ProbeSpec, ...]:
    """The probes a node runs: its declared ones, unless its System 4 has future probes off
    (the reference's `future_probe_enabled`). A declaration that does not parse runs nothing
    (genome files reject it at load; a patch could still carry one)."""
    text = node.metadata.get(PROBES_KEY)
    if not text or not node.system_4.future_probe_enabled:
        return ()
    return decode_probes(text)[0]
