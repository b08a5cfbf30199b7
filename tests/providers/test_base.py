"""The provider port: usage arithmetic, token estimates, error messages and the registry."""

from __future__ import annotations

import pickle

import pytest

from vsm_actors.providers import (
    PROVIDER_NAMES,
    CommandProvider,
    EchoProvider,
    InvalidResponse,
    InvalidScript,
    MissingConfig,
    ModelProviderError,
    ModelUsage,
    ProviderConfigError,
    ProviderRequestError,
    ScriptedProvider,
    UnknownProvider,
    make_provider,
    rough_token_estimate,
)

from .conftest import make_request


def test_usage_total() -> None:
    """total_tokens is input plus output."""
    assert ModelUsage(12, 30).total_tokens == 42


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("é" * 4, 2)])
def test_rough_token_estimate_counts_utf8_bytes(text: str, tokens: int) -> None:
    """ceil(UTF-8 bytes / 4): 'é' is two bytes."""
    assert rough_token_estimate(text) == tokens


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (MissingConfig("OPENAI_API_KEY"), "missing configuration: OPENAI_API_KEY"),
        (ProviderRequestError("forced primary coding failure"), "provider request failed: forced primary coding failure"),
        (InvalidResponse("missing output_text in response"), "provider response was invalid: missing output_text in response"),
        (InvalidScript("bad", rule_index=2, field="outcome"), "invalid provider configuration: rule 2: field 'outcome': bad"),
    ],
)
def test_error_messages_match_the_reference(error: ModelProviderError, text: str) -> None:
    """str() of each error is the reference's prefix plus the detail, and survives pickling."""
    assert str(error) == text
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error) and str(clone) == text
    assert getattr(clone, "rule_index", None) == getattr(error, "rule_index", None)


def test_echo_output_format() -> None:
    """Echo repeats instructions and input under a prefix, with estimated usage and no raw."""
    request = make_request()
    response = EchoProvider(prefix="probe").complete(request)
    assert response.output_text == f"probe: accepted task.\n\nInstructions:\n{request.instructions}\n\nInput:\n{request.input}"
    assert response.usage == ModelUsage(
        rough_token_estimate(request.instructions) + rough_token_estimate(request.input),
        rough_token_estimate(response.output_text))
    assert response.raw is None and response.latency_ms is None


def test_registry_builds_each_local_provider() -> None:
    """make_provider knows every documented name; names are case-insensitive."""
    assert PROVIDER_NAMES == ("codex", "command", "echo", "openai", "scripted", "world")
    assert isinstance(make_provider("Echo", prefix="x"), EchoProvider)
    assert isinstance(make_provider("scripted", script=[{"output_text": "hi"}]), ScriptedProvider)
    assert isinstance(make_provider("command", argv=["true"]), CommandProvider)


def test_unknown_name_lists_the_valid_ones() -> None:
    """An unknown provider name is rejected with every valid name in the message."""
    with pytest.raises(UnknownProvider) as caught:
        make_provider("gpt")
    assert str(caught.value) == (
        "invalid provider configuration: unknown provider 'gpt'; valid names: codex, command, echo, openai, scripted, world")
    assert caught.value.valid == PROVIDER_NAMES


def test_bad_options_are_a_config_error() -> None:
    """A misspelt option is reported as a configuration error naming the provider."""
    with pytest.raises(ProviderConfigError, match="bad options for provider 'echo'.*prefx"):
        make_provider("echo", prefx="x")
