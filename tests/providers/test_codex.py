"""The codex preset: exact command line, environment configuration, and JSONL events from a fake CLI."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from vsm_actors.providers import (
    CodexApproval,
    CodexConfig,
    CodexProvider,
    CodexSandbox,
    ProviderConfigError,
    ProviderRequestError,
    codex_argv,
    make_provider,
    parse_codex_events,
    render_prompt,
)

from .conftest import make_request

API_KEY = "codex-key-SECRET-abcdef123456"


def test_default_command_line() -> None:
    """Defaults: workspace-write, never ask, no colour, ephemeral, JSON events, prompt from stdin."""
    assert codex_argv(CodexConfig()) == [
        "codex", "exec", "--cd", ".", "--sandbox", "workspace-write", "--ask-for-approval", "never",
        "--color", "never", "--ephemeral", "--json", "-",
    ]


def test_full_command_line_in_reference_order() -> None:
    """Every option lands in the reference's order, extra args last before '-'."""
    config = CodexConfig(
        binary="/opt/codex", workspace_root="/work/ws", model="gpt-5-codex", profile="ci",
        sandbox="read-only", approval="on-request", skip_git_repo_check=True,
        extra_args=["--config", "model_reasoning_effort=high"],
    )
    assert codex_argv(config) == [
        "/opt/codex", "exec", "--cd", "/work/ws", "--sandbox", "read-only", "--ask-for-approval", "on-request",
        "--color", "never", "--ephemeral", "--json", "--skip-git-repo-check", "--model", "gpt-5-codex",
        "--profile", "ci", "--config", "model_reasoning_effort=high", "-",
    ]
    quiet = attrs.evolve(config, ephemeral=False, json_events=False, skip_git_repo_check=False, model=None,
                         profile=None, extra_args=(), approval=CodexApproval.Untrusted)
    assert codex_argv(quiet) == [
        "/opt/codex", "exec", "--cd", "/work/ws", "--sandbox", "read-only", "--ask-for-approval", "untrusted",
        "--color", "never", "-",
    ]


def test_from_env_reads_the_reference_variables() -> None:
    """CODEX_* and VSM_WORKSPACE_ROOT map onto the config; CODEX_MODEL beats OPENAI_CODEX_MODEL."""
    env = {
        "CODEX_BIN": "/usr/local/bin/codex", "VSM_WORKSPACE_ROOT": "/srv/ws", "CODEX_MODEL": "m1",
        "OPENAI_CODEX_MODEL": "m2", "CODEX_PROFILE": "p", "CODEX_SANDBOX": "readonly",
        "CODEX_APPROVAL": "on_request", "CODEX_EPHEMERAL": "0", "CODEX_JSON": "false",
        "CODEX_SKIP_GIT_REPO_CHECK": "true", "CODEX_API_KEY": API_KEY,
    }
    config = CodexConfig.from_env(env)
    assert (config.binary, config.workspace_root, config.model, config.profile) == ("/usr/local/bin/codex", "/srv/ws", "m1", "p")
    assert (config.sandbox, config.approval) == (CodexSandbox.ReadOnly, CodexApproval.OnRequest)
    assert (config.ephemeral, config.json_events, config.skip_git_repo_check) == (False, False, True)
    assert config.codex_api_key == API_KEY
    assert API_KEY not in repr(config) and API_KEY not in repr(CodexProvider(config))
    assert CodexConfig.from_env({"OPENAI_CODEX_MODEL": "m2"}).model == "m2"


def test_from_env_defaults_and_lenient_values() -> None:
    """Unset or unparsable values give the reference defaults; only '0'/'false' turn flags off."""
    config = CodexConfig.from_env({"CODEX_SANDBOX": "bogus", "CODEX_APPROVAL": "sometimes", "CODEX_EPHEMERAL": "no",
                                   "CODEX_SKIP_GIT_REPO_CHECK": "yes"})
    assert config == CodexConfig()
    assert CodexConfig.from_env({}, model="override").model == "override"


def test_full_access_needs_explicit_permission() -> None:
    """danger-full-access or a bypass flag is refused unless allow_danger_full_access is set."""
    with pytest.raises(ProviderConfigError, match="allow_danger_full_access"):
        CodexProvider(CodexConfig(sandbox=CodexSandbox.DangerFullAccess))
    with pytest.raises(ProviderConfigError):
        CodexProvider.from_env({"CODEX_SANDBOX": "danger-full-access"})
    for extra in (["--yolo"], ["--dangerously-bypass-approvals-and-sandbox"], ["-s", "danger-full-access"]):
        with pytest.raises(ProviderConfigError):
            codex_argv(CodexConfig(extra_args=extra))
    allowed = CodexConfig(sandbox="danger-full-access", allow_danger_full_access=True)
    assert "danger-full-access" in codex_argv(allowed)


def test_explicit_bad_enum_values_are_rejected() -> None:
    """Unlike the environment, a wrong sandbox name given in code is an error, not a silent default."""
    with pytest.raises(ProviderConfigError, match="sandbox"):
        CodexConfig(sandbox="wide-open")


def _provider(fake_codex: Path, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              **overrides: object) -> tuple[CodexProvider, Path]:
    record = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_CODEX_RECORD", str(record))
    # the fake reads FAKE_CODEX_RECORD: a variable of ours the child gets only when named
    config = CodexConfig(binary=str(fake_codex), workspace_root=str(workspace), codex_api_key=API_KEY,
                         skip_git_repo_check=True, model="gpt-5-codex", pass_env=["FAKE_CODEX_*"], **overrides)
    return CodexProvider(config), record


