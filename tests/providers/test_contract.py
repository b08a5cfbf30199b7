"""One contract every ModelProvider honours, run against each real implementation."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from vsm_actors.providers import (
    CodexConfig,
    CodexProvider,
    CommandProvider,
    EchoProvider,
    InvalidResponse,
    MissingConfig,
    ModelProvider,
    ModelProviderError,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    OpenAIConfig,
    OpenAIResponsesProvider,
    ProviderRequestError,
    ScriptedProvider,
)

from .conftest import FAKE_CODEX, ResponsesStub, make_request, write_script

ECHO_SCRIPT = r'''
import hashlib, sys
prompt = sys.stdin.read()
if "PLEASE FAIL" in prompt:
    sys.stderr.write("refusing on purpose\n")
    sys.exit(3)
print("handled", sys.argv[1], hashlib.sha256(prompt.encode()).hexdigest()[:12])
'''


@attrs.frozen
class Case:
    """How to build one provider for a normal request and for a failing one."""

    make: Callable[[], ModelProvider]
    failing: Callable[[], tuple[ModelProvider, ModelRequest]] | None
    failure_type: type[ModelProviderError] | None


Stub = Callable[[], ResponsesStub]


def _echo(tmp: Path, stub: Stub) -> Case:
    return Case(EchoProvider, None, None)  # echo has no failure mode


def _scripted(tmp: Path, stub: Stub) -> Case:
    script = {"rules": [{"match": {"task_id": "doomed"}, "outcome": "failed", "error": "forced"}],
              "default": {"output_text": "scripted ok", "input_tokens": 10, "output_tokens": 3}}
    make = lambda: ScriptedProvider.from_script(script, seed=1)  # noqa: E731
    return Case(make, lambda: (make(), make_request(task_id="doomed")), ProviderRequestError)


def _command(tmp: Path, stub: Stub) -> Case:
    script = write_script(tmp, "leaf.py", ECHO_SCRIPT)
    make = lambda: CommandProvider(argv=[sys.executable, str(script), "{task_id}"], workspace=str(tmp))  # noqa: E731
    failing = make_request(task_id="t-fail")
    failing = attrs.evolve(failing, input=failing.input + "\nPLEASE FAIL")
    return Case(make, lambda: (make(), failing), ProviderRequestError)


def _codex(tmp: Path, stub: Stub) -> Case:
    codex = write_script(tmp, "codex", FAKE_CODEX)
    make = lambda: CodexProvider(CodexConfig(binary=str(codex), workspace_root=str(tmp)))  # noqa: E731
    failing = attrs.evolve(make_request(), input="MODE=turn_failed")
    return Case(make, lambda: (make(), failing), ProviderRequestError)


def _openai(tmp: Path, stub: Stub) -> Case:
    pytest.importorskip("openai")  # the optional extra; only this case needs it
    server = stub()
    config = OpenAIConfig(api_key="sk-contract-test-key", base_url=server.base_url, max_retries=0)
    make = lambda: OpenAIResponsesProvider(config)  # noqa: E731

    def failing() -> tuple[ModelProvider, ModelRequest]:
        server.reply(200, {"id": "resp_2", "output": []})
        return make(), make_request()

    return Case(make, failing, InvalidResponse)


CASES = {"echo": _echo, "scripted": _scripted, "command": _command, "codex": _codex, "openai": _openai}


# A remote model makes no determinism claim; every other provider does.
DETERMINISTIC = sorted(name for name in CASES if name != "openai")


def _build(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Case:
    # Only the openai case starts the HTTP stub.
    return CASES[name](tmp_path, lambda: request.getfixturevalue("responses_stub"))


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return _build(request, request.param, tmp_path)


FALLIBLE = sorted(name for name in CASES if name != "echo")


@pytest.fixture(params=FALLIBLE)
def failing_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return _build(request, request.param, tmp_path)


@pytest.fixture(params=DETERMINISTIC)
def deterministic_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return _build(request, request.param, tmp_path)


def test_provider_satisfies_protocol(case: Case) -> None:
    """Every provider is a ModelProvider with a non-empty, non-secret name."""
    provider = case.make()
    assert isinstance(provider, ModelProvider)
    assert isinstance(provider.name, str) and provider.name
    assert "sk-" not in provider.name


def test_normal_request_returns_text_and_usage(case: Case) -> None:
    """A normal request yields a ModelResponse with output text and consistent usage."""
    response = case.make().complete(make_request())
    assert isinstance(response, ModelResponse)
    assert isinstance(response.output_text, str) and response.output_text.strip()
    assert isinstance(response.usage, ModelUsage)
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.latency_ms is None or response.latency_ms >= 0


def test_failure_raises_a_provider_error(failing_case: Case) -> None:
    """Failures surface only as ModelProviderError subclasses with the reference's message prefix."""
    case = failing_case
    assert case.failing is not None and case.failure_type is not None
    provider, request = case.failing()
    with pytest.raises(ModelProviderError) as caught:
        provider.complete(request)
    assert isinstance(caught.value, case.failure_type)
    prefix = {ProviderRequestError: "provider request failed: ", InvalidResponse: "provider response was invalid: ",
              MissingConfig: "missing configuration: "}[case.failure_type]
    assert str(caught.value).startswith(prefix)


def test_deterministic_providers_repeat_themselves(deterministic_case: Case) -> None:
    """Providers that claim determinism give equal text and usage for equal requests."""
    first = deterministic_case.make().complete(make_request(task_id="same"))
    second = deterministic_case.make().complete(make_request(task_id="same"))
    assert (first.output_text, first.usage) == (second.output_text, second.usage)


def test_provider_survives_pickling(case: Case) -> None:
    """Providers cross Thespian process boundaries by pickle and still work afterwards."""
    provider = pickle.loads(pickle.dumps(case.make()))
    assert provider.complete(make_request()).output_text


def test_errors_survive_pickling(failing_case: Case) -> None:
    """A provider error keeps its type and message through pickle (failed results cross processes)."""
    assert failing_case.failing is not None
    provider, request = failing_case.failing()
    with pytest.raises(ModelProviderError) as caught:
        provider.complete(request)
    clone = pickle.loads(pickle.dumps(caught.value))
    assert type(clone) is type(caught.value) and str(clone) == str(caught.value)
