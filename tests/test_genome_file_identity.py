"""The genome file means what it says (issue 10 point 4): when the ledger's champion grew from a
different version of the file, `vsm run` and `vsm up` stop (exit 2) unless told `--resume` (keep
the evolved champion) or `--fresh` (start the file as a new lineage, under a new id); no stored
genome is ever overwritten."""

from __future__ import annotations

import json
import subprocess
import sys

from vsm_actors import codec
from vsm_actors.core.evolution.restore import choose_boot
from vsm_actors.files.genome_files import parse_genome_text
from vsm_actors.ledger import open_ledger

from test_live_cli import live_dir, vsm as live_vsm  # noqa: F401

V1 = """id: ident
root:
  id: root
  name: root
  children:
    - {name: coder, leaf_operation: coding}
"""
V2 = V1 + "    - {name: reviewer, leaf_operation: reviewer}\n"


def vsm(cwd, *args):
    return subprocess.run([sys.executable, "-m", "vsm_actors", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_run_stops_on_a_changed_file_and_resume_or_fresh_say_what_to_do(tmp_path):
    genome = tmp_path / "g.yaml"
    genome.write_text(V1)
    assert vsm(tmp_path, "run", genome, "--directive", "Add a check").returncode == 0
    again = vsm(tmp_path, "run", genome, "--directive", "Same file again")
    assert again.returncode == 0  # the same file: its champion carries on
    genome.write_text(V2)
    changed = vsm(tmp_path, "run", genome, "--directive", "Changed file")
    assert changed.returncode == 2 and "--resume" in changed.stderr and "--fresh" in changed.stderr
    assert "Traceback" not in changed.stderr
    resumed = vsm(tmp_path, "run", genome, "--resume", "--directive", "Keep the champion", "-o", "json")
    assert resumed.returncode == 0 and "restored champion genome ident" in resumed.stderr
    fresh = vsm(tmp_path, "run", genome, "--fresh", "--directive", "Review the new file", "-o", "json")
    assert fresh.returncode == 0
    with open_ledger(str(tmp_path / "vsm-ledger.sqlite")) as ledger:
        champion = ledger.get_champion_genome("ident")
        original = ledger.get_genome_snapshot("ident").genome
    assert champion.id.startswith("ident-") and "reviewer" in champion.nodes  # a new lineage, a new id
    assert "reviewer" not in original.nodes  # the first version's snapshot is untouched
    after = vsm(tmp_path, "run", genome, "--directive", "Now the file is the new champion's base")
    assert after.returncode == 0
    both = vsm(tmp_path, "run", genome, "--fresh", "--resume", "--directive", "x")
    assert both.returncode == 2 and "contradict" in both.stderr


def test_up_stops_on_a_changed_file_too(live_dir):  # noqa: F811
    genome = live_dir / "g.yaml"
    genome.write_text(V1)
    live_vsm(live_dir, "up", str(genome))
    live_vsm(live_dir, "down")
    genome.write_text(V2)
    proc = live_vsm(live_dir, "up", str(genome), check=False)
    assert proc.returncode == 2 and "--resume" in proc.stderr
    up = live_vsm(live_dir, "up", str(genome), "--resume")
    assert "restored" in up.stdout


def test_choose_boot_keeps_history():
    v1, v2 = parse_genome_text(V1, name="v1.yaml"), parse_genome_text(V2, name="v2.yaml")
    to_json = codec.to_wire
    assert choose_boot(v1, None, None, None, restore=True, if_changed="stop", to_json=to_json).genome == v1
    same = choose_boot(v1, v1, v1, v1, restore=True, if_changed="stop", to_json=to_json)
    assert same.restored and same.error is None
    stop = choose_boot(v2, v1, v1, v1, restore=True, if_changed="stop", to_json=to_json)
    assert stop.error and not stop.restored
    fresh = choose_boot(v2, v1, v1, v1, restore=True, if_changed="fresh", to_json=to_json)
    assert fresh.genome.id.startswith("ident-") and fresh.genome.id != v1.id
    not_restoring = choose_boot(v2, v1, v1, v1, restore=False, if_changed="stop", to_json=to_json)
    assert not_restoring.genome.id != v1.id  # a different file never overwrites the stored one
    assert json.dumps(to_json(fresh.genome)["root_node_id"]) == '"root"'
