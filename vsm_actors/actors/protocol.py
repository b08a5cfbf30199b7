"""Control messages between the client, the supervisor, node actors and the ledger actor.

VSM traffic itself travels as `core.messages.MessageEnvelope`; these classes only boot, wire,
change and observe the organization. All are frozen and picklable (the TCP base pickles them).
"""

from __future__ import annotations

from attrs import field, frozen
from attrs.validators import in_

from ..core.model.events import LedgerEvent
from ..core.model.genome import OrganizationalGenome
from ..core.model.messages import MessageEnvelope
from ..core.model.task import Directive, TaskResult
from ..core.model.trace import TaskTrace


@frozen(kw_only=True)
class ProviderSpec:
    name: str = "echo"
    options: dict = field(factory=dict)


@frozen(kw_only=True)
class RuntimeConfig:
    ledger_url: str = "vsm-ledger.sqlite"
    provider: ProviderSpec = ProviderSpec()
    node_providers: dict = field(factory=dict)  # node id or name -> ProviderSpec
    # provider name -> ProviderSpec: the options for nodes whose genome model spec names that
    # provider (actors/leaf_providers.py); those not here are built with their defaults
    providers: dict = field(factory=dict)
    # each leaf running an agent works in a directory of its own under this one (actors/workspaces.py);
    # workspace_kind "git": a worktree per leaf, "plain": a subdirectory
    workspace: str | None = None
    workspace_kind: str = field(default="plain", validator=in_(("plain", "git")))
    crash_policy: str = "fail"  # fail | retry: what happens to a task whose leaf process died
    watchdog_seconds: float = 1.0
    # restart intensity (core/control/restarts.py): past this many restarts of one node within
    # the period, it is paused with a pain signal instead of restarted again
    restart_intensity: int = 5
    restart_period_seconds: float = 60.0
    # a node in another process that answers no heartbeat for this long while its process is
    # stopped, or for this long past its provider's timeout otherwise, is hung: killed, restarted
    hang_seconds: float = 10.0
    message_events: bool = False  # record message_received/message_published (costly, off by default)
    deterministic_ids: bool = False
    ledger_writer: str = field(default="auto", validator=in_(("auto", "process", "inline")))
    # process: durable ledgers commit in a writer process; inline: in the ledger actor; auto: a
    # writer process when the ledger actor shares its process with the organization (in-process
    # base), inline when it has a process of its own already (multiprocess base)
    ledger_batch: int = 4096
    ledger_flush_ms: int = 20      # inline group-commit window for plain appends
    ledger_ack_flush_ms: int = 3   # ... and when a reply waits on the commit
    # the collector's first threshold while an organization runs in this process (None: leave
    # it): its default, 700, re-scans the surviving heap every few directives (Organization.start)
    gc_threshold: int | None = 5000
    # multiprocess base: a metasystem holds the events of a task it routes down until the task's
    # result comes back through it (one ledger message for both, not two), or this long at most;
    # 0: never. In process never: a leaf's provider call holds up every actor there, held events too
    node_defer_ms: int = 5
    # evolution: metasystems audit on their genome's schedule and run trials while work flows
    evolution: bool = True
    auto_approve: str | None = None  # approve every trial that asks, in this name (simulation)
    # the largest directive accepted (title, body and metadata, UTF-8 bytes) and its metadata's
    # size: a directive is copied into several events, so an unbounded one writes many times over
    max_directive_bytes: int = 1_000_000
    max_metadata_entries: int = 64
    max_metadata_value_bytes: int = 4_096


@frozen(kw_only=True)
class Boot:
    genome: OrganizationalGenome
    config: RuntimeConfig
    restore: bool = True  # prefer the ledger's champion genome over `genome`
    # when the file differs from the version the ledger's champion grew from: stop | resume | fresh
    if_changed: str = "resume"


@frozen(kw_only=True)
class Booted:
    genome_id: str
    node_count: int
    restored: bool
    error: str | None = None
    root: object = None  # the root node's actor: the booting client submits directives to it directly
    changed: bool = False  # refused: the file is not the version the ledger's champion grew from
    supervisor_pid: int | None = None  # its clients watch it: nothing restarts a dead supervisor


@frozen(kw_only=True)
class RootMoved:
    """Supervisor -> booting client: the root node's actor was replaced (supervision)."""

    root: object


