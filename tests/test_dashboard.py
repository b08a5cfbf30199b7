"""`vsm dashboard`'s endpoints over ledgers built by real runs (`vsm run`, `vsm simulate`, an
organization in process), on SQLite and PostgreSQL; that it never writes the ledger; and the
command's refusals (a non-loopback address, a port in use, a file that is no ledger), each a
real subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from vsm_actors.actors.protocol import RuntimeConfig
from vsm_actors.dashboard.app import create_app
from vsm_actors.dashboard.source import LedgerSource
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import open_ledger
from vsm_actors.system import Organization

GENOMES = Path(__file__).resolve().parent.parent / "genomes"
ERROR = "tests failed: 3 of 12"
SCRIPT = {"rules": [{"match": {"task_title": "broken"}, "outcome": "failed", "error": ERROR},
                    {"input_tokens": 1000, "output_tokens": 500, "latency_ms": 250}]}
DESIGN_WORKLOAD = """\
name: review-gate
per_generation: 200
directives:
  - class: feature
    weight: 3
    title: "Implement feature {n}"
    metadata: {requires_code_write: "true"}
  - class: review
    title: "Review change {n}"
    metadata: {required_capability: review}
world:
  default: {success: 0.8, tokens: [800, 1600], latency_ms: [100, 900]}
  rules:
    - when: {class: review, operation: coding}
      then: {success: 0.2}
    - when: {class: review, operation: reviewing}
      then: {success: 0.95, tokens: [300, 600]}
"""
SIM_GENOME = "id: sim-test\nroot:\n  id: root\n  name: root\n  children:\n    - name: coder\n      leaf_operation: coding\n"


def vsm(*args: object, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsm_actors", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@contextlib.contextmanager
def client(url: str) -> Iterator[TestClient]:
    """The app over a read-only ledger, asked as a browser on this machine asks."""
    ledger = open_ledger(url, read_only=True)
    try:
        with TestClient(create_app(LedgerSource(ledger, url)), base_url="http://127.0.0.1") as c:
            yield c
    finally:
        ledger.close()


@pytest.fixture
def genome_file(tmp_path) -> Path:
    """two_level with a price for its coder's model."""
    text = (GENOMES / "two_level.yaml").read_text()
    assert "\nid: two-level\n" in text and "\nmetadata:" not in text
    path = tmp_path / "priced.yaml"
    path.write_text(text.replace("\nid: two-level\n",
                                 '\nid: two-level\nmetadata:\n  price_per_1k_tokens.local-worker: "0.01"\n'))
    return path


def run_directives(genome_file: Path, url: str, tmp_path: Path, *titles: str) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    args = [a for t in titles for a in ("--directive", t)]
    proc = vsm("run", genome_file, "--ledger", url, "--provider", "scripted", "--script", script, *args)
    assert proc.returncode in (0, 1), proc.stderr


