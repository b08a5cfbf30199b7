"""Typed provider options, as given on a command line, and a provider's check before boot.

`--provider-option KEY=VALUE` values are text; each provider declares what its options are, so a
value becomes the type its constructor wants (a number, a boolean, a list of strings, a mapping,
any JSON) and an unknown key or a value of the wrong type is refused, naming the option and the
valid ones, before an organization starts. `check_provider` then builds the provider once and
checks what a build does not (the program to run exists), so a missing binary or API key is a
message at the command line, not a failed task minutes later.

Some options are secrets (`SECRET_OPTIONS`): an API key, the command's `secret_env`. This table is
the one place that says so. Their values are never repeated in a message here, `masked_options`
shows them as `***`, and the providers redact them from everything they return.
`pass_env` (command, codex) names the variables of our environment the agent's process also gets
(names or glob patterns: `["AWS_*","GH_TOKEN"]`); see providers/command.py for the allowlist.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

from .base import ModelProvider, ModelProviderError, ProviderConfigError, redact
from .command import env_pattern_problem

__all__ = [
    "OPTION_TYPES",
    "SECRET_OPTIONS",
    "SELECTABLE_PROVIDERS",
    "OptionError",
    "check_provider",
    "default_options",
    "masked_options",
    "parse_option",
    "parse_options",
    "secret_option_values",
]

# option name -> type: str | int | number | bool | list (of strings) | map (string -> string) | json
OPTION_TYPES: dict[str, dict[str, str]] = {
    "echo": {"prefix": "str"},
    "scripted": {"script": "json", "seed": "int", "sleep": "bool"},
    "command": {"argv": "list", "workspace": "str", "timeout_seconds": "number", "kill_grace_seconds": "number",
                "env": "map", "secret_env": "map", "inherit_env": "bool", "pass_env": "list",
                "stdout_limit_bytes": "int", "stderr_limit_bytes": "int"},
    "codex": {"binary": "str", "workspace_root": "str", "model": "str", "profile": "str", "sandbox": "str",
              "approval": "str", "ephemeral": "bool", "json_events": "bool", "skip_git_repo_check": "bool",
              "codex_api_key": "str", "extra_args": "list", "timeout_seconds": "number",
              "allow_danger_full_access": "bool", "pass_env": "list"},
    "openai": {"api_key": "str", "base_url": "str", "default_model": "str", "timeout_seconds": "number",
               "max_retries": "int"},
}
# options whose values are secrets (of a map: every value); see the module docstring
SECRET_OPTIONS: dict[str, frozenset[str]] = {
    "command": frozenset({"secret_env"}),
    "codex": frozenset({"codex_api_key"}),
    "openai": frozenset({"api_key"}),
}
MASK = "***"
# providers a genome node may name in its model spec (`model: {provider: codex}`), and that the
# command line configures; `world` is a simulation's, built by `vsm simulate` only
SELECTABLE_PROVIDERS = tuple(sorted(OPTION_TYPES))
_TYPE_WORDS = {"str": "a string", "int": "an integer", "number": "a number", "bool": "true or false",
               "list": 'a JSON list of strings, e.g. ["a","b"]', "map": 'a JSON object of strings, e.g. {"K":"v"}',
               "json": "JSON"}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
# where a provider's required option or setting comes from, for the messages
_HINTS = {
    "command": "give the agent's command line: --provider-option argv='[\"PROGRAM\",\"ARG\",...]' or -- PROGRAM ARG...",
    "openai": "set OPENAI_API_KEY in the environment (or --provider-option api_key=...)",
}


class OptionError(ProviderConfigError):
    """A provider option is unknown, has the wrong type, or does not work (names it and the valid ones)."""


def valid_names(provider: str) -> str:
    return ", ".join(sorted(OPTION_TYPES.get(provider, {})))


def parse_option(provider: str, key: str, text: str) -> Any:
    """`text` as the type `provider`'s option `key` takes.

    Raises:
        OptionError: the provider has no such option, or `text` is not of its type.
    """
    types = OPTION_TYPES.get(provider)
    if types is None:
        raise OptionError(f"provider {provider!r} takes no options here; providers with options: "
                          f"{', '.join(SELECTABLE_PROVIDERS)}")
    kind = types.get(key)
    if kind is None:
        raise OptionError(f"unknown option {key!r} for provider {provider!r}; valid options: {valid_names(provider)}")
    secret = key in SECRET_OPTIONS.get(provider, ())
    try:
        value = _convert(kind, text)
    except ValueError:
        got = "(the value given is a secret: not shown)" if secret else f"got {text!r}"
        raise OptionError(f"option {key!r} of provider {provider!r} must be {_TYPE_WORDS[kind]}, {got}") from None
    if key == "pass_env":
        problem = next(filter(None, map(env_pattern_problem, value)), None)
        if problem:
            raise OptionError(f"option 'pass_env' of provider {provider!r}: {problem}")
    return value


def secret_option_values(provider: str, options: Mapping[str, Any]) -> tuple[str, ...]:
    """The values of `provider`'s options that are secrets (each value of a secret map)."""
    found: list[str] = []
    for key in SECRET_OPTIONS.get(provider, ()):
        value = options.get(key)
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, Mapping):
            found += [v for v in value.values() if isinstance(v, str)]
    return tuple(found)


