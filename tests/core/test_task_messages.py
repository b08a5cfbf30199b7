"""Tasks, suggestions, payloads, envelopes, routing keys and ledger events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import attrs
import pytest

from vsm_actors.core.model.channel import ChannelPriority, VsmChannelType
from vsm_actors.core.model.events import (
    EventFilter,
    LedgerEvent,
    LedgerEventKind,
    TraceWindow,
    kind_from_storage_key,
    kind_storage_key,
)
from vsm_actors.core.model.ids import SequentialIds
from vsm_actors.core.model.messages import (
    PAYLOAD_CLASSES,
    PAYLOAD_TYPE_NAMES,
    BuiltinPayloadType,
    MessageEnvelope,
    envelope_for_directive,
    envelope_for_task,
    envelope_for_task_result,
    payload_type_of,
    routing_key,
)
from vsm_actors.core.model.node import NodeLifecycleStatus
from vsm_actors.core.model.patch import SetNodeStatus
from vsm_actors.core.model.payloads import (
    AlgedonicSignal,
    AlgedonicSourceKind,
    AlgedonicValence,
    Command,
    System2CoordinationKind,
    System2CoordinationSignal,
    ThreeFourHomeostatBalance,
    ThreeFourHomeostatKind,
    ThreeFourHomeostatSignal,
)
from vsm_actors.core.model.suggestion import (
    CompareAgainstKind,
    GeneSuggestion,
    GeneSuggestionSourceKind,
    MeasurementPlan,
    TrialMode,
    TrialSafetyLimits,
)
from vsm_actors.core.model.task import (
    Directive,
    RiskClass,
    StaticTaskPredicates,
    TaskArtifact,
    TaskOutcomeStatus,
    TaskPacket,
    TaskResult,
)
from vsm_actors.core.model.trace import TaskTrace
from vsm_actors.core.model.variants import Other

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def field_names(cls: type) -> list[str]:
    return [f.name for f in attrs.fields(cls)]


class TestTaskTypes:
    def test_task_packet_new_defaults(self):
        """`new` gives a fresh id, Medium risk and empty everything else."""
        task = TaskPacket.new("Add health check", "Expose /health", SequentialIds("task"))

        assert "task-1" == task.id
        assert ("Add health check", "Expose /health") == (task.title, task.goal)
        assert RiskClass.Medium == task.risk
        assert (None, None, None, None) == (task.directive_id, task.parent_task_id, task.target_state, task.assigned_to)
        assert () == task.scope == task.dependencies == task.acceptance
        assert StaticTaskPredicates() == task.static_predicates
        assert {} == task.metadata

    def test_task_packet_new_accepts_other_fields(self):
        """Any field can be set at construction; the factory is called once per packet."""
        ids = SequentialIds("task")
        first = TaskPacket.new("a", "b", ids, risk=RiskClass.High, assigned_to="coder")
        second = TaskPacket.new("a", "b", ids)

        assert (RiskClass.High, "coder") == (first.risk, first.assigned_to)
        assert ("task-1", "task-2") == (first.id, second.id)

    def test_task_packet_fields_in_reference_order(self):
        """The codec writes fields in declaration order, which must be the reference's."""
        assert [
            "id", "directive_id", "parent_task_id", "title", "goal", "target_state", "scope", "constraints",
            "context_refs", "authority_refs", "dependencies", "acceptance", "risk", "static_predicates",
            "assigned_to", "metadata",
        ] == field_names(TaskPacket)

    def test_directive_new(self):
        """Directives default to Medium risk with no constraints or desired state."""
        directive = Directive.new("user", "Implement feature", "make the change", SequentialIds("directive"))

        assert ("directive-1", "user", RiskClass.Medium, (), None) == (
            directive.id, directive.origin, directive.risk, directive.constraints, directive.desired_state,
        )

    def test_task_result_constructors(self):
        """`completed` has no error; `failed` carries one."""
        ok = TaskResult.completed("task-1", "coder", "done")
        bad = TaskResult.failed("task-2", "coder", "worker failed to execute task", "node is not executable")

        assert (TaskOutcomeStatus.Completed, None, True) == (ok.status, ok.error, ok.succeeded)
        assert (TaskOutcomeStatus.Failed, "node is not executable", False) == (bad.status, bad.error, bad.succeeded)
        assert () == ok.artifacts == ok.files_touched == ok.tests_run

    def test_inline_artifact(self):
        """An inline artifact has content and no uri."""
        assert TaskArtifact(kind="model_output", uri=None, content="done", metadata={}) == TaskArtifact.inline(
            "model_output", "done")

    def test_values_are_frozen(self):
        """Messages must not change after send (Thespian's simple base would leak the change)."""
        task = TaskPacket.new("a", "b", SequentialIds())

        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            task.title = "c"  # type: ignore[misc]


