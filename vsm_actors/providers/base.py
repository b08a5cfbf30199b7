"""The model-provider port: requests, responses, usage and the provider error tree.

A System 1 leaf turns a task packet into a `ModelRequest` and hands it to a `ModelProvider`.
Providers are synchronous on purpose: they are called from inside a Thespian actor handler (or a
remote worker thread), where there is no event loop to await on.

Error tree (every provider raises only these, so a leaf can turn any failure into a failed
`TaskResult` instead of letting Thespian retry the handler)::

    ModelProviderError
    ├── MissingConfig          "missing configuration: …"
    ├── ProviderRequestError   "provider request failed: …"
    ├── InvalidResponse        "provider response was invalid: …"
    └── ProviderConfigError    "invalid provider configuration: …"
        ├── InvalidScript      (scripted provider; names the rule index and field)
        └── UnknownProvider    (make_provider; lists the valid names)

The first three messages match the reference worker's, because failed results carry them verbatim
(e.g. "provider request failed: forced primary coding failure").
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable
from urllib.parse import unquote

from attrs import field, frozen

from ..core.model.node import ModelSpec

__all__ = [
    "MIN_SECRET_LEN",
    "REDACTED",
    "InvalidResponse",
    "InvalidScript",
    "MissingConfig",
    "ModelProvider",
    "ModelProviderError",
    "ModelRequest",
    "ModelResponse",
    "ModelUsage",
    "ProviderConfigError",
    "ProviderRequestError",
    "UnknownProvider",
    "looks_secret",
    "redact",
    "rough_token_estimate",
    "runs_off_thread",
    "secret_values_from_env",
    "url_passwords",
]


@frozen
class ModelUsage:
    """Token usage reported (or estimated) for one completion."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


@frozen
class ModelRequest:
    """One completion request: the node's model, its rendered instructions and the task input.

    `metadata` carries harness facts the providers may use: `node_id`, `node_name`, `task_id`
    (always set by the prompt builder) and, when known, `operation_kind` and `task_title`.
    """

    model: ModelSpec
    instructions: str = ""
    input: str = ""
    metadata: dict[str, str] = field(factory=dict)


@frozen
class ModelResponse:
    """What a provider returns.

    `raw` is provider-specific JSON-like data; the leaf harvests `files_touched` (list of str) and
    `artifacts` (list of JSON values) from it when it is a mapping. `latency_ms` is set only by
    providers that simulate time (the scripted provider); otherwise the leaf measures wall time.
    """

    output_text: str
    usage: ModelUsage | None = None
    raw: object | None = None
    latency_ms: int | None = None


class ModelProviderError(Exception):
    """Base of every error a provider raises; `detail` holds the message without its prefix."""

    prefix = ""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.prefix}{self.detail}"


class MissingConfig(ModelProviderError):
    """A required setting (environment variable, optional package) is absent."""

    prefix = "missing configuration: "


class ProviderRequestError(ModelProviderError):
    """The provider was reached (or spawned) but the completion failed."""

    prefix = "provider request failed: "


class InvalidResponse(ModelProviderError):
    """The provider answered, but the answer could not be understood."""

    prefix = "provider response was invalid: "


class ProviderConfigError(ModelProviderError):
    """The options given to build a provider are wrong (not missing: wrong)."""

    prefix = "invalid provider configuration: "


class InvalidScript(ProviderConfigError):
    """A scripted-provider script failed validation.

    `rule_index` is the 0-based rule position (None for the top level or the default outcome) and
    `field` the offending key, so the message points straight at the line to fix.
    """

    def __init__(self, detail: str, *, rule_index: int | None = None, field: str | None = None,
                 section: str | None = None) -> None:
        where = section or ("script" if rule_index is None else f"rule {rule_index}")
        location = f"{where}: field {field!r}" if field else where
        super().__init__(f"{location}: {detail}")
        self.rule_index = rule_index
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        # Exception pickling would re-run __init__ with the formatted text; keep the data intact.
        return (_rebuild_invalid_script, (self.detail, self.rule_index, self.field))


