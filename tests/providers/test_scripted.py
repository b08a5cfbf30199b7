"""ScriptedProvider: rule matching, seeded failure rates, simulated latency and script validation."""

from __future__ import annotations

import json
import time

import pytest

from vsm_actors.providers import (
    InvalidScript,
    ProviderConfigError,
    ProviderRequestError,
    ScriptedProvider,
    make_provider,
    rough_token_estimate,
)

from .conftest import make_request

SCRIPT = json.loads("""
{
  "seed": 11,
  "default": {"output_text": "default answer"},
  "rules": [
    {"name": "coder refactors", "match": {"node_id": "coder", "task_title": "refactor"},
     "output_text": "refactored", "input_tokens": 1200, "output_tokens": 300, "latency_ms": 4500,
     "files_touched": ["src/lib.py", "src/util.py"]},
    {"match": {"task_id": ["t-13", "t-14"]}, "outcome": "failed", "error": "forced failure"},
    {"match": {"operation_kind": "Reviewing"}, "output_text": "LGTM"},
    {"match": {"node_name": "Tester"}, "output_text": "tests pass"},
    {"match": {"node_id": "coder"}, "output_text": "coded"}
  ]
}
""")


def test_first_matching_rule_wins_and_reports_its_outcome() -> None:
    """All match keys of a rule must hold; the first such rule gives text, usage, latency and files."""
    provider = ScriptedProvider.from_script(SCRIPT)
    response = provider.complete(make_request(node_id="coder", task_title="Please refactor the parser"))
    assert response.output_text == "refactored"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (1200, 300)
    assert response.latency_ms == 4500
    assert response.raw == {"files_touched": ["src/lib.py", "src/util.py"], "scripted_rule": 0}
    # Same node, title without the substring: the first rule no longer matches, the last one does.
    assert provider.complete(make_request(node_id="coder", task_title="write docs")).output_text == "coded"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"node_id": "rev", "operation_kind": "Reviewing"}, "LGTM"),
        ({"node_id": "tester"}, "tests pass"),  # node_name "Tester" comes from make_request
        ({"node_id": "planner", "operation_kind": "Planning"}, "default answer"),
    ],
)
def test_match_keys(metadata: dict[str, str], expected: str) -> None:
    """operation_kind and node_name match exactly; unmatched requests get the default outcome."""
    provider = ScriptedProvider.from_script(SCRIPT)
    node_id = metadata.pop("node_id")
    assert provider.complete(make_request(node_id=node_id, **metadata)).output_text == expected


def test_missing_metadata_key_does_not_match() -> None:
    """A rule on task_title does not match a request that carries no task_title at all."""
    provider = ScriptedProvider.from_script([{"match": {"task_title": ""}, "output_text": "titled"}])
    assert provider.complete(make_request(task_title="anything")).output_text == "titled"
    assert provider.complete(make_request()).output_text.startswith("scripted: accepted task.")


def test_failed_outcome_raises_with_the_scripted_message() -> None:
    """A failed rule raises ProviderRequestError whose text is the reference's prefix + the message."""
    provider = ScriptedProvider.from_script(SCRIPT)
    for task_id in ("t-13", "t-14"):
        with pytest.raises(ProviderRequestError) as caught:
            provider.complete(make_request(task_id=task_id, node_id="coder"))
        assert str(caught.value) == "provider request failed: forced failure"


def test_default_outcome_is_echo_like_with_estimated_usage() -> None:
    """With no script, every request completes with echo-style text and estimated tokens, no latency."""
    provider = ScriptedProvider.from_script(None)
    request = make_request()
    response = provider.complete(request)
    assert response.output_text == (
        f"scripted: accepted task.\n\nInstructions:\n{request.instructions}\n\nInput:\n{request.input}")
    assert response.usage.input_tokens == rough_token_estimate(request.instructions) + rough_token_estimate(request.input)
    assert response.usage.output_tokens == rough_token_estimate(response.output_text)
    assert response.latency_ms == 0


def test_latency_is_reported_never_slept() -> None:
    """A rule with an hour of latency returns at once, reporting the hour."""
    provider = ScriptedProvider.from_script([{"latency_ms": 3_600_000}])
    started = time.monotonic()
    assert provider.complete(make_request()).latency_ms == 3_600_000
    assert time.monotonic() - started < 1.0


def test_calls_are_recorded_in_order_including_failures() -> None:
    """`calls` lists (node_id, task_id) of every request, failed ones too."""
    provider = ScriptedProvider.from_script(SCRIPT)
    provider.complete(make_request(node_id="a", task_id="t-1"))
    with pytest.raises(ProviderRequestError):
        provider.complete(make_request(node_id="b", task_id="t-13"))
    provider.complete(make_request(node_id="c", task_id="t-2"))
    assert provider.calls == [("a", "t-1"), ("b", "t-13"), ("c", "t-2")]


def _failing_ids(provider: ScriptedProvider, task_ids: list[str]) -> set[str]:
    failed = set()
    for task_id in task_ids:
        try:
            provider.complete(make_request(task_id=task_id))
        except ProviderRequestError:
            failed.add(task_id)
    return failed


