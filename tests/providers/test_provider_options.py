"""Typed provider options and the check before boot (providers/options.py), the command line's
provider settings (commands/provider_config.py), the per-node provider choice
(actors/leaf_providers.py), the `{prompt}` placeholder, codex's per-node model, and what a
workspace says changed (actors/workspaces.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vsm_actors.actors import workspaces
from vsm_actors.actors.leaf_providers import leaf_provider, node_provider_spec
from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.actors.workspaces import WorkspaceProvider, changed_files, check_workspace, prepare, snapshot
from vsm_actors.commands.common import BadInput
from vsm_actors.commands.provider_config import provider_settings
from vsm_actors.core.model.node import ModelSpec, ViableNode
from vsm_actors.providers import CodexProvider, CommandProvider, EchoProvider, ScriptedProvider, make_provider
from vsm_actors.providers.options import (
    OPTION_TYPES, OptionError, absolute_program, check_provider, parse_option, parse_options,
)

from .conftest import make_request, write_script


def git(cwd, *args) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@test.invalid", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


# -- typed values ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("provider", "key", "text", "value"), [
    ("command", "timeout_seconds", "60", 60),
    ("command", "timeout_seconds", "2.5", 2.5),
    ("command", "stdout_limit_bytes", "1024", 1024),
    ("command", "inherit_env", "false", False),
    ("command", "inherit_env", "Yes", True),
    ("command", "argv", '["aider", "--message", "{prompt}"]', ["aider", "--message", "{prompt}"]),
    ("command", "env", '{"MODE": "ci"}', {"MODE": "ci"}),
    ("codex", "extra_args", "[]", []),
    ("scripted", "script", '{"rules": [{"output_text": "hi"}]}', {"rules": [{"output_text": "hi"}]}),
    ("scripted", "seed", "-3", -3),
    ("echo", "prefix", "123", "123"),  # a string option stays the text given
])
def test_option_values_take_the_type_of_their_option(provider, key, text, value):
    parsed = parse_option(provider, key, text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(("provider", "key", "text", "words"), [
    ("command", "timeout_seconds", "soon", "must be a number"),
    ("command", "timeout_seconds", "nan", "must be a number"),
    ("openai", "max_retries", "2.5", "must be an integer"),
    ("command", "inherit_env", "maybe", "must be true or false"),
    ("command", "argv", "aider --yes", "must be a JSON list of strings"),
    ("command", "argv", "[1, 2]", "must be a JSON list of strings"),
    ("command", "env", '{"A": 1}', "must be a JSON object of strings"),
    ("scripted", "script", "{not json", "must be JSON"),
])
def test_a_value_of_the_wrong_type_names_the_option(provider, key, text, words):
    with pytest.raises(OptionError, match=f"option '{key}' of provider '{provider}' {words}"):
        parse_option(provider, key, text)


def test_an_unknown_option_lists_the_valid_ones():
    with pytest.raises(OptionError) as info:
        parse_option("openai", "apikey", "x")
    assert info.value.detail == ("unknown option 'apikey' for provider 'openai'; valid options: "
                                 "api_key, base_url, default_model, max_retries, timeout_seconds")
    with pytest.raises(OptionError, match="given twice"):
        parse_options("echo", [("prefix", "a"), ("prefix", "b")])


def test_every_declared_option_is_one_the_provider_takes():
    """The option tables and the constructors agree: a declared option never fails as unknown."""
    samples = {"str": "x", "int": "1", "number": "1", "bool": "true", "list": '["true"]', "map": "{}", "json": "{}"}
    for provider, options in OPTION_TYPES.items():
        for key, kind in options.items():
            base = {"argv": ["true"]} if provider == "command" else {}
            if provider == "openai":
                base["api_key"] = "sk-test-0123456789"
            value = parse_option(provider, key, samples[kind])
            if (provider, key) in {("codex", "sandbox"), ("codex", "approval")}:
                value = "never" if key == "approval" else "read-only"
            if (provider, key) == ("scripted", "script"):
                value = {"rules": []}
            make_provider(provider, **{**base, key: value})


# -- the check before boot ------------------------------------------------------------------------------

def test_check_provider_builds_the_provider_and_finds_its_program(tmp_path):
    assert isinstance(check_provider("command", {"argv": ["true"]}), CommandProvider)
    assert isinstance(check_provider("echo", {}), EchoProvider)
    with pytest.raises(OptionError, match="option 'argv' is required"):
        check_provider("command", {})
    with pytest.raises(OptionError, match="option 'argv': program 'no-such-agent-q' not found on PATH; valid options"):
        check_provider("command", {"argv": ["no-such-agent-q"]})
    script = write_script(tmp_path, "agent", "print('hi')\n")
    assert check_provider("command", {"argv": [str(script)]})
    (tmp_path / "plain.txt").write_text("not a program")
    with pytest.raises(OptionError, match="is not an executable file"):
        check_provider("command", {"argv": [str(tmp_path / "plain.txt")]})
    assert check_provider("command", {"argv": ["{workspace}/run-agent"]})  # known only per leaf
    with pytest.raises(OptionError, match="option 'binary': program 'no-codex-q' not found"):
        check_provider("codex", {"binary": "no-codex-q"})
    with pytest.raises(OptionError, match="codex sandbox must be one of"):
        check_provider("codex", {"binary": sys.executable, "sandbox": "wide-open"})


def test_check_provider_names_a_missing_api_key_and_where_it_comes_from(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(OptionError) as info:
        check_provider("openai", {}, where="node reviewer")
    assert info.value.detail.startswith("provider 'openai' (node reviewer): missing configuration: OPENAI_API_KEY; "
                                        "set OPENAI_API_KEY in the environment")
    assert "valid options: api_key, base_url" in info.value.detail
    assert check_provider("openai", {"api_key": "sk-test-0123456789"}).name == "openai"


def test_a_relative_program_path_is_made_absolute_for_leaves_running_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_program({"argv": ["./agent.py", "x"]}, "command") == {"argv": [str(tmp_path / "agent.py"), "x"]}
    assert absolute_program({"argv": ["aider"]}, "command") == {"argv": ["aider"]}
    assert absolute_program({"binary": "bin/codex"}, "codex") == {"binary": str(tmp_path / "bin" / "codex")}


# -- the command line's settings --------------------------------------------------------------------------

def test_provider_settings_give_each_provider_its_own_options(tmp_path):
    script = tmp_path / "s.yaml"
    script.write_text("rules: [{output_text: hi}]\n")
    settings = provider_settings("Command", str(script), ("timeout_seconds=30", "codex.model=gpt-5",
                                                          "scripted.seed=4", "openai.max_retries=0"),
                                 ("agent", "{prompt}"))
    assert settings["provider"] == ProviderSpec(name="command", options={"timeout_seconds": 30,
                                                                         "argv": ["agent", "{prompt}"]})
    assert settings["providers"] == {
        "codex": ProviderSpec(name="codex", options={"model": "gpt-5"}),
        "scripted": ProviderSpec(name="scripted", options={"seed": 4, "script": {"rules": [{"output_text": "hi"}]}}),
        "openai": ProviderSpec(name="openai", options={"max_retries": 0}),
    }
    assert "workspace" not in settings


def test_provider_settings_refuse_conflicts(tmp_path):
    with pytest.raises(BadInput, match="--workspace and --provider-option workspace= both"):
        provider_settings("command", None, ("workspace=/tmp",), ("true",), str(tmp_path))
    with pytest.raises(BadInput, match="KEY=VALUE"):
        provider_settings("echo", None, ("prefix",))


def test_a_workspace_is_a_directory_and_a_repository_needs_a_commit(tmp_path):
    assert check_workspace(str(tmp_path)) == (str(tmp_path), "plain")
    git(tmp_path, "init", "-q")
    with pytest.raises(ValueError, match="no commit yet"):
        check_workspace(str(tmp_path))
    (tmp_path / "a").write_text("a")
    git(tmp_path, "add", "a")
    git(tmp_path, "commit", "-qm", "a")
    assert check_workspace(str(tmp_path)) == (str(tmp_path), "git")
    (tmp_path / "sub").mkdir()
    assert check_workspace(str(tmp_path / "sub"))[1] == "plain"  # inside a repository, not its top


# -- which provider a node uses -------------------------------------------------------------------------

def leaf(name: str, provider: str = "abstract", model: str = "unbound") -> ViableNode:
    return ViableNode(id=name, name=name, model=ModelSpec(provider=provider, model=model))


def test_a_node_uses_the_provider_its_genome_model_names_else_the_default():
    cli = ProviderSpec(name="command", options={"argv": ["agent"]})
    config = RuntimeConfig(provider=cli, providers={"codex": ProviderSpec(name="codex", options={"model": "m"})},
                           node_providers={"pinned": ProviderSpec(name="echo", options={"prefix": "p"})})
    assert node_provider_spec(config, leaf("a")) is cli                             # abstract: names none
    assert node_provider_spec(config, leaf("b", "local", "local-worker")) is cli    # unknown name: none
    assert node_provider_spec(config, leaf("c", "Command")) is cli                  # the default's own options
    assert node_provider_spec(config, leaf("d", "codex")) == ProviderSpec(name="codex", options={"model": "m"})
    assert node_provider_spec(config, leaf("e", "scripted")) == ProviderSpec(name="scripted",
                                                                             options={"script": {"rules": []}})
    assert node_provider_spec(config, leaf("pinned", "codex")).name == "echo"       # set by the caller: wins


def test_a_leaf_set_up_with_the_default_still_follows_its_genome_model():
    """A trial's candidate actors are set up with the default; their first call picks the genome's."""
    config = RuntimeConfig(provider=ProviderSpec(name="echo"))
    spec, provider = leaf_provider(config.provider, config, leaf("x", "scripted"))
    assert spec.name == "scripted" and isinstance(provider, ScriptedProvider)
    spec, provider = leaf_provider(config.provider, config, leaf("y"))
    assert spec.name == "echo" and isinstance(provider, EchoProvider)


def test_only_leaves_running_an_agent_get_a_workspace(tmp_path):
    config = RuntimeConfig(provider=ProviderSpec(name="command", options={"argv": ["true"]}),
                           workspace=str(tmp_path), workspace_kind="plain")
    _, provider = leaf_provider(config.provider, config, leaf("coder"))
    assert isinstance(provider, WorkspaceProvider) and provider.blocking
    assert provider.inner.workspace == str(tmp_path / "coder")
    assert not (tmp_path / "coder").exists()  # made at the first call, on the worker thread
    meta = ViableNode(id="team", name="team", children=("coder",))
    assert isinstance(leaf_provider(config.provider, config, meta)[1], CommandProvider)
    echo = RuntimeConfig(workspace=str(tmp_path))
    assert isinstance(leaf_provider(echo.provider, echo, leaf("coder"))[1], EchoProvider)


# -- the command provider's {prompt} and codex's per-node model ----------------------------------------------

def test_the_prompt_placeholder_puts_the_prompt_in_an_argument_and_leaves_stdin_empty(tmp_path):
    script = write_script(tmp_path, "agent", "import sys, json\n"
                          "print(json.dumps({'arg': sys.argv[2], 'stdin': sys.stdin.read()}))\n")
    provider = make_provider("command", argv=[str(script), "--message", "{prompt}"], workspace=str(tmp_path))
    out = json.loads(provider.complete(make_request(task_id="t-9")).output_text)
    assert out["stdin"] == ""
    assert out["arg"].startswith("You are an operational leaf.") and "--- TASK INPUT ---" in out["arg"]
    assert "task_id: t-9" in out["arg"]


def test_codex_runs_a_node_whose_model_names_codex_with_its_model():
    provider = CodexProvider.from_env({}, binary="codex", model="default-m")
    codex_node = make_request(model=ModelSpec(provider="codex", model="gpt-5"))
    other_node = make_request(model=ModelSpec(provider="local", model="local-worker"))
    argv = provider._command_for(codex_node).argv
    assert argv[argv.index("--model") + 1] == "gpt-5"
    argv = provider._command_for(other_node).argv
    assert argv[argv.index("--model") + 1] == "default-m"
    assert provider._command_for(codex_node) is provider._command_for(codex_node)  # built once per model


# -- what a workspace says changed ------------------------------------------------------------------------------

def test_a_plain_workspace_reports_new_changed_and_deleted_files(tmp_path):
    (tmp_path / "keep.txt").write_text("same")
    (tmp_path / "edit.txt").write_text("old")
    (tmp_path / "gone.txt").write_text("bye")
    (tmp_path / ".git").mkdir()
    before = snapshot(str(tmp_path), "plain")
    (tmp_path / "edit.txt").write_text("newer text")
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "new.py").write_text("x = 1\n")
    (tmp_path / ".git" / "ignored").write_text("git's own")
    assert changed_files(str(tmp_path), "plain", before) == (["edit.txt", "gone.txt", "src/new.py"], False)


def test_the_plain_scan_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(workspaces, "SCAN_LIMIT", 3)
    for n in range(5):
        (tmp_path / f"f{n}").write_text(str(n))
    before = snapshot(str(tmp_path), "plain")
    assert len(before[1]) == 3
    assert changed_files(str(tmp_path), "plain", before)[1] is True


def test_a_worktree_reports_edits_untracked_files_renames_and_what_commits_touched(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for name in ("a.txt", "b.txt", "c.txt", "dirty.txt"):
        (repo / name).write_text(name)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    path = prepare(str(repo), "git", "leaf/one")
    assert path == str(repo / ".vsm-worktrees" / "leaf-one")
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD").strip() == "vsm/leaf-one"
    assert prepare(str(repo), "git", "leaf/one") == path  # reused
    assert git(repo, "status", "--porcelain") == ""     # the worktrees are excluded, not untracked
    wt = Path(path)
    (wt / "dirty.txt").write_text("dirty before the call")
    before = snapshot(path, "git")
    (wt / "dirty.txt").write_text("dirty and edited again")    # dirty before, changed again
    (wt / "a.txt").write_text("edited")
    git(path, "mv", "b.txt", "renamed.txt")
    (wt / "new" ).mkdir()
    (wt / "new" / "file.txt").write_text("untracked")
    (wt / "c.txt").write_text("committed by the agent")
    git(path, "commit", "-qm", "agent work", "c.txt")
    files, truncated = changed_files(path, "git", before)
    assert files == ["a.txt", "b.txt", "c.txt", "dirty.txt", "new/file.txt", "renamed.txt"] and not truncated
    again = snapshot(path, "git")
    assert changed_files(path, "git", again) == ([], False)


def test_a_workspace_provider_merges_the_providers_own_files_with_what_changed(tmp_path):
    script = write_script(tmp_path, "agent", "open('out.txt', 'w').write('x')\nprint('done')\n")
    inner = make_provider("command", argv=[str(script)], workspace=str(tmp_path / "ws" / "coder"))
    provider = WorkspaceProvider(inner, str(tmp_path / "ws"), "plain", "coder")
    response = provider.complete(make_request())
    assert response.output_text == "done"
    assert response.raw["files_touched"] == ["out.txt"]
    assert response.raw["workspace"] == str(tmp_path / "ws" / "coder")
    assert os.path.isfile(tmp_path / "ws" / "coder" / "out.txt")
