"""Behaviour of a running organization, on simpleSystemBase and multiprocTCPBase alike."""

from __future__ import annotations

from vsm_actors._posix import alive as process_alive
from vsm_actors.core.model.capability import LeafOperationSpec
from vsm_actors.core.model.node import NodeLifecycleStatus, PromptComponent, PromptSection, ToolSpec, ViableNode
from vsm_actors.core.model.patch import AddChild, AddPromptComponent, AddTool, RemoveSubtree, SetNodeStatus
from vsm_actors.core.model.task import TaskOutcomeStatus
from vsm_actors.system import make_directive

from .conftest import scripted, wait_until

KINDS = ("directive_accepted", "task_mapped", "task_routed", "trace_written", "task_result_received")


def trace_of(running, task_id):
    return wait_until(lambda: next((t for t in running.traces() if t.task_id == task_id), None),
                      what=f"trace of task {task_id}")


def test_single_coder_directive_completes(org_factory):
    running = org_factory("single_coder", scripted({"default": {"output_text": "health check added"}}))
    directive = make_directive("Add a health check endpoint in src/api/health.py")
    done = running.run(directive)

    assert done.ok and done.directive_id == directive.id
    (result,) = done.results
    assert result.status is TaskOutcomeStatus.Completed
    assert result.produced_by == "primary-code-service"
    assert result.summary == "health check added"

    for kind in KINDS:
        running.wait_events(kind, directive_id=directive.id)
    events = running.events(directive_id=directive.id)
    correlations = {e.correlation_id for e in events}
    assert correlations == {done.correlation_id}, "every event of one directive shares its correlation id"
    (routed,) = running.events("task_routed", directive_id=directive.id)
    assert routed.node_id == "root" and routed.payload["child_node_id"] == "primary-code-service"

    trace = trace_of(running, result.task_id)
    assert trace.assigned_node_id == "primary-code-service"
    assert list(trace.responsible_ancestor_ids) == ["root"]
    assert trace.outcome_score == 1.0
    assert trace.metadata["correlation_id"] == done.correlation_id
    assert trace.metadata["directive_id"] == directive.id
    # the trace event was written by the leaf; the result was received by the root
    (written,) = running.events("trace_written", directive_id=directive.id)
    assert written.node_id == "primary-code-service"
    received = running.events("task_result_received", directive_id=directive.id)
    assert [e.node_id for e in received] == ["root"]


def test_two_level_delegates_through_team(org_factory):
    running = org_factory("two_level")
    plain = make_directive("Add a backend endpoint")
    # the mapper marks every task as code-writing unless told otherwise (reference default)
    review = make_directive("Look over the endpoint change",
                            metadata={"required_capability": "review", "requires_code_write": "false"})
    done_plain, done_review = running.run_many([plain, review])

    assert done_plain.ok and done_review.ok
    assert done_plain.results[0].produced_by == "backend-coder"
    assert done_review.results[0].produced_by == "backend-reviewer"

    for done, leaf in ((done_plain, "backend-coder"), (done_review, "backend-reviewer")):
        trace = trace_of(running, done.results[0].task_id)
        assert trace.assigned_node_id == leaf
        assert list(trace.responsible_ancestor_ids) == ["backend-team", "root"]
        routed = running.wait_events("task_routed", 2, directive_id=done.directive_id)
        hops = [(e.node_id, e.payload["child_node_id"]) for e in routed]
        assert hops == [("root", "backend-team"), ("backend-team", leaf)]
        # the team received the leaf's result and forwarded it; the root received the forward
        received = running.wait_events("task_result_received", 2, directive_id=done.directive_id)
        assert sorted(e.node_id for e in received) == ["backend-team", "root"]
        assert len({e.correlation_id for e in running.events(directive_id=done.directive_id)}) == 1
    review_route = running.events("task_routed", directive_id=review.id)[1]
    assert "reviews-go-to-reviewer" in review_route.payload["reason"]


def test_unroutable_task_fails_and_organization_keeps_working(org_factory):
    running = org_factory("single_coder")
    # the coder cannot review: nothing under the root can take the task
    done = running.run(make_directive("Review this", metadata={"required_capability": "review"}))
    assert not done.ok
    (result,) = done.results
    assert result.status is TaskOutcomeStatus.Failed
    assert "no routeable child" in (result.error or "")
    (failed,) = running.wait_events("task_routing_failed", directive_id=done.directive_id)
    assert failed.node_id == "root"
    assert not running.events("trace_written", directive_id=done.directive_id)

    # a retired coder is skipped: a plain task is unroutable too, and reports why
    applied = running.apply([SetNodeStatus(node_id="primary-code-service", status=NodeLifecycleStatus.Retired)])
    assert applied.error is None
    done = running.run("Write code")
    assert not done.ok and "primary-code-service" in done.results[0].error

    running.apply([SetNodeStatus(node_id="primary-code-service", status=NodeLifecycleStatus.Active)])
    assert running.run("Write code again").ok


def test_provider_failure_becomes_failed_result(org_factory):
    running = org_factory("single_coder", scripted({"rules": [
        {"match": {"task_title": "explode"}, "outcome": "failed", "error": "scripted boom"}]}))
    done = running.run("Please explode now")
    assert not done.ok
    (result,) = done.results
    assert result.status is TaskOutcomeStatus.Failed and "scripted boom" in result.error
    trace = trace_of(running, result.task_id)
    assert trace.outcome_score == -1.0 and trace.merged is False
    assert running.run("A calm task").ok


