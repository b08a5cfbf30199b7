"""CommandProvider: run any command-line agent as a System 1 leaf's model.

The argument template is a list of strings, never a shell line: values such as a task id cannot
inject shell syntax, and no quoting rules apply. Known placeholders are replaced inside each
element; every other brace is left alone, so JSON or format strings pass through untouched.

The prompt goes to the child's stdin, laid out like the reference's Codex CLI provider (or, when
the template has a `{prompt}` placeholder, into that argument, and stdin stays empty: agents such
as `aider --message {prompt}` take it there, and one reading stdin as well would get it twice)::

    {instructions}

    --- TASK INPUT ---
    {input}

    --- HARNESS METADATA ---
    key: value            (sorted keys; section only when metadata is non-empty)

Secrets (`secret_env`) reach the child only through its environment. They, and the values of
secret-looking inherited variables (…API_KEY, …TOKEN), are scrubbed from everything returned:
output text, raw data, error messages.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping, Sequence

from attrs import field, frozen

from ._process import ProcessRun, run_process
from .base import (
    MissingConfig,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ProviderConfigError,
    ProviderRequestError,
    redact,
    rough_token_estimate,
    secret_values_from_env,
)

__all__ = ["PLACEHOLDERS", "CommandProvider", "render_argv", "render_prompt"]

PLACEHOLDERS = ("workspace", "node_id", "task_id", "model", "prompt")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
TASK_INPUT_MARKER = "\n\n--- TASK INPUT ---\n"
METADATA_MARKER = "\n\n--- HARNESS METADATA ---\n"
ERROR_TAIL_CHARS = 2000
RAW_TAIL_CHARS = 4000


def render_prompt(request: ModelRequest) -> str:
    """Lay out instructions, task input and harness metadata for a CLI agent's stdin."""
    prompt = request.instructions + TASK_INPUT_MARKER + request.input
    if request.metadata:
        prompt += METADATA_MARKER + "".join(f"{k}: {v}\n" for k, v in sorted(request.metadata.items()))
    return prompt