class TestGeneSuggestion:
    def test_new_gives_reference_defaults(self):
        """Probation, no limits, a 25-task plan against the current parent, an empty rollback plan."""
        patch = SetNodeStatus(node_id="coder", status=NodeLifecycleStatus.Retired)
        suggestion = GeneSuggestion.new("root", "root", GeneSuggestionSourceKind.System3StarAudit, patch,
                                        "retire coder", SequentialIds("sugg"))

        assert ("sugg-1", TrialMode.Probation, (), patch) == (
            suggestion.id, suggestion.trial_mode, suggestion.evidence, suggestion.patch)
        assert TrialSafetyLimits() == suggestion.safety_limits
        plan = suggestion.measurement_plan
        assert (25, None, CompareAgainstKind.CurrentParent) == (plan.window_tasks, plan.window_days, plan.compare_against)
        assert ("accepted_task_value", "regression_rate") == plan.success_metrics
        assert ("token_cost", "revert_rate") == plan.failure_metrics
        assert ((), None, None) == attrs.astuple(suggestion.rollback_plan)

    def test_bare_measurement_plan_is_empty(self):
        """Only `standard()` (and suggestion defaults) carry the reference metrics."""
        assert (None, ()) == (MeasurementPlan().window_tasks, MeasurementPlan().success_metrics)
        assert MeasurementPlan.standard() != MeasurementPlan()


class TestPayloads:
    def test_command_relay_fields_default(self):
        """The five `#[serde(default)]` System 5 relay fields may be omitted."""
        command = Command(issued_by="root", target="coder", title="Freeze", body="do not deploy", non_negotiable=True)

        assert (None, (), (), (), {}) == (
            command.system5_identity, command.policy_values, command.non_negotiable_constraints,
            command.denied_capabilities, command.metadata,
        )

    def test_pain_signal(self):
        """`pain` builds a Pain signal with every option unset."""
        signal = AlgedonicSignal.pain(AlgedonicSourceKind.Ci, 7, "red build", T0)

        assert (AlgedonicValence.Pain, 7, None, None, T0) == (
            signal.valence, signal.severity, signal.target_node_id, signal.override_policy, signal.created_at)

    def test_open_kinds_accept_other(self):
        """Open-ended kinds take a unit variant or `Other`."""
        named = System2CoordinationSignal.new("root", System2CoordinationKind.Contention, "two writers", T0)
        other = System2CoordinationSignal.new("root", Other("dup"), "dup work", T0)

        assert (System2CoordinationKind.Contention, Other("dup")) == (named.kind, other.kind)

    def test_homeostat_summaries_default_to_empty(self):
        """Present and future summaries default to "" and patches to none."""
        signal = ThreeFourHomeostatSignal.new("root", "root", "coder", ThreeFourHomeostatKind.FutureRisk,
                                              ThreeFourHomeostatBalance.Conflict, "add a reviewer", T0)

        assert ("", "", ()) == (signal.present_summary, signal.future_summary, signal.suggested_patches)


