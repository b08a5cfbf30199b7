"""`build_directive_tree`: the node path of a directive, with usage rolled up (pure, no ledger)."""

from __future__ import annotations

from attrs import evolve

from vsm_actors.core.model.events import LedgerEventKind as K
from vsm_actors.core.model.variants import Other
from vsm_actors.ledger.lineage_tree import Usage, build_directive_tree, directive_status, render_tree

from .builders import event, trace

D = "d1"


def accepted(seconds=0.0, node="root"):
    return event("acc", K.DirectiveAccepted, seconds, {"title": "Add a health endpoint"}, node_id=node,
                 directive_id=D)


def routed(eid, task, parent, child, seconds, **extra):
    return event(eid, K.TaskRouted, seconds, {"parent_node_id": parent, "child_node_id": child, "task_id": task,
                                              "task_title": f"title {task}", **extra},
                 node_id=parent, task_id=task, directive_id=D)


def result(eid, task, receiver, status, seconds):
    return event(eid, K.TaskResultReceived, seconds, {"status": status, "task_id": task}, node_id=receiver,
                 task_id=task)


def written(eid, task, node, ancestors, seconds, inp, out, latency):
    payload = {"id": f"tr-{eid}", "assigned_node_id": node, "responsible_ancestor_ids": list(ancestors),
               "input_tokens": inp, "output_tokens": out, "latency_ms": latency}
    e = event(eid, K.TraceWritten, seconds, payload, node_id=node, task_id=task)
    return e.with_metadata(trace_id=f"tr-{eid}")


def two_level_events():
    return [
        accepted(),
        event("m1", K.TaskMapped, 1, {"task_id": "t1", "task_title": "API"}, node_id="root", task_id="t1",
              directive_id=D),
        routed("r1", "t1", "root", "team", 2),
        routed("r2", "t1", "team", "coder", 3),
        written("w1", "t1", "coder", ("team", "root"), 4, 100, 20, 7),
        result("x1", "t1", "team", "Completed", 5),
        result("x2", "t1", "root", "Completed", 6),
    ]


def test_nested_path_and_rollup():
    tree = build_directive_tree(D, two_level_events())
    assert tree.title == "Add a health endpoint" and tree.status == "completed"
    root = tree.root
    assert root.node_id == "root" and root.status is None
    [team] = root.children
    [coder] = team.children
    assert (team.node_id, coder.node_id) == ("team", "coder")
    assert team.status == coder.status == "Completed"
    assert coder.usage == Usage(100, 20, 7, 1)
    assert team.usage == Usage() and team.total == root.total == tree.total == Usage(100, 20, 7, 1)
    assert tree.total.tokens == 120


def test_subtree_totals_sum_siblings_and_own_traces():
    events = two_level_events() + [
        routed("r3", "t2", "team", "tester", 7),
        written("w2", "t2", "tester", ("team", "root"), 8, 10, 5, 3),
        written("w3", "t2", "team", ("root",), 9, 1, 1, 1),  # a trace of the team node itself
        result("x3", "t2", "team", "Failed", 10),
    ]
    tree = build_directive_tree(D, events)
    [team] = tree.root.children
    assert [c.node_id for c in team.children] == ["coder", "tester"]
    assert team.usage == Usage(1, 1, 1, 1)
    assert team.total == Usage(111, 26, 11, 3)
    assert team.children[1].status == "Failed"
    assert team.status == "Completed"  # team's own task t1 came back Completed to root
    assert tree.status == "completed"


def test_status_of_unfinished_and_failed_directives():
    events = two_level_events()[:4]  # routed but no results yet
    tree = build_directive_tree(D, events)
    assert tree.status == "running"
    assert tree.root.children[0].children[0].status == "Routed"
    failed = two_level_events()[:-1] + [result("x2", "t1", "root", "Failed", 6)]
    assert build_directive_tree(D, failed).status == "failed"
    assert build_directive_tree(D, [accepted()]).status == "accepted"
    assert directive_status(["Completed", "NeedsHuman"], has_tasks=True) == "needs_human"
    assert directive_status(["Noop", "Completed"], has_tasks=True) == "completed"


def test_mixed_statuses_on_one_node():
    events = two_level_events() + [routed("r4", "t2", "team", "coder", 7), result("x4", "t2", "team", "Failed", 8)]
    coder = build_directive_tree(D, events).root.children[0].children[0]
    assert coder.status == "Completed 1, Failed 1"
    assert [t.task_id for t in coder.tasks] == ["t1", "t2"]


def test_explicit_traces_override_event_copies_and_fill_missing_routes():
    # the stored trace (same id) wins over the TraceWritten payload
    stored = evolve(trace("w1", "coder", 4, ("team", "root"), input_tokens=1000, output_tokens=0, latency_ms=9),
                    id="tr-w1")
    tree = build_directive_tree(D, two_level_events(), [stored])
    assert tree.total == Usage(1000, 0, 9, 1)
    # a trace whose node no route reached hangs under its responsible ancestors
    orphan = evolve(trace("o1", "reviewer", 5, ("team", "root"), input_tokens=3), id="tr-o1")
    tree = build_directive_tree(D, two_level_events(), [orphan])
    [team] = tree.root.children
    assert [c.node_id for c in team.children] == ["coder", "reviewer"]
    assert tree.total.input_tokens == 103


def test_shadow_routes_and_foreign_kinds_are_ignored():
    events = two_level_events() + [
        routed("s1", "t1", "team", "shadow-coder", 4.5, is_shadow_route=True),
        event("o", Other("organization_started"), 0.5, {"x": 1}, node_id="root"),
    ]
    tree = build_directive_tree(D, events)
    assert [c.node_id for c in tree.root.children[0].children] == ["coder"]


def test_no_accepted_event_picks_the_top_of_the_routes():
    tree = build_directive_tree(D, two_level_events()[1:])
    assert tree.root.node_id == "root" and tree.title is None


def test_render_text_form():
    lines = render_tree(build_directive_tree(D, two_level_events()))
    assert lines == [
        'directive d1 "Add a health endpoint"  completed  tokens 120  latency 7 ms',
        "└── root  [tokens 120, 7 ms]",
        "    └── team  Completed  [tokens 120, 7 ms]",
        "        └── coder  Completed  [tokens 120, 7 ms]",
    ]
    assert render_tree(build_directive_tree("d2", []))[-1] == "└── (no routes or traces recorded)"


def test_as_data_is_nested():
    data = build_directive_tree(D, two_level_events()).as_data()
    assert data["total"]["tokens"] == 120
    coder = data["root"]["children"][0]["children"][0]
    assert coder["node_id"] == "coder" and coder["tasks"][0]["status"] == "Completed"
    assert coder["total"] == {"input_tokens": 100, "output_tokens": 20, "tokens": 120, "latency_ms": 7, "traces": 1}
