"""Evolution state survives `vsm down` and SIGKILL of every organization process: the active and
queued trials, the archive, the generation records and the champion come back as they were, at
most one trial is active per metasystem, and the restored trial goes on to promotion."""

from __future__ import annotations

import json
import os
import signal

from vsm_actors.core.model.records import StoredTrialStatus
from vsm_actors.ledger import open_ledger

from test_live_cli import live_dir, organization_pids, status_json, vsm, wait_until_dead  # noqa: F401

# half the changes fail (the audit suggests a reviewer) and the rest are expensive (a generation
# proposes a parsimony guardrail); by title, so every run is the same
FAILING = """rules:
  - match: {node_name: primary-code-service, task_title: ["Change 0", "Change 1", "Change 2"]}
    outcome: failed
    error: broken
  - match: {node_name: primary-code-service}
    input_tokens: 400000
    output_tokens: 100
"""


def trials(cwd) -> dict[str, str]:
    return {t["trial_id"]: t["status"] for t in json.loads(vsm(cwd, "trials", "-o", "json").stdout)}


def durable(cwd) -> dict:
    """What the ledger holds of evolution (read after the organization is gone)."""
    with open_ledger(str(cwd / "vsm-ledger.sqlite")) as ledger:
        records = ledger.trial_records()
        return {
            "trials": {r.trial_id: r.status.storage_key for r in records},
            "active": [r.trial_id for r in records if r.status is StoredTrialStatus.Active],
            "archive": sorted((a.candidate_genome_id, a.status.storage_key)
                              for a in ledger.population_archive_records("root")),
            "generations": [g.generation for g in ledger.evolution_generation_records("root")],
            "champion": ledger.get_champion_genome("single-coder").id,
        }


def generation_of(evolve_output: str) -> int:
    return int(evolve_output.split("generation ")[1].split(";")[0])


def kill_everything(cwd) -> None:
    pids = organization_pids(cwd)
    assert len(pids) >= 4
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until_dead(pids)


def test_trials_archive_generations_and_champion_survive_kill_9_and_down(live_dir, genomes_dir):  # noqa: F811
    script = live_dir / "script.yaml"
    script.write_text(FAILING)
    up = ("up", str(genomes_dir / "single_coder.yaml"), "--provider", "scripted", "--script", str(script))
    vsm(live_dir, *up)
    for n in range(6):
        vsm(live_dir, "send", f"Change {n}", check=False)
    vsm(live_dir, "evolve")
    generation = generation_of(vsm(live_dir, "evolve").stdout)  # a second generation, behind the active trial
    before_live = trials(live_dir)
    assert list(before_live.values()).count("active") == 1
    kill_everything(live_dir)
    before = durable(live_dir)
    assert before["trials"] == before_live and len(before["active"]) == 1
    assert len(before["generations"]) == generation >= 1

    vsm(live_dir, *up)  # the state file is stale: nobody answers its port
    assert trials(live_dir) == before_live  # same trials, same statuses: nothing re-queued or lost
    (active,) = before["active"]
    status = json.loads(vsm(live_dir, "trial", "show", active).stdout)
    assert status["status"] == "Active"  # the record as stored
    # the generation counter continues from the ledger, it does not start over
    assert generation_of(vsm(live_dir, "evolve").stdout) >= generation
    vsm(live_dir, "down")
    after_down = durable(live_dir)
    assert {t: after_down["trials"][t] for t in before["trials"]} == before["trials"]
    assert set(before["archive"]) <= set(after_down["archive"])
    assert set(before["generations"]) < set(after_down["generations"])  # 1..G kept, G+1 added
    assert after_down["champion"] == before["champion"] and after_down["active"] == before["active"]

    vsm(live_dir, *up)
    vsm(live_dir, "trial", "approve", active)
    vsm(live_dir, "trial", "promote", active)
    promoted = trials(live_dir)
    assert promoted[active] == "promoted"
    assert sum(1 for s in promoted.values() if s == "active") <= 1  # the next queued one may start
    kill_everything(live_dir)
    final = durable(live_dir)
    assert final["champion"] != before["champion"] and len(final["active"]) <= 1
    assert (promoted[active], final["trials"][active]) == ("promoted", "promoted")
    vsm(live_dir, *up)
    assert "review-probation-leaf" in json.dumps(status_json(live_dir)["tree"])
    assert trials(live_dir) == final["trials"]