def _rebuild_invalid_script(detail: str, rule_index: int | None, field: str | None) -> InvalidScript:
    error = InvalidScript.__new__(InvalidScript)
    Exception.__init__(error, detail)
    error.detail, error.rule_index, error.field = detail, rule_index, field
    return error


class UnknownProvider(ProviderConfigError):
    """`make_provider` was given a name it does not know."""

    def __init__(self, name: str, valid: Iterable[str] = ()) -> None:
        self.name = name
        self.valid = tuple(sorted(valid))
        super().__init__(f"unknown provider {name!r}; valid names: {', '.join(self.valid)}")

    def __reduce__(self) -> tuple[object, ...]:
        return (UnknownProvider, (self.name, self.valid))


@runtime_checkable
class ModelProvider(Protocol):
    """A synchronous completion backend for System 1 leaves."""

    #: Short stable name, recorded in results and traces (never a secret).
    name: str
    # Optional, not part of the protocol's checked members: `blocking = True` on a provider whose
    # calls wait on the outside world (see `runs_off_thread`).

    def complete(self, request: ModelRequest) -> ModelResponse:
        """Return a completion, or raise a `ModelProviderError` subclass (never anything else)."""
        ...


def runs_off_thread(provider: object) -> bool:
    """Does the provider wait on the outside world (a process, the network)? Such a provider sets
    `blocking = True`, and an in-process leaf calls it on a worker thread so other leaves work
    meanwhile (actors/leaf_worker.py). Deterministic providers leave it unset: they are called in
    the actor's handler, so a simulation runs the same every time."""
    return getattr(provider, "blocking", False) is True


def rough_token_estimate(text: str) -> int:
    """Estimate tokens as ceil(UTF-8 byte length / 4), the reference's rule of thumb. (An ASCII
    string knows it is one, and then its length is its byte length: no copy to count.)"""
    return ((len(text) if text.isascii() else len(text.encode("utf-8"))) + 3) // 4


# Names of environment variables whose values are secrets when a child process is given them:
# API keys, tokens, passwords (…_PASS too), Sentry-style DSNs, credentials, auth values. AUTHOR is
# excluded: GIT_AUTHOR_NAME is a name, and redacting it would erase it from every answer.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASS|DSN|CREDENTIAL|AUTH(?!OR)", re.IGNORECASE)
# Shorter values are not redacted: a 1-2 character "secret" would erase ordinary letters and digits
# from every answer, and guards nothing (it is guessed at once). Anything of 3 characters or more
# given as a secret is redacted, however short.
MIN_SECRET_LEN = 3
# Flag values of secret-looking names (HAS_TOKEN=yes, USE_AUTH=off) are settings, not secrets.
_FLAG_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null", "0", "1"})
# scheme://user:PASSWORD@host - the password part of any URL, wherever it appears in a text
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)([^\s@/]+)@")
REDACTED = "[REDACTED]"


def looks_secret(name: str) -> bool:
    """Does an environment variable of this name hold a secret (…KEY, …TOKEN, …PASS, …DSN, …)?"""
    return _SECRET_NAME.search(name) is not None


def url_passwords(value: str) -> tuple[str, ...]:
    """The passwords of URLs in `value`, as written and percent-decoded (a child may print either)."""
    found: list[str] = []
    for match in _URL_PASSWORD.finditer(value):
        found += dict.fromkeys((match.group(2), unquote(match.group(2))))
    return tuple(found)


def secret_values_from_env(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The secrets an environment (ours by default) holds: the values of secret-looking variables
    (see `looks_secret`; flag values such as "yes" aside) and the password of every URL value
    (DATABASE_URL=postgresql://u:pw@h/db gives "pw")."""
    source = os.environ if env is None else env
    found: list[str] = []
    for name, value in source.items():
        if looks_secret(name) and value.strip().lower() not in _FLAG_VALUES:
            found.append(value)
        if "://" in value:
            found += url_passwords(value)
    return tuple(found)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret (longest first; MIN_SECRET_LEN characters or more)
    with a fixed marker, and mask the password of every URL in the text, whatever its length."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + "@", text)
    return text
