"""Control messages between a client, the supervisor and the nodes: algedonic signals, envelopes
delivered as if on their channel, and the client's own events (`run_interrupted`)."""

from __future__ import annotations

from attrs import field, frozen

from ..core.model.messages import MessageEnvelope


@frozen(kw_only=True)
class SignalNode:
    """Client -> supervisor -> the metasystem over `node_id` (the root for itself): an algedonic
    signal, answered by SignalApplied."""

    node_id: str
    signal: object          # core.model.payloads.AlgedonicSignal
    reply_to: object = None


@frozen(kw_only=True)
class SignalApplied:
    node_id: str
    actions: tuple[str, ...] = ()
    paused: tuple[str, ...] = ()   # targets paused at that node now
    error: str | None = None


@frozen(kw_only=True)
class DeliverEnvelope:
    """Client -> supervisor -> node `node_id`: handle `envelope` as if it arrived on its channel
    (a command, a System 2 signal, a handoff, a management directive, a task...), answered by
    Delivered. With `await_results`, a result the node gets back for the work it routed under
    the envelope's correlation comes as a DirectiveDone (directive id "") as well."""

    node_id: str
    envelope: MessageEnvelope
    reply_to: object = None
    await_results: bool = True


@frozen(kw_only=True)
class Delivered:
    node_id: str
    envelope_id: str
    correlation_id: str = ""
    awaiting: bool = False   # a DirectiveDone with this correlation id follows (or came already)
    error: str | None = None
    done: object = None      # that DirectiveDone, filled in by Organization.deliver


@frozen(kw_only=True)
class RecordEvent:
    """Client -> supervisor: one event of the client's own (`run_interrupted`), answered by
    EventRecorded once committed."""

    name: str
    payload: dict = field(factory=dict)


@frozen(kw_only=True)
class EventRecorded:
    name: str


@frozen(kw_only=True)
class SettleDirectives:
    """-> ledger actor, after a root or ledger actor died: for each (reply_to, ending event,
    answer or None) whose directive has no ending in the ledger, store the event and send reply_to
    the answer (a DirectiveDone carrying the event's error when None). With `resend`, an answer
    whose ending is stored already is sent again: it may have died with the old ledger actor."""

    candidates: tuple = ()
    resend: bool = False
    # an answer whose ending is stored but that none of the candidates carries is rebuilt from
    # the ledger and sent (the supervisor died: its client may never have had it)
    rebuild: bool = False
    # no candidate's ending is older: one read of the endings since then settles most of them
    # (a root that forwarded 10,000 directives must not cost 10,000 reads)
    since: object = None


@frozen(kw_only=True)
class Ping:
    """Supervisor -> node in another process, every watchdog period: answer Pong."""

    seq: int


@frozen(kw_only=True)
class Pong:
    node_id: str
    seq: int
    rejected_frames: int = 0  # unsigned or forged frames its process refused (signed_frames)


@frozen(kw_only=True)
class LedgerMoved:
    """Supervisor -> every node: the ledger actor died and this one replaced it."""

    ledger: object


@frozen(kw_only=True)
class RecoverDirectives:
    """Client -> supervisor, on RootMoved or once a dead supervisor is replaced: the directives it
    sent and still waits for. `reason` is the failure each unfinished one gets (else the root's);
    with `rebuild`, one the ledger holds an answer for gets that answer again."""

    directive_ids: tuple[str, ...] = ()
    reason: str = ""
    rebuild: bool = False
