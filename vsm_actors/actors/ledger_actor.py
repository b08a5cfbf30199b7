"""The ledger actor: the only writer of the ledger. Appends are buffered and committed in one
transaction per batch (group commit); a requested acknowledgement is sent only after the batch
holding it has committed.

Durable ledgers are written through a writer process (`ledger.writer`), one batch in flight: while
it commits, the next batch gathers, so batches grow with load and no timer decides their size.
Until the writer reports ready, and while a dead one is replaced (at most five times a minute),
the actor commits inline on timer windows instead. Reads (the champion at boot, recovery checks) always use the actor's own
connection.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta

from attrs import evolve
from thespian.actors import ActorExitRequest, WakeupMessage

from .._posix import exit_when_gone
from ..ledger import MEMORY_URL, describe_ledger, open_ledger
from ..ledger.faults import open_failure
from ..core.model.events import EventFilter, LedgerEvent
from ..core.model.variants import Other
from ..ledger._rows import storable_parts
from ..ledger.base import write_state
from ..ledger.base import utc_now
from ..ledger.writer import WriterProcess
from .base import VsmActor
from ..ledger.evolution_state import load_evolution, load_pauses
from .. import codec
from ..core.control.recovery import ENDING_KINDS, correlation_of, is_answered, stored_answer
from ..core.model.task import TaskResult
from ..core.control.restarts import RestartIntensity, RestartWindow
from .runtime import TimeOrderedIds
from .protocol_control import SettleDirectives
from .protocol import (
    READABLE, DirectiveDone, EvolutionLoaded, LedgerAnswer, LedgerRead, LedgerClose, LedgerClosed, LedgerLoadChampion, LedgerLoadEvolution, LedgerOpen, LedgerReady,
    LedgerWrite,
)

log = logging.getLogger("vsm.ledger")

WRITER_INTENSITY = RestartIntensity(max_restarts=5, period_seconds=60.0)
_POLL = timedelta(microseconds=500)   # how soon to look for the writer's report of a batch in flight


class LedgerActor(VsmActor):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = None
        self.url: str | None = None
        self.writer: WriterProcess | None = None
        self.inflight: tuple | None = None   # (seq, events, traces, champions, acks) at the writer
        self.writer_window, self.writer_restarts = RestartWindow(), 0
        self.new_id = TimeOrderedIds()
        self.seq = 0
        self.events: list = []
        self.traces: list = []
        self.champions: list = []
        self.acks: list = []
        self.timer = False        # an inline flush is scheduled
        self.ack_timer = False    # a short inline flush is scheduled because someone awaits a commit
        self.polling = False      # a look for the writer's report is scheduled
        self.batch = 512
        self.flush_after = timedelta(milliseconds=20)
        self.ack_flush_after = timedelta(milliseconds=3)

    def receiveMsg_LedgerOpen(self, msg: LedgerOpen, sender) -> None:
        try:
            if self.ledger is None:
                self.ledger = open_ledger(msg.url)
            self.url = msg.url
            self.batch, self.flush_after = msg.batch, timedelta(milliseconds=msg.flush_ms)
            self.ack_flush_after = timedelta(milliseconds=min(msg.ack_flush_ms, msg.flush_ms))
        except Exception as exc:  # noqa: BLE001 - reported to the booting supervisor
            self.send(sender, LedgerReady(url=msg.url, error=open_failure(exc, describe_ledger(msg.url))))
            return
        if self.writer is None and _wants_writer(msg.writer, msg.url, msg.organization_pid in (None, os.getpid())):
            try:
                self.writer = WriterProcess(msg.url)
            except OSError as exc:
                log.warning("cannot start a ledger writer process (%s); committing in the actor", exc)
        if msg.organization_pid is not None:
            exit_when_gone(msg.organization_pid, before=self.reap_writer)  # its supervisor's replacement opens anew
        self.send(sender, LedgerReady(url=msg.url, pid=os.getpid()))

    def reap_writer(self) -> None:
        """Kill and reap the writer process (the supervisor is gone): once this process is seen
        gone, no batch of the old organization can still commit beside the new one's reads."""
        if self.writer is not None:
            self.writer.proc.kill()
            self.writer.proc.wait(5)

    def receiveMsg_LedgerLoadChampion(self, msg: LedgerLoadChampion, sender) -> None:
        try:
            champion = self.ledger.get_champion_genome(msg.key)
            origin = champion.lineage.parent_genome_ids[0] if champion and champion.lineage.parent_genome_ids \
                else (champion.id if champion else None)
            base = self.ledger.get_genome_snapshot(origin) if origin else None
            stored = self.ledger.get_genome_snapshot(msg.file_id) if msg.file_id else None
            self.send(sender, LedgerReady(url="", champion=champion, base=base.genome if base else None,
                                          stored_file=stored.genome if stored else None))
        except Exception as exc:  # noqa: BLE001
            self.send(sender, LedgerReady(url="", error=f"cannot read champion genome: {exc}"))

    def receiveMsg_LedgerLoadEvolution(self, msg: LedgerLoadEvolution, sender) -> None:
        try:
            self.flush_pending()
            restored = {c: load_evolution(self.ledger, c) for c in msg.controllers}
            self.send(sender, EvolutionLoaded(restored=restored, pauses=load_pauses(self.ledger, msg.metasystems)))
        except Exception as exc:  # noqa: BLE001 - reported to the booting supervisor
            self.send(sender, EvolutionLoaded(error=f"cannot read evolution state: {exc}"))

    def receiveMsg_LedgerRead(self, msg: LedgerRead, sender) -> None:
        if msg.method not in READABLE:
            return self.send(msg.reply_to or sender, LedgerAnswer(error=f"not a ledger read: {msg.method}"))
        try:
            self.flush_pending()
            self.send(msg.reply_to or sender, LedgerAnswer(value=getattr(self.ledger, msg.method)(*msg.args)))
        except Exception as exc:  # noqa: BLE001 - the reader gets the error
            self.send(msg.reply_to or sender, LedgerAnswer(error=str(exc)))

    def receiveMsg_SettleDirectives(self, msg: SettleDirectives, sender) -> None:
        """After everything sent before is committed, answer each in-doubt directive the ledger
        has no ending for (a root died with it): its failure event, then the client's reply."""
        try:
            self.flush_pending()
            ended = set() if msg.since is None else {e.directive_id for e in self.ledger.events(
                EventFilter(kinds=ENDING_KINDS, since=msg.since))}
            for reply_to, ending, done in msg.candidates:
                if ending.directive_id in ended:
                    if msg.resend and done is not None:
                        self.send(reply_to, done)
                    continue
                known = self.ledger.events(EventFilter(directive_id=ending.directive_id))
                if is_answered(known):
                    if msg.resend and done is not None:
                        self.send(reply_to, done)
                    elif msg.rebuild and done is None:
                        self.send(reply_to, self.stored_done(known))
                    continue
                ending = evolve(ending, correlation_id=correlation_of(known, ending.directive_id))
                done = done or DirectiveDone(directive_id=ending.directive_id, correlation_id=ending.correlation_id,
                                             results=(), error=ending.payload["error"])
                self.receiveMsg_LedgerWrite(LedgerWrite(events=(ending,), then=done, to=reply_to), sender)
        except Exception:  # noqa: BLE001 - the clients still time out as before; say why here
            log.exception("could not settle the directives of a restarted root")

    def stored_done(self, events) -> DirectiveDone:
        correlation, results, error = stored_answer(events, lambda payload: codec.from_wire(payload, TaskResult))
        return DirectiveDone(directive_id=events[0].directive_id, correlation_id=correlation, results=results,
                             error=error)

    def flush_pending(self) -> None:
        """Commit what is buffered or at the writer, so a read sees it."""
        if self.writer is not None:
            while self.inflight is not None and self.writer is not None:
                self.collect(timeout=5.0)
        self.flush()

    def receiveMsg_LedgerWrite(self, msg: LedgerWrite, sender) -> None:
        if self.ledger is None and self.url is not None:
            # written to after LedgerClose (a node finishing late while the organization stops):
            # reopen and commit in the actor rather than lose it; ActorExitRequest closes again
            log.warning("ledger %s written after it was closed; reopening to keep the events", self.url)
            self.ledger = open_ledger(self.url)
        self.events.extend(msg.events)
        self.traces.extend(msg.traces)
        if msg.champion is not None:
            self.champions.append((msg.champion_key, msg.champion))
        self.champions.extend(msg.records)  # state items travel with the champions, in order
        if msg.then is not None:
            self.acks.append((msg.to if msg.to is not None else sender, msg.then))
        self.pump(look=msg.then is not None)

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender) -> None:
        self.timer = self.ack_timer = self.polling = False
        self.pump(timer_fired=True)

    def receiveMsg_LedgerClose(self, msg: LedgerClose, sender) -> None:
        self.close()
        self.send(sender, LedgerClosed())

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender) -> None:
        self.close()

    def close(self) -> None:
        """Commit everything (the writer's batch in flight first), then stop the writer and close."""
        if self.writer is not None:
            deadline = time.monotonic() + 30
            while self.inflight is not None and self.writer is not None and time.monotonic() < deadline:
                self.collect(timeout=deadline - time.monotonic())
            if self.writer is not None:
                self.writer.close()
                self.writer = None
        self.flush()
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None

    # -- moving batches along ------------------------------------------------------------------

    def pump(self, timer_fired: bool = False, look: bool = False) -> None:
        """Collect the writer's reports, hand it the next batch, or commit inline. The writer is
        asked only on a poll tick or when an acknowledgement is waiting (plain appends arrive
        several per directive; a look costs a syscall); an idle writer has nothing to report,
        and if it died, hand_over finds out."""
        if self.writer is not None and (self.inflight is not None or not self.writer.ready) and \
                (timer_fired or look or not self.writer.ready):
            self.collect()
        if self.writer is not None and self.writer.ready:
            if self.inflight is None and (self.events or self.traces or self.champions or self.acks):
                self.hand_over()
            if self.inflight is not None and not self.polling:
                self.polling = True
                self.wakeupAfter(_POLL)
            return
        self.pump_inline(timer_fired)

    def hand_over(self) -> None:
        self.seq += 1
        self.inflight = (self.seq, self.events, self.traces, self.champions, self.acks)
        self.events, self.traces, self.champions, self.acks = [], [], [], []
        self.writer.submit(self.inflight[:4])
        if not self.writer.ready:
            self.writer_lost()

    def collect(self, timeout: float = 0.0) -> None:
        for seq, error in self.writer.replies(timeout):
            if self.inflight is None or self.inflight[0] != seq:
                log.error("ledger writer reported batch %s, which is not the one in flight", seq)
                continue
            (_seq, events, traces, champions, acks), self.inflight = self.inflight, None
            if error is not None:
                # one transaction failed as a whole: commit it here with anything unstorable set
                # aside, so one bad value does not cost the others their acknowledgement
                log.warning("ledger batch %d failed at the writer (%s); committing it in the actor", seq, error)
                self.commit_isolated(events, traces, champions, acks, error)
                continue
            self.answer(acks, None)
        if self.writer.state == "failed":
            self.writer_lost()

    def writer_lost(self) -> None:
        """Commit in the actor from now on. A batch the writer held is either wholly committed
        (one transaction) or not at all: its first event tells which; traces and champions are
        upserts, so writing them again is harmless."""
        log.error("%s; committing in the actor until a new writer is ready", self.writer.error)
        self.writer.close(timeout=5)
        self.writer = None
        self.recommit_inflight()
        self.replace_writer()

    def replace_writer(self) -> None:
        """A new writer process (within its restart intensity, as for nodes), so a dead one costs
        a few inline commits and not the throughput of the rest of the run."""
        self.writer_window, allowed = self.writer_window.admit(time.monotonic(), WRITER_INTENSITY)
        if not allowed:
            log.error("the ledger writer died %d times within %gs; committing in the actor from now on",
                      WRITER_INTENSITY.max_restarts + 1, WRITER_INTENSITY.period_seconds)
            return
        try:
            self.writer = WriterProcess(self.url)
        except OSError as exc:
            log.warning("cannot start a new ledger writer process (%s); committing in the actor", exc)
            return
        self.writer_restarts += 1
        self.events.append(LedgerEvent(id=self.new_id(), kind=Other("ledger_writer_restarted"), created_at=utc_now(),
                                       payload={"restart_count": self.writer_restarts, "pid": self.writer.proc.pid}))

    def recommit_inflight(self) -> None:
        if self.inflight is None:
            return
        _seq, events, traces, champions, acks = self.inflight
        self.inflight = None
        try:
            stored = bool(events) and self.ledger.get_event(events[0].id) is not None
        except Exception as exc:  # noqa: BLE001 - the storage itself failed: not acknowledged, with why
            return self.answer(acks, str(exc))
        if stored:
            self.answer(acks, None)
            return
        self.events, self.traces = events + self.events, traces + self.traces
        self.champions, self.acks = champions + self.champions, acks + self.acks
        self.flush()

    def pump_inline(self, timer_fired: bool) -> None:
        if timer_fired or len(self.events) + len(self.traces) >= self.batch or self.champions:
            self.flush()
        elif self.acks and not self.ack_timer:
            # an acknowledgement is awaited: commit within the short ack window, together with
            # whatever gathers meanwhile (the other nodes' writes for the same directive travel
            # other connections and usually land within it)
            self.ack_timer = self.timer = True
            self.wakeupAfter(self.ack_flush_after)
        elif not self.timer and (self.events or self.traces):
            self.timer = True
            self.wakeupAfter(self.flush_after)

    def flush(self) -> None:
        """Commit everything buffered, here and now."""
        if not (self.events or self.traces or self.champions or self.acks):
            return
        events, traces, champions, acks = self.events, self.traces, self.champions, self.acks
        self.events, self.traces, self.champions, self.acks = [], [], [], []
        try:
            self.ledger.write_batch(events, traces)
            for item in champions:
                write_state(self.ledger, item)
        except Exception as exc:  # noqa: BLE001 - never acknowledge what did not commit
            self.commit_isolated(events, traces, champions, acks, str(exc))
            return
        self.answer(acks, None)

    def commit_isolated(self, events: list, traces: list, champions: list, acks: list, error: str) -> None:
        """A failed batch again, without what cannot be stored; each of those is recorded as a
        `ledger_record_rejected` event naming it and why. Still failing: not acknowledged."""
        events, traces, bad = storable_parts(events, traces)
        if not bad:
            log.error("ledger commit failed, %d events not acknowledged: %s", len(events), error)
            return self.answer(acks, error)
        now = utc_now()
        for what, record_id, reason in bad:
            log.error("ledger: %s %s cannot be stored and is left out: %s", what, record_id, reason)
            events.append(LedgerEvent(id=record_id + "-rejected", kind=Other("ledger_record_rejected"), created_at=now,
                                      payload={"record": what, "record_id": record_id, "reason": reason}))
        try:
            self.ledger.write_batch(events, traces)
            for item in champions:
                write_state(self.ledger, item)
        except Exception as exc:  # noqa: BLE001 - never acknowledge what did not commit
            log.error("ledger commit failed, %d events not acknowledged: %s", len(events), exc)
            return self.answer(acks, str(exc))
        self.answer(acks, None)

    def answer(self, acks: list, error: str | None) -> None:
        for to, then in acks:
            self.send(to, then if error is None else _failed(then, error))


def _failed(then: object, error: str) -> object:
    """What a sender waiting on a commit that failed gets: a directive's answer fails with the
    reason (its client hears that directive failed, and why; the others go on), anything else a
    LedgerReady error."""
    reason = f"ledger commit failed: {error}"
    return evolve(then, error=reason) if isinstance(then, DirectiveDone) else LedgerReady(url="", error=reason)


def _wants_writer(mode: str, url: str, shares_process: bool) -> bool:
    """A memory ledger lives in this process, so no other process can write it. Otherwise
    "process" always, "inline" never, and "auto" when commits would otherwise compete with the
    organization's actors for this process (with a process of its own, the actor is the writer)."""
    durable = url != MEMORY_URL and ":memory:" not in url
    return durable and (mode == "process" or (mode == "auto" and shares_process))
