"""The `codex exec` preset of the command provider.

It builds the reference's command line exactly, from a config that `CodexConfig.from_env` reads
from the reference's environment variables, and reads Codex's JSONL event stream:

    {binary} exec --cd {workspace_root} --sandbox {mode} --ask-for-approval {policy} --color never
        [--ephemeral] [--json] [--skip-git-repo-check] [--model M] [--profile P] [extra args…] -

Deliberate difference from the reference: `danger-full-access` (or a bypass flag in
`extra_args`) is refused unless `allow_danger_full_access=True`, so an environment variable alone
cannot take a leaf out of its sandbox. A wall-clock limit (`timeout_seconds`) is added too; the
reference waits forever.

Environment: like every command provider's child, codex gets an allowlist of ours (command.py),
here `BASE_ENV` plus `CODEX_ENV`: its own variables (CODEX_*: CODEX_HOME, CODEX_API_KEY,
CODEX_ACCESS_TOKEN, CODEX_CA_CERTIFICATE, …), the OpenAI ones it reads (OPENAI_*: OPENAI_API_KEY,
OPENAI_BASE_URL, …), the proxy and CA-bundle variables it honours, and RUST_LOG. A key that a
model provider of its config.toml names with `env_key` (say AZURE_OPENAI_API_KEY) is passed with
the `pass_env` option. `codex_api_key` reaches it as CODEX_API_KEY. All of these are redacted
from what codex prints, as every command provider's secrets are.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from enum import Enum
from typing import Any

from attrs import evolve, field, frozen

from ._process import ProcessRun
from .base import (
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ProviderConfigError,
    ProviderRequestError,
    redact,
    rough_token_estimate,
)
from .command import ERROR_TAIL_CHARS, RAW_TAIL_CHARS, CommandProvider, to_env_patterns

__all__ = [
    "CODEX_ENV",
    "CodexApproval",
    "CodexConfig",
    "CodexEvents",
    "CodexProvider",
    "CodexSandbox",
    "codex_argv",
    "parse_codex_events",
]


class CodexSandbox(str, Enum):
    """`--sandbox` modes."""

    ReadOnly = "read-only"
    WorkspaceWrite = "workspace-write"
    DangerFullAccess = "danger-full-access"


class CodexApproval(str, Enum):
    """`--ask-for-approval` policies."""

    Untrusted = "untrusted"
    OnRequest = "on-request"
    Never = "never"


_SANDBOX_NAMES = {
    "read-only": CodexSandbox.ReadOnly, "readonly": CodexSandbox.ReadOnly,
    "workspace-write": CodexSandbox.WorkspaceWrite, "workspace_write": CodexSandbox.WorkspaceWrite,
    "danger-full-access": CodexSandbox.DangerFullAccess,
    "danger_full_access": CodexSandbox.DangerFullAccess,
}
_APPROVAL_NAMES = {
    "untrusted": CodexApproval.Untrusted, "on-request": CodexApproval.OnRequest,
    "on_request": CodexApproval.OnRequest, "never": CodexApproval.Never,
}
# What codex reads of our environment beyond command.BASE_ENV (see the module docstring).
CODEX_ENV = ("CODEX_*", "OPENAI_*", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY",
             "NO_PROXY", "https_proxy", "http_proxy", "all_proxy", "no_proxy", "RUST_LOG")
_BYPASS_FLAGS = ("--dangerously-bypass-approvals-and-sandbox", "--yolo")
# Item types whose payload describes edits (e.g. "file_change"); the reference's substring rule.
_FILEISH = ("file", "patch", "change")
_PATH_KEYS = ("path", "file", "filename")
_USAGE_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")


def _to_sandbox(value: CodexSandbox | str) -> CodexSandbox:
    if isinstance(value, CodexSandbox):
        return value
    try:
        return _SANDBOX_NAMES[str(value).strip().lower()]
    except KeyError:
        raise ProviderConfigError(f"codex sandbox must be one of {sorted(_SANDBOX_NAMES)}, got {value!r}") from None


def _to_approval(value: CodexApproval | str) -> CodexApproval:
    if isinstance(value, CodexApproval):
        return value
    try:
        return _APPROVAL_NAMES[str(value).strip().lower()]
    except KeyError:
        raise ProviderConfigError(f"codex approval must be one of {sorted(_APPROVAL_NAMES)}, got {value!r}") from None


@frozen(kw_only=True)
class CodexConfig:
    """Settings of the Codex CLI provider (defaults as in the reference)."""

    binary: str = "codex"
    workspace_root: str = "."
    model: str | None = None
    profile: str | None = None
    sandbox: CodexSandbox = field(default=CodexSandbox.WorkspaceWrite, converter=_to_sandbox)
    approval: CodexApproval = field(default=CodexApproval.Never, converter=_to_approval)
    ephemeral: bool = True
    json_events: bool = True
    skip_git_repo_check: bool = False
    codex_api_key: str | None = field(default=None, repr=False)
    extra_args: tuple[str, ...] = field(default=(), converter=tuple)
    timeout_seconds: float = 1200.0
    allow_danger_full_access: bool = False
    pass_env: tuple[str, ...] = field(default=(), converter=to_env_patterns)  # beyond CODEX_ENV

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> CodexConfig:
        """Read CODEX_BIN, VSM_WORKSPACE_ROOT, CODEX_MODEL (else OPENAI_CODEX_MODEL), CODEX_PROFILE,
        CODEX_SANDBOX, CODEX_APPROVAL, CODEX_EPHEMERAL, CODEX_JSON, CODEX_SKIP_GIT_REPO_CHECK and
        CODEX_API_KEY; unparsable sandbox/approval values fall back to the defaults, as in the
        reference. Keyword `overrides` win over the environment.
        """
        source = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = source.get(name, "").strip()
            return value or None

        values: dict[str, Any] = {
            "binary": get("CODEX_BIN") or "codex",
            "workspace_root": get("VSM_WORKSPACE_ROOT") or ".",
            "model": get("CODEX_MODEL") or get("OPENAI_CODEX_MODEL"),
            "profile": get("CODEX_PROFILE"),
            "sandbox": _SANDBOX_NAMES.get((get("CODEX_SANDBOX") or "").lower(), CodexSandbox.WorkspaceWrite),
            "approval": _APPROVAL_NAMES.get((get("CODEX_APPROVAL") or "").lower(), CodexApproval.Never),
            "ephemeral": (get("CODEX_EPHEMERAL") or "").lower() not in ("0", "false"),
            "json_events": (get("CODEX_JSON") or "").lower() not in ("0", "false"),
            "skip_git_repo_check": (get("CODEX_SKIP_GIT_REPO_CHECK") or "").lower() in ("1", "true"),
            "codex_api_key": get("CODEX_API_KEY"),
        }
        return evolve(cls(), **{**values, **overrides})


def codex_argv(config: CodexConfig) -> list[str]:
    """Build the `codex exec` command line in the reference's exact order.

    Raises:
        ProviderConfigError: full access or a sandbox bypass was asked for without
            `allow_danger_full_access`.
    """
    if not config.allow_danger_full_access:
        wants_danger = config.sandbox is CodexSandbox.DangerFullAccess or any(
            arg in _BYPASS_FLAGS or "danger-full-access" in arg for arg in config.extra_args)
        if wants_danger:
            raise ProviderConfigError(
                "codex sandbox bypass (danger-full-access) requires allow_danger_full_access=True")
    argv = [
        config.binary, "exec", "--cd", config.workspace_root, "--sandbox", config.sandbox.value,
        "--ask-for-approval", config.approval.value, "--color", "never",
    ]
    if config.ephemeral:
        argv.append("--ephemeral")
    if config.json_events:
        argv.append("--json")
    if config.skip_git_repo_check:
        argv.append("--skip-git-repo-check")
    if config.model:
        argv += ["--model", config.model]
    if config.profile:
        argv += ["--profile", config.profile]
    return [*argv, *config.extra_args, "-"]


@frozen(kw_only=True)
class CodexEvents:
    """What a `codex exec --json` stream said."""

    event_count: int = 0
    usage: Mapping[str, int] | None = None
    turn_failed: bool = False
    final_message: str | None = None
    files_touched: tuple[str, ...] = ()
    artifacts: tuple[object, ...] = ()


def parse_codex_events(stdout: str) -> CodexEvents:
    """Fold JSONL events: usage (last turn.completed wins), failure, final message, file edits."""
    count, usage, failed, final = 0, None, False, None
    files: set[str] = set()
    artifacts: list[object] = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue  # codex may interleave plain log lines; they are not events
        count += 1
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "turn.completed" and isinstance(event.get("usage"), dict):
            usage = {k: _as_int(event["usage"].get(k)) for k in _USAGE_KEYS}
        elif kind in ("turn.failed", "error"):
            failed = True
            message = event.get("message")
            if message is None and isinstance(event.get("error"), dict):
                message = event["error"].get("message")  # turn.failed nests it
            if isinstance(message, str):
                final = message
        elif kind == "item.completed" and isinstance(event.get("item"), dict):
            item = event["item"]
            item_type = str(item.get("type", ""))
            if item_type == "agent_message":
                text = item.get("text")
                final = text if isinstance(text, str) else final
            elif any(word in item_type for word in _FILEISH):
                artifacts.append(item)
                files.update(_path_strings(item))
    return CodexEvents(event_count=count, usage=usage, turn_failed=failed, final_message=final,
                       files_touched=tuple(sorted(files)), artifacts=tuple(artifacts))


def _as_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _path_strings(value: object) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in _PATH_KEYS and isinstance(inner, str):
                found.append(inner)
            else:
                found += _path_strings(inner)
    elif isinstance(value, list):
        for inner in value:
            found += _path_strings(inner)
    return found


def _codex_output(run: ProcessRun, prompt: str, secrets: tuple[str, ...], *, json_events: bool) -> ModelResponse:
    stdout = redact(run.stdout.decode("utf-8", "replace"), secrets)
    stderr = redact(run.stderr_tail.decode("utf-8", "replace"), secrets)
    events = parse_codex_events(stdout) if json_events else CodexEvents(final_message=stdout.strip())
    if run.returncode != 0 or events.turn_failed:
        raise ProviderRequestError(
            f"codex CLI failed; status={run.status}; message={events.final_message or 'no final message'}; "
            f"stderr_tail={stderr[-ERROR_TAIL_CHARS:]}")
    text = events.final_message if events.final_message and events.final_message.strip() else stdout
    parsed = events.usage
    usage = ModelUsage(
        input_tokens=parsed["input_tokens"] if parsed else rough_token_estimate(prompt),
        output_tokens=parsed["output_tokens"] if parsed else rough_token_estimate(text),
    )
    raw = {
        "provider": "codex_cli",
        "exit_status": run.returncode,
        "stderr_tail": stderr[-RAW_TAIL_CHARS:],
        "json_events": json_events,
        "event_count": events.event_count,
        "turn_failed": events.turn_failed,
        "usage": dict(parsed) if parsed else dict.fromkeys(_USAGE_KEYS, 0),
        "files_touched": list(events.files_touched),
        "artifacts": list(events.artifacts),
        "stdout_truncated": run.stdout_truncated,
    }
    return ModelResponse(output_text=text, usage=usage, raw=raw)


@frozen
class CodexProvider:
    """Run `codex exec` for each request in the configured workspace (see module docstring)."""

    config: CodexConfig = field(factory=CodexConfig)
    name: str = "codex"
    _command: CommandProvider = field(init=False, eq=False, repr=False)
    _per_model: dict = field(init=False, factory=dict, eq=False, repr=False)
    blocking = True  # see providers.runs_off_thread

    @_command.default
    def _build_command(self) -> CommandProvider:
        config = self.config
        return CommandProvider(
            argv=codex_argv(config),
            workspace=config.workspace_root,
            timeout_seconds=config.timeout_seconds,
            pass_env=(*CODEX_ENV, *config.pass_env),
            secret_env={"CODEX_API_KEY": config.codex_api_key} if config.codex_api_key else {},
            name=self.name,
            label="codex CLI",
            # a partial of a module function (not a closure) keeps the provider picklable
            parser=functools.partial(_codex_output, json_events=config.json_events),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> CodexProvider:
        """Build from the reference's environment variables (see `CodexConfig.from_env`)."""
        return cls(CodexConfig.from_env(env, **overrides))

    @property
    def argv(self) -> list[str]:
        """The command line this provider runs (placeholders, if any, unrendered)."""
        return list(self._command.argv)

    def complete(self, request: ModelRequest) -> ModelResponse:
        """Run codex once; failures raise `ProviderRequestError` (never a secret in the message).

        A node whose genome model spec names codex (`model: {provider: codex, model: gpt-5}`) runs
        with `--model` set to its model; other nodes' models (e.g. "local-worker") are not codex's."""
        return self._command_for(request).complete(request)

    def _command_for(self, request: ModelRequest) -> CommandProvider:
        spec = request.model
        model = (spec.model or "").strip()
        if (spec.provider or "").strip().lower() != "codex" or not model or model == "unbound" \
                or model == self.config.model:
            return self._command
        cached = self._per_model.get(model)
        if cached is None:
            cached = self._per_model[model] = CodexProvider(evolve(self.config, model=model), name=self.name)._command
        return cached
