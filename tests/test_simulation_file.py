"""Simulation files (DESIGN 3.5): the documented example loads exactly as written, YAML and JSON
give the same spec, and every bad input is reported as FILE:LINE:COL: field: message."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vsm_actors.core.world import (
    DirectiveMix, SimulationSpec, WorldCondition, WorldEffect, WorldRule, WorldSpec,
)
from vsm_actors.files.simulation import SimulationFileError, load_simulation

WORLDS = Path(__file__).resolve().parent.parent / "benchmarks" / "worlds"

# DESIGN 3.5, verbatim (comments included)
DESIGN_EXAMPLE = """\
name: review-gate
per_generation: 200            # directives in each generation (default 100)
directives:                    # the mix; each directive is drawn by weight from the seeded RNG
  - class: feature             # becomes the directive's metadata task_class
    weight: 3                  # default 1
    title: "Implement feature {n}"    # {n}: the directive's number in the run
    metadata: {requires_code_write: "true"}   # more directive metadata (strings)
  - class: review
    title: "Review change {n}"
    metadata: {required_capability: review}
world:
  default: {success: 0.8, tokens: [800, 1600], latency_ms: [100, 900]}
  rules:                       # every rule whose `when` holds applies, in order; later keys win
    - when: {class: review, operation: coding}
      then: {success: 0.2}
    - when: {class: review, operation: reviewing}
      then: {success: 0.95, tokens: [300, 600]}
    - when: {class: migration, specialist: true}
      then: {success: 0.9}
"""

EXPECTED = SimulationSpec(
    name="review-gate",
    per_generation=200,
    directives=(
        DirectiveMix(task_class="feature", weight=3.0, title="Implement feature {n}",
                     metadata={"requires_code_write": "true"}),
        DirectiveMix(task_class="review", weight=1.0, title="Review change {n}",
                     metadata={"required_capability": "review"}),
    ),
    world=WorldSpec(
        default=WorldEffect(success=0.8, tokens=(800, 1600), latency_ms=(100, 900)),
        rules=(
            WorldRule(when=WorldCondition(classes=("review",), operations=("coding",)),
                      then=WorldEffect(success=0.2)),
            WorldRule(when=WorldCondition(classes=("review",), operations=("reviewing",)),
                      then=WorldEffect(success=0.95, tokens=(300, 600))),
            WorldRule(when=WorldCondition(classes=("migration",), specialist=True),
                      then=WorldEffect(success=0.9)),
        ),
    ),
    approve_trials=True,
)

JSON_EQUIVALENT = {
    "name": "review-gate",
    "per_generation": 200,
    "directives": [
        {"class": "feature", "weight": 3, "title": "Implement feature {n}",
         "metadata": {"requires_code_write": "true"}},
        {"class": "review", "title": "Review change {n}", "metadata": {"required_capability": "review"}},
    ],
    "world": {
        "default": {"success": 0.8, "tokens": [800, 1600], "latency_ms": [100, 900]},
        "rules": [
            {"when": {"class": "review", "operation": "coding"}, "then": {"success": 0.2}},
            {"when": {"class": "review", "operation": "reviewing"}, "then": {"success": 0.95, "tokens": [300, 600]}},
            {"when": {"class": "migration", "specialist": True}, "then": {"success": 0.9}},
        ],
    },
}


def test_the_design_example_loads_verbatim(tmp_path):
    path = tmp_path / "workload.yaml"
    path.write_text(DESIGN_EXAMPLE)
    assert load_simulation(path) == EXPECTED


def test_the_json_equivalent_loads_to_the_same_spec(tmp_path):
    path = tmp_path / "workload.json"
    path.write_text(json.dumps(JSON_EQUIVALENT, indent=2))
    assert load_simulation(path) == EXPECTED
    assert load_simulation(json.dumps(JSON_EQUIVALENT)) == EXPECTED


def test_text_bytes_and_explicit_text_load_too():
    assert load_simulation(DESIGN_EXAMPLE) == EXPECTED
    assert load_simulation(DESIGN_EXAMPLE.encode(), name="w.yaml") == EXPECTED
    assert load_simulation(None, name="w.yaml", text=DESIGN_EXAMPLE) == EXPECTED


def test_defaults_when_keys_are_left_out(tmp_path):
    path = tmp_path / "minimal.yaml"
    path.write_text("directives:\n  - {class: feature, title: \"Do {n}\"}\n")
    spec = load_simulation(path)
    assert spec.name == "minimal" and spec.per_generation == 100 and spec.approve_trials is True
    assert spec.directives == (DirectiveMix(task_class="feature", title="Do {n}"),)
    assert spec.world == WorldSpec()
    assert spec.world.default == WorldEffect(success=0.8, tokens=(800, 1600), latency_ms=(100, 900))


def test_partial_default_numbers_lists_scalars_and_unknown_top_level_keys():
    spec = load_simulation("""\