class TestEnvelopes:
    def test_default_channels_and_payload_types(self):
        """Directives come from the environment, tasks go on bargaining, results on M→O."""
        ids = SequentialIds("x")
        directive = Directive.new("user", "t", "b", ids)
        task = TaskPacket.new("t", "g", ids)
        result = TaskResult.completed(task.id, "coder", "done")

        envelopes = [
            envelope_for_directive(directive, id="m1", created_at=T0),
            envelope_for_task(task, id="m2", created_at=T0),
            envelope_for_task_result(result, id="m3", created_at=T0),
        ]

        assert [
            (VsmChannelType.OperationToEnvironment, "vsm.directive"),
            (VsmChannelType.ResourceBargaining, "vsm.task_packet"),
            (VsmChannelType.ManagementToOperation, "vsm.task_result"),
        ] == [(e.channel_type, e.payload_type) for e in envelopes]
        assert [directive, task, result] == [e.payload for e in envelopes]
        first = envelopes[0]
        assert ("m1", T0, ChannelPriority.Normal, None, None, None, None, (), {}) == (
            first.id, first.created_at, first.priority, first.source_node_id, first.target_node_id,
            first.correlation_id, first.causation_id, first.trace, first.metadata,
        )

    def test_fields_in_reference_order(self):
        """Declaration order is the wire order."""
        assert [
            "id", "channel_type", "source_node_id", "target_node_id", "correlation_id", "causation_id",
            "priority", "created_at", "payload_type", "payload", "trace", "metadata",
        ] == field_names(MessageEnvelope)

    def test_route_and_priority_builders_return_new_envelopes(self):
        """Builders never modify the original envelope."""
        envelope = envelope_for_task(TaskPacket.new("t", "g", SequentialIds()), id="m", created_at=T0)

        routed = envelope.with_route("root", "coder").with_priority(ChannelPriority.High)

        assert ("root", "coder", ChannelPriority.High) == (routed.source_node_id, routed.target_node_id, routed.priority)
        assert (None, ChannelPriority.Normal) == (envelope.target_node_id, envelope.priority)

    def test_explicit_payload_type_for_custom_payloads(self):
        """A payload outside the built-ins needs an explicit type; without one it is a TypeError."""
        envelope = MessageEnvelope.new(VsmChannelType.Audit, {"k": 1}, id="m", created_at=T0, payload_type="x.custom")

        assert "x.custom" == envelope.payload_type
        with pytest.raises(TypeError, match="dict"):
            MessageEnvelope.new(VsmChannelType.Audit, {"k": 1}, id="m", created_at=T0)

    def test_payload_classes_cover_every_builtin_type(self):
        """All 15 built-in payload types decode to a class, and the class maps back to the name."""
        assert {t.value for t in BuiltinPayloadType} == set(PAYLOAD_CLASSES)
        assert 15 == len(PAYLOAD_CLASSES)
        assert {cls: name for name, cls in PAYLOAD_CLASSES.items()} == PAYLOAD_TYPE_NAMES
        assert "vsm.command" == payload_type_of(Command(issued_by="root", target="coder", title="t", body="b"))
        assert GeneSuggestion is PAYLOAD_CLASSES["vsm.gene_suggestion"]

    @pytest.mark.parametrize(("channel", "target", "expected"), [
        (VsmChannelType.ResourceBargaining, "coder", "vsm.resourcebargaining.coder"),
        (VsmChannelType.System2Coordination, None, "vsm.system2coordination.broadcast"),
        (VsmChannelType.ThreeFourHomeostat, "root", "vsm.threefourhomeostat.root"),
        (VsmChannelType.ManagementToOperation, "n-1", "vsm.managementtooperation.n-1"),
    ])
    def test_routing_key(self, channel, target, expected):
        """`vsm.<channel lowercase, no separators>.<target | broadcast>`."""
        envelope = MessageEnvelope.new(channel, {}, id="m", created_at=T0, payload_type="x").with_route("root", target)

        assert expected == routing_key(envelope)


class TestLedgerEventKinds:
    def test_twenty_four_named_kinds(self):
        """The reference declares 24 named kinds."""
        assert 24 == len(LedgerEventKind)

    @pytest.mark.parametrize("kind", list(LedgerEventKind) + [Other("command_received"), Other("")])
    def test_storage_key_round_trip(self, kind):
        """Every kind survives storage-key encoding."""
        assert kind == kind_from_storage_key(kind_storage_key(kind))

    def test_storage_key_spelling(self):
        """snake_case for named kinds, `other:` prefix for open-ended ones."""
        assert "task_routed" == kind_storage_key(LedgerEventKind.TaskRouted)
        assert "evolution_generation_created" == LedgerEventKind.EvolutionGenerationCreated.storage_key
        assert "other:command_received" == kind_storage_key(Other("command_received"))

    def test_unknown_key_without_prefix_reads_as_other(self):
        """A key written by a newer version is kept, not rejected."""
        assert Other("future_kind") == kind_from_storage_key("future_kind")


