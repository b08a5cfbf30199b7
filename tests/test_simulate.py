"""`vsm simulate` and simulation files (DESIGN 3.5): the format as written, deterministic ledgers,
the per-generation fields, the champion file, and errors that name file, line and column."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vsm_actors.core.world import LeafView, WorldSpec, draw_directive, effect_for, unit_draw
from vsm_actors.files.genome_files import load_genome
from vsm_actors.files.simulation import SimulationFileError, load_simulation
from vsm_actors.simulate import simulate

WORLDS = Path(__file__).resolve().parent.parent / "benchmarks" / "worlds"
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
GENOME = """\
id: sim-test
root:
  id: root
  name: root
  children:
    - name: coder
      leaf_operation: coding
"""


def vsm(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "vsm_actors", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def files(tmp_path):
    (tmp_path / "w.yaml").write_text(DESIGN_EXAMPLE)
    (tmp_path / "g.yaml").write_text(GENOME)
    return tmp_path


def test_the_design_example_loads_as_written(files):
    spec = load_simulation(files / "w.yaml")
    assert spec.name == "review-gate" and spec.per_generation == 200 and spec.approve_trials is True
    assert [(d.task_class, d.weight) for d in spec.directives] == [("feature", 3.0), ("review", 1.0)]
    assert spec.directives[1].metadata == {"required_capability": "review"}
    assert spec.world.default.tokens == (800, 1600) and len(spec.world.rules) == 3
    view = LeafView(task_class="review", operation="reviewing", leaf_id="r", leaf_name="r")
    effect = effect_for(spec.world, view)
    assert effect.success == 0.95 and effect.tokens == (300, 600) and effect.latency_ms == (100, 900)
    assert effect_for(spec.world, LeafView(task_class="migration", operation="coding", leaf_id="c", leaf_name="c",
                                           specialist=True)).success == 0.9


def test_draws_are_seeded_and_weighted(files):
    spec = load_simulation(files / "w.yaml")
    assert draw_directive(spec, 5, 17) == draw_directive(spec, 5, 17)
    classes = [draw_directive(spec, 5, n)[0] for n in range(1, 4001)]
    assert 0.70 < classes.count("feature") / len(classes) < 0.80
    assert draw_directive(spec, 5, 3)[1] == "Implement feature 3" or draw_directive(spec, 5, 3)[1] == "Review change 3"
    assert unit_draw(1, "a") != unit_draw(2, "a")


@pytest.mark.parametrize("text, where", [
    ("directives: []\n", "w.yaml:1:1: directives"),
    ("directives:\n  - {class: a, title: t, weight: -1}\n", "w.yaml:2:"),
    ("directives:\n  - {title: t}\n", "directives[0].class"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  rules:\n    - when: {colour: red}\n      then: {}\n",
     "world.rules[0].when.colour: unknown key"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  default: {success: 2}\n", "world.default.success"),
    ("directives:\n  - {class: a, title: t}\nworld:\n  default: {tokens: [9, 3]}\n", "world.default.tokens"),
    ("directives:\n  - {class: a, title: t}\nper_generation: 0\n", "per_generation"),
    ("directives:\n  - {class: a, title: t}\napprove_trials: maybe\n", "approve_trials"),
])
def test_bad_workloads_name_file_line_and_field(tmp_path, text, where):
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(SimulationFileError) as caught:
        load_simulation(path)
    assert where in str(caught.value) and str(caught.value).startswith(f"{path}:")


def test_same_seed_same_export_and_different_seed_differs(files):
    exports = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        ledger = files / f"{name}.sqlite"
        vsm("simulate", files / "g.yaml", "--workload", files / "w.yaml", "--seed", seed, "--generations", 2,
            "--ledger", ledger, "-q")
        exports.append(vsm("ledger", "export", "--ledger", ledger).stdout)
    assert exports[0] == exports[1] and exports[0] != exports[2]


def test_jsonl_fields_and_champion_out(files):
    out = files / "champion.yaml"
    proc = vsm("simulate", files / "g.yaml", "--workload", files / "w.yaml", "--seed", 1, "--generations", 2,
               "--champion-out", out, "-o", "jsonl")
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [g["generation"] for g in lines] == [1, 2]
    for key in ("generation", "champion_genome_id", "directives", "succeeded", "failed", "tokens", "mean_score",
                "trials_started", "trials_promoted", "trials_pruned", "nodes"):
        assert key in lines[0], key
    assert lines[0]["directives"] == 200 and lines[0]["succeeded"] + lines[0]["failed"] == 200
    champion = load_genome(str(out))
    assert champion.id == lines[-1]["champion_genome_id"] and len(champion.nodes) == lines[-1]["nodes"]
    # review work has no reviewer at first: the audit's capability finding grows one, and it stays
    assert lines[-1]["nodes"] == 3 and any(n.leaf_operation.allows_review for n in champion.nodes.values())
    assert sum(g["trials_promoted"] for g in lines) >= 1


def test_unapproved_trials_wait(files):
    text = DESIGN_EXAMPLE + "approve_trials: false\n"
    spec = load_simulation(None, name="w.yaml", text=text)
    genome = load_genome(str(files / "g.yaml"))
    results = simulate(genome, spec, seed=2, generations=2)
    assert results[-1].nodes == 2 and sum(r.trials_promoted for r in results) == 0
    assert sum(r.trials_started for r in results) >= 1


def test_bad_workload_on_the_command_line_exits_2(files):
    (files / "bad.yaml").write_text("directives: 3\n")
    proc = vsm("simulate", files / "g.yaml", "--workload", files / "bad.yaml", check=False)
    assert proc.returncode == 2 and "bad.yaml:1:" in proc.stderr and "directives" in proc.stderr


def test_progress_goes_to_stderr_and_quiet_silences_it(files):
    proc = vsm("simulate", files / "g.yaml", "--workload", files / "w.yaml", "--generations", 2, "-o", "jsonl")
    assert len(proc.stdout.splitlines()) == 2  # stdout keeps only the per-generation objects
    assert proc.stderr.splitlines()[-1].startswith("simulate: 400/400 (")
    quiet = vsm("simulate", files / "g.yaml", "--workload", files / "w.yaml", "-q", "-o", "jsonl")
    assert quiet.stderr == ""