def test_every_view_of_a_real_run(ledger_url, genome_file, tmp_path):
    run_directives(genome_file, ledger_url, tmp_path, "Add a health check", "Fix the broken build")
    genome = load_genome(genome_file)
    with client(ledger_url) as c:
        tree = c.get("/api/tree").json()
        assert len(tree["nodes"]) == len(genome.nodes) == 5
        assert {n["name"] for n in tree["nodes"]} == {n.name for n in genome.nodes.values()}
        coder = next(n for n in tree["nodes"] if n["name"] == "backend-coder")
        root = next(n for n in tree["nodes"] if n["depth"] == 0)
        assert coder["kind"] == "leaf" and coder["state"] == "idle" and coder["lifecycle"] == "Active"
        assert (coder["tasks"], coder["failures"], coder["tokens"]) == (2, 1, 1500)  # the failure spent none
        assert coder["cost"] == pytest.approx(0.015)
        assert root["kind"] == "metasystem" and root["tasks"] == 2 and root["scope"] == "subtree"
        assert tree["directives"] == {"total": 2, "in_flight": 0, "failed": 1, "completed": 1}
        assert tree["seq"] > 0 and tree["events"] > 10

        page = c.get("/api/directives").json()
        assert [r["title"] for r in page["rows"]] == ["Fix the broken build", "Add a health check"]
        broken, ok = page["rows"]
        assert broken["status"] == "Failed" and ERROR in broken["error"] and ok["status"] == "Completed"
        assert len(broken["short_id"]) < len(broken["id"])
        # search: by text, by status, by the short id the table prints, and paging
        found = c.get("/api/directives", params={"q": "BROKEN"}).json()
        assert found["matched"] == 1 and found["rows"][0]["id"] == broken["id"]
        assert [r["id"] for r in c.get("/api/directives", params={"status": "failed"}).json()["rows"]] == [broken["id"]]
        assert [r["id"] for r in c.get("/api/directives", params={"status": "completed"}).json()["rows"]] == [ok["id"]]
        assert c.get("/api/directives", params={"q": broken["short_id"]}).json()["rows"][0]["id"] == broken["id"]
        assert c.get("/api/directives", params={"q": "no such words"}).json() == {**found, "matched": 0, "rows": []}
        second = c.get("/api/directives", params={"limit": 1, "offset": 1}).json()
        assert second["matched"] == 2 and [r["id"] for r in second["rows"]] == [ok["id"]]
        assert c.get("/api/directives", params={"limit": "many"}).status_code == 400

        timeline = c.get(f"/api/directives/{broken['short_id']}/timeline").json()
        assert timeline["directive_id"] == broken["id"] and timeline["title"] == "Fix the broken build"
        nodes = [i["node_id"] for i in timeline["intervals"]]
        assert nodes[0] == genome.root_node_id and "backend-coder" in nodes
        leaf = next(i for i in timeline["intervals"] if i["node_id"] == "backend-coder")
        assert leaf["status"] == "Failed" and ERROR in leaf["error"] and leaf["duration_ms"] >= 0
        assert any(ERROR in f["error"] for f in timeline["failures"])
        assert c.get("/api/directives/zz-nothing/timeline").status_code == 404

        assert c.get("/api/trials").json() == {"trials": []}
        assert c.get("/api/trials/nothing").status_code == 404
        fitness = c.get("/api/fitness").json()
        assert fitness["x"] and list(fitness["lines"]) == ["fitness"]
        assert c.get("/api/plot/latency").json()["lines"].keys() == {"p50", "p95"}
        assert c.get("/api/plot/colour").status_code == 404


def test_the_page_and_its_assets_are_local(tmp_path, genome_file):
    url = str(tmp_path / "ledger.sqlite")
    run_directives(genome_file, url, tmp_path, "Add a health check")
    with client(url) as c:
        page = c.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert links and all(link.startswith(("/static/", "#")) for link in links), links
        for asset in ("/static/app.js", "/static/style.css", "/static/favicon.svg"):
            response = c.get(asset)
            assert response.status_code == 200, asset
            assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", response.text), asset
        assert c.get("/api/tree").headers["cache-control"] == "no-store"
        # a page on another site that rebinds its name to 127.0.0.1 gets nothing
        assert c.get("/api/tree", headers={"host": "evil.example"}).status_code == 400


def test_an_organization_running_meanwhile_is_followed(tmp_path):
    """The dashboard keeps one reader open while an organization appends: each answer is the
    fold of only what is new, and equals what a fresh reader of the whole ledger computes."""
    url = str(tmp_path / "ledger.sqlite")
    genome = load_genome(GENOMES / "two_level.yaml")
    with Organization.start(genome, RuntimeConfig(ledger_url=url), base="simple") as org:
        org.run("Add a health check")
        with client(url) as live:
            first = live.get("/api/tree").json()
            assert first["directives"]["total"] == 1
            for title in ("Add a readiness probe", "Review the retry logic", "Write the runbook"):
                org.run(title)
                tree = live.get("/api/tree").json()
                assert tree["seq"] > first["seq"]
            page = live.get("/api/directives").json()
            assert [r["title"] for r in page["rows"]][:2] == ["Write the runbook", "Review the retry logic"]
            with client(url) as fresh:
                again = fresh.get("/api/tree").json()
                for key in ("seq", "events", "directives", "totals", "nodes"):
                    assert tree[key] == again[key], key
                assert fresh.get("/api/directives").json() == page
    assert tree["directives"]["total"] == 4 and sum(n["tasks"] for n in tree["nodes"] if n["kind"] == "leaf") == 4


