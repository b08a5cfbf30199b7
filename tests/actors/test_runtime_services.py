"""Ledger payloads from the runtime services: a result's wire form is computed once per process
and shared by every level that records it, and is always what the codec says it is."""

from __future__ import annotations

from vsm_actors import codec
from vsm_actors.actors import runtime
from vsm_actors.actors.runtime import Services
from vsm_actors.core.model.task import TaskResult


def result(n: int) -> TaskResult:
    return TaskResult.completed(f"t{n}", "coder", f"output {n}", metadata={"directive_id": "d"})


def test_every_level_shares_one_wire_form_of_a_result() -> None:
    root, middle = Services("root", False), Services("middle", False)
    done = result(1)
    assert root.to_json(done) is middle.to_json(done)
    assert root.to_json(done) == codec.to_wire(done)


def test_an_equal_but_different_result_gets_its_own_wire_form() -> None:
    services = Services("root", False)
    first, second = result(2), result(2)
    assert services.to_json(first) == services.to_json(second)
    assert services.to_json(first) is not services.to_json(second)


def test_the_shared_forms_are_bounded_and_never_confuse_results() -> None:
    services = Services("root", False)
    for n in range(3000):
        done = result(n)
        assert services.to_json(done)["summary"] == f"output {n}"
    assert len(runtime._RESULT_WIRE) <= 512
