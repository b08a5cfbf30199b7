"""Composition root: one call builds a running organization from a genome and a config.

    with Organization.start(genome, RuntimeConfig(ledger_url="run.sqlite")) as org:
        done = org.run("Add a health check endpoint")
        org.promote("primary-code-service", "generalist-coder")
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable

from attrs import evolve

from .actors.protocol import (
    ApplyPatches, Boot, Booted, DirectiveDone, EvolutionCommand, EvolutionReply, LedgerAnswer, LedgerRead, LedgerReady, PatchesApplied, RootMoved, RuntimeConfig,
    StatusReply, StatusRequest, Stop, Stopped, SubmitDirective,
)
from .actors.protocol_control import (
    DeliverEnvelope, Delivered, EventRecorded, RecordEvent, RecoverDirectives, SignalApplied, SignalNode,
)
from ._posix import alive, bind_forks_to_owner, kill_session
from .actors.runtime import TimeOrderedIds
from .core.control.recovery import SUPERVISOR_RESTARTED
from .core.control.restarts import RestartIntensity
from .core.control.seen_ids import SeenIds
from .actors.supervisor import OrganizationActor
from .actors.thespian_base import start_system
from .core.model.genome import OrganizationalGenome
from .core.model.patch import PromoteLeafToMetasystem
from .core.model.task import Directive

SUPERVISOR_NAME = "vsm-organization"
log = logging.getLogger("vsm.system")
_directive_ids = TimeOrderedIds()


class OrganizationError(RuntimeError):
    pass


class OrganizationTimeout(OrganizationError):
    """A reply did not come within its timeout."""


class OrganizationGone(OrganizationError):
    """The organization an attached client talks to stopped while it waited."""


class SupervisorReplaced(OrganizationError):
    """The supervisor died while it handled a change (a patch, a signal, an evolution step) and
    was replaced: the change may or may not have been made before; look, then ask again."""


class GenomeChanged(OrganizationError):
    """The genome file is not the version the ledger's champion grew from (`if_changed="stop"`)."""


