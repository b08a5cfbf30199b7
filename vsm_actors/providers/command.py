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

The child's environment is an allowlist, not ours: a coding agent runs code from the repository it
works on, and our environment holds the organization's own credentials (a DATABASE_URL, a Sentry
DSN, cloud keys). It gets

    BASE_ENV       PATH HOME USER LOGNAME SHELL TERM LANG LC_* TZ TMPDIR (what programs need to
                   run, find their tools and write temporary files; no credentials)
    pass_env       the names or glob patterns (fnmatch, case-sensitive: "AWS_*") the options give
    env            extra variables, given as values
    secret_env     like env, but the values are secrets

`inherit_env=True` gives the child our whole environment instead of BASE_ENV and pass_env (an
explicit opt-in; the default is the allowlist).

Every secret the child was given is scrubbed from everything returned (output text, raw data,
error messages): each `secret_env` value, and the values of variables it gets whose names look
secret (KEY, TOKEN, SECRET, PASS, DSN, CREDENTIAL, AUTH; `base.looks_secret`), and the password
of every URL among them or in the output (postgresql://u:[REDACTED]@h/db). Values shorter than
`base.MIN_SECRET_LEN` (3) characters are not redacted: they would erase ordinary letters.
"""

from __future__ import annotations

import fnmatch
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

__all__ = ["BASE_ENV", "PLACEHOLDERS", "CommandProvider", "allowed_env", "env_pattern_problem", "render_argv",
           "render_prompt", "to_env_patterns"]

# What every child gets of our environment (see the module docstring).
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_*", "TZ", "TMPDIR")
# a variable name, or a glob pattern of one (*, ?, [seq])
_ENV_PATTERN = re.compile(r"^[A-Za-z0-9_*?\[\]!-]+$")

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


def env_pattern_problem(pattern: object) -> str | None:
    """Why `pattern` is not a variable name or glob pattern (None when it is one)."""
    if not isinstance(pattern, str) or not pattern:
        return f"pass_env entries are variable names or glob patterns, got {pattern!r}"
    if not _ENV_PATTERN.match(pattern):
        return f"pass_env entry {pattern!r} is not a variable name or glob pattern (letters, digits, _, *, ?, [])"
    return None


def allowed_env(source: Mapping[str, str], patterns: Sequence[str]) -> dict[str, str]:
    """The variables of `source` whose names match one of `patterns` (fnmatch, case-sensitive)."""
    return {name: value for name, value in source.items()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)}


def to_env_patterns(value: object) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)):  # "AWS_*" would become a tuple of characters
        return (value,)  # type: ignore[return-value]
    return tuple(value)  # type: ignore[call-overload]


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
        pass_env: names or glob patterns of our variables the child also gets (beyond `BASE_ENV`).
        env: extra environment for the child, as values.
        secret_env: like `env`, but the values are never shown (repr, raw, errors, output).
        inherit_env: give the child our whole environment instead of `BASE_ENV` + `pass_env`.
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
    pass_env: tuple[str, ...] = field(default=(), converter=to_env_patterns)
    inherit_env: bool = False
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
        problem = next(filter(None, map(env_pattern_problem, self.pass_env)), None)
        if problem:
            raise ProviderConfigError(problem)

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
        base = dict(os.environ) if self.inherit_env else allowed_env(os.environ, (*BASE_ENV, *self.pass_env))
        return {**base, **self.env, **self.secret_env}

    def _secrets(self) -> tuple[str, ...]:
        """What must never come back: every secret_env value, and the secrets of what the child
        sees (secret-looking names, URL passwords); see the module docstring."""
        return (*self.secret_env.values(), *secret_values_from_env(self._child_env()))


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
