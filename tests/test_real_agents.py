"""Real coding agents from the command line: `vsm run --provider command` with the agent's argv
(`--provider-option argv=JSON` or `-- ARGV...`), a workspace per leaf (`--workspace DIR`: a git
worktree per leaf in a repository, a subdirectory otherwise), the files each call changed in the
result and the trace, per-node providers from the genome's model spec, and bad provider input
refused before anything starts (exit 2, the option and the valid ones named, no ledger).

The agent is a real subprocess: a small Python script, written here, that edits files in its
working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from vsm_actors.cli import main

GENOMES = Path(__file__).resolve().parent.parent / "genomes"
SINGLE = str(GENOMES / "single_coder.yaml")
BASES = ("simple", "multiproc")

AGENT = """\
import os, sys, time
node, task = sys.argv[1], sys.argv[2]
prompt = sys.stdin.read()
assert "--- TASK INPUT ---" in prompt, prompt
others = sorted(f for f in os.listdir(".") if f.startswith("leaf-") and f != f"leaf-{node}.txt")
with open(f"leaf-{node}.txt", "w") as fh:
    fh.write(task + "\\n")
with open("CHANGES.txt", "a") as fh:
    fh.write(node + "\\n")
time.sleep(float(os.environ.get("AGENT_SLEEP", "0")))
print(f"agent {node} changed 2 files in {os.getcwd()}; saw others: {others}")
"""


def vsm(cwd, *args, check=True, timeout=180, env=None):
    proc = subprocess.run([sys.executable, "-m", "vsm_actors", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"vsm {' '.join(map(str, args))} exited {proc.returncode}: {proc.stderr}")
    return proc


def git(cwd, *args) -> str:
    return subprocess.run(["git", "-c", "user.name=vsm-test", "-c", "user.email=vsm@test.invalid", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def agent(tmp_path) -> Path:
    path = tmp_path / "agent.py"
    path.write_text(AGENT, encoding="utf-8")
    return path


def agent_argv(agent: Path) -> str:
    return json.dumps([sys.executable, str(agent), "{node_id}", "{task_id}"])


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "README.md").write_text("project\n", encoding="utf-8")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "initial")
    return path


def results(proc) -> list[dict]:
    return [r for d in json.loads(proc.stdout) for r in d["results"]]


def traces(cwd, ledger="l.sqlite") -> list[dict]:
    out = vsm(cwd, "ledger", "traces", "--ledger", ledger, "-o", "jsonl").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def result_events(cwd, ledger="l.sqlite") -> list[dict]:
    out = vsm(cwd, "ledger", "events", "--ledger", ledger, "-o", "jsonl").stdout
    return [e for e in map(json.loads, out.splitlines()) if e["kind"] == "task_result_received"]


TWO_CODERS = """\
id: two-coders
root:
  id: root
  name: root
  children:
    - {name: coder-a, leaf_operation: coding%s}
    - {name: coder-b, leaf_operation: coding}
routing_rules:
  - {id: alpha, node_id: root, target_child: coder-a, keywords: [alpha]}
  - {id: beta, node_id: root, target_child: coder-b, keywords: [beta]}
