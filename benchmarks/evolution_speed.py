"""Evolution speed: what evolution costs the directives flowing through an organization, and how
replay, selection and a generation grow with the traces they read.

    python benchmarks/evolution_speed.py [--quick] [--reps 3] [--profile]

1. Simulated directives/s through genomes/three_level.yaml (`simulate()`, the scripted worlds
   below: "learning", where the data division fails its migrations so that its audit suggests a
   review leaf and trials run, and "steady", the same work with nothing to fix) with evolution
   on, beside the same run with evolution off (`simulate(..., evolution=False)`) and raw Thespian
   as shipped through the same 4 hops (benchmarks/throughput.py's baseline, in a process of its
   own), all measured in this run. Aim: evolution on >= 0.8 x evolution off.
   Generation 1 (boot, warm-up) is left out; "directives" times only the batches of directives,
   "with steps" also the audit + evolve round of each generation.
2. The decider's own functions on synthetic traces (TaskTrace.started, as the tests build them) of
   one team of three_level (data-team-a: 4 leaves, so every operator has something to look at):
   replay + selection (replay_candidate, score_queued_candidate, select_candidate, archive_records)
   over all N traces; activation.start_next_trial on a state holding N observed traces (it replays
   the last REPLAY_TRACES of them); and one generation (activation.run_generation, every operator,
   the policy's recent_trace_limit raised to N so that all N are read). Per-trace time shows the
   growth: flat per trace is linear.

`--profile` also runs the evolution-on and -off simulations under cProfile and prints the
functions whose own time grew most with evolution on. No figure is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import random
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from attrs import evolve

from vsm_actors import codec
from vsm_actors.core.evolution.activation import REPLAY_TRACES, run_generation, start_next_trial
from vsm_actors.core.evolution.controller import Ctx, EvolutionState
from vsm_actors.core.evolution.replay import replay_candidate, replay_metadata
from vsm_actors.core.evolution.selection import (
    archive_records, score_queued_candidate, select_candidate, winner_metadata,
)
from vsm_actors.core.model.ids import SequentialIds
from vsm_actors.core.model.records import EvolutionPolicy
from vsm_actors.core.model.trace import TaskTrace
from vsm_actors.files.genome_files import load_genome
from vsm_actors.files.simulation import load_simulation
from vsm_actors.simulate import simulate

HERE = Path(__file__).resolve().parent
GENOME = HERE.parent / "genomes" / "three_level.yaml"
HOPS = 4  # client -> root -> division -> team -> leaf: 4 actors on the path, as in throughput.py
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

# DESIGN 3.5 simulation file: work spread over the four divisions (target_child), the data
# division failing its migrations unless a reviewing leaf takes them
WORKLOAD = """
name: three-level-speed
per_generation: 400
directives:
  - {class: feature, weight: 2, title: "Implement feature {n}", metadata: {requires_code_write: "true", target_child: platform}}
  - {class: feature, weight: 2, title: "Implement feature {n}", metadata: {requires_code_write: "true", target_child: product}}
  - {class: migration, weight: 2, title: "Migrate schema {n}", metadata: {requires_code_write: "false", target_child: data}}
  - {class: feature, weight: 1, title: "Implement feature {n}", metadata: {requires_code_write: "true", target_child: data}}
  - {class: review, weight: 1, title: "Review change {n}", metadata: {required_capability: review, requires_code_write: "false", target_child: infra}}
world:
  default: {success: 0.85, tokens: [800, 1600], latency_ms: [100, 900]}
  rules:
    - when: {class: migration}
      then: {success: 0.25}
    - when: {class: migration, operation: reviewing}
      then: {success: 0.9}