class TestLedgerEvents:
    def envelope(self, target: str | None) -> MessageEnvelope:
        task = TaskPacket(id="task-1", title="t", goal="g")
        return attrs.evolve(envelope_for_task(task, id="m", created_at=T0).with_route("root", target), correlation_id="c")

    def test_for_message_links_target_and_correlation(self):
        """The envelope becomes the JSON payload; node is the target, metadata names type and channel."""
        seen = []
        event = LedgerEvent.for_message(
            LedgerEventKind.MessagePublished, self.envelope("coder"), id="e", created_at=T0,
            to_json=lambda o: seen.append(o) or {"json": True},
        )

        assert ("coder", "c", {"json": True}) == (event.node_id, event.correlation_id, event.payload)
        assert {"payload_type": "vsm.task_packet", "channel_type": "ResourceBargaining"} == event.metadata
        assert [self.envelope("coder")] == seen

    def test_for_message_falls_back_to_source(self):
        """Without a target the source node is linked."""
        event = LedgerEvent.for_message(LedgerEventKind.MessageReceived, self.envelope(None), id="e", created_at=T0,
                                        to_json=lambda o: {})

        assert "root" == event.node_id

    def test_for_trace(self):
        """A trace event links genome, node and task and names the trace in metadata."""
        trace = TaskTrace.started("task-1", "genome-1", "coder", new_id=SequentialIds("trace"), started_at=T0)

        event = LedgerEvent.for_trace(trace, id="e", created_at=T0, to_json=lambda o: {"id": o.id})

        assert (LedgerEventKind.TraceWritten, "genome-1", "coder", "task-1", None) == (
            event.kind, event.genome_id, event.node_id, event.task_id, event.directive_id)
        assert ({"trace_id": "trace-1"}, {"id": "trace-1"}) == (event.metadata, event.payload)

    def test_builders_set_links(self):
        """`with_*` builders set one link each on a copy."""
        event = LedgerEvent.new(Other("x"), {}, id="e", created_at=T0)

        linked = event.with_node("n").with_task("t").with_directive("d").with_genome("g").with_suggestion("s")
        linked = linked.with_correlation("c").with_metadata(k="v")

        assert ("n", "t", "d", "g", "s", "c", {"k": "v"}) == (
            linked.node_id, linked.task_id, linked.directive_id, linked.genome_id, linked.suggestion_id,
            linked.correlation_id, linked.metadata)
        assert (None, "other:x") == (event.node_id, event.storage_key)

    def test_filter_matches(self):
        """Kinds, exact links and `since` all have to match; a None link never matches a set filter."""
        event = LedgerEvent.new(LedgerEventKind.TaskRouted, {}, id="e", created_at=T0, node_id="root", task_id="t")

        assert EventFilter().matches(event)
        assert EventFilter(kinds=(LedgerEventKind.TaskRouted,), node_id="root", since=T0).matches(event)
        assert not EventFilter(kinds=(LedgerEventKind.TaskMapped,)).matches(event)
        assert not EventFilter(directive_id="d").matches(event)
        assert not EventFilter(since=T0 + timedelta(seconds=1)).matches(event)
        assert EventFilter(kinds=(Other("x"),)).matches(attrs.evolve(event, kind=Other("x")))

    def test_trace_window_defaults_to_100(self):
        """The default window is the newest 100 traces, from any time."""
        window = TraceWindow()
        trace = TaskTrace.started("t", "g", "n", new_id=SequentialIds(), started_at=T0)

        assert (None, 100) == (window.since, window.limit)
        assert window.admits(trace)
        assert not TraceWindow(since=T0 + timedelta(seconds=1)).admits(trace)