def test_failure_rate_is_a_stable_function_of_seed_and_task_id() -> None:
    """The same seed fails the same tasks in any order; another seed fails other tasks; the rate holds."""
    script = {"rules": [{"failure_rate": 0.3}]}
    task_ids = [f"task-{n}" for n in range(600)]
    first = _failing_ids(ScriptedProvider.from_script(script, seed=7), task_ids)
    again = _failing_ids(ScriptedProvider.from_script(script, seed=7), list(reversed(task_ids)))
    other = _failing_ids(ScriptedProvider.from_script(script, seed=8), task_ids)
    assert first == again
    assert first != other
    assert 0.24 < len(first) / len(task_ids) < 0.36
    # Retrying a failed task (a redelivery) fails again: the fate belongs to the task.
    doomed = sorted(first)[0]
    assert _failing_ids(ScriptedProvider.from_script(script, seed=7), [doomed] * 3) == {doomed}


def test_failure_rate_bounds_and_messages() -> None:
    """Rate 0 never fails, rate 1 always fails; the message names the rate unless an error is given."""
    ids = [f"t{n}" for n in range(50)]
    assert _failing_ids(ScriptedProvider.from_script([{"failure_rate": 0}]), ids) == set()
    assert _failing_ids(ScriptedProvider.from_script([{"failure_rate": 1}]), ids) == set(ids)
    with pytest.raises(ProviderRequestError, match=r"failure_rate=1.0, task_id=t0"):
        ScriptedProvider.from_script([{"failure_rate": 1}]).complete(make_request(task_id="t0"))
    with pytest.raises(ProviderRequestError, match=r"^provider request failed: flaky network$"):
        ScriptedProvider.from_script([{"failure_rate": 1, "error": "flaky network"}]).complete(make_request())


def test_seed_argument_overrides_the_script_seed() -> None:
    """from_script(seed=…) beats the script's own seed, so one workload file serves many seeds."""
    assert ScriptedProvider.from_script(SCRIPT).seed == 11
    assert ScriptedProvider.from_script(SCRIPT, seed=3).seed == 3
    assert make_provider("scripted", script=SCRIPT, seed=5).seed == 5


@pytest.mark.parametrize(
    ("script", "rule_index", "field", "fragment"),
    [
        ({"rules": [{}, {"outcome": "done"}]}, 1, "outcome", "must be one of completed, failed"),
        ({"rules": [{"outcom": "failed"}]}, 0, "outcom", "unknown field"),
        ({"rules": [{}, {}, {"match": {"node": "x"}}]}, 2, "match.node", "unknown match key"),
        ({"rules": [{"match": {"task_id": 7}}]}, 0, "match.task_id", "string or a non-empty list"),
        ({"rules": [{"match": {"task_id": []}}]}, 0, "match.task_id", "non-empty list"),
        ({"rules": [{"match": "coder"}]}, 0, "match", "mapping"),
        ({"rules": [{"input_tokens": -1}]}, 0, "input_tokens", "non-negative integer"),
        ({"rules": [{"latency_ms": True}]}, 0, "latency_ms", "non-negative integer"),
        ({"rules": [{"latency_ms": 1.5}]}, 0, "latency_ms", "non-negative integer"),
        ({"rules": [{"files_touched": "a.py"}]}, 0, "files_touched", "list of strings"),
        ({"rules": [{"failure_rate": 1.5}]}, 0, "failure_rate", "in [0, 1]"),
        ({"rules": [{"outcome": "failed", "failure_rate": 0.5}]}, 0, "failure_rate", "only applies"),
        ({"rules": [{"output_text": 3}]}, 0, "output_text", "must be a string"),
        ({"rules": ["coder"]}, 0, None, "must be a mapping"),
    ],
)
def test_validation_names_rule_and_field(script: dict, rule_index: int, field: str | None, fragment: str) -> None:
    """Every validation error names the rule index and the offending field."""
    with pytest.raises(InvalidScript) as caught:
        ScriptedProvider.from_script(script)
    error = caught.value
    assert (error.rule_index, error.field) == (rule_index, field)
    message = str(error)
    assert message.startswith(f"invalid provider configuration: rule {rule_index}")
    assert fragment in message
    if field:
        assert repr(field) in message


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ({"rule": []}, "unknown key(s) ['rule']"),
        ({"seed": "7"}, "field 'seed': must be an integer"),
        ({"rules": {"a": 1}}, "field 'rules': must be a list"),
        ({"default": {"outcome": "nope"}}, "default: field 'outcome'"),
        ({"default": ["x"]}, "field 'default': must be a mapping"),
        ("rules", "must be a mapping or a list of rules"),
    ],
)
def test_top_level_validation(script: object, fragment: str) -> None:
    """Top-level mistakes (unknown keys, bad seed, bad default) are reported with their location."""
    with pytest.raises(InvalidScript) as caught:
        ScriptedProvider.from_script(script)  # type: ignore[arg-type]
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ProviderConfigError)
