"""A metasystem's probes and their states (the bank the actor shell keeps), and the events their
outcomes are recorded as. Split from `probes` (the extension point, the built-in probe and the
declarations), which it builds on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from attrs import evolve, frozen

from ..model.payloads import EnvironmentSignal
from .probes import (
    PROBE_CHANNEL, PROBES, SIGNAL_EVENT, WINDOW_EVENT, Observation, ProbeContext, ProbeRun, ProbeSpec,
)

# -- a node's probes and their states ---------------------------------------------------------------


@frozen(kw_only=True)
class _Slot:
    spec: ProbeSpec
    state: Any
    last_run: datetime | None = None   # when it last closed a window (None: never yet)
    seen: int = 0                      # observations since then

    def wait(self, now: datetime) -> float:
        """Seconds before its interval allows it to close a window (its first: none)."""
        if not self.spec.interval_seconds or self.last_run is None:
            return 0.0
        return max(0.0, self.spec.interval_seconds - (now - self.last_run).total_seconds())


@frozen(kw_only=True)
class ProbeOutcome:  # a window one probe closed: recorded as WINDOW_EVENT, each signal as SIGNAL_EVENT
    spec: ProbeSpec
    run: ProbeRun


@frozen(kw_only=True)
class ProbeBank:
    """A node's probes, each with its state and when it last ran. Every step costs the number of
    probes, never the ledger's size."""

    slots: tuple[_Slot, ...] = ()

    @classmethod
    def of(cls, specs: Iterable[ProbeSpec], kept: ProbeBank | None = None) -> ProbeBank:
        """The bank for these declarations; a probe declared as before keeps its state (a genome
        change does not restart its windows)."""
        old = {s.spec.key: s for s in kept.slots} if kept is not None else {}
        slots = tuple(old.get(s.key) or _Slot(spec=s, state=PROBES[s.kind].initial()) for s in specs)
        return cls(slots=slots)

    def __bool__(self) -> bool:
        return bool(self.slots)

    def fold(self, events: Iterable[Any]) -> ProbeBank:
        """Restore from recorded WINDOW_EVENTs (oldest first; others are skipped)."""
        slots = list(self.slots)
        for event in events:
            if event.storage_key.removeprefix("other:") != WINDOW_EVENT:
                continue
            payload = event.payload if isinstance(event.payload, Mapping) else {}
            for i, slot in enumerate(slots):
                if slot.spec.key == payload.get("probe"):
                    slots[i] = evolve(slot, state=PROBES[slot.spec.kind].restore(slot.state, payload))
        return evolve(self, slots=tuple(slots))

    def observe(self, obs: Observation) -> ProbeBank:
        # constructors and a list, not `evolve` and generators: this runs for every result that
        # reaches the metasystem
        return ProbeBank(slots=tuple([_Slot(spec=s.spec, state=PROBES[s.spec.kind].observe(s.state, obs),
                                            last_run=s.last_run, seen=s.seen + 1) for s in self.slots]))

    @property
    def ready(self) -> bool:
        """Whether a tick could close a window: some probe has seen its `min_tasks` since its
        last one (what lets the shell skip the clock on most results)."""
        for s in self.slots:
            if s.seen >= s.spec.min_tasks:
                return True
        return False

    def wait_seconds(self, now: datetime) -> float | None:
        """How long until a probe that is ready may close its window (0: now; None: none is
        ready): a shell may skip ticks for that long."""
        waits = [s.wait(now) for s in self.slots if s.seen >= s.spec.min_tasks]
        return min(waits) if waits else None

    @property
    def timer_seconds(self) -> int | None:
        """How often a timer should run them: the shortest positive interval (None: only
        interval-0 probes, which run on observed results)."""
        intervals = [s.spec.interval_seconds for s in self.slots if s.spec.interval_seconds > 0]
        return min(intervals) if intervals else None

    def tick(self, ctx: ProbeContext) -> tuple[ProbeBank, tuple[ProbeOutcome, ...]]:
        """Run each probe that has seen `min_tasks` observations since its last window and, but
        for its first window (the baseline, closed once full), waited `interval_seconds`."""
        slots, out = [], []
        for slot in self.slots:
            if slot.seen < slot.spec.min_tasks or slot.wait(ctx.now) > 0:
                slots.append(slot)
                continue
            run = PROBES[slot.spec.kind].run(slot.spec, slot.state, ctx)
            if run.closed is None:  # the probe keeps it open: it is asked again on the next tick
                slots.append(evolve(slot, state=run.state))
                continue
            slots.append(_Slot(spec=slot.spec, state=run.state, last_run=ctx.now))
            out.append(ProbeOutcome(spec=slot.spec, run=run))
        unchanged = all(a is b for a, b in zip(slots, self.slots))
        return (self if unchanged else ProbeBank(slots=tuple(slots))), tuple(out)


# -- events ------------------------------------------------------------------------------------------


def window_event(outcome: ProbeOutcome, node_id: str) -> tuple[str, dict, dict]:
    run = outcome.run
    payload = {"probe": outcome.spec.key, "probe_kind": outcome.spec.kind, "node_id": node_id,
               "window": run.closed.to_json() if run.closed is not None else None,
               "previous": run.previous.to_json() if run.previous is not None else None,
               "signals": len(run.signals)}
    return WINDOW_EVENT, payload, {"metadata": {"probe_kind": outcome.spec.kind}}


def signal_event(signal: EnvironmentSignal, to_json) -> tuple[str, dict, dict]:
    """As a signal arriving on FutureProbeToEnvironment is recorded (evolution_shell.on_environment)."""
    payload = {**to_json(signal), "source_channel": PROBE_CHANNEL}
    meta = {"source_channel": PROBE_CHANNEL, "probe_kind": signal.metadata.get("probe_kind", ""),
            "probe_watch": signal.metadata.get("probe_watch", "")}
    return SIGNAL_EVENT, payload, {"metadata": meta}