def render_argv(template: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Substitute `{workspace}`, `{node_id}`, `{task_id}`, `{model}`, `{prompt}` in each template element."""
    return [_PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), part) for part in template]


def _placeholder_values(request: ModelRequest, workspace: str) -> dict[str, str]:
    return {
        "workspace": workspace,
        "node_id": request.metadata.get("node_id", ""),
        "task_id": request.metadata.get("task_id", ""),
        "model": request.model.model,
    }


def _to_argv(value: object) -> tuple[str, ...]:
    # A single string would otherwise become a tuple of characters; and it smells of a shell line.
    if isinstance(value, (str, bytes)):
        raise ProviderConfigError("command argv must be a list of strings, not one (shell) string")
    return tuple(value)  # type: ignore[call-overload]


# (run, prompt, secrets) -> response; lets a preset (codex) read the child's output its own way.
OutputParser = Callable[[ProcessRun, str, tuple[str, ...]], ModelResponse]


@frozen(kw_only=True)
class CommandProvider:
    """Run `argv` in `workspace` per request, prompt on stdin, stdout as the answer.

    Args:
        argv: argument template; element 0 is the program (looked up on PATH).
        workspace: working directory; may itself use `{node_id}`, `{task_id}`, `{model}`
            (e.g. one checkout per leaf). It must exist.
        timeout_seconds: wall-clock limit; on expiry the whole process group is terminated, then
            killed after `kill_grace_seconds`.
        env: extra environment for the child (inherits ours unless `inherit_env` is False).
        secret_env: like `env`, but the values are never shown (repr, raw, errors, output).
        stdout_limit_bytes / stderr_limit_bytes: capture bounds (stdout head, stderr tail).
        label: how error messages name the program ("command" by default).
        parser: turns a successful run into a response; the default takes stdout as the text.
    """

    argv: tuple[str, ...] = field(converter=lambda value: _to_argv(value))
    workspace: str = "."
    timeout_seconds: float = 600.0
    kill_grace_seconds: float = 2.0
    env: Mapping[str, str] = field(factory=dict)
    secret_env: Mapping[str, str] = field(factory=dict, repr=False)
    inherit_env: bool = True
    stdout_limit_bytes: int = 16 * 1024 * 1024
    stderr_limit_bytes: int = 64 * 1024
    name: str = "command"
    label: str = "command"
    parser: OutputParser | None = field(default=None, eq=False, repr=False)
    blocking = True  # waits on the outside world: an in-process leaf calls it off its thread

    def __attrs_post_init__(self) -> None:
        if not self.argv or not all(isinstance(a, str) for a in self.argv) or not self.argv[0]:
            raise ProviderConfigError("command argv must be a non-empty list of strings")
        if self.timeout_seconds <= 0:
            raise ProviderConfigError(f"timeout_seconds must be positive, got {self.timeout_seconds!r}")

    def complete(self, request: ModelRequest) -> ModelResponse:
        """Run the command once; raise `ProviderRequestError` on spawn failure, timeout or exit != 0."""
        prompt = render_prompt(request)
        secrets = self._secrets()
        run = self._run(request, prompt, secrets)
        if run.timed_out:
            raise ProviderRequestError(redact(
                f"{self.label} timed out after {self.timeout_seconds:g}s; process group killed; "
                f"stderr_tail={_tail(run.stderr_tail, ERROR_TAIL_CHARS)}", secrets))
        parser = self.parser or functools.partial(_plain_output, label=self.label)
        return parser(run, prompt, secrets)

    def _run(self, request: ModelRequest, prompt: str, secrets: tuple[str, ...]) -> ProcessRun:
        values = _placeholder_values(request, "")
        workspace = os.path.abspath(render_argv([self.workspace], values)[0])
        if not os.path.isdir(workspace):
            raise MissingConfig(f"{self.label} workspace directory does not exist: {workspace}")
        in_argv = any("{prompt}" in part for part in self.argv)
        argv = render_argv(self.argv, {**values, "workspace": workspace, "prompt": prompt})
        try:
            return run_process(
                argv, cwd=workspace, env=self._child_env(), stdin=b"" if in_argv else prompt.encode("utf-8"),
                timeout_seconds=self.timeout_seconds, kill_grace_seconds=self.kill_grace_seconds,
                stdout_limit=self.stdout_limit_bytes, stderr_limit=self.stderr_limit_bytes,
            )
        except OSError as error:
            raise ProviderRequestError(redact(f"failed to spawn {self.label}: {error}", secrets)) from None

    def _child_env(self) -> dict[str, str]:
        base = dict(os.environ) if self.inherit_env else {}
        return {**base, **self.env, **self.secret_env}

    def _secrets(self) -> tuple[str, ...]:
        inherited = secret_values_from_env() if self.inherit_env else ()
        return (*self.secret_env.values(), *secret_values_from_env(self.env), *inherited)


def _plain_output(run: ProcessRun, prompt: str, secrets: tuple[str, ...], *, label: str) -> ModelResponse:
    stderr_tail = run.stderr_tail.decode("utf-8", "replace")
    if run.returncode != 0:
        raise ProviderRequestError(redact(
            f"{label} failed; status={run.status}; stderr_tail={stderr_tail[-ERROR_TAIL_CHARS:]}", secrets))
    stdout = redact(run.stdout.decode("utf-8", "replace"), secrets)
    text = stdout.strip() or stdout
    raw = {
        "provider": "command",
        "exit_status": run.returncode,
        "stderr_tail": redact(stderr_tail[-RAW_TAIL_CHARS:], secrets),
        "stdout_truncated": run.stdout_truncated,
        "duration_ms": run.duration_ms,
    }
    usage = ModelUsage(input_tokens=rough_token_estimate(prompt), output_tokens=rough_token_estimate(text))
    return ModelResponse(output_text=text, usage=usage, raw=raw)


def _tail(data: bytes, chars: int) -> str:
    return data.decode("utf-8", "replace")[-chars:]
