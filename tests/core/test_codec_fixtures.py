"""Every reference wire fixture decodes into our type and re-encodes to equal JSON."""

from __future__ import annotations

import json

import pytest

from vsm_actors import codec
from vsm_actors.core.model import events
from vsm_actors.core.evolution import fitness
from vsm_actors.core.model import genome
from vsm_actors.core.model import messages
from vsm_actors.core.model import patch
from vsm_actors.core.model import payloads
from vsm_actors.core.model import records
from vsm_actors.core.model import suggestion
from vsm_actors.core.model import task
from vsm_actors.core.model import trace

FIXTURE_TYPES = {
    "AddChannel": patch.GenomePatch,
    "AlgedonicSignal": payloads.AlgedonicSignal,
    "Command": payloads.Command,
    "Directive": task.Directive,
    "EnvironmentSignal": payloads.EnvironmentSignal,
    "EvolutionGenerationRecord": records.EvolutionGenerationRecord,
    "EvolutionPolicy": records.EvolutionPolicy,
    "FitnessWeights": fitness.FitnessWeights,
    "GeneSuggestion": suggestion.GeneSuggestion,
    "GeneSuggestion_other_source_AddChild": suggestion.GeneSuggestion,
    "LedgerEvent_Other": events.LedgerEvent,
    "LedgerEvent_TaskRouted": events.LedgerEvent,
    "MessageEnvelope_task": messages.MessageEnvelope,
    "OrganizationalGenome": genome.OrganizationalGenome,
    "PopulationArchiveRecord": records.PopulationArchiveRecord,
    "ResourceAllocationDecision": payloads.ResourceAllocationDecision,
    "ResourceBargain": payloads.ResourceBargain,
    "StoredTrialRecord": records.StoredTrialRecord,
    "System2CoordinationSignal": payloads.System2CoordinationSignal,
    "TaskPacket": task.TaskPacket,
    "TaskResult": task.TaskResult,
    "TaskResult_failed": task.TaskResult,
    "TaskTrace": trace.TaskTrace,
}


def test_every_fixture_has_a_type(fixtures_dir):
    names = {p.stem for p in fixtures_dir.glob("*.json")}
    assert names - {"Patches"} == set(FIXTURE_TYPES)


@pytest.mark.parametrize("name", sorted(FIXTURE_TYPES))
def test_fixture_round_trips(fixtures_dir, name):
    data = json.loads((fixtures_dir / f"{name}.json").read_text())
    obj = codec.from_wire(data, FIXTURE_TYPES[name])
    assert type(obj).__module__.startswith("vsm_actors.core")
    assert json.loads(codec.dumps(obj)) == data
    # decoding our own output gives an equal value (not just equal JSON)
    assert codec.loads(codec.dumps(obj), FIXTURE_TYPES[name]) == obj


def test_every_patch_variant_round_trips(fixtures_dir):
    docs = json.loads((fixtures_dir / "Patches.json").read_text())
    docs.append(json.loads((fixtures_dir / "AddChannel.json").read_text()))
    seen = set()
    for doc in docs:
        value = codec.from_wire(doc, patch.GenomePatch)
        seen.add(type(value).__name__)
        assert json.loads(codec.dumps(value)) == doc
    add_child = json.loads((fixtures_dir / "GeneSuggestion_other_source_AddChild.json").read_text())["patch"]
    seen.add(type(codec.from_wire(add_child, patch.GenomePatch)).__name__)
    set_status = json.loads((fixtures_dir / "GeneSuggestion.json").read_text())["patch"]
    seen.add(type(codec.from_wire(set_status, patch.GenomePatch)).__name__)
    # every reference variant is in the fixtures; ours (routing rules) are extensions
    assert seen == set(patch.PATCH_TYPES) - {"AddRoutingRule", "RemoveRoutingRule"} and len(seen) == 11


def test_envelope_payload_is_typed_and_key_sorted(fixtures_dir):
    raw = (fixtures_dir / "MessageEnvelope_task.json").read_text()
    env = codec.loads(raw, messages.MessageEnvelope)
    assert isinstance(env.payload, task.TaskPacket)
    assert env.payload.static_predicates.domain_markers == {"public_interface": "true"}
    wire = codec.to_wire(env)
    assert list(wire["payload"]) == sorted(wire["payload"])
    assert messages.routing_key(env) == "vsm.resourcebargaining.coder"


def test_timestamps_use_z_and_shortest_exact_fraction():
    from datetime import datetime, timezone
    base = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert codec.format_timestamp(base) == "2026-01-02T03:04:05Z"
    assert codec.format_timestamp(base.replace(microsecond=500000)) == "2026-01-02T03:04:05.500Z"
    assert codec.format_timestamp(base.replace(microsecond=123456)) == "2026-01-02T03:04:05.123456Z"
    assert codec.parse_timestamp("2026-01-02T03:04:05.123456789Z") == base.replace(microsecond=123456)
    assert codec.parse_timestamp("2026-01-02T04:04:05+01:00") == base


def test_unknown_enum_variant_is_rejected_with_its_name():
    with pytest.raises(Exception) as info:
        codec.from_wire("Sometimes", task.RiskClass)
    assert "Sometimes" in str(info.value)


def test_newtype_variants_use_one_key_objects(fixtures_dir):
    data = json.loads((fixtures_dir / "GeneSuggestion_other_source_AddChild.json").read_text())
    value = codec.from_wire(data, suggestion.GeneSuggestion)
    assert str(value.source) == 'Other("system3_evolution_generation")'
    assert codec.to_wire(value.measurement_plan.compare_against) == {"Sibling": "coder"}


def test_genome_extension_genes_are_omitted_when_default(fixtures_dir):
    data = json.loads((fixtures_dir / "OrganizationalGenome.json").read_text())
    g = codec.from_wire(data, genome.OrganizationalGenome)
    assert "relations" not in codec.to_wire(g)
    from vsm_actors.core.model.genes import Relation
    from attrs import evolve
    g2 = evolve(g, relations=(Relation(id="r", kind="peer", from_="root", to="coder"),))
    wire = codec.to_wire(g2)
    assert wire["relations"] == [{"id": "r", "kind": "peer", "from": "root", "to": "coder", "metadata": {}}]
    assert codec.from_wire(wire, genome.OrganizationalGenome) == g2