"""


def _throughput_module():
    spec = importlib.util.spec_from_file_location("_vsm_bench_throughput", HERE / "throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- 1. simulated directives/s -------------------------------------------------------------------

def simulated_run(genome, workload, *, evolution: bool, generations: int, seed: int = 1) -> dict:
    """One simulate() run, timed per generation: its batch of directives (from the batch's start,
    or the previous generation's end, to its last directive done) and its audit + evolve steps
    (from there to the generation's result)."""
    starts, ends, steps, last_done = [], [], [], [0.0]
    hooks = {"on_batch": lambda size: starts.append(time.perf_counter()),
             "on_done": lambda done: last_done.__setitem__(0, time.perf_counter()),
             "on_generation": lambda r: (ends.append(last_done[0]), steps.append(time.perf_counter()))}
    results = simulate(genome, workload, seed=seed, generations=generations, evolution=evolution, **hooks)
    n = workload.per_generation * (generations - 1)
    directive_time = sum(ends[g] - starts[g] for g in range(1, generations))
    return {"directive_rate": n / directive_time, "step_rate": n / (steps[-1] - steps[0]),
            "step_ms": statistics.median((steps[g] - ends[g]) * 1000 for g in range(1, generations)),
            "promoted": sum(r.trials_promoted for r in results), "started": sum(r.trials_started for r in results),
            "succeeded": sum(r.succeeded for r in results[1:]), "directives": n, "tree": results[-1].tree,
            "nodes": results[-1].nodes}


def worlds(args) -> dict:
    """learning: the data division fails migrations until evolution adds a reviewing leaf (trials
    run, the structure changes, and so does the work: failed directives cost more than successes);
    steady: the same mix at 0.85 everywhere (evolution observes, audits and plans, nothing to
    change), so on/off is evolution's bookkeeping alone on identical work."""
    learning = load_simulation(WORKLOAD)
    if args.quick:
        learning = evolve(learning, per_generation=150)
    return {"learning": learning, "steady": evolve(learning, world=evolve(learning.world, rules=()))}


def bench_simulation(args) -> None:
    genome = load_genome(GENOME)
    generations = 3 if args.quick else 6
    raw_n = 500 if args.quick else 2000
    raw_chain_stock = _throughput_module().raw_chain_stock
    for name, workload in worlds(args).items():
        raws, offs, ons = [], [], []
        for _ in range(args.reps):  # alternate the three in one run
            raws.append(raw_chain_stock("simple", HOPS, raw_n)[0])
            offs.append(simulated_run(genome, workload, evolution=False, generations=generations))
            ons.append(simulated_run(genome, workload, evolution=True, generations=generations))
        raw = statistics.median(raws)

        def med(runs, key):
            return statistics.median(r[key] for r in runs)

        print(f"[simulate ] three_level, {name} world: {generations - 1} timed generations x "
              f"{workload.per_generation} directives, {args.reps} reps (medians)")
        print(f"{'':12}raw thespian (stock, {HOPS} hops)  {raw:8.0f} tasks/s"
              f"  (spread {min(raws):.0f}-{max(raws):.0f})")
        for label, runs in (("evolution off", offs), ("evolution on ", ons)):
            print(f"{'':12}{label}  directives {med(runs, 'directive_rate'):6.0f}/s"
                  f"  with steps {med(runs, 'step_rate'):6.0f}/s  ratio to raw {med(runs, 'directive_rate') / raw:.3f}"
                  f"  audit+evolve step {med(runs, 'step_ms'):6.1f} ms/generation"
                  f"  trials started/promoted {runs[0]['started']}/{runs[0]['promoted']}"
                  f"  succeeded {runs[0]['succeeded']}/{runs[0]['directives']}")
        print(f"{'':12}evolution on / off: directives {med(ons, 'directive_rate') / med(offs, 'directive_rate'):.3f}"
              f"  with steps {med(ons, 'step_rate') / med(offs, 'step_rate'):.3f}  (aim >= 0.8)")
        added = sorted(set(re.findall(r"[\w-]+", ons[0]["tree"])) - set(re.findall(r"[\w-]+", offs[0]["tree"])))
        print(f"{'':12}champion after evolution: {ons[0]['nodes']} nodes (off: {offs[0]['nodes']}), new: "
              f"{', '.join(added) or 'nothing'}")
        sys.stdout.flush()


def profile_simulation(args) -> None:
    genome = load_genome(GENOME)
    workload = worlds(args)[args.profile_world]
    generations = 3 if args.quick else 6
    stats = {}
    for evolution in (False, True):
        profiler = cProfile.Profile()
        profiler.enable()
        simulate(genome, workload, seed=1, generations=generations, evolution=evolution)
        profiler.disable()
        stats[evolution] = pstats.Stats(profiler).stats
    n = workload.per_generation * generations
    on, off = stats[True], stats[False]
    total_on = sum(v[2] for v in on.values())
    total_off = sum(v[2] for v in off.values())
    print(f"[profile  ] {args.profile_world} world, {n} directives: total own time on {total_on:.2f} s, "
          f"off {total_off:.2f} s ({(total_on - total_off) / n * 1e6:.0f} us/directive more with evolution)")
    print(f"{'':12}own time grown most with evolution on (us/directive on - off; calls on):")
    delta = sorted(((v[2] - off.get(k, (0, 0, 0.0))[2], k, v) for k, v in on.items()), reverse=True)
    for d, (path, line, func), v in delta[:args.top]:
        print(f"{'':14}{d / n * 1e6:7.1f}  {_short(path)}:{line}({func})  calls {v[1]}")
    print(f"{'':12}cumulative time of the evolution entry points with evolution on (us/directive):")
    wanted = ("observe_trace", "observe", "on_schedule", "decide_trial", "evaluate_trial", "record_baseline",
              "start_next_trial", "run_generation", "run_audit", "replay_candidate", "apply_effects",
              "try_trial_route", "choose_trial_route", "evolve")
    rows = sorted(((v[3], k, v) for k, v in on.items()
                   if k[2] in wanted and ("evolution" in k[0] or "attr" in k[0])), reverse=True)
    for ct, (path, line, func), v in rows[:args.top]:
        print(f"{'':14}{ct / n * 1e6:7.1f}  {_short(path)}:{line}({func})  calls {v[1]}")


def _short(path: str) -> str:
    for marker in ("vsm_actors/", "site-packages/"):
        if marker in path:
            return path[path.index(marker) + (0 if marker == "vsm_actors/" else len(marker)):]
    return path


# -- 2. replay, selection and a generation on synthetic traces ----------------------------------

CONTROLLER = "data-team-a"
# a block of 50 traces repeated (shuffled once): (leaf, task class, traces, of which succeed, tokens).
# Every size holds the same proportions, so the same operators propose the same offspring:
# coder-3 fails its migrations (a specialist sibling) and the tokens are high (a parsimony guardrail).
BLOCK = (("data-team-a-coder", "feature", 20, 17, 120_000), ("data-team-a-coder", "migration", 5, 4, 150_000),
         ("data-team-a-coder-3", "migration", 10, 3, 150_000), ("data-team-a-coder-3", "feature", 5, 4, 130_000),
         ("data-team-a-reviewer", "review", 6, 5, 50_000), ("data-team-a-tester", "test", 4, 4, 70_000))


def _block(seed: int) -> list[tuple[str, str, bool, int]]:
    block = [(leaf, cls, k < wins, tokens) for leaf, cls, count, wins, tokens in BLOCK for k in range(count)]
    random.Random(seed).shuffle(block)
    return block


def synthetic_traces(n: int, genome_id: str, seed: int = 7) -> list[TaskTrace]:
    ids, block, traces = SequentialIds("trace"), _block(seed), []
    for i in range(n):
        leaf, cls, ok, tokens = block[i % len(block)]
        meta = {"task_class": cls, "task_title": f"{cls} task {i}", "directive_id": f"d-{i}",
                "requires_code_write": "true" if cls in ("feature", "migration") else "false"}
        if cls == "review":
            meta["required_capability"] = "review"
        elif cls == "test":
            meta["required_capability"] = "run_tests"
        traces.append(TaskTrace.started(
            f"task-{i}", genome_id, leaf, new_id=ids, started_at=T0,
            responsible_ancestor_ids=(CONTROLLER, "data", "root"), completed_at=T0,
            input_tokens=tokens, output_tokens=tokens // 4, latency_ms=100 + (i * 37) % 800,
            files_touched=(f"src/{cls}_{i % 13}.py",) if cls in ("feature", "migration") else (),
            tests_passed=ok, merged=ok, outcome_score=2.0 if ok else -8.0, metadata=meta))
    return traces


def _ctx(recent_trace_limit: int) -> Ctx:
    return Ctx(now=lambda: T0, new_id=SequentialIds("bench"), to_json=codec.to_wire,
               policy=evolve(EvolutionPolicy(), recent_trace_limit=recent_trace_limit))


def _best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def replay_and_select(state: EvolutionState, traces, ctx: Ctx):
    evaluated, replays = [], {}
    for record in state.queued:
        summary = replay_candidate(state.champion, state.candidates[record.trial_id], state.controller_id, record,
                                   traces, ctx.weights)
        evaluated.append((record, score_queued_candidate(record, state.completed, summary)))
        replays[record.trial_id] = replay_metadata(summary)
    selection = select_candidate(evaluated)
    archive = archive_records(selection, evaluated, replays, ctx.now())
    return selection, archive, winner_metadata(selection, replays.get(selection.winner[0].trial_id, {}))


def bench_decider(args) -> None:
    champion = load_genome(GENOME)
    sizes = (100, 1_000) if args.quick else (100, 1_000, 10_000)
    print(f"[decider  ] {CONTROLLER} of three_level, synthetic traces; best of {args.repeat}; "
          f"start_next_trial replays the last {REPLAY_TRACES}")
    print(f"{'':12}{'traces':>7}  {'replay+selection':>22}  {'start_next_trial':>22}  {'run_generation':>22}"
          f"  candidates")
    base = {}
    for n in sizes:
        traces = synthetic_traces(n, champion.id)
        state = EvolutionState(controller_id=CONTROLLER, champion=champion, observed=tuple(traces))
        gen_time, (planned, _) = _best_of(lambda: run_generation(state, _ctx(n)), args.repeat)
        if not planned.queued:
            raise SystemExit(f"no offspring from {n} traces: the synthetic mix no longer drives the operators")
        sel_time, (selection, _, _) = _best_of(lambda: replay_and_select(planned, traces, _ctx(n)), args.repeat)
        start_time, (started, _) = _best_of(lambda: start_next_trial(planned, _ctx(n)), args.repeat)
        assert started.active is not None and selection is not None
        row = {"sel": sel_time, "start": start_time, "gen": gen_time}
        base = base or {k: v / n for k, v in row.items()}

        def cell(key):
            per = row[key] / n
            return f"{row[key] * 1000:8.2f} ms {per * 1e6:6.1f} us/tr"

        print(f"{'':12}{n:>7,}  {cell('sel')}  {cell('start')}  {cell('gen')}  {len(planned.queued)} queued "
              f"({', '.join(sorted({r.metadata.get('evolution_operator', '?') for r in planned.queued}))})")
    print(f"{'':12}per-trace time at the largest size / at 100: replay+selection "
          f"{row['sel'] / n / base['sel']:.2f}, start_next_trial {row['start'] / n / base['start']:.2f}, "
          f"run_generation {row['gen'] / n / base['gen']:.2f}  (<= ~1: no worse than linear)")
    sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, one rep")
    ap.add_argument("--reps", type=int, default=None, help="simulation reps (default 3, 1 with --quick)")
    ap.add_argument("--repeat", type=int, default=None, help="decider timings: best of this many (default 3)")
    ap.add_argument("--profile", action="store_true", help="also profile the simulation, evolution on vs off")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--profile-world", choices=("learning", "steady"), default="steady")
    ap.add_argument("--only", choices=("simulate", "decider", "profile"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.reps = args.reps or (1 if args.quick else 3)
    args.repeat = args.repeat or (2 if args.quick else 3)
    if args.only in (None, "simulate"):
        bench_simulation(args)
    if args.only in (None, "decider"):
        bench_decider(args)
    if args.profile or args.only == "profile":
        profile_simulation(args)


if __name__ == "__main__":
    main()