def masked_options(provider: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """`options` fit to show: a secret option's value (each value of a secret map) is `***`."""
    secret = SECRET_OPTIONS.get(provider, frozenset())
    return {key: (dict.fromkeys(value, MASK) if isinstance(value, Mapping) else MASK) if key in secret else value
            for key, value in options.items()}


def parse_options(provider: str, items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Every (key, text) pair of one provider, typed; a key given twice is refused."""
    out: dict[str, Any] = {}
    for key, text in items:
        if key in out:
            raise OptionError(f"option {key!r} of provider {provider!r} is given twice")
        out[key] = parse_option(provider, key, text)
    return out


def _convert(kind: str, text: str) -> Any:
    if kind == "str":
        return text
    stripped = text.strip()
    if kind == "int":
        if not stripped.lstrip("+-").isdigit():
            raise ValueError(text)
        return int(stripped)
    if kind == "number":
        value = float(stripped)
        if not math.isfinite(value):
            raise ValueError(text)
        return int(value) if value.is_integer() and "." not in stripped and "e" not in stripped.lower() else value
    if kind == "bool":
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ValueError(text)
    value = json.loads(stripped)  # ValueError (JSONDecodeError) when it is not JSON
    if kind == "list" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ValueError(text)
    if kind == "map" and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
        raise ValueError(text)
    return value


def default_options(provider: str) -> dict[str, Any]:
    """What a provider is built with when nothing configures it (a genome node naming it)."""
    return {"script": {"rules": []}} if provider == "scripted" else {}


def check_provider(provider: str, options: Mapping[str, Any], *, where: str = "") -> ModelProvider:
    """Build the provider once, as a leaf will, and check that what it runs exists.

    `where` says who uses it in the messages (e.g. "node backend-coder"). Raises `OptionError`.
    """
    from . import make_provider  # noqa: PLC0415 - the package imports this module

    who = f"provider {provider!r}" + (f" ({where})" if where else "")
    if provider == "command" and "argv" not in options:
        raise OptionError(f"{who}: option 'argv' is required; {_HINTS['command']}; "
                          f"valid options: {valid_names(provider)}")
    try:
        built = make_provider(provider, **options)
    except ModelProviderError as error:
        hint = _HINTS.get(provider, "")
        text = redact(str(error), secret_option_values(provider, options))  # a constructor may quote a value
        raise OptionError(f"{who}: {text}" + (f"; {hint}" if hint and "OPENAI_API_KEY" in text else "")
                          + f"; valid options: {valid_names(provider)}") from None
    program, option = (built.argv[0], "argv") if provider == "command" else \
        (built.config.binary, "binary") if provider == "codex" else (None, "")
    problem = _program_problem(program, getattr(built, "env", {})) if program else None
    if problem:
        raise OptionError(f"{who}: option {option!r}: {problem}; valid options: {valid_names(provider)}")
    return built


def _program_problem(program: str, env: Mapping[str, str]) -> str | None:
    if "{" in program:  # a template ({workspace}/agent): known only per leaf
        return None
    if os.sep in program:
        return None if os.path.isfile(program) and os.access(program, os.X_OK) else \
            f"{program!r} is not an executable file"
    if shutil.which(program, path=env.get("PATH") or os.environ.get("PATH")) is None:
        return f"program {program!r} not found on PATH"
    return None


def absolute_program(options: dict[str, Any], provider: str) -> dict[str, Any]:
    """A relative program path (./agent.py) made absolute: leaves run it from their own workspace."""
    key = {"command": "argv", "codex": "binary"}.get(provider)
    if key is None or key not in options:
        return options
    value = options[key]
    program = value[0] if key == "argv" and isinstance(value, list) and value else value
    if not isinstance(program, str) or os.sep not in program or os.path.isabs(program) or "{" in program:
        return options
    absolute = os.path.abspath(program)
    return {**options, key: [absolute, *value[1:]] if key == "argv" else absolute}