"""


# -- one real agent, in a worktree of a repository ---------------------------------------------------

@pytest.mark.parametrize("base", BASES)
def test_a_real_agent_edits_files_in_its_own_worktree_and_the_result_says_which(tmp_path, agent, repo, base):
    proc = vsm(tmp_path, "run", SINGLE, "--directive", "Add a health check", "--ledger", "l.sqlite", "-o", "json",
               "--base", base, "--provider", "command", "--provider-option", f"argv={agent_argv(agent)}",
               "--workspace", str(repo))
    (result,) = results(proc)
    worktree = repo / ".vsm-worktrees" / "primary-code-service"
    assert result["status"] == "Completed", result
    assert result["produced_by"] == "primary-code-service"
    assert result["files_touched"] == ["CHANGES.txt", "leaf-primary-code-service.txt"]
    assert str(worktree) in result["summary"]
    assert (worktree / "CHANGES.txt").read_text() == "primary-code-service\n"
    assert (worktree / "README.md").read_text() == "project\n"  # a checkout of the repository
    # a worktree on the leaf's own branch; the repository's own tree is untouched and stays clean
    assert "vsm/primary-code-service" in git(repo, "worktree", "list")
    assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == "vsm/primary-code-service"
    assert not (repo / "CHANGES.txt").exists()
    assert git(repo, "status", "--porcelain") == ""
    (trace,) = traces(tmp_path)
    assert trace["assigned_node_id"] == "primary-code-service"
    assert trace["files_touched"] == ["CHANGES.txt", "leaf-primary-code-service.txt"]


def test_a_restarted_organization_reuses_the_leafs_worktree_and_records_what_it_changed(tmp_path, agent, repo):
    args = ("run", SINGLE, "--ledger", "l.sqlite", "-o", "json", "--provider", "command", "--workspace", str(repo),
            "--", sys.executable, str(agent), "{node_id}", "{task_id}")
    first = results(vsm(tmp_path, *args[:2], "--directive", "Add a health check", *args[2:]))
    git(repo / ".vsm-worktrees" / "primary-code-service", "add", "-A")
    git(repo / ".vsm-worktrees" / "primary-code-service", "commit", "-q", "-m", "leaf work")
    second = results(vsm(tmp_path, *args[:2], "--directive", "Add a readiness probe", *args[2:]))
    worktree = repo / ".vsm-worktrees" / "primary-code-service"
    assert (worktree / "CHANGES.txt").read_text() == "primary-code-service\n" * 2
    assert first[0]["files_touched"] == second[0]["files_touched"] == ["CHANGES.txt", "leaf-primary-code-service.txt"]
    assert git(repo, "worktree", "list").count("vsm/primary-code-service") == 1


# -- two leaves at once, each in its own directory ----------------------------------------------------

def _interval(trace: dict) -> tuple[datetime, datetime]:
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return parse(trace["started_at"]), parse(trace["completed_at"])


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("kind", ["git", "plain"])
def test_two_leaves_working_at_once_never_touch_each_others_workspace(tmp_path, agent, repo, base, kind):
    genome = tmp_path / "two.yaml"
    genome.write_text(TWO_CODERS % "", encoding="utf-8")
    workspace = repo if kind == "git" else tmp_path / "plain"
    workspace.mkdir(exist_ok=True)
    env = {**os.environ, "AGENT_SLEEP": "1.0"}
    proc = vsm(tmp_path, "run", str(genome), "--directive", "Do the alpha change", "--directive", "Do the beta change",
               "--ledger", "l.sqlite", "-o", "json", "--base", base, "--provider", "command",
               "--workspace", str(workspace), "--provider-option", 'pass_env=["AGENT_SLEEP"]',
               "--", sys.executable, str(agent), "{node_id}", "{task_id}", env=env)
    by_leaf = {r["produced_by"]: r for r in results(proc)}
    assert sorted(by_leaf) == ["coder-a", "coder-b"]
    root = workspace / ".vsm-worktrees" if kind == "git" else workspace
    for leaf, other in (("coder-a", "coder-b"), ("coder-b", "coder-a")):
        own = root / leaf
        assert by_leaf[leaf]["files_touched"] == ["CHANGES.txt", f"leaf-{leaf}.txt"]
        assert (own / "CHANGES.txt").read_text() == f"{leaf}\n"
        assert not (own / f"leaf-{other}.txt").exists()
        assert "saw others: []" in by_leaf[leaf]["summary"]
    # they really worked at the same time
    (a_start, a_end), (b_start, b_end) = (_interval(t) for t in sorted(traces(tmp_path),
                                                                        key=lambda t: t["assigned_node_id"]))
    assert a_start < b_end and b_start < a_end


# -- a long-running organization: `vsm up` takes the same flags ------------------------------------------

def test_vsm_up_runs_the_agent_in_each_leafs_worktree_and_refuses_a_missing_one(tmp_path, agent, repo):
    try:
        up = vsm(tmp_path, "up", SINGLE, "--ledger", "l.sqlite", "--provider", "command", "--workspace", str(repo),
                 "--", sys.executable, str(agent), "{node_id}", "{task_id}")
        assert "organization up" in up.stdout
        (result,) = results(vsm(tmp_path, "send", "Add a health check", "-o", "json"))
        assert result["files_touched"] == ["CHANGES.txt", "leaf-primary-code-service.txt"]
        assert (repo / ".vsm-worktrees" / "primary-code-service" / "CHANGES.txt").is_file()
    finally:
        vsm(tmp_path, "down", check=False)
    refused = vsm(tmp_path, "up", SINGLE, "--ledger", "other.sqlite", "--provider", "command", "--",
                  "no-such-agent-xyz", check=False)
    assert refused.returncode == 2 and "program 'no-such-agent-xyz' not found on PATH" in refused.stderr
    assert not (tmp_path / "other.sqlite").exists()


# -- per-node providers from the genome ------------------------------------------------------------------

@pytest.mark.parametrize("base", BASES)
def test_a_genome_mixes_providers_per_node_and_the_cli_provider_is_the_default(tmp_path, agent, base):
    genome = tmp_path / "mixed.yaml"
    genome.write_text(TWO_CODERS % ", model: {provider: scripted, model: canned}", encoding="utf-8")
    script = tmp_path / "script.yaml"
    script.write_text("default: {output_text: scripted leaf answered, files_touched: [docs/notes.md]}\n")
    (tmp_path / "ws").mkdir()
    proc = vsm(tmp_path, "run", str(genome), "--directive", "Do the alpha change", "--directive", "Do the beta change",
               "--ledger", "l.sqlite", "-o", "json", "--base", base, "--provider", "command",
               "--provider-option", f"argv={agent_argv(agent)}", "--script", str(script), "--workspace", "ws")
    by_leaf = {r["produced_by"]: r for r in results(proc)}
    assert by_leaf["coder-a"]["summary"] == "scripted leaf answered"   # its genome model names scripted
    assert by_leaf["coder-a"]["files_touched"] == ["docs/notes.md"]
    assert not (tmp_path / "ws" / "coder-a").exists()                 # a scripted leaf runs no agent
    assert by_leaf["coder-b"]["summary"].startswith("agent coder-b changed")  # the --provider default
    assert by_leaf["coder-b"]["files_touched"] == ["CHANGES.txt", "leaf-coder-b.txt"]
    providers = {e["payload"]["produced_by"]: (e["payload"]["metadata"].get("provider"),
                                              e["payload"]["metadata"].get("model"))
                 for e in result_events(tmp_path) if e["payload"]["status"] == "Completed"}
    assert providers["coder-a"] == ("scripted", "canned")
    assert providers["coder-b"] == ("command", "unbound")


# -- bad provider input: exit 2 before anything starts ---------------------------------------------------

def bad(tmp_path, *args, env=None):
    out = CliRunner().invoke(main, ["run", SINGLE, "--directive", "x", "--ledger", str(tmp_path / "l.sqlite"), *args],
                             env=env, catch_exceptions=False)
    assert out.exit_code == 2, (out.exit_code, out.output)
    assert "Traceback" not in out.output
    assert not list(tmp_path.glob("l.sqlite*")), "a refused run created a ledger"
    return out.stderr


def test_an_unknown_option_is_refused_naming_it_and_the_valid_ones(tmp_path):
    err = bad(tmp_path, "--provider", "command", "--provider-option", "timeout=5", "--", "true")
    assert "unknown option 'timeout' for provider 'command'" in err
    assert "valid options: argv, env, inherit_env, kill_grace_seconds" in err and "timeout_seconds" in err
    err = bad(tmp_path, "--provider-option", "codex.modle=gpt-5")
    assert "unknown option 'modle' for provider 'codex'" in err and "model" in err


def test_a_value_of_the_wrong_type_is_refused(tmp_path):
    err = bad(tmp_path, "--provider", "command", "--provider-option", "timeout_seconds=soon", "--", "true")
    assert "option 'timeout_seconds' of provider 'command' must be a number, got 'soon'" in err
    err = bad(tmp_path, "--provider", "command", "--provider-option", "argv=aider --yes")
    assert "option 'argv' of provider 'command' must be a JSON list of strings" in err
    err = bad(tmp_path, "--provider", "scripted", "--provider-option", "sleep=maybe")
    assert "option 'sleep' of provider 'scripted' must be true or false" in err


def test_a_missing_agent_program_is_refused(tmp_path):
    err = bad(tmp_path, "--provider", "command", "--provider-option", 'argv=["no-such-agent-xyz","--go"]')
    assert "option 'argv': program 'no-such-agent-xyz' not found on PATH" in err and "valid options:" in err
    err = bad(tmp_path, "--provider", "command", "--", str(tmp_path / "missing.py"))
    assert "is not an executable file" in err
    err = bad(tmp_path, "--provider", "codex", "--provider-option", "binary=no-such-codex-xyz")
    assert "option 'binary': program 'no-such-codex-xyz' not found on PATH" in err
    err = bad(tmp_path, "--provider", "command")
    assert "option 'argv' is required" in err and "-- PROGRAM ARG" in err


def test_a_missing_openai_api_key_is_refused_for_the_default_and_for_a_node_that_names_openai(tmp_path):
    env = {"OPENAI_API_KEY": ""}
    err = bad(tmp_path, "--provider", "openai", env=env)
    assert "missing configuration: OPENAI_API_KEY" in err and "valid options: api_key, base_url" in err
    genome = tmp_path / "mixed.yaml"
    genome.write_text(TWO_CODERS % ", model: {provider: openai, model: gpt-5}", encoding="utf-8")
    out = CliRunner().invoke(main, ["run", str(genome), "--directive", "x", "--ledger", str(tmp_path / "l.sqlite")],
                             env=env, catch_exceptions=False)
    assert out.exit_code == 2, out.output
    assert "provider 'openai' (node coder-a, from its genome model spec)" in out.stderr
    assert "OPENAI_API_KEY" in out.stderr
    assert not list(tmp_path.glob("l.sqlite*"))


def test_other_bad_provider_input_is_refused(tmp_path):
    assert "unknown provider; valid names: codex, command, echo, openai, scripted" in bad(tmp_path, "--provider", "gpt")
    assert "use --provider command" in bad(tmp_path, "--", "aider")
    assert "no such directory" in bad(tmp_path, "--provider", "command", "--workspace", str(tmp_path / "nope"),
                                      "--", "true")
    assert "given twice" in bad(tmp_path, "--provider", "command", "--provider-option", 'argv=["true"]', "--", "true")
    (tmp_path / "empty").mkdir()
    git(tmp_path / "empty", "init", "-q")
    assert "has no commit yet" in bad(tmp_path, "--provider", "command", "--workspace", str(tmp_path / "empty"),
                                      "--", "true")