def test_trials_diff_objectives_and_fitness_after_a_simulation(tmp_path):
    (tmp_path / "w.yaml").write_text(DESIGN_WORKLOAD)
    (tmp_path / "g.yaml").write_text(SIM_GENOME)
    url = str(tmp_path / "sim.sqlite")
    sim = vsm("simulate", tmp_path / "g.yaml", "--workload", tmp_path / "w.yaml", "--seed", 1, "--generations", 2,
              "--ledger", url, "-q", "-o", "jsonl")
    assert sim.returncode == 0, sim.stderr
    generations = [json.loads(line) for line in sim.stdout.splitlines()]
    with client(url) as c:
        tree = c.get("/api/tree").json()
        assert len(tree["nodes"]) == generations[-1]["nodes"] == 3
        assert tree["genome"]["id"] == generations[-1]["champion_genome_id"]
        assert any("+ node" in change for change in tree["genome"]["changed_since_boot"])
        assert tree["directives"]["total"] == 400
        trials = c.get("/api/trials").json()["trials"]
        promoted = [t for t in trials if t["status"] == "promoted"]
        assert len(promoted) == sum(g["trials_promoted"] for g in generations) >= 1
        detail = c.get(f"/api/trials/{promoted[0]['short_id']}").json()
        assert detail["candidate_genome_id"] == generations[-1]["champion_genome_id"]
        added = [d for d in detail["diff"] if d["change"] == "added" and d["subject"] == "node"]
        assert added and added[0]["text"].startswith("+ node ")
        assert set(detail["objectives"]) >= {"expected_value", "safety", "complexity_cost", "exposure_cost"}
        assert detail["selection"]["score"] is not None and detail["patch"]
        fitness = c.get("/api/fitness").json()
        assert any(m["label"].startswith("promoted") for m in fitness["marks"])
        failed = c.get("/api/directives", params={"status": "failed", "q": "review", "limit": 5}).json()
        assert failed["rows"] and all(r["status"] == "Failed" and r["task_class"] == "review" for r in failed["rows"])


def test_the_dashboard_never_writes_the_ledger(tmp_path, genome_file):
    url = str(tmp_path / "ledger.sqlite")
    run_directives(genome_file, url, tmp_path, "Add a health check", "Fix the broken build")
    path = Path(url)
    with sqlite3.connect(url) as db:  # fold the WAL in, so the main file is all there is to compare
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    with client(url) as c:
        directive = c.get("/api/directives").json()["rows"][0]["id"]
        for endpoint in ("/", "/api/tree", "/api/directives?q=health", f"/api/directives/{directive}/timeline",
                         "/api/trials", "/api/fitness", "/api/plot/throughput"):
            assert c.get(endpoint).status_code == 200, endpoint
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_a_file_that_is_no_ledger_is_a_clear_error(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE songs (title TEXT)")
    proc = vsm("dashboard", "--ledger", other, "--port", 0, timeout=60)
    assert proc.returncode == 2 and "not a vsm ledger" in proc.stderr and not proc.stdout
    missing = vsm("dashboard", "--ledger", tmp_path / "absent.sqlite", "--port", 0, timeout=60)
    assert missing.returncode == 2 and "no such ledger file" in missing.stderr
    assert not (tmp_path / "absent.sqlite").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com"])
def test_a_non_loopback_address_is_refused(tmp_path, host):
    proc = vsm("dashboard", "--ledger", tmp_path / "x.sqlite", "--host", host, timeout=60)
    assert proc.returncode == 2 and "loopback" in proc.stderr and not proc.stdout


def test_a_port_in_use_is_a_clear_error(tmp_path, genome_file):
    url = str(tmp_path / "ledger.sqlite")
    run_directives(genome_file, url, tmp_path, "Add a health check")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = vsm("dashboard", "--ledger", url, "--port", port, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"127.0.0.1:{port} is already in use" in proc.stderr and not proc.stdout


def test_serves_real_http_on_loopback_until_interrupted(tmp_path, genome_file):
    url = str(tmp_path / "ledger.sqlite")
    run_directives(genome_file, url, tmp_path, "Add a health check")
    proc = subprocess.Popen([sys.executable, "-m", "vsm_actors", "dashboard", "--ledger", url, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", line), (line, proc.stderr.read() if proc.poll() else "")
        with urllib.request.urlopen(line + "api/tree", timeout=30) as response:
            assert len(json.load(response)["nodes"]) == 5
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert os.path.exists(url)
