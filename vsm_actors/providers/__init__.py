"""Model providers: what a System 1 leaf calls to get work done.

All providers implement the synchronous `ModelProvider` protocol and raise only
`ModelProviderError` subclasses. `make_provider(name, **options)` builds one by name:

    echo      EchoProvider(prefix="echo")                        deterministic, offline
    scripted  ScriptedProvider.from_script(script, seed=…)       deterministic simulations
    command   CommandProvider(argv=[…], workspace=…, timeout_seconds=…, env=…, secret_env=…)
    codex     CodexProvider(CodexConfig.from_env(**options))     `codex exec` preset
    openai    OpenAIResponsesProvider(OpenAIConfig.from_env(**options))   needs the [openai] extra

The `openai` package is imported only when an OpenAI provider is built, so it stays optional.
"""

from __future__ import annotations

from typing import Any

from .base import (
    InvalidResponse,
    InvalidScript,
    MissingConfig,
    ModelProvider,
    ModelProviderError,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ProviderConfigError,
    ProviderRequestError,
    UnknownProvider,
    rough_token_estimate,
    runs_off_thread,
)
from .codex import CodexApproval, CodexConfig, CodexProvider, CodexSandbox, codex_argv, parse_codex_events
from .command import CommandProvider, render_argv, render_prompt
from .echo import EchoProvider
from .openai import OpenAIConfig, OpenAIResponsesProvider
from .scripted import ScriptedProvider, stable_fraction

__all__ = [
    "PROVIDER_NAMES",
    "CodexApproval",
    "CodexConfig",
    "CodexProvider",
    "CodexSandbox",
    "CommandProvider",
    "EchoProvider",
    "InvalidResponse",
    "InvalidScript",
    "MissingConfig",
    "ModelProvider",
    "ModelProviderError",
    "ModelRequest",
    "ModelResponse",
    "ModelUsage",
    "OpenAIConfig",
    "OpenAIResponsesProvider",
    "ProviderConfigError",
    "ProviderRequestError",
    "ScriptedProvider",
    "UnknownProvider",
    "codex_argv",
    "make_provider",
    "parse_codex_events",
    "render_argv",
    "render_prompt",
    "rough_token_estimate",
    "runs_off_thread",
    "stable_fraction",
]

PROVIDER_NAMES = ("codex", "command", "echo", "openai", "scripted", "world")


def make_provider(name: str, **options: Any) -> ModelProvider:
    """Build the provider registered under `name` (case-insensitive) from keyword options.

    Raises:
        UnknownProvider: `name` is not one of `PROVIDER_NAMES` (the message lists them).
        ProviderConfigError: the options do not fit the provider.
        MissingConfig: a required setting (e.g. OPENAI_API_KEY) or package is missing.
    """
    key = name.strip().lower()
    if key not in PROVIDER_NAMES:
        raise UnknownProvider(name, PROVIDER_NAMES)
    try:
        return _build(key, options)
    except TypeError as error:
        # Unknown or misspelt keyword options surface as TypeError from the constructors.
        raise ProviderConfigError(f"bad options for provider {key!r}: {error}") from None


def _build(key: str, options: dict[str, Any]) -> ModelProvider:
    if key == "echo":
        return EchoProvider(**options)
    if key == "world":
        from .world import WorldProvider
        return WorldProvider(**options)
    if key == "scripted":
        script = options.pop("script", None)
        return ScriptedProvider.from_script(script, **options)
    if key == "command":
        return CommandProvider(**options)
    if key == "codex":
        return CodexProvider.from_env(**options)
    return OpenAIResponsesProvider.from_env(**options)