def check_storable(directive: Directive, limits: RuntimeConfig | None = None) -> None:
    """ValueError, naming the field, for a directive the ledger cannot or should not store: text
    that is not UTF-8, or more than the configured sizes."""
    limits = limits or _DEFAULT_LIMITS
    fields = [("title", directive.title), ("body", directive.body),
              *((f"metadata {k!r}", f"{k}{v}") for k, v in directive.metadata.items())]
    total = 0
    for name, text in fields:
        try:
            size = len((text or "").encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValueError(f"directive {name} is not valid UTF-8 text ({exc.reason} at position {exc.start})") from None
        if name.startswith("metadata") and size > limits.max_metadata_value_bytes:
            raise ValueError(f"directive {name} is {size} bytes; the limit is {limits.max_metadata_value_bytes} "
                             "(RuntimeConfig.max_metadata_value_bytes)")
        total += size
    if len(directive.metadata) > limits.max_metadata_entries:
        raise ValueError(f"directive metadata has {len(directive.metadata)} entries; the limit is "
                         f"{limits.max_metadata_entries} (RuntimeConfig.max_metadata_entries)")
    if total > limits.max_directive_bytes:
        raise ValueError(f"directive is {total} bytes; the limit is {limits.max_directive_bytes} "
                         "(RuntimeConfig.max_directive_bytes)")


_DEFAULT_LIMITS = RuntimeConfig()


def supervisor_intensity(config: RuntimeConfig) -> RestartIntensity:
    """How often a dead supervisor is replaced before its keeper gives up: the nodes' intensity."""
    return RestartIntensity(max_restarts=config.restart_intensity, period_seconds=config.restart_period_seconds)


def make_directive(text: str, *, title: str | None = None, metadata: dict | None = None,
                   origin: str = "user") -> Directive:
    title = title or text.strip().splitlines()[0][:80] if text.strip() else "directive"
    return Directive(id=_directive_ids(), origin=origin, title=title, body=text,
                     metadata=dict(metadata or {}))


def _stop(asys, supervisor, timeout: float) -> None:
    """Ask the supervisor to close the ledger; other replies still in flight are dropped."""
    deadline = time.monotonic() + timeout
    asys.tell(supervisor, Stop())
    while (remaining := deadline - time.monotonic()) > 0:
        if isinstance(asys.listen(remaining), Stopped):
            return
    log.warning("the organization did not confirm its ledger closed within %.0fs", timeout)


class Organization:
    """A client handle on a running organization (in-process or multiprocess)."""

    def __init__(self, asys, supervisor, booted: Booted, *, owns_system: bool, timeout: float) -> None:
        self.asys, self.supervisor, self.booted = asys, supervisor, booted
        self.owns_system, self.timeout = owns_system, timeout
        self._stash: list = []
        self._unanswered: dict[str, None] = {}  # directives sent and not yet answered (recovered if the root dies)
        self._answered = SeenIds()  # the newest answers taken: a repeated one is dropped
        self._gc_threshold: tuple | None = None
        self._sessions: set[int] = set()  # the actor system's process session (TCP base)
        # directives go straight to the root (one hop fewer); an attached client has no root and
        # goes through the supervisor, which knows where the root is
        self.root = booted.root
        self.limits: RuntimeConfig | None = None  # the started organization's limits (attached: defaults)
        self.alive = None  # is the organization still there? (checked in silences)
        self.gone_message = "the organization stopped (its admin no longer answers)"
        self.keeper = None  # replaces a dead supervisor (keeper.SupervisorKeeper); None: say it is gone

    @classmethod
    def start(cls, genome: OrganizationalGenome, config: RuntimeConfig | None = None, *, base: str = "simple",
              admin_port: int | None = None, restore: bool = True, timeout: float = 30.0,
              global_name: str | None = None, if_changed: str = "resume") -> Organization:
        """Boot `genome`. With `restore`, the ledger's champion for it wins when the file is the version
        that champion grew from; when the file changed, `if_changed` says what to do: `resume` (keep
        the champion), `fresh` (start the file as a new lineage) or `stop` (GenomeChanged)."""
        config = config or RuntimeConfig()
        if base != "simple" and admin_port is None:
            bind_forks_to_owner()  # kill -9 of this process takes the organization's processes with it
        asys = start_system(base, admin_port)
        try:
            supervisor = asys.createActor(OrganizationActor, globalName=global_name)
            booted = asys.ask(supervisor, Boot(genome=genome, config=config, restore=restore, if_changed=if_changed),
                              timeout)
            if isinstance(booted, LedgerReady) and booted.error:
                raise OrganizationError(booted.error)
            if not isinstance(booted, Booted):
                raise OrganizationError(f"organization did not boot within {timeout}s (got {booted!r})")
            if booted.error:
                raise (GenomeChanged if booted.changed else OrganizationError)(booted.error)
        except BaseException:
            _stop(asys, supervisor, timeout)
            asys.shutdown()
            raise
        org = cls(asys, supervisor, booted, owns_system=True, timeout=timeout)
        org.limits = config
        if base != "simple" and admin_port is None:
            # the TCP base's admin daemonizes into a session of its own, which its actors share:
            # note it, to make sure at shutdown that nothing of it is left (Thespian gives up on
            # an actor busy in a provider call and leaves it, and the admin, running)
            own = os.getsid(0)
            status = org.status()
            org._sessions = {os.getsid(pid) for pid in status.pids.values() if pid != os.getpid()} - {own}
            # the supervisor's actors die with it; this client, which started it, starts another
            if booted.supervisor_pid not in (None, os.getpid()):
                from .keeper import SupervisorKeeper
                org.keeper = SupervisorKeeper(asys, genome, config, global_name=global_name, timeout=timeout,
                                              intensity=supervisor_intensity(config))
                org.keeper.note(status)
                org.alive = lambda pid=booted.supervisor_pid: alive(pid)
        if base == "simple" and config.gc_threshold is not None:
            org._tune_collector(config.gc_threshold)
        return org

    def _tune_collector(self, threshold: int) -> None:
        """In process the actors allocate hundreds of thousands of short-lived objects a second,
        and with the collector's default first threshold (700) its young and full passes cost
        ~40 us a directive in three_level (gc callbacks, benchmarks/throughput.py); at 5,000,
        ~15. Put back at shutdown."""
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(max(threshold, self._gc_threshold[0]), *self._gc_threshold[1:])

    @classmethod
    def attach(cls, asys, supervisor, timeout: float = 30.0) -> Organization:
        return cls(asys, supervisor, Booted(genome_id="", node_count=0, restored=True), owns_system=False,
                   timeout=timeout)

    # -- directives ----------------------------------------------------------------------------

    def run(self, directive: str | Directive, timeout: float | None = None) -> DirectiveDone:
        return self.run_many([directive], timeout)[0]

    def run_many(self, directives, timeout: float | None = None,
                 on_done: Callable[[DirectiveDone], None] | None = None) -> list[DirectiveDone]:
        """Send every directive at once, then collect one completion per directive (in order);
        `on_done` sees each completion as it arrives."""
        items = [self.submit(d) for d in directives]
        return self.wait(items, timeout or self.timeout * max(1, len(items) / 100), on_done=on_done)

    def submit(self, directive: str | Directive) -> Directive:
        """Send one directive without waiting; `wait` collects its completion. Text that cannot
        be stored (not UTF-8, e.g. a lone surrogate) is a ValueError here, before anything is sent."""
        item = directive if isinstance(directive, Directive) else make_directive(directive)
        check_storable(item, self.limits)
        if self.keeper is not None and not self.alive():
            for stray in self._replace_supervisor():  # not into a root that died with its supervisor
                self._take(stray, lambda _: False, 0, [], None)
        self._unanswered[item.id] = None
        self.asys.tell(self.root or self.supervisor, SubmitDirective(directive=item))
        return item

    def wait(self, directives: list[Directive], timeout: float | None = None,
             on_done: Callable[[DirectiveDone], None] | None = None) -> list[DirectiveDone]:
        wanted = {d.id for d in directives}

        def first_answer(m) -> bool:  # one answer per id, even for a directive sent twice in one call
            if isinstance(m, DirectiveDone) and m.directive_id in wanted:
                wanted.discard(m.directive_id)
                return True
            return False

        done = self._collect(first_answer, len(wanted), timeout or self.timeout, each=on_done)
        by_id = {m.directive_id: m for m in done}
        return [by_id[d.id] for d in directives]

    # -- live changes and status ---------------------------------------------------------------

    def apply(self, patches, timeout: float | None = None) -> PatchesApplied:
        self.asys.tell(self.supervisor, ApplyPatches(patches=tuple(patches)))
        (reply,) = self._collect(lambda m: isinstance(m, PatchesApplied), 1, timeout or self.timeout, change=True)
        return reply

    def evolution(self, action: str, controller: str | None = None, *, trial_id: str | None = None, by: str = "user",
                  reason: str = "", suggestion=None, envelope=None, timeout: float | None = None) -> EvolutionReply:
        """audit | evolve | approve | promote | prune | decide | freeze | thaw | suggest | deliver | status
        at one evolving metasystem (the first one when `controller` is None); `deliver` hands it an
        audit request, audit report or gene suggestion envelope as if it arrived on its channel."""
        self.asys.tell(self.supervisor, EvolutionCommand(action=action, controller_id=controller, trial_id=trial_id,
                                                         by=by, reason=reason, suggestion=suggestion,
                                                         envelope=envelope))
        (reply,) = self._collect(lambda m: isinstance(m, EvolutionReply), 1, timeout or self.timeout, change=True)
        return reply

    def signal(self, node: str, signal, timeout: float | None = None) -> SignalApplied:
        """An algedonic signal about `node` (an AlgedonicSignal with its override policy), applied by
        the metasystem above it; the reply lists the actions taken and what is paused there now."""
        self.asys.tell(self.supervisor, SignalNode(node_id=node, signal=signal))
        (reply,) = self._collect(lambda m: isinstance(m, SignalApplied), 1, timeout or self.timeout, change=True)
        return reply

    def deliver(self, node: str, envelope, *, wait: bool = True, timeout: float | None = None) -> Delivered:
        """Hand `node` (id or name) an envelope as if it arrived on its channel: a command, a
        System 2 coordination signal, an operation handoff, a management directive, a task... The
        reply comes once the node has handled it; with `wait`, and when the node routed work under
        the envelope's correlation, once that work's result is back too (`Delivered.done`, a
        DirectiveDone). OrganizationError for a node the genome does not have."""
        limit = timeout or self.timeout
        self.asys.tell(self.supervisor, DeliverEnvelope(node_id=node, envelope=envelope, await_results=wait))
        (reply,) = self._collect(lambda m: isinstance(m, Delivered) and m.envelope_id == envelope.id, 1, limit,
                                 change=True)
        if reply.error:
            raise OrganizationError(reply.error)
        if wait and reply.awaiting:
            (done,) = self._collect(lambda m: isinstance(m, DirectiveDone) and m.correlation_id == reply.correlation_id
                                    and m.directive_id == "", 1, limit)
            reply = evolve(reply, done=done)
        return reply

    def record_event(self, name: str, payload: dict, timeout: float = 10.0) -> None:
        """Write one event of the client's (e.g. `run_interrupted`) and wait until it is committed."""
        request = RecordEvent(name=name, payload=payload)
        self.asys.tell(self.supervisor, request)
        self._collect(lambda m: isinstance(m, EventRecorded), 1, timeout, resend=request)

    def read_ledger(self, method: str, *args, timeout: float | None = None):
        """A read of the organization's ledger through its ledger actor (memory ledgers included)."""
        request = LedgerRead(method=method, args=args)
        self.asys.tell(self.supervisor, request)
        (answer,) = self._collect(lambda m: isinstance(m, LedgerAnswer), 1, timeout or self.timeout, resend=request)
        if answer.error:
            raise OrganizationError(answer.error)
        return answer.value

    def promote(self, node: str, child_name: str) -> PatchesApplied:
        node_id = self.status().genome.resolve(node).id
        return self.apply([PromoteLeafToMetasystem(node_id=node_id, extracted_child_name=child_name)])

    def status(self, timeout: float | None = None) -> StatusReply:
        self.asys.tell(self.supervisor, StatusRequest())
        (reply,) = self._collect(lambda m: isinstance(m, StatusReply), 1, timeout or self.timeout,
                                 resend=StatusRequest())
        if self.keeper is not None:
            self.keeper.note(reply)  # the processes to wait for if the supervisor dies
        return reply

    @property
    def genome(self) -> OrganizationalGenome:
        return self.status().genome

    def _collect(self, wanted, count: int, timeout: float, each=None, resend=None, change: bool = False) -> list:
        """`ask`/`listen` return the next message from anyone (thespian.md pitfall 4): keep what
        is not for this call, and give it to the call that wants it. If the supervisor dies
        meanwhile and is replaced, `resend` (a read) is asked of the new one; a `change` raises
        SupervisorReplaced; directives waited for are recovered either way."""
        got, keep = [], []
        for m in self._stash:
            (got if wanted(m) and len(got) < count else keep).append(m)
        self._stash = keep
        for m in got if each is not None else ():
            each(m)
        deadline = time.monotonic() + timeout
        while len(got) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OrganizationTimeout(f"timed out after {timeout:.1f}s waiting for {count - len(got)} replies")
            m = self.asys.listen(remaining if self.alive is None else min(remaining, 1.0))
            if m is None:
                if self.alive is not None and not self.alive():
                    for stray in self._replace_supervisor():
                        self._take(stray, wanted, count, got, each)
                    if change:
                        raise SupervisorReplaced("the organization's supervisor died while it made this change "
                                                 "and was replaced; look at the genome and ask again if need be")
                    if resend is not None:
                        self.asys.tell(self.supervisor, resend)
                continue
            self._take(m, wanted, count, got, each)
        return got

    def _take(self, m, wanted, count: int, got: list, each) -> None:
        if isinstance(m, LedgerReady) and m.error:
            raise OrganizationError(m.error)
        if isinstance(m, RootMoved):
            # the root died: whatever it had of ours is answered from the ledger (a failure
            # for each it had not finished), by way of the supervisor
            self.root = m.root
            self.asys.tell(self.supervisor, RecoverDirectives(directive_ids=tuple(self._unanswered)))
            return
        if isinstance(m, DirectiveDone) and m.directive_id:
            # the same answer again (resent after a ledger actor died) has the same correlation;
            # the same directive sent twice gets two
            answer = f"{m.directive_id}/{m.correlation_id}"
            if answer in self._answered:
                return
            self._answered.add(answer)
            self._unanswered.pop(m.directive_id, None)
        if wanted(m) and len(got) < count:
            got.append(m)
            if each is not None:
                each(m)
        else:
            self._stash.append(m)

    def _replace_supervisor(self) -> list:
        """The supervisor is gone: have the keeper boot another (OrganizationGone when there is
        none, or it gives up), then ask it for every directive still unanswered. Returns what
        arrived meanwhile."""
        if self.keeper is None:
            raise OrganizationGone(self.gone_message)
        from .keeper import OrganizationStopped, SupervisorGaveUp
        stray: list = []
        try:
            new = self.keeper.replace(self.supervisor, self.booted.supervisor_pid, "its process is gone", stray)
        except SupervisorGaveUp as exc:
            self.keeper = None
            self.gone_message = str(exc) if isinstance(exc, OrganizationStopped) else \
                f"the organization's supervisor died and was not replaced: {exc}"
            raise OrganizationGone(self.gone_message) from None
        self.supervisor, self.booted = new.address, evolve(new.booted, supervisor_pid=new.pid)
        if self.root is not None or new.booted.root is not None:
            self.root = new.booted.root
        self.alive = lambda pid=new.pid: alive(pid)
        if self._unanswered:
            self.asys.tell(self.supervisor, RecoverDirectives(directive_ids=tuple(self._unanswered),
                                                              reason=SUPERVISOR_RESTARTED, rebuild=True))
        return stray

    def shutdown(self) -> None:
        """Commit and close the ledger, then stop every actor (and process) of the organization."""
        if self.owns_system and self.asys is not None:
            try:
                if self.alive is None or self.alive():  # a dead supervisor will never confirm
                    _stop(self.asys, self.supervisor, self.timeout)
            finally:
                self.asys.shutdown()
                self.asys = None
                for session in self._sessions:
                    if left := kill_session(session):
                        log.warning("processes %s of the actor system outlived its shutdown; killed them", sorted(left))
                self._sessions = set()
                if self._gc_threshold is not None:
                    gc.set_threshold(*self._gc_threshold)
                    self._gc_threshold = None

    def __enter__(self) -> Organization:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
