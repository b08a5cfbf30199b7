"""ScriptedProvider: canned, seeded outcomes for deterministic simulations and tests.

A script is plain data (callers load it from YAML or JSON)::

    seed: 7                         # optional; a constructor/`from_script` seed overrides it
    default:                        # optional; used when no rule matches (echo-like otherwise)
      output_text: "done"
    rules:                          # first match wins
      - match: {node_id: coder, operation_kind: Coding, task_title: "refactor"}
        outcome: completed          # or: failed
        output_text: "patched"
        input_tokens: 1200
        output_tokens: 300
        latency_ms: 4500            # reported in the response; slept only with `sleep=True`
        files_touched: [src/lib.py]
        failure_rate: 0.1           # fails for ~10% of task ids, stable for a given seed
      - match: {task_id: [t-13, t-14]}
        outcome: failed
        error: "forced failure"

Match keys (all optional; every key given must hold; a list means "any of"): `node_id`,
`node_name`, `task_id`, `operation_kind` (request metadata), and `task_title`, which matches when
the value is a substring of the request's `task_title` metadata. A rule without `match` matches
everything.

`ScriptedProvider.from_script(script, sleep=True)` (provider option `sleep: true`) really waits
`latency_ms` in each call, which makes it a slow provider for tests and benchmarks: it then counts as
blocking (`providers.runs_off_thread`), and an in-process leaf calls it off its thread. Without
`sleep` it never waits and stays in the handler, deterministic.

Why a hash instead of a random generator: a leaf may run the same task twice (Thespian retries,
broker redelivery) and simulations are replayed; hashing (seed, task_id) gives every task the same
fate on every run, in any order, in any process.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence

from attrs import field, frozen

from .base import (
    InvalidScript,
    ModelRequest,
    ModelResponse,
    ModelUsage,
    ProviderRequestError,
    rough_token_estimate,
)
from .echo import echo_text

__all__ = ["ScriptOutcome", "ScriptRule", "ScriptedProvider", "stable_fraction"]

MATCH_KEYS = ("node_id", "node_name", "operation_kind", "task_id", "task_title")
OUTCOME_KEYS = (
    "outcome", "output_text", "error", "input_tokens", "output_tokens", "latency_ms",
    "files_touched", "failure_rate",
)
RULE_KEYS = ("match", "name", *OUTCOME_KEYS)
OUTCOMES = ("completed", "failed")
DEFAULT_ERROR = "scripted failure"


@frozen(kw_only=True)
class ScriptOutcome:
    """What happens when a rule fires. Unset token counts fall back to rough estimates."""

    outcome: str = "completed"
    output_text: str | None = None
    error: str = DEFAULT_ERROR
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: int = 0
    files_touched: tuple[str, ...] = ()
    failure_rate: float | None = None


@frozen(kw_only=True)
class ScriptRule:
    """A matcher (key -> accepted values) plus the outcome it selects."""

    match: Mapping[str, tuple[str, ...]] = field(factory=dict)
    outcome: ScriptOutcome = field(factory=ScriptOutcome)
    name: str | None = None

    def matches(self, metadata: Mapping[str, str]) -> bool:
        """Return True when every match key holds for the request metadata."""
        for key, accepted in self.match.items():
            actual = metadata.get(key)
            if actual is None:
                return False
            if key == "task_title":
                if not any(part in actual for part in accepted):
                    return False
            elif actual not in accepted:
                return False
        return True


@frozen(kw_only=True)
class ScriptedProvider:
    """Return scripted outcomes chosen by the first matching rule; deterministic for a seed.

    `calls` records `(node_id, task_id)` for every request, in order, failures included.
    """

    rules: tuple[ScriptRule, ...] = ()
    default: ScriptOutcome = field(factory=ScriptOutcome)
    seed: int = 0
    name: str = "scripted"
    sleep: bool = False  # really wait latency_ms (a slow provider for tests), not only report it
    calls: list[tuple[str, str]] = field(factory=list, init=False, eq=False, repr=False)

    @classmethod
    def from_script(cls, script: Mapping[str, object] | Sequence[object] | None = None,
                    *, seed: int | None = None, name: str = "scripted", sleep: bool = False) -> ScriptedProvider:
        """Build from plain data; raise `InvalidScript` naming the rule index and field.

        A bare list is taken as the rules. `seed` overrides the script's own `seed` (default 0);
        `sleep` makes each call wait its `latency_ms`.
        """
        if not isinstance(sleep, bool):
            raise InvalidScript(f"must be true or false, got {sleep!r}", section="option", field="sleep")
        if script is None:
            script = {}
        if isinstance(script, Sequence) and not isinstance(script, (str, bytes)):
            script = {"rules": list(script)}
        if not isinstance(script, Mapping):
            raise InvalidScript(f"must be a mapping or a list of rules, got {type(script).__name__}")
        unknown = sorted(set(map(str, script)) - {"seed", "default", "rules"})
        if unknown:
            raise InvalidScript(f"unknown key(s) {unknown}; valid keys: default, rules, seed")
        script_seed = script.get("seed", 0)
        if not _is_int(script_seed):
            raise InvalidScript(f"must be an integer, got {script_seed!r}", field="seed")
        raw_rules = script.get("rules", [])
        if not isinstance(raw_rules, Sequence) or isinstance(raw_rules, (str, bytes)):
            raise InvalidScript("must be a list of rules", field="rules")
        default = _parse_outcome(script.get("default") or {}, rule_index=None, section="default")
        rules = tuple(_parse_rule(raw, index) for index, raw in enumerate(raw_rules))
        return cls(rules=rules, default=default, seed=script_seed if seed is None else seed, name=name, sleep=sleep)

    @property
    def blocking(self) -> bool:
        """A sleeping script waits like a real provider: an in-process leaf calls it off its thread."""
        return self.sleep

    def complete(self, request: ModelRequest) -> ModelResponse:
        """Apply the first matching rule (or the default); failures raise `ProviderRequestError`."""
        metadata = request.metadata
        task_id = metadata.get("task_id", "")
        self.calls.append((metadata.get("node_id", ""), task_id))
        index, outcome = self._select(metadata)
        if self.sleep and outcome.latency_ms:
            time.sleep(outcome.latency_ms / 1000)
        if outcome.outcome == "failed":
            raise ProviderRequestError(outcome.error)
        rate = outcome.failure_rate
        if rate is not None and stable_fraction(self.seed, task_id) < rate:
            raise ProviderRequestError(
                outcome.error if outcome.error != DEFAULT_ERROR
                else f"scripted failure (failure_rate={rate}, task_id={task_id})"
            )
        text = outcome.output_text if outcome.output_text is not None else echo_text(self.name, request)
        usage = ModelUsage(
            input_tokens=outcome.input_tokens if outcome.input_tokens is not None
            else rough_token_estimate(request.instructions) + rough_token_estimate(request.input),
            output_tokens=outcome.output_tokens if outcome.output_tokens is not None
            else rough_token_estimate(text),
        )
        raw = {"files_touched": list(outcome.files_touched), "scripted_rule": index}
        return ModelResponse(output_text=text, usage=usage, raw=raw, latency_ms=outcome.latency_ms)

    def _select(self, metadata: Mapping[str, str]) -> tuple[int | None, ScriptOutcome]:
        for index, rule in enumerate(self.rules):
            if rule.matches(metadata):
                return index, rule.outcome
        return None, self.default


def stable_fraction(seed: int, task_id: str) -> float:
    """Map (seed, task_id) to a fraction in [0, 1), identical across runs, processes and hosts.

    `hash()` is salted per process, so a cryptographic digest is used instead.
    """
    digest = hashlib.sha256(f"{seed}\x1f{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _is_int(value: object) -> bool:
    # bool is an int subclass; `latency_ms: true` is a typo, not a number.
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_rule(raw: object, index: int) -> ScriptRule:
    if not isinstance(raw, Mapping):
        raise InvalidScript(f"must be a mapping, got {type(raw).__name__}", rule_index=index)
    unknown = sorted(set(map(str, raw)) - set(RULE_KEYS))
    if unknown:
        raise InvalidScript(f"unknown field; valid fields: {', '.join(RULE_KEYS)}",
                            rule_index=index, field=unknown[0])
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidScript(f"must be a string, got {name!r}", rule_index=index, field="name")
    match = _parse_match(raw.get("match") or {}, index)
    outcome = _parse_outcome({k: v for k, v in raw.items() if k in OUTCOME_KEYS}, rule_index=index)
    return ScriptRule(match=match, outcome=outcome, name=name)


def _parse_match(raw: object, index: int) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise InvalidScript("must be a mapping of match keys", rule_index=index, field="match")
    match: dict[str, tuple[str, ...]] = {}
    for key, value in raw.items():
        where = f"match.{key}"
        if key not in MATCH_KEYS:
            raise InvalidScript(f"unknown match key; valid keys: {', '.join(MATCH_KEYS)}",
                                rule_index=index, field=where)
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, Sequence) or not values or not all(isinstance(v, str) for v in values):
            raise InvalidScript(f"must be a string or a non-empty list of strings, got {value!r}",
                                rule_index=index, field=where)
        match[key] = tuple(values)
    return match


def _parse_outcome(raw: object, *, rule_index: int | None, section: str | None = None) -> ScriptOutcome:
    def fail(key: str, detail: str) -> InvalidScript:
        return InvalidScript(detail, rule_index=rule_index, field=key, section=section)

    if not isinstance(raw, Mapping):
        raise InvalidScript(f"must be a mapping, got {type(raw).__name__}", field=section)
    unknown = sorted(set(map(str, raw)) - set(OUTCOME_KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown field; valid fields: {', '.join(OUTCOME_KEYS)}")
    outcome = raw.get("outcome", "completed")
    if outcome not in OUTCOMES:
        raise fail("outcome", f"must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    for key in ("output_text", "error"):
        if key in raw and not isinstance(raw[key], str):
            raise fail(key, f"must be a string, got {raw[key]!r}")
    for key in ("input_tokens", "output_tokens", "latency_ms"):
        if key in raw and not (_is_int(raw[key]) and raw[key] >= 0):
            raise fail(key, f"must be a non-negative integer, got {raw[key]!r}")
    files = raw.get("files_touched", [])
    if isinstance(files, str) or not isinstance(files, Sequence) or not all(isinstance(f, str) for f in files):
        raise fail("files_touched", f"must be a list of strings, got {files!r}")
    rate = raw.get("failure_rate")
    if rate is not None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise fail("failure_rate", f"must be a number in [0, 1], got {rate!r}")
        if outcome == "failed":
            raise fail("failure_rate", "only applies to outcome 'completed' (a failed rule always fails)")
    return ScriptOutcome(
        outcome=outcome,
        output_text=raw.get("output_text"),
        error=raw.get("error", DEFAULT_ERROR),
        input_tokens=raw.get("input_tokens"),
        output_tokens=raw.get("output_tokens"),
        latency_ms=raw.get("latency_ms", 0),
        files_touched=tuple(files),
        failure_rate=None if rate is None else float(rate),
    )
