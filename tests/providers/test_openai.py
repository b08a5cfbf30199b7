"""OpenAIResponsesProvider against a local Responses API stub served on 127.0.0.1."""

from __future__ import annotations

import sys

import pytest

from vsm_actors.core.model.node import ModelSpec
from vsm_actors.providers import (
    InvalidResponse,
    MissingConfig,
    OpenAIConfig,
    OpenAIResponsesProvider,
    ProviderRequestError,
    make_provider,
)
from vsm_actors.providers.openai import DEFAULT_BASE_URL, DEFAULT_MODEL

from .conftest import CANNED_RESPONSE, ResponsesStub, make_request

pytest.importorskip("openai")

API_KEY = "sk-openai-test-SECRET-0123456789"


def _provider(stub: ResponsesStub) -> OpenAIResponsesProvider:
    return OpenAIResponsesProvider(OpenAIConfig(api_key=API_KEY, base_url=stub.base_url + "/", max_retries=0))


def test_posts_model_instructions_and_input_with_bearer_auth(responses_stub: ResponsesStub) -> None:
    """An unbound model becomes the default; text parts are joined; usage and raw come back."""
    request = make_request()
    response = _provider(responses_stub).complete(request)
    sent = responses_stub.requests[-1]
    assert sent["path"] == "/v1/responses"
    assert sent["headers"]["authorization"] == f"Bearer {API_KEY}"
    body = sent["json"]
    assert (body["model"], body["instructions"], body["input"]) == (DEFAULT_MODEL, request.instructions, request.input)
    assert "reasoning" not in body
    assert response.output_text == "stub says hello\nsecond part"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (42, 7)
    assert response.raw == CANNED_RESPONSE


def test_node_model_and_effort_are_sent(responses_stub: ResponsesStub) -> None:
    """A bound model is used as is, and a non-blank effort becomes reasoning.effort."""
    _provider(responses_stub).complete(make_request(model=ModelSpec(model="gpt-5-codex", effort="high")))
    body = responses_stub.requests[-1]["json"]
    assert body["model"] == "gpt-5-codex" and body["reasoning"] == {"effort": "high"}
    _provider(responses_stub).complete(make_request(model=ModelSpec(model="  ", effort=" ")))
    body = responses_stub.requests[-1]["json"]
    assert body["model"] == DEFAULT_MODEL and "reasoning" not in body


def test_top_level_output_text_wins_and_usage_may_be_absent(responses_stub: ResponsesStub) -> None:
    """A top-level output_text string is preferred; a missing usage object gives usage None."""
    responses_stub.reply(200, {"output_text": "top level", "output": [{"content": [{"text": "ignored"}]}]})
    response = _provider(responses_stub).complete(make_request())
    assert response.output_text == "top level" and response.usage is None
    responses_stub.reply(200, {"output_text": "x", "usage": {"input_tokens": 3}})
    usage = _provider(responses_stub).complete(make_request()).usage
    assert (usage.input_tokens, usage.output_tokens) == (3, 0)


@pytest.mark.parametrize(
    ("status", "body", "fragment"),
    [
        (200, {"id": "r", "output": [{"type": "reasoning", "summary": []}]}, "missing output_text in response"),
        (200, "<html>not json</html>", "response body is not JSON"),
        (200, "[1, 2]", "not a JSON object"),
    ],
)
def test_unusable_answers_are_invalid_responses(responses_stub: ResponsesStub, status: int, body: object,
                                                fragment: str) -> None:
    """A 2xx answer without text, or without JSON, is an InvalidResponse."""
    responses_stub.reply(status, body)
    with pytest.raises(InvalidResponse, match=fragment):
        _provider(responses_stub).complete(make_request())


def test_error_status_is_a_request_error_with_the_body(responses_stub: ResponsesStub) -> None:
    """A non-2xx status reports the reference's wording: status line and body."""
    responses_stub.reply(500, {"error": {"message": "upstream exploded"}})
    with pytest.raises(ProviderRequestError) as caught:
        _provider(responses_stub).complete(make_request())
    message = str(caught.value)
    assert message.startswith("provider request failed: OpenAI Responses API returned 500 Internal Server Error: ")
    assert "upstream exploded" in message


def test_api_key_echoed_by_the_server_is_redacted(responses_stub: ResponsesStub) -> None:
    """Even when an error body repeats the key (as a 401 may), the message does not."""
    responses_stub.reply(401, {"error": {"message": f"Incorrect API key provided: {API_KEY}"}})
    with pytest.raises(ProviderRequestError) as caught:
        _provider(responses_stub).complete(make_request())
    assert "401 Unauthorized" in str(caught.value)
    assert API_KEY not in str(caught.value) and "[REDACTED]" in str(caught.value)
    assert API_KEY not in repr(_provider(responses_stub)) and API_KEY not in repr(caught.value)


def test_unreachable_server_is_a_request_error(responses_stub: ResponsesStub) -> None:
    """A closed port fails the request (connection error), without the key."""
    url = responses_stub.base_url
    responses_stub.server.shutdown()
    responses_stub.server.server_close()
    provider = OpenAIResponsesProvider(OpenAIConfig(api_key=API_KEY, base_url=url, max_retries=0, timeout_seconds=5))
    with pytest.raises(ProviderRequestError, match="connection failed") as caught:
        provider.complete(make_request())
    assert API_KEY not in str(caught.value)


def test_config_from_env() -> None:
    """OPENAI_API_KEY is required; base URL and model have the reference defaults."""
    with pytest.raises(MissingConfig) as caught:
        OpenAIConfig.from_env({})
    assert str(caught.value) == "missing configuration: OPENAI_API_KEY"
    config = OpenAIConfig.from_env({"OPENAI_API_KEY": API_KEY})
    assert (config.base_url, config.default_model) == (DEFAULT_BASE_URL, "gpt-5.5")
    config = OpenAIConfig.from_env({"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                                    "OPENAI_CODEX_MODEL": "m"}, max_retries=0)
    assert (config.base_url, config.default_model, config.max_retries) == ("http://127.0.0.1:9/v1", "m", 0)
    assert API_KEY not in repr(config)


def test_make_provider_openai(monkeypatch: pytest.MonkeyPatch, responses_stub: ResponsesStub) -> None:
    """make_provider('openai') reads the environment and works against the stub."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingConfig, match="OPENAI_API_KEY"):
        make_provider("openai")
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", responses_stub.base_url)
    provider = make_provider("openai", max_retries=0)
    assert provider.complete(make_request()).output_text.startswith("stub says hello")


def test_missing_package_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the optional openai package, building the provider says which extra to install."""
    monkeypatch.setitem(sys.modules, "openai", None)  # makes `import openai` raise ImportError
    with pytest.raises(MissingConfig, match=r"pip install 'vsm_actors\[openai\]'"):
        OpenAIResponsesProvider(OpenAIConfig(api_key=API_KEY))
