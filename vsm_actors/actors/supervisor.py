"""The organization supervisor: boots one actor per genome node from a genome (or the ledger's
champion), owns live structural changes, and restarts dead node actors.

It creates every node actor itself, so exits come to one place. Thespian does not report every
death on every base, so a watchdog also checks each actor's process id.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta

from attrs import evolve
from thespian.actors import ActorExitRequest, ChildActorExited, WakeupMessage

from .. import codec
from .._posix import alive
from ..ledger import describe_ledger
from ..core.model.events import LedgerEvent, LedgerEventKind
from ..core.model.variants import Other
from ..core.model.patch import PatchError, apply_patch, patch_kind
from ..core.model.validation import validate_genome
from .base import VsmActor
from .ledger_actor import LedgerActor
from .leaf_providers import node_provider_spec
from .node_actor import NodeActor
from .protocol import (
    ApplyPatches, Boot, Booted, EvolutionLoaded, GenomeAck, GenomeChanged, LedgerLoadChampion,
    LedgerLoadEvolution, LedgerOpen, LedgerReady,
    EventsFlushed, FlushEvents, LedgerClose, LedgerClosed, LedgerWrite, NodeReady, NodeSetup, PatchesApplied,
    StatusReply, StatusRequest, Stop, Stopped, SubmitDirective,
)
from .protocol_control import (
    DeliverEnvelope, Delivered, EventRecorded, RecordEvent, RecoverDirectives, SettleDirectives, SignalApplied, SignalNode,
)
from ..core.control.ledger_events import directive_ending
from ..core.control.recovery import ROOT_RESTARTED, RecentSubmissions
from .runtime import Services
from .evolution_shell import evolving_controllers
from ..core.evolution.restore import choose_boot
from ..core.control.budgets import BudgetPlan
from .signed_frames import rejected_frames
from .supervisor_restarts import RestartSupervision
from .supervisor_trials import TrialSupervision

log = logging.getLogger("vsm.supervisor")
_FLUSH_DEADLINE = "vsm.stop-flush-deadline"


class OrganizationActor(RestartSupervision, TrialSupervision, VsmActor):
    def __init__(self) -> None:
        super().__init__()
        self.genome = None
        self.directory: dict = {}
        self.pids: dict[str, int] = {}
        self.restarts: dict[str, int] = {}
        self.forwarded = RecentSubmissions()
        self.restart_windows: dict = {}   # node id -> RestartWindow (supervisor_restarts)
        self.given_up: set[str] = set()   # nodes past their restart intensity, until resumed
        self.ledger_pid: int | None = None  # the ledger actor's process, watched like the nodes'
        self.last_pong: dict[str, float] = {}  # node id -> when it last answered a heartbeat
        self.node_rejected_frames: dict[str, int] = {}  # node id -> frames its process refused
        self.ping_seq = 0
        self.ledger_reopening = False
        self.client = None
        self.phase = "idle"
        self.stopping = False
        self.restored = False
        self.applying: dict | None = None  # the live patch waiting for its nodes' acknowledgements
        self.queued: list = []              # ApplyPatches that arrived meanwhile

    # -- boot ------------------------------------------------------------------------------

    def receiveMsg_Boot(self, msg: Boot, sender) -> None:
        if self.phase != "idle":
            return self.tell(sender, Booted(genome_id="", node_count=0, restored=False, error="already booted"))
        self.client, self.config, self.genome, self.restore = sender, msg.config, msg.genome, msg.restore
        self.if_changed = msg.if_changed
        self.services = Services("supervisor", msg.config.deterministic_ids)
        # one pointer per organization: the genome file's id names it, whatever ids later champions get
        self.champion_key = msg.genome.id
        self.ledger = self.createActor(LedgerActor)
        self.phase = "opening"
        self.ledger_open = LedgerOpen(url=msg.config.ledger_url, writer=msg.config.ledger_writer,
                                      organization_pid=os.getpid(), batch=msg.config.ledger_batch,
                                      flush_ms=msg.config.ledger_flush_ms, ack_flush_ms=msg.config.ledger_ack_flush_ms)
        self.tell(self.ledger, self.ledger_open)

    def receiveMsg_LedgerReady(self, msg: LedgerReady, sender) -> None:
        if self.ledger_reopening:
            return self.ledger_reopened(msg)
        if msg.pid is not None:
            self.ledger_pid = msg.pid
        if msg.error:
            log.error("%s", msg.error)
            if self.phase in ("opening", "loading"):
                self.phase = "failed"
                self.tell(self.client, Booted(genome_id="", node_count=0, restored=False, error=msg.error))
            return
        if self.phase == "opening":
            self.phase = "loading"
            return self.tell(self.ledger, LedgerLoadChampion(key=self.champion_key, file_id=self.genome.id))
        if self.phase == "loading":
            choice = choose_boot(self.genome, msg.champion, msg.base, msg.stored_file, restore=self.restore,
                                 if_changed=self.if_changed, to_json=codec.to_wire)
            if choice.error:
                self.phase = "failed"
                return self.tell(self.client, Booted(genome_id=self.genome.id, node_count=0, restored=False,
                                                     error=choice.error, changed=True))
            self.genome, self.restored = choice.genome, choice.restored
            issues = validate_genome(self.genome)
            if issues:
                self.phase = "failed"
                return self.tell(self.client, Booted(genome_id=self.genome.id, node_count=0, restored=self.restored,
                                                     error="invalid genome: " + "; ".join(map(str, issues))))
            controllers = evolving_controllers(self.genome) if self.config.evolution else ()
            # with budgets every node (leaves too) rebuilds its epoch's account from the ledger
            budgets = BudgetPlan.of_genome(self.genome).active
            metasystems = tuple(n for n, node in self.genome.nodes.items() if node.is_metasystem or budgets)
            if controllers or (self.restored and metasystems):
                self.phase = "restoring"
                return self.tell(self.ledger, LedgerLoadEvolution(controllers=controllers, metasystems=metasystems))
            self.start_nodes({})

    def receiveMsg_EvolutionLoaded(self, msg: EvolutionLoaded, sender) -> None:
        if self.phase != "restoring":
            return
        if msg.error:
            log.error("%s", msg.error)
            self.phase = "failed"
            return self.tell(self.client, Booted(genome_id=self.genome.id, node_count=0, restored=self.restored,
                                                 error=msg.error))
        self.start_nodes(msg.restored, msg.pauses)

    def start_nodes(self, restored: dict, pauses: dict | None = None) -> None:
        self.phase = "starting"
        self.restored_evolution, self.restored_pauses = restored, pauses or {}
        self.directory = {node_id: self.createActor(NodeActor) for node_id in self.genome.nodes}
        for node_id in self.genome.nodes:
            self.setup(node_id, restored.get(node_id))

    def setup(self, node_id: str, evolution=None) -> None:
        spec = node_provider_spec(self.config, self.genome.node(node_id))  # node, genome model spec, default
        self.tell(self.directory[node_id], NodeSetup(
            node_id=node_id, genome=self.genome, directory=self.directory, ledger=self.ledger, supervisor=self.myAddress,
            provider=spec, config=self.config, organization_pid=os.getpid(), evolution=evolution,
            pauses=getattr(self, "restored_pauses", {}).get(node_id, ())))

    def receiveMsg_NodeReady(self, msg: NodeReady, sender) -> None:
        if msg.node_id not in self.genome.nodes:
            self.candidate_pids()[msg.node_id] = msg.pid
            return  # a trial candidate's actor: not part of the champion (supervisor_trials)
        previous = self.pids.get(msg.node_id)
        self.pids[msg.node_id] = msg.pid
        self.acknowledged(msg.node_id)  # a new (or restarted) node starts on the current genome
        if self.phase == "starting" and len(self.pids) == len(self.genome.nodes):
            self.phase = "running"
            self.started_at, self.boot_genome = self.services.now(), self.genome
            event = self.event("organization_started", {"genome_id": self.genome.id, "node_count": len(self.pids),
                                                         "restored": self.restored})
            self.tell(self.ledger, LedgerWrite(
                events=(event,), champion=self.genome, champion_key=self.champion_key,
                then=Booted(genome_id=self.genome.id, node_count=len(self.genome.nodes), restored=self.restored,
                            root=self.directory.get(self.genome.root_node_id), supervisor_pid=os.getpid()),
                to=self.client))
            self.arm_watchdog()
        elif previous is not None and previous != msg.pid:
            log.info("node %s restarted as pid %s", msg.node_id, msg.pid)

    # -- traffic and observation -----------------------------------------------------------------

    def receiveMsg_SubmitDirective(self, msg: SubmitDirective, sender) -> None:
        reply_to = msg.reply_to if msg.reply_to is not None else sender
        self.forwarded.add(msg.directive.id, reply_to, self.services.now())  # answered from the ledger if the root dies
        self.tell(self.directory.get(self.genome.root_node_id),
                  msg if msg.reply_to is not None else SubmitDirective(directive=msg.directive, reply_to=sender))

    def receiveMsg_RecoverDirectives(self, msg: RecoverDirectives, sender) -> None:
        self.settle([(sender, directive_id) for directive_id in msg.directive_ids], reason=msg.reason or ROOT_RESTARTED,
                    rebuild=msg.rebuild)

    def settle(self, waiting: list, since=None, reason: str = ROOT_RESTARTED, rebuild: bool = False) -> None:
        """Have the ledger actor answer, with a failure, each directive a dead root (or a dead
        supervisor) left open; with `rebuild`, each one it finished with its stored answer."""
        if not waiting or getattr(self, "ledger", None) is None:
            return
        root = self.genome.root_node_id
        endings = ((reply_to, directive_id, *directive_ending(directive_id, (), reason, None))
                   for reply_to, directive_id in waiting)
        candidates = tuple((reply_to, self.event(kind.value, payload, directive_id=directive_id, node_id=root), None)
                           for reply_to, directive_id, kind, payload in endings)
        self.tell(self.ledger, SettleDirectives(candidates=candidates, since=since, rebuild=rebuild))

    def receiveMsg_StatusRequest(self, msg: StatusRequest, sender) -> None:
        providers = {n: node_provider_spec(self.config, self.genome.node(n)).name for n in self.genome.nodes
                     if self.genome.node(n).is_leaf}
        self.tell(sender, StatusReply(genome=self.genome, pids=dict(self.pids), restarts=dict(self.restarts),
                                      started_at=getattr(self, "started_at", None),
                                      boot_genome=getattr(self, "boot_genome", None), providers=providers,
                                      ledger=describe_ledger(self.config.ledger_url), ledger_pid=self.ledger_pid,
                                      given_up=tuple(sorted(self.given_up)),
                                      rejected_frames={**self.node_rejected_frames, "supervisor": rejected_frames()}))

    # -- live changes ----------------------------------------------------------------------------

    def receiveMsg_ApplyPatches(self, msg: ApplyPatches, sender) -> None:
        reply_to = msg.reply_to or sender
        if self.applying is not None:  # one live change at a time
            self.queued.append(evolve(msg, reply_to=reply_to))
            return
        t0 = time.perf_counter()
        old = self.genome
        try:
            new = old
            for p in msg.patches:
                new = apply_patch(new, p)
            issues = validate_genome(new)
            if issues:
                raise PatchError("; ".join(map(str, issues)))
        except PatchError as exc:
            event = self.event("genome_patch_rejected", {"error": str(exc), "genome_id": old.id})
            return self.tell(self.ledger, LedgerWrite(events=(event,), then=PatchesApplied(
                genome_id=old.id, error=str(exc)), to=reply_to))
        mutations = (*new.lineage.mutation_ids, msg.mutation_id) if msg.mutation_id else new.lineage.mutation_ids
        new = evolve(new, id=msg.genome_id or self.services.new_id(),
                     lineage=evolve(new.lineage, parent_genome_ids=(*new.lineage.parent_genome_ids, old.id),
                                    mutation_ids=mutations))
        added = tuple(n for n in new.nodes if n not in old.nodes)
        removed = tuple(n for n in old.nodes if n not in new.nodes)
        self.genome = new
        for node_id in removed:
            self.tell(self.directory.pop(node_id), ActorExitRequest())
            self.pids.pop(node_id, None)
        adopted = tuple(n for n in added if n in msg.adopt)
        self.adopt_candidates(msg.adopt)
        for node_id in added:
            self.directory[node_id] = msg.adopt[node_id] if node_id in adopted else self.createActor(NodeActor)
        for node_id in added:
            if node_id not in adopted:
                self.setup(node_id)
        changed = GenomeChanged(genome=new, directory=dict(self.directory))
        # Reply only when every node acts on the new genome: GenomeChanged (supervisor -> node) and
        # traffic sent after the reply (client -> supervisor -> root -> ... -> node) come from
        # different senders, which the TCP base does not order.
        self.applying = {"waiting": set(self.directory), "patches": msg.patches, "old": old, "new": new,
                         "added": added, "removed": removed, "reply_to": reply_to, "t0": t0}
        for node_id, address in self.directory.items():
            if node_id not in added or node_id in adopted:
                self.tell(address, changed)
        self.acknowledged(None)

    def receiveMsg_GenomeAck(self, msg: GenomeAck, sender) -> None:
        if self.applying is not None and msg.genome_id == self.applying["new"].id:
            self.acknowledged(msg.node_id)

    def acknowledged(self, node_id: str | None, force: bool = False) -> None:
        a = self.applying
        if a is None:
            return
        a["waiting"].discard(node_id)
        a["waiting"] &= set(self.directory)
        if a["waiting"] and not force:
            return
        self.applying = None
        old, new, added, removed = a["old"], a["new"], a["added"], a["removed"]
        elapsed = (time.perf_counter() - a["t0"]) * 1000
        events = tuple(self.event("genome_patch_applied", {
            "patch_kind": patch_kind(p), "patch": codec.to_wire(p), "base_genome_id": old.id,
            "new_champion_genome_id": new.id, "added_node_ids": list(added), "removed_node_ids": list(removed),
            "live": True, "elapsed_ms": 0.0 if self.config.deterministic_ids else round(elapsed, 3)}, kind="genome_patch_applied") for p in a["patches"])
        self.tell(self.ledger, LedgerWrite(events=events, champion=new, champion_key=self.champion_key,
                                           then=PatchesApplied(genome_id=new.id, added=added, removed=removed,
                                                               elapsed_ms=elapsed), to=a["reply_to"]))
        if self.queued:
            self.receiveMsg_ApplyPatches(self.queued.pop(0), None)

    # -- supervision -----------------------------------------------------------------------------

    def receiveMsg_ChildActorExited(self, msg: ChildActorExited, sender) -> None:
        if self.stopping:
            return
        if msg.childAddress == getattr(self, "ledger", None):
            return self.restart_ledger("actor exit reported")
        for node_id, address in list(self.directory.items()):
            if address == msg.childAddress:  # ActorAddress is unhashable: compare, never key by it
                self.restart(node_id, "actor exit reported")
                return

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender) -> None:
        if msg.payload == _FLUSH_DEADLINE:
            if getattr(self, "flushing", None):
                log.warning("nodes %s did not send their held events before the ledger closed", sorted(self.flushing))
                self.flushing = set()
                self.close_ledger()
            return
        if self.stopping or self.phase != "running":
            return
        own = os.getpid()
        for node_id, pid in list(self.pids.items()):
            if pid != own and not alive(pid):
                self.restart(node_id, f"process {pid} is gone")
        if self.ledger_pid not in (None, own) and not alive(self.ledger_pid):
            self.restart_ledger(f"process {self.ledger_pid} is gone")
        self.check_heartbeats(own)
        if self.applying is not None and time.perf_counter() - self.applying["t0"] > 10 * self.config.watchdog_seconds:
            log.warning("live patch: no acknowledgement from %s; answering anyway", sorted(self.applying["waiting"]))
            self.acknowledged(None, force=True)
        self.wakeupAfter(timedelta(seconds=self.config.watchdog_seconds))

    def arm_watchdog(self) -> None:
        """Watch process ids only when nodes live in other processes. In-process (simpleSystemBase)
        a pending wakeup makes every client `listen()` sleep until it fires, so status() and
        apply() would each take a full watchdog period."""
        if any(pid != os.getpid() for pid in self.pids.values()):
            self.wakeupAfter(timedelta(seconds=self.config.watchdog_seconds))

    def receiveMsg_SignalNode(self, msg: SignalNode, sender) -> None:
        """A person's algedonic signal about `node_id`: to the metasystem above it (the root's own)."""
        reply_to = msg.reply_to or sender
        try:
            node = self.genome.resolve(msg.node_id)
        except Exception:  # noqa: BLE001 - an unknown name is the caller's error
            return self.tell(reply_to, SignalApplied(node_id=msg.node_id, error=f"no node {msg.node_id!r} in genome "
                                                                                 f"{self.genome.id}"))
        controller = node.parent_id or node.id
        signal = evolve(msg.signal, target_node_id=node.id)
        if signal.override_policy is not None and signal.override_policy.resume_subtree:
            self.revive(node.id)  # nodes given up on in it come back first, then the resume
        self.tell(self.directory[controller], SignalNode(node_id=controller, signal=signal, reply_to=reply_to))

    def receiveMsg_DeliverEnvelope(self, msg: DeliverEnvelope, sender) -> None:
        """A client's envelope for `node_id` (Organization.deliver): to that node, as if it arrived."""
        reply_to = msg.reply_to or sender
        try:
            node = self.genome.resolve(msg.node_id)
        except Exception:  # noqa: BLE001 - an unknown name is the caller's error
            return self.tell(reply_to, Delivered(node_id=msg.node_id, envelope_id=msg.envelope.id,
                                                 error=f"no node {msg.node_id!r} in genome {self.genome.id}"))
        self.tell(self.directory[node.id], evolve(msg, node_id=node.id, reply_to=reply_to))

    def receiveMsg_RecordEvent(self, msg: RecordEvent, sender) -> None:
        self.tell(self.ledger, LedgerWrite(events=(self.event(msg.name, dict(msg.payload)),),
                                           then=EventRecorded(name=msg.name), to=sender))

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender) -> None:
        self.stopping = True

    def receiveMsg_Stop(self, msg: Stop, sender) -> None:
        self.stopping = True
        if getattr(self, "ledger", None) is None:
            return self.tell(sender, Stopped())
        self.stop_reply_to = sender
        # nodes in processes of their own may hold events back (RuntimeConfig.node_defer_ms): ask
        # for them first, and close the ledger once each has answered (or a dead one never will)
        own = os.getpid()
        self.flushing = {n for n, pid in self.pids.items() if pid != own and n in self.directory}
        for node_id in self.flushing:
            self.tell(self.directory[node_id], FlushEvents())
        if self.flushing:
            self.wakeupAfter(timedelta(seconds=self.config.watchdog_seconds * 2), payload=_FLUSH_DEADLINE)
        else:
            self.close_ledger()

    def close_ledger(self) -> None:
        """`organization_stopped` (after every node's held events), then close: the ledger actor
        takes messages in order, so the event is stored before the ledger closes."""
        if self.phase == "running" and not getattr(self, "stop_recorded", False):
            self.stop_recorded = True
            uptime = (self.services.now() - self.started_at).total_seconds()
            self.tell(self.ledger, LedgerWrite(events=(self.event("organization_stopped", {
                "genome_id": self.genome.id, "node_count": len(self.genome.nodes), "uptime_seconds": round(uptime, 3),
                "restarts": sum(self.restarts.values())}),)))
        self.tell(self.ledger, LedgerClose())

    def receiveMsg_EventsFlushed(self, msg: EventsFlushed, sender) -> None:
        waiting = getattr(self, "flushing", set())
        if msg.node_id in waiting:
            waiting.discard(msg.node_id)
            if not waiting:
                self.close_ledger()

    def receiveMsg_LedgerClosed(self, msg: LedgerClosed, sender) -> None:
        reply_to = getattr(self, "stop_reply_to", None)
        if reply_to is not None:
            self.tell(reply_to, Stopped())

    def event(self, name: str, payload: dict, kind: str | None = None, **links):
        event_kind = LedgerEventKind.GenomePatchApplied if kind == "genome_patch_applied" else Other(name)
        links.setdefault("node_id", self.genome.root_node_id)
        return LedgerEvent(id=self.services.new_id(), kind=event_kind, created_at=self.services.now(),
                           genome_id=self.genome.id, payload=payload, **links)
