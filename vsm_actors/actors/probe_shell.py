"""The node actor's System 4 half: interprets core.control.probes for a metasystem that declares
probes.

- Every task result that reaches the metasystem is one observation (failed or not; the tokens of
  the subtree's traces that came with it, else those the budget booked on it), folded into each
  probe's window: no ledger read, whatever the ledger's size.
- The probes run on each observed result and, when the node has a process of its own, on a
  Thespian wakeup at the shortest declared interval as well, so a window also closes while no
  result comes. In process there is no timer: on simpleSystemBase a pending wakeup makes every
  client `listen()` wait for it (guides/thespian.md, `Supervisor.arm_watchdog`), so there the
  probes run on results only.
- What a run decides is recorded: each closed window (`system4_probe_window_closed`, also what a
  restarted node folds its baseline back from, `NodeSetup.pauses`) and each signal as a signal on
  the FutureProbeToEnvironment channel is (`future_probe_environment_signal`), which is
  environment pressure: an evolving metasystem folds it into what its selection reads.

Nothing is set up, and nothing costs more than one attribute check per result, for a node that
declares no probes.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from ..core.control.budgets import USED_KEY
from ..core.control.probe_bank import ProbeBank, signal_event, window_event
from ..core.control.probes import PROBES_KEY, Observation, ProbeContext, node_probes
from ..core.evolution.controller import observe_environment

log = logging.getLogger("vsm.probes")
PROBE_PAYLOAD = "vsm.system4-probes"


class ProbeNode:
    """Mixin for NodeActor (genome, node_id, events, services, record, evo, off_thread,
    wakeupAfter...)."""

    probes: ProbeBank = ProbeBank()
    _probe_genome = None          # the genome `probes` was built for (a patch may change them)
    _probe_armed = False
    _probe_restore: tuple = ()    # window events from the ledger, folded when the probes are built
    _probe_hold = 0.0             # time.monotonic() before which no probe can close a window

    def setup_probes(self, events) -> None:
        self._probe_restore = tuple(events or ())
        self._probe_genome, self.probes = None, ProbeBank()
        self._probes_current()

    def _probes_current(self) -> ProbeBank:
        """The bank for the current genome (rebuilt when it changed; unchanged probes keep their
        windows), with the timer armed when it has work for one."""
        if self._probe_genome is self.genome:
            return self.probes
        self._probe_genome = self.genome
        node = self.genome.nodes.get(self.node_id)
        specs = node_probes(node) if node is not None and node.is_metasystem else ()
        if node is not None and not specs and node.metadata.get(PROBES_KEY):
            log.warning("node %s: its %s do not parse; no probe runs", self.node_id, PROBES_KEY)
        self.probes = ProbeBank.of(specs, kept=self.probes)
        if self._probe_restore and self.probes:
            self.probes, self._probe_restore = self.probes.fold(self._probe_restore), ()
        self._arm_probes()
        return self.probes

    def _arm_probes(self) -> None:
        seconds = self.probes.timer_seconds
        if seconds is None or self._probe_armed or getattr(self, "off_thread", True):
            return  # off_thread: the node shares the organization's (and the client's) process
        self._probe_armed = True
        self.wakeupAfter(timedelta(seconds=seconds), payload=PROBE_PAYLOAD)

    # -- hooks called by NodeActor ----------------------------------------------------------------

    def probe_result(self, result, observed: tuple, events: list) -> None:
        """A result reached this metasystem: observe it, then run what is due."""
        bank = self.probes if self._probe_genome is self.genome else self._probes_current()
        if not bank:
            return
        if observed:
            tokens = sum([t.input_tokens + t.output_tokens for t in observed])
        else:
            try:
                tokens = int(result.metadata.get(USED_KEY) or 0)
            except ValueError:
                tokens = 0
        self.probes = bank.observe(Observation(failed=not result.succeeded, tokens=tokens))
        # most results only fill a window, or come before its interval is over: no tick then
        if self.probes.ready and time.monotonic() >= self._probe_hold:
            self._run_probes(events)

    def probe_wakeup(self, payload) -> None:
        if payload != PROBE_PAYLOAD:
            return
        self._probe_armed = False
        if not self._probes_current():
            return
        events: list = []
        self._run_probes(events)
        self.record(events)
        self._arm_probes()

    def _run_probes(self, events: list) -> None:
        now = self.services.now()
        try:
            self.probes, outcomes = self.probes.tick(ProbeContext(node_id=self.node_id, now=now))
        except Exception:  # noqa: BLE001 - a probe's fault must not fail the result it rode on
            log.exception("node %s: a probe failed", self.node_id)
            return
        wait = self.probes.wait_seconds(now)
        # only on the real clock: a simulation's clock is its own, and it must tick the same way
        # whatever the machine's speed
        if wait and not self.config.deterministic_ids:
            self._probe_hold = time.monotonic() + wait
        for outcome in outcomes:
            name, payload, links = window_event(outcome, self.node_id)
            events.append(self.events.other(name, payload, **links))
            for signal in outcome.run.signals:
                name, payload, links = signal_event(signal, self.services.to_json)
                event = self.events.other(name, payload, **links)
                events.append(event)
                if getattr(self, "evo", None) is not None:  # pressure for this node's next selection
                    self.evo = observe_environment(self.evo, event)