@frozen(kw_only=True)
class NodeSetup:
    node_id: str
    genome: OrganizationalGenome
    directory: dict  # node id -> ActorAddress
    ledger: object
    supervisor: object
    provider: ProviderSpec
    config: RuntimeConfig
    organization_pid: int | None = None  # the supervisor's process: does the node share it?
    evolution: object = None  # core.evolution.restore.StoredEvolution for an evolving metasystem
    id_owner: str | None = None  # deterministic id prefix when not the node id (a trial's candidate actor)
    pauses: tuple = ()  # metasystem: its algedonic pause/resume events, oldest first (restored at boot)


@frozen
class FlushEvents:
    """Supervisor -> node, before the ledger closes: send any events held back; answered by
    EventsFlushed once they are on their way."""


@frozen(kw_only=True)
class EventsFlushed:
    node_id: str


@frozen(kw_only=True)
class ResultWithEvents:
    """Node -> parent on the multiprocess base: a result going up, with the ledger events and
    traces its sender holds (its own and those carried up to it). The parent holds them in turn,
    so a directive's events reach the ledger in the root's one write, which its completion
    follows."""

    envelope: MessageEnvelope
    events: tuple[LedgerEvent, ...] = ()
    traces: tuple[TaskTrace, ...] = ()
    # traces of the subtree for the metasystems above to observe (audit window, trial evidence);
    # in process they are written already, on the multiprocess base they are `traces` too
    observed: tuple[TaskTrace, ...] = ()

    def __str__(self) -> str:  # see LedgerWrite.__repr__
        return f"ResultWithEvents({self.envelope}, {len(self.events)} events, {len(self.traces)} traces)"


@frozen(kw_only=True)
class GenomeChanged:
    genome: OrganizationalGenome
    directory: dict


@frozen(kw_only=True)
class GenomeAck:
    """A node's reply to GenomeChanged: from now on it acts on `genome_id`."""

    node_id: str | None
    genome_id: str


@frozen(kw_only=True)
class SubmitDirective:
    directive: Directive
    reply_to: object = None  # filled in by the supervisor: the client's address

    def __str__(self) -> str:  # see LedgerWrite.__repr__
        return f"SubmitDirective({self.directive.id})"


@frozen(kw_only=True)
class DirectiveDone:
    directive_id: str
    correlation_id: str
    results: tuple[TaskResult, ...]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(r.status.value == "Completed" for r in self.results)

    def __str__(self) -> str:  # see LedgerWrite.__repr__
        return f"DirectiveDone({self.directive_id}, {len(self.results)} results, error={self.error!r})"


@frozen(kw_only=True, repr=False)
class LedgerWrite:
    """Events and traces to append; `then` is sent to `to` once they (and all before) commit."""

    events: tuple[LedgerEvent, ...] = ()
    traces: tuple[TaskTrace, ...] = ()
    champion: OrganizationalGenome | None = None
    champion_key: str | None = None
    then: object = None
    to: object = None
    # durable evolution state: trial, archive and generation records and genome snapshots
    records: tuple = ()

    def __repr__(self) -> str:
        # Thespian's TCP base formats every message it sends for a debug line, enabled or not:
        # the payloads would make that the costliest part of a send
        kinds = ", ".join(e.storage_key for e in self.events[:3]) + (", ..." if len(self.events) > 3 else "")
        then = f", then={type(self.then).__name__}" if self.then is not None else ""
        champion = f", champion={self.champion.id}" if self.champion is not None else ""
        return f"LedgerWrite({len(self.events)} events [{kinds}], {len(self.traces)} traces{champion}{then})"


@frozen(kw_only=True)
class LedgerOpen:
    url: str
    writer: str = "auto"
    organization_pid: int | None = None  # the supervisor's process: is the ledger sharing it?
    batch: int = 512
    flush_ms: int = 20
    ack_flush_ms: int = 3


@frozen
class LedgerClose:
    """Commit what is buffered, stop the writer process, close the ledger; answer LedgerClosed."""


@frozen
class LedgerClosed:
    pass


@frozen
class Stop:
    """Client -> supervisor: close the ledger cleanly before the actor system goes away (the
    in-process base never sends ActorExitRequest to an actor at shutdown). Answered by Stopped."""


@frozen
class Stopped:
    pass