def test_only_leaves_write_traces(org_factory):
    running = org_factory("two_level")
    dones = running.run_many([make_directive(f"task {i}", metadata=meta) for i, meta in enumerate(
        [{}, {"required_capability": "review", "requires_code_write": "false"},
         {"required_capability": "run_tests", "requires_code_write": "false"},
         {"target_child": "backend-tester", "requires_code_write": "false"}])])
    assert all(d.ok for d in dones)
    genome = running.status().genome
    written = running.wait_events("trace_written", len(dones))
    assert {e.node_id for e in written} <= {n.id for n in genome.leaves()}
    assert all(genome.node(t.assigned_node_id).is_leaf for t in running.traces())


def test_live_promotion(org_factory):
    running = org_factory("single_coder")
    first = running.run("Before promotion")
    assert first.results[0].produced_by == "primary-code-service"

    applied = running.promote("primary-code-service", "generalist-coder")
    assert applied.error is None and applied.added == ("generalist-coder",)
    assert applied.elapsed_ms > 0
    genome = running.status().genome
    assert genome.id == applied.genome_id
    promoted = genome.node("primary-code-service")
    assert promoted.is_metasystem and not promoted.capabilities().allows("write_code")
    assert genome.node("generalist-coder").capabilities().allows("write_code")

    second = running.run("After promotion")
    assert second.ok and second.results[0].produced_by == "generalist-coder"
    trace = trace_of(running, second.results[0].task_id)
    assert trace.assigned_node_id == "generalist-coder"
    assert list(trace.responsible_ancestor_ids) == ["primary-code-service", "root"]
    assert trace.genome_id == applied.genome_id

    (patch_event,) = running.wait_events("genome_patch_applied")
    assert patch_event.payload["new_champion_genome_id"] == applied.genome_id
    assert patch_event.payload["patch_kind"] == "PromoteLeafToMetasystem"
    # the champion pointer is kept per organization, keyed by the genome file's id
    with running.ledger() as ledger:
        assert ledger.get_champion_genome(running.initial_genome.id) == genome
    if running.base == "multiproc":
        pids = running.status().pids
        assert pids["generalist-coder"] != pids["primary-code-service"]
        assert process_alive(pids["generalist-coder"])


def test_add_and_remove_child_live(org_factory):
    running = org_factory("two_level")
    docs = ViableNode.leaf("backend-docs", "backend-docs", LeafOperationSpec.coding(), parent_id="backend-team")
    applied = running.apply([AddChild(parent_id="backend-team", child=docs)])
    assert applied.error is None and applied.added == ("backend-docs",)
    done = running.run(make_directive("Document the API", metadata={"target_child": "backend-docs"}))
    assert done.ok and done.results[0].produced_by == "backend-docs"
    pid = running.status().pids["backend-docs"]

    applied = running.apply([RemoveSubtree(node_id="backend-docs")])
    assert applied.error is None and applied.removed == ("backend-docs",)
    status = running.status()
    assert "backend-docs" not in status.genome.nodes and "backend-docs" not in status.pids
    if running.base == "multiproc":
        wait_until(lambda: not process_alive(pid), what=f"process {pid} of the removed node to exit")
    # the target is gone: the team routes to its first capable leaf instead
    done = running.run(make_directive("Document it again", metadata={"target_child": "backend-docs"}))
    assert done.ok and done.results[0].produced_by == "backend-coder"


def test_rejected_patch_changes_nothing(org_factory):
    running = org_factory("single_coder")
    before = running.status().genome
    applied = running.apply([RemoveSubtree(node_id="no-such-node")])
    assert applied.error
    assert running.status().genome == before
    running.wait_events("genome_patch_rejected")
    assert running.run("still fine").ok


def test_prompt_and_tool_patches_change_the_leaf(org_factory):
    from vsm_actors.actors.protocol import ProviderSpec
    running = org_factory("two_level", ProviderSpec(name="echo"))
    before = running.run("Change the handler")
    assert "Keep each change small" in before.results[0].summary
    assert "ALWAYS-LOG-THE-REQUEST-ID" not in before.results[0].summary

    rule = PromptComponent(id="log-request-id", text="ALWAYS-LOG-THE-REQUEST-ID")
    tool = ToolSpec(name="ripgrep", description="search the code", enabled=True)
    applied = running.apply([AddPromptComponent(node_id="backend-coder", section=PromptSection.BehaviorRules,
                                                component=rule),
                             AddTool(node_id="backend-coder", tool=tool)])
    assert applied.error is None
    after = running.run("Change the handler again")
    assert "ALWAYS-LOG-THE-REQUEST-ID" in after.results[0].summary
    assert running.status().genome.node("backend-coder").tools[-1] == tool
    patch_kinds = [e.payload["patch_kind"] for e in running.wait_events("genome_patch_applied", 2)]
    assert patch_kinds == ["AddPromptComponent", "AddTool"]


def test_collector_threshold_is_raised_while_running_in_process_and_put_back(org_factory, base):
    import gc

    before = gc.get_threshold()
    running = org_factory("single_coder", gc_threshold=before[0] + 4321)
    assert running.org.run("work").ok
    if base == "simple":
        assert gc.get_threshold() == (before[0] + 4321, *before[1:])
    else:  # the organization's actors live in other processes: this one is left alone
        assert gc.get_threshold() == before
    running.org.shutdown()
    assert gc.get_threshold() == before