def test_runs_codex_and_folds_its_events(fake_codex: Path, workspace: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Final agent message, turn usage, touched files and file-change artifacts come from the JSONL stream."""
    provider, record = _provider(fake_codex, workspace, tmp_path, monkeypatch)
    request = make_request(task_id="t-7")
    response = provider.complete(request)

    seen = json.loads(record.read_text())
    assert seen["argv"] == codex_argv(provider.config)[1:]
    assert seen["stdin"] == render_prompt(request)
    assert seen["cwd"] == str(workspace)
    assert seen["codex_api_key"] == API_KEY  # delivered through the child's environment

    assert response.output_text == "Done: fixed the bug."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (1200, 300)
    raw = response.raw
    assert raw["provider"] == "codex_cli" and raw["exit_status"] == 0 and raw["json_events"] is True
    assert raw["event_count"] == 7  # the non-JSON banner line is not an event
    assert raw["turn_failed"] is False
    assert raw["usage"] == {"input_tokens": 1200, "cached_input_tokens": 1000, "output_tokens": 300,
                            "reasoning_output_tokens": 50}
    assert raw["files_touched"] == ["src/a.py", "src/b.py"]
    assert [a["type"] for a in raw["artifacts"]] == ["file_change"]
    assert "[REDACTED]" in raw["stderr_tail"]
    assert API_KEY not in json.dumps(raw) and API_KEY not in response.output_text


def test_missing_usage_falls_back_to_estimates(fake_codex: Path, workspace: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a turn.completed event, usage is estimated from the prompt and the answer."""
    provider, _ = _provider(fake_codex, workspace, tmp_path, monkeypatch)
    request = attrs.evolve(make_request(), input="MODE=no_usage")
    response = provider.complete(request)
    assert response.usage.input_tokens == (len(render_prompt(request).encode()) + 3) // 4
    assert response.usage.output_tokens == (len(b"Done: fixed the bug.") + 3) // 4
    assert response.raw["usage"]["input_tokens"] == 0


def test_turn_failed_is_a_request_error_even_with_exit_zero(fake_codex: Path, workspace: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A turn.failed event fails the task with codex's message; the key in it is redacted."""
    provider, _ = _provider(fake_codex, workspace, tmp_path, monkeypatch)
    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(attrs.evolve(make_request(), input="MODE=turn_failed"))
    message = str(caught.value)
    assert message.startswith(
        "provider request failed: codex CLI failed; status=exit status: 0; message=model refused: [REDACTED]; stderr_tail=")
    assert API_KEY not in message


def test_nonzero_exit_without_message(fake_codex: Path, workspace: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash reports the status, 'no final message' and the stderr tail (redacted)."""
    provider, _ = _provider(fake_codex, workspace, tmp_path, monkeypatch)
    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(attrs.evolve(make_request(), input="MODE=exit_error"))
    assert str(caught.value) == ("provider request failed: codex CLI failed; status=exit status: 2; "
                                 "message=no final message; stderr_tail=fatal: sandbox setup failed; key=[REDACTED]\n")


def test_plain_output_mode(fake_codex: Path, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With json_events off, the trimmed stdout is the answer and no events are counted."""
    provider, record = _provider(fake_codex, workspace, tmp_path, monkeypatch, json_events=False)
    response = provider.complete(attrs.evolve(make_request(), input="MODE=plain"))
    assert "--json" not in json.loads(record.read_text())["argv"]
    assert response.output_text.endswith("plain final answer")
    assert response.raw["event_count"] == 0 and response.raw["json_events"] is False


def test_missing_binary_is_a_spawn_error(workspace: Path) -> None:
    """A codex binary that does not exist fails the request with a spawn message."""
    provider = CodexProvider(CodexConfig(binary=str(workspace / "no-codex"), workspace_root=str(workspace)))
    with pytest.raises(ProviderRequestError, match="^provider request failed: failed to spawn codex CLI: "):
        provider.complete(make_request())


def test_make_provider_codex_reads_the_environment(monkeypatch: pytest.MonkeyPatch, fake_codex: Path) -> None:
    """make_provider('codex') uses CODEX_* variables, with keyword overrides on top."""
    monkeypatch.setenv("CODEX_BIN", str(fake_codex))
    monkeypatch.setenv("CODEX_PROFILE", "night")
    provider = make_provider("codex", model="m")
    assert isinstance(provider, CodexProvider)
    assert provider.argv[0] == str(fake_codex)
    assert provider.argv[-5:] == ["--model", "m", "--profile", "night", "-"]


def test_parse_events_rules() -> None:
    """Last usage wins; 'error' events fail the turn; path/file/filename strings are collected, sorted, unique."""
    lines = [
        "",
        "not json at all",
        json.dumps({"type": "turn.completed", "usage": {"input_tokens": 1, "output_tokens": 2}}),
        json.dumps({"type": "item.completed", "item": {"type": "patch_apply", "file": "z.py",
                                                       "nested": [{"filename": "a.py"}, {"path": "z.py"}]}}),
        json.dumps({"type": "item.completed", "item": {"type": "reasoning", "path": "ignored.py"}}),
        json.dumps({"type": "turn.completed", "usage": {"input_tokens": 10, "output_tokens": 20,
                                                        "cached_input_tokens": 5}}),
        json.dumps({"type": "error", "message": "stream disconnected"}),
        json.dumps([1, 2, 3]),
    ]
    events = parse_codex_events("\n".join(lines))
    assert events.event_count == 6  # any JSON line counts, even a non-object
    assert dict(events.usage) == {"input_tokens": 10, "cached_input_tokens": 5, "output_tokens": 20,
                                  "reasoning_output_tokens": 0}
    assert events.turn_failed and events.final_message == "stream disconnected"
    assert events.files_touched == ("a.py", "z.py")
    assert len(events.artifacts) == 1