@frozen(kw_only=True)
class LedgerReady:
    url: str
    error: str | None = None
    champion: OrganizationalGenome | None = None
    base: OrganizationalGenome | None = None         # the genome the champion's lineage began with
    stored_file: OrganizationalGenome | None = None  # the stored genome under the file's own id
    pid: int | None = None  # the ledger actor's process (after an open): the supervisor watches it


@frozen(kw_only=True)
class LedgerLoadChampion:
    key: str
    file_id: str | None = None


@frozen(kw_only=True)
class ApplyPatches:
    patches: tuple
    reply_to: object = None
    genome_id: str | None = None     # the new champion's id (a promoted candidate keeps its own)
    mutation_id: str | None = None   # the suggestion a promotion comes from (genome lineage)
    adopt: dict = field(factory=dict)  # node id -> a candidate actor that becomes the champion's


@frozen(kw_only=True)
class LedgerLoadEvolution:
    """Supervisor -> ledger at boot: what each evolving metasystem needs to carry on, and each
    metasystem's algedonic pause and resume events."""

    controllers: tuple[str, ...]
    metasystems: tuple[str, ...] = ()




@frozen(kw_only=True)
class EvolutionLoaded:
    restored: dict = field(factory=dict)   # controller id -> core.evolution.restore.StoredEvolution
    pauses: dict = field(factory=dict)     # metasystem id -> its pause/resume events, oldest first
    error: str | None = None


@frozen(kw_only=True)
class EvolutionCommand:
    """Client -> supervisor -> a metasystem: audit | evolve | approve | promote | prune | freeze
    | thaw | suggest | deliver | status, answered by EvolutionReply."""

    action: str
    controller_id: str | None = None
    trial_id: str | None = None
    by: str = "user"
    reason: str = ""
    suggestion: object = None        # a GeneSuggestion for action "suggest"
    envelope: object = None          # an audit-channel MessageEnvelope for action "deliver"
    reply_to: object = None


@frozen(kw_only=True)
class EvolutionReply:
    controller_id: str
    action: str
    ok: bool = True
    message: str = ""
    active: object = None            # StoredTrialRecord of the active trial
    records: tuple = ()              # every trial record this metasystem knows
    generation: int = 0
    error: str | None = None


@frozen(kw_only=True)
class CandidateStart:
    """Metasystem -> supervisor: give a trial's candidate-only nodes actors (on the candidate genome)."""

    trial_id: str
    controller_id: str
    candidate: OrganizationalGenome
    nodes: tuple[str, ...]


@frozen(kw_only=True)
class CandidateWorkers:
    """Supervisor -> metasystem: the actors of a trial's candidate-only nodes."""

    trial_id: str
    directory: dict


@frozen(kw_only=True)
class CandidateEnd:
    trial_id: str
    nodes: tuple[str, ...]


@frozen(kw_only=True)
class TrialEvidence:
    """Leaf -> the metasystem running a trial: a trace of a task that metasystem routed in a trial."""

    trace: TaskTrace


@frozen(kw_only=True)
class PatchesApplied:
    genome_id: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    elapsed_ms: float = 0.0
    error: str | None = None


@frozen
class StatusRequest:
    pass


@frozen(kw_only=True)
class StatusReply:
    genome: OrganizationalGenome
    pids: dict
    restarts: dict
    started_at: object = None        # datetime the organization booted
    boot_genome: OrganizationalGenome | None = None
    providers: dict = field(factory=dict)   # node id -> provider name
    ledger: str = ""                 # where the ledger is (no password)
    ledger_pid: int | None = None    # the ledger actor's process
    given_up: tuple[str, ...] = ()   # nodes past their restart intensity, not restarted until resumed
    rejected_frames: dict = field(factory=dict)  # process (node id, "supervisor") -> frames it refused


@frozen(kw_only=True)
class NodeReady:
    node_id: str
    pid: int


@frozen(kw_only=True)
class ChildRestarted:
    """To a metasystem: its child's actor was replaced; settle the tasks it had in flight."""

    node_id: str
    directory: dict



READABLE = frozenset({"recent_task_traces", "events", "trial_records", "population_archive_records",
                      "evolution_generation_records", "get_genome_snapshot"})


@frozen(kw_only=True)
class LedgerRead:
    """Client -> supervisor -> ledger actor: one read of the ledger after what is buffered commits."""

    method: str
    args: tuple = ()
    reply_to: object = None


@frozen(kw_only=True)
class LedgerAnswer:
    value: object = None
    error: str | None = None
