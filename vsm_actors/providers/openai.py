"""OpenAIResponsesProvider: a leaf's model served by the OpenAI Responses API.

Uses the official `openai` client, an optional extra (`pip install 'vsm_actors[openai]'`), imported
only when this provider is built so the rest of the package works without it. The response body is
read as raw JSON and interpreted the reference's way (top-level `output_text`, else the text parts
of `output[].content[]`), so any Responses-compatible server works, not only what the SDK's
models know about.

The API key never appears in an error message, `repr`, or `raw`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from attrs import evolve, field, frozen

from .base import (
    InvalidResponse,
    MissingConfig,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ProviderRequestError,
    redact,
    secret_values_from_env,
)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "OpenAIConfig", "OpenAIResponsesProvider", "extract_output_text"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-5.5"
ERROR_BODY_CHARS = 2000
_INSTALL_HINT = "python package 'openai' (install it with: pip install 'vsm_actors[openai]')"


@frozen(kw_only=True)
class OpenAIConfig:
    """Connection settings; `default_model` is used when the node's model is unbound or blank."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    default_model: str = DEFAULT_MODEL
    timeout_seconds: float = 600.0
    # The SDK retries 429/5xx with backoff; the reference tried once. Set 0 for one attempt.
    max_retries: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> OpenAIConfig:
        """Read OPENAI_API_KEY (required), OPENAI_BASE_URL and OPENAI_CODEX_MODEL.

        Raises:
            MissingConfig: OPENAI_API_KEY is unset or blank (and not given as an override).
        """
        source = os.environ if env is None else env
        api_key = overrides.pop("api_key", None) or source.get("OPENAI_API_KEY", "").strip()
        if not api_key:
            raise MissingConfig("OPENAI_API_KEY")
        config = cls(
            api_key=api_key,
            base_url=source.get("OPENAI_BASE_URL", "").strip() or DEFAULT_BASE_URL,
            default_model=source.get("OPENAI_CODEX_MODEL", "").strip() or DEFAULT_MODEL,
        )
        return evolve(config, **overrides)


class _ClientSlot:
    """Holds the lazily built SDK client; pickles as empty (a client cannot cross processes)."""

    def __init__(self) -> None:
        self.client: Any = None
        self.lock = threading.Lock()

    def __reduce__(self) -> tuple[object, ...]:
        return (_ClientSlot, ())


def _import_openai() -> Any:
    try:
        import openai  # noqa: PLC0415 - optional extra, imported on demand
    except ImportError:
        raise MissingConfig(_INSTALL_HINT) from None
    return openai


@frozen
class OpenAIResponsesProvider:
    """POST each request to `{base_url}/responses` with the node's model and reasoning effort."""

    config: OpenAIConfig
    name: str = "openai"
    _slot: _ClientSlot = field(init=False, factory=_ClientSlot, eq=False, repr=False)
    blocking = True  # see providers.runs_off_thread

    def __attrs_post_init__(self) -> None:
        _import_openai()  # fail at build time, with the install hint, not on the first task

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> OpenAIResponsesProvider:
        """Build from OPENAI_API_KEY / OPENAI_BASE_URL / OPENAI_CODEX_MODEL (see `OpenAIConfig`)."""
        return cls(OpenAIConfig.from_env(env, **overrides))

    def model_for(self, request: ModelRequest) -> str:
        """The node's model unless it is "unbound" or blank, else the configured default."""
        model = request.model.model.strip()
        return self.config.default_model if not model or model == "unbound" else model

    def complete(self, request: ModelRequest) -> ModelResponse:
        """Call the Responses API once (plus SDK retries); map every failure to a provider error."""
        openai = _import_openai()
        body: dict[str, Any] = {
            "model": self.model_for(request),
            "instructions": request.instructions,
            "input": request.input,
        }
        effort = (request.model.effort or "").strip()
        if effort:
            body["reasoning"] = {"effort": effort}
        try:
            raw_response = self._client(openai).responses.with_raw_response.create(**body)
            text = raw_response.text
        except openai.APIStatusError as error:
            status = error.status_code
            phrase = _status_phrase(status)
            detail = error.response.text[:ERROR_BODY_CHARS]
            raise ProviderRequestError(self._scrub(f"OpenAI Responses API returned {phrase}: {detail}")) from None
        except openai.APITimeoutError:
            raise ProviderRequestError(
                f"OpenAI Responses API request timed out after {self.config.timeout_seconds:g}s") from None
        except openai.APIConnectionError as error:
            cause = error.__cause__ or error
            raise ProviderRequestError(
                self._scrub(f"OpenAI Responses API connection failed: {type(cause).__name__}: {cause}")) from None
        except openai.OpenAIError as error:
            raise ProviderRequestError(self._scrub(f"OpenAI client error: {type(error).__name__}: {error}")) from None
        return self._parse(text)

    def close(self) -> None:
        """Close the HTTP connection pool, if one was opened."""
        with self._slot.lock:
            if self._slot.client is not None:
                self._slot.client.close()
                self._slot.client = None

    def _client(self, openai: Any) -> Any:
        with self._slot.lock:
            if self._slot.client is None:
                self._slot.client = openai.OpenAI(
                    api_key=self.config.api_key,
                    base_url=self.config.base_url.rstrip("/"),
                    timeout=self.config.timeout_seconds,
                    max_retries=self.config.max_retries,
                )
            return self._slot.client

    def _parse(self, text: str) -> ModelResponse:
        try:
            payload = json.loads(text)
        except ValueError as error:
            raise InvalidResponse(f"response body is not JSON: {error}") from None
        if not isinstance(payload, dict):
            raise InvalidResponse(f"response body is not a JSON object: {type(payload).__name__}")
        usage = payload.get("usage")
        return ModelResponse(
            output_text=extract_output_text(payload),
            usage=ModelUsage(_count(usage.get("input_tokens")), _count(usage.get("output_tokens")))
            if isinstance(usage, dict) else None,
            raw=payload,
        )

    def _scrub(self, message: str) -> str:
        return redact(message, (self.config.api_key, *secret_values_from_env()))


def extract_output_text(payload: Mapping[str, Any]) -> str:
    """Top-level `output_text`, else every `output[].content[].text` joined by newlines.

    Raises:
        InvalidResponse: neither is present.
    """
    text = payload.get("output_text")
    if isinstance(text, str):
        return text
    parts = [
        content["text"]
        for item in _list(payload.get("output")) if isinstance(item, dict)
        for content in _list(item.get("content")) if isinstance(content, dict)
        if isinstance(content.get("text"), str)
    ]
    if not parts:
        raise InvalidResponse("missing output_text in response")
    return "\n".join(parts)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _status_phrase(status: int) -> str:
    # Rust's StatusCode display, e.g. "500 Internal Server Error", as in the reference's message.
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