name: more
approve_trials: false
description: a key of a later version of the format   # ignored
directives:
  - class: docs
    weight: 0.5
    title: Document {n}
    body: "Write the docs of module {n}"
    metadata: {priority: 2, urgent: true, ratio: 0.5}
world:
  default: {success: 1}
  rules:
    - when: {operation: [Coding, REVIEWING], leaf: [a, b], team_has: Testing}
      then: {tokens: 500, latency_ms: 0}
    - when:
      then:
    - then: {success: 0}
""")
    assert spec.approve_trials is False and spec.directives[0].weight == 0.5
    assert spec.directives[0].body == "Write the docs of module {n}"
    assert spec.directives[0].metadata == {"priority": "2", "urgent": "true", "ratio": "0.5"}
    assert spec.world.default == WorldEffect(success=1.0, tokens=(800, 1600), latency_ms=(100, 900))
    first, empty, always = spec.world.rules
    assert first.when == WorldCondition(operations=("coding", "reviewing"), leaves=("a", "b"), team_has=("testing",))
    assert first.then == WorldEffect(tokens=(500, 500), latency_ms=(0, 0))
    assert empty == WorldRule(when=WorldCondition(), then=WorldEffect())
    assert always.when == WorldCondition() and always.then.success == 0.0


LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$", re.S)

BAD = [
    # (text, line, field named in the message, words of the message)
    ("directives: []\n", 1, "directives", "non-empty list"),
    ("name: x\n", 1, "directives", "required"),
    ("directives: 3\n", 1, "directives", "non-empty list"),
    ("directives:\n  - class: a\n    title: t\n  - class: b\n    title: u\n    weight: 0\n",
     6, "directives[1].weight", "positive number"),
    ("directives:\n  - {class: a, title: t, weight: yes}\n", 2, "directives[0].weight", "positive number"),
    ("directives:\n  - {title: t}\n", 2, "directives[0].class", "required"),
    ("directives:\n  - {class: a}\n", 2, "directives[0].title", "required"),
    ("directives:\n  - {class: 3, title: t}\n", 2, "directives[0].class", "string"),
    ("directives:\n  - just a string\n", 2, "directives[0]", "mapping"),
    ("directives:\n  - {class: a, title: t, wieght: 2}\n", 2, "directives[0].wieght", "unknown key"),
    ("directives:\n  - class: a\n    title: t\n    metadata: {k: [1, 2]}\n", 4, "directives[0].metadata.k", "string"),
    ("directives:\n  - class: a\n    title: t\n    metadata: [k]\n", 4, "directives[0].metadata", "mapping"),
    ("directives:\n  - {class: a, title: t}\nper_generation: 0\n", 3, "per_generation", "positive whole number"),
    ("directives:\n  - {class: a, title: t}\nper_generation: 2.5\n", 3, "per_generation", "positive whole number"),
    ("directives:\n  - {class: a, title: t}\napprove_trials: maybe\n", 3, "approve_trials", "true or false"),
    ("directives:\n  - {class: a, title: t}\nworld: [1]\n", 3, "world", "mapping"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  defaults: {}\n", 4, "world.defaults", "unknown key"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  default: {success: 2}\n", 4, "world.default.success",
     "between 0 and 1"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  default: {success: -0.1}\n", 4, "world.default.success",
     "between 0 and 1"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  default: {tokens: [9, 3]}\n", 4, "world.default.tokens",
     "min <= max"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  default: {tokens: -5}\n", 4, "world.default.tokens",
     "non-negative"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  default: {latency_ms: [1, 2, 3]}\n", 4,
     "world.default.latency_ms", "[min, max]"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  rules: {when: {}}\n", 4, "world.rules", "list"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  rules:\n    - when: {class: a}\n      than: {success: 1}\n",
     6, "world.rules[0].than", "unknown key"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  rules:\n    - when: {colour: red}\n      then: {}\n",
     5, "world.rules[0].when.colour", "unknown key"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  rules:\n    - when: {class: a}\n      then: {cost: 3}\n",
     6, "world.rules[0].then.cost", "unknown key"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  rules:\n    - when: {specialist: yes}\n", 5,
     "world.rules[0].when.specialist", "true or false"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  rules:\n    - when: {class: [a, 3]}\n", 5,
     "world.rules[0].when.class", "string"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  rules:\n    - when: {team_has: []}\n", 5,
     "world.rules[0].when.team_has", "string"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  rules:\n    - when: red\n", 5, "world.rules[0].when",
     "mapping"),
]


@pytest.mark.parametrize("text, line, field, words", BAD, ids=[b[2] + ":" + b[3] for b in BAD])
def test_bad_inputs_name_file_line_column_and_field(tmp_path, text, line, field, words):
    path = tmp_path / "workload.yaml"
    path.write_text(text)
    with pytest.raises(SimulationFileError) as caught:
        load_simulation(path)
    located = LOCATED.match(str(caught.value))
    assert located, str(caught.value)
    assert located["file"] == str(path) and int(located["line"]) == line and int(located["col"]) >= 1
    assert located["message"].startswith(f"{field}: ") and words in located["message"], str(caught.value)
    assert (caught.value.file, caught.value.line) == (str(path), line)


def test_the_column_points_at_the_field():
    text = "directives:\n  - class: a\n    title: t\n    weight: -1\n"
    with pytest.raises(SimulationFileError, match=r"^workload\.yaml:4:5: directives\[0\]\.weight: "):
        load_simulation(text, name="workload.yaml")


def test_json_errors_are_located_too(tmp_path):
    bad = json.loads(json.dumps(JSON_EQUIVALENT))
    bad["directives"][1]["weight"] = -1
    path = tmp_path / "workload.json"
    path.write_text(json.dumps(bad, indent=2))
    with pytest.raises(SimulationFileError) as caught:
        load_simulation(path)
    located = LOCATED.match(str(caught.value))
    assert located and located["file"] == str(path)
    assert located["message"] == "directives[1].weight: must be a positive number"
    assert path.read_text().splitlines()[int(located["line"]) - 1].strip().startswith('"weight"')


def test_unsafe_and_unreadable_files_are_simulation_file_errors(tmp_path):
    cases = {"tag.yaml": "directives: !!python/object:os.system []\n",
             "dup.yaml": "directives: []\ndirectives: []\n",
             "broken.json": '{"directives": [}'}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(SimulationFileError, match=rf"^{re.escape(str(tmp_path / name))}:\d+:\d+: "):
            load_simulation(tmp_path / name)
    with pytest.raises(SimulationFileError, match=r"missing\.yaml:1:1: cannot read"):
        load_simulation(tmp_path / "missing.yaml")


@pytest.mark.parametrize("world", ["review_gate", "specialist", "parsimony", "optimal"])
def test_the_benchmark_worlds_load(world):
    path = WORLDS / f"{world}.yaml"
    assert path.read_text().startswith("#")  # each says what the better structure is
    spec = load_simulation(path)
    assert spec.directives and spec.per_generation > 0
