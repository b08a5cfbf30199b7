"""Invariants under arbitrary patch sequences, promotion, and codec round trips (hypothesis)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import attrs
from hypothesis import given, settings, strategies as st

from vsm_actors import codec
from vsm_actors.core.model import events
from vsm_actors.core.evolution import fitness
from vsm_actors.core.model import payloads
from vsm_actors.core.model import records
from vsm_actors.core.model import suggestion
from vsm_actors.core.model import task
from vsm_actors.core.model import trace
from vsm_actors.core.model.capability import EXECUTION_CAPABILITIES, LeafOperationSpec
from vsm_actors.core.model.genome import OrganizationalGenome
from vsm_actors.core.model.messages import MessageEnvelope
from vsm_actors.core.model.node import NodeLifecycleStatus, PromptComponent, PromptSection, ToolSpec, ViableNode
from vsm_actors.core.model.patch import (
    AddChild, AddPromptComponent, AddTool, Batch, PatchError, PromoteLeafToMetasystem, RemoveSubtree,
    RemoveTool, SetNodeStatus, apply_patch,
)
from vsm_actors.core.model.validation import validate_genome

names = st.text(alphabet="abcdefghij-", min_size=1, max_size=6)
operations = st.sampled_from([LeafOperationSpec.coding(), LeafOperationSpec.reviewer(),
                              LeafOperationSpec.tester(), LeafOperationSpec()])


def base_genome() -> OrganizationalGenome:
    g = OrganizationalGenome.with_root("g", ViableNode.metasystem("root", "root"))
    return g.add_child("root", ViableNode.leaf("coder", "coder", LeafOperationSpec.coding()))


@st.composite
def patch_for(draw, g: OrganizationalGenome):
    ids = sorted(g.nodes)
    node_id = draw(st.sampled_from(ids))
    kind = draw(st.sampled_from(["add", "promote", "remove", "tool", "untool", "status", "prompt", "batch"]))
    if kind == "add":
        new = draw(names)
        return AddChild(parent_id=node_id, child=ViableNode.leaf(f"n-{new}", new, draw(operations)))
    if kind == "promote":
        return PromoteLeafToMetasystem(node_id=node_id, extracted_child_name=draw(names))
    if kind == "remove":
        return RemoveSubtree(node_id=node_id)
    if kind == "tool":
        return AddTool(node_id=node_id, tool=ToolSpec(name=draw(names)))
    if kind == "untool":
        return RemoveTool(node_id=node_id, tool_name=draw(names))
    if kind == "status":
        return SetNodeStatus(node_id=node_id, status=draw(st.sampled_from(list(NodeLifecycleStatus))))
    if kind == "prompt":
        return AddPromptComponent(node_id=node_id, section=draw(st.sampled_from(list(PromptSection))),
                                  component=PromptComponent(id=draw(names), text="t"))
    return Batch(patches=(draw(patch_for(g)), draw(patch_for(g))))


def assert_invariants(g: OrganizationalGenome) -> None:
    assert validate_genome(g) == []
    for node in g.nodes.values():
        if node.children:
            caps = node.capabilities()
            assert not any(getattr(caps, c) for c in EXECUTION_CAPABILITIES), node.id


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_patch_sequence_keeps_every_invariant(data):
    g = base_genome()
    for _ in range(data.draw(st.integers(1, 25))):
        p = data.draw(patch_for(g))
        try:
            new = apply_patch(g, p)
        except PatchError:
            assert_invariants(g)  # a failed patch leaves the genome as it was
            continue
        assert_invariants(new)
        g = new


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_promotion_moves_the_operation_and_nothing_else(data):
    g = base_genome()
    for _ in range(data.draw(st.integers(0, 8))):
        try:
            g = apply_patch(g, data.draw(patch_for(g)))
        except PatchError:
            pass
    leaf = data.draw(st.sampled_from([n for n in g.nodes.values() if n.is_leaf]))
    name = data.draw(names)
    new = apply_patch(g, PromoteLeafToMetasystem(node_id=leaf.id, extracted_child_name=name))
    (child_id,) = new.node(leaf.id).children
    child = new.node(child_id)
    for attr in ("leaf_operation", "model", "prompt", "tools", "context_policy", "permissions", "system_5"):
        assert getattr(child, attr) == getattr(leaf, attr)
    parent = new.node(leaf.id)
    assert (parent.id, parent.name, parent.parent_id, parent.system_5, parent.status) == \
        (leaf.id, leaf.name, leaf.parent_id, leaf.system_5, leaf.status)
    assert not parent.capabilities().can_write_code
    assert child.capabilities() == leaf.capabilities()
    others = {k: v for k, v in new.nodes.items() if k not in (leaf.id, child_id)}
    assert others == {k: v for k, v in g.nodes.items() if k != leaf.id}
    assert new.channels[:len(g.channels)] == g.channels and len(new.channels) == len(g.channels) + 5


# -- codec round trips ------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
instants = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                        timezones=st.just(timezone.utc))
st.register_type_strategy(float, finite)
st.register_type_strategy(datetime, instants)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | finite | st.text(max_size=8),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
                           max_leaves=8)

ROUND_TRIP_TYPES = [
    task.TaskPacket, task.TaskResult, task.Directive, trace.TaskTrace, suggestion.GeneSuggestion,
    payloads.AlgedonicSignal, payloads.ResourceBargain, payloads.ResourceAllocationDecision,
    payloads.System2CoordinationSignal, payloads.OperationHandoff, payloads.ManagementOperationDirective,
    payloads.EnvironmentSignal, payloads.ThreeFourHomeostatSignal, payloads.Command, payloads.AuditRequest,
    payloads.AuditReport, fitness.FitnessWeights, records.StoredTrialRecord, records.PopulationArchiveRecord,
    records.EvolutionGenerationRecord, records.EvolutionPolicy, ViableNode,
]


def _round_trip(value, cls):
    text = codec.dumps(value)
    back = codec.loads(text, cls)
    assert back == value
    assert json.loads(codec.dumps(back)) == json.loads(text)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_codec_round_trips_every_type(data):
    for cls in ROUND_TRIP_TYPES:
        _round_trip(data.draw(st.from_type(cls), label=cls.__name__), cls)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_codec_round_trips_envelopes_and_events(data):
    payload_cls = data.draw(st.sampled_from([task.TaskPacket, task.TaskResult, task.Directive, payloads.Command]))
    env = data.draw(st.builds(MessageEnvelope, payload=st.from_type(payload_cls),
                              payload_type=st.just(_payload_type(payload_cls))))
    _round_trip(env, MessageEnvelope)
    event = data.draw(st.builds(events.LedgerEvent, payload=json_values))
    _round_trip(event, events.LedgerEvent)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_codec_round_trips_generated_genomes(data):
    g = base_genome()
    for _ in range(data.draw(st.integers(0, 12))):
        try:
            g = apply_patch(g, data.draw(patch_for(g)))
        except PatchError:
            pass
    _round_trip(g, OrganizationalGenome)


def _payload_type(cls):
    from vsm_actors.core.model.messages import PAYLOAD_CLASSES
    return next(k for k, v in PAYLOAD_CLASSES.items() if v is cls)


def test_round_trip_types_are_attrs_classes():
    assert all(attrs.has(c) for c in ROUND_TRIP_TYPES)
