"""The ledger actor: the only writer of the ledger. Appends are buffered and committed in one
transaction per batch (group commit); a requested acknowledgement is sent only after the batch
holding it has committed."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from thespian.actors import ActorExitRequest, ActorTypeDispatcher, WakeupMessage

from ..ledger import open_ledger
from .protocol import LedgerLoadChampion, LedgerOpen, LedgerReady, LedgerWrite

log = logging.getLogger("vsm.ledger")


class LedgerFailed(Exception):
    pass


class LedgerActor(ActorTypeDispatcher):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = None
        self.events: list = []
        self.traces: list = []
        self.champions: list = []
        self.acks: list = []
        self.timer = False        # a flush is scheduled
        self.ack_timer = False    # a short flush is scheduled because someone awaits a commit
        self.batch = 512
        self.flush_after = timedelta(milliseconds=20)
        self.ack_flush_after = timedelta(milliseconds=3)
        self.last_flush = 0.0

    def receiveMsg_LedgerOpen(self, msg: LedgerOpen, sender) -> None:
        try:
            if self.ledger is None:
                self.ledger = open_ledger(msg.url)
            self.batch, self.flush_after = msg.batch, timedelta(milliseconds=msg.flush_ms)
            self.ack_flush_after = timedelta(milliseconds=min(msg.ack_flush_ms, msg.flush_ms))
            self.send(sender, LedgerReady(url=msg.url))
        except Exception as exc:  # noqa: BLE001 - reported to the booting supervisor
            self.send(sender, LedgerReady(url=msg.url, error=f"cannot open ledger {msg.url}: {exc}"))

    def receiveMsg_LedgerLoadChampion(self, msg: LedgerLoadChampion, sender) -> None:
        try:
            self.send(sender, LedgerReady(url="", champion=self.ledger.get_champion_genome(msg.key)))
        except Exception as exc:  # noqa: BLE001
            self.send(sender, LedgerReady(url="", error=f"cannot read champion genome: {exc}"))

    def receiveMsg_LedgerWrite(self, msg: LedgerWrite, sender) -> None:
        self.events.extend(msg.events)
        self.traces.extend(msg.traces)
        if msg.champion is not None:
            self.champions.append((msg.champion_key, msg.champion))
        if msg.then is not None:
            self.acks.append((msg.to if msg.to is not None else sender, msg.then))
        if len(self.events) + len(self.traces) >= self.batch or self.champions:
            self.flush()
        elif msg.then is not None and not self.ack_timer:
            # an acknowledgement is awaited: commit soon when traffic is light (latency), and in
            # the longer window when commits are already back to back (throughput)
            self.ack_timer = self.timer = True
            busy = time.monotonic() - self.last_flush < 4 * self.ack_flush_after.total_seconds()
            self.wakeupAfter(self.flush_after / 2 if busy else self.ack_flush_after)
        elif not self.timer:
            self.timer = True
            self.wakeupAfter(self.flush_after)

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender) -> None:
        self.timer = self.ack_timer = False
        self.flush()

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender) -> None:
        self.flush()
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None

    def flush(self) -> None:
        if not (self.events or self.traces or self.champions or self.acks):
            return
        self.last_flush = time.monotonic()
        events, traces, champions, acks = self.events, self.traces, self.champions, self.acks
        self.events, self.traces, self.champions, self.acks = [], [], [], []
        try:
            self.ledger.write_batch(events, traces)
            for key, genome in champions:
                self.ledger.set_champion_genome(key, genome)
        except Exception as exc:  # noqa: BLE001 - never acknowledge what did not commit
            log.error("ledger commit failed, %d events not acknowledged: %s", len(events), exc)
            for to, _then in acks:
                self.send(to, LedgerReady(url="", error=f"ledger commit failed: {exc}"))
            return
        for to, then in acks:
            self.send(to, then)
