"""Hierarchical budgets as pure functions (issue 12 point 1): declared per node in the concise genome
form (kept on the ResourceBargaining channel into the node, as the reference keeps budgets),
granted top-down so a child's grant never exceeds what its parent has left, folded from a node's
own events so a restarted node rebuilds the same account, and refusals that name the budget."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st

from vsm_actors.core.control.budgets import (
    DECISION_EVENT, EPOCH_KEY, GRANTED_EVENT, OPENED_EVENT, REFUSED_BY, USED_KEY, Book, BudgetPlan, grant,
    environment_channel_id, refusal, with_budgets,
)
from vsm_actors.core.control.resources import epoch_key
from vsm_actors.core.model.channel import VsmChannelType
from vsm_actors.core.model.events import LedgerEvent, LedgerEventKind
from vsm_actors.core.model.node import NodeBudget
from vsm_actors.core.model.variants import Other
from vsm_actors.files.genome_files import GenomeFileError, genome_to_concise, parse_genome_text
from vsm_actors.files.schema import genome_file_schema
from vsm_actors.views.budgets import budget_rows, render_budgets
from vsm_actors.views.status import render_status, status_data

NOW = datetime(2026, 12, 7, 14, 5, tzinfo=timezone.utc)
KEY = epoch_key(NOW)

TEXT = """
id: budgets
root:
  name: root
  budget: {tokens_per_epoch: 10000}
  children:
    - name: backend-team
      budget: {tokens_per_epoch: 6000, messages_per_epoch: 50}
      children:
        - {name: coder, leaf_operation: coding, budget: {tokens_per_epoch: 4000}}
        - {name: reviewer, leaf_operation: reviewer, budget: {tokens_per_epoch: 4000}}
        - {name: tester, leaf_operation: tester}
"""
G = parse_genome_text(TEXT, name="budgets.yaml")


# -- the declaration ---------------------------------------------------------------------------

def test_budgets_live_on_the_resource_bargaining_channels_into_each_node():
    plan = BudgetPlan.of_genome(G)
    assert plan.of("root") == NodeBudget(tokens_per_epoch=10000)
    assert plan.of("backend-team") == NodeBudget(tokens_per_epoch=6000, messages_per_epoch=50)
    assert plan.of("tester") == NodeBudget() and "tester" not in plan.budgets
    channel = next(c for c in G.channels if c.id == "backend-team>coder:resourcebargaining")
    assert channel.max_token_budget_per_epoch == 4000
    env = next(c for c in G.channels if c.id == environment_channel_id("root"))
    assert env.from_ is None and env.to == "root" and env.channel_type is VsmChannelType.ResourceBargaining


def test_the_concise_form_round_trips_budgets_and_the_schema_accepts_them():
    concise = genome_to_concise(G)
    assert concise["root"]["budget"] == {"tokens_per_epoch": 10000}
    assert "channels" not in concise  # the budget channels are derived again from `budget:`
    assert parse_genome_text(json.dumps(concise), name="c.json") == G
    jsonschema.validate(concise, genome_file_schema(), cls=jsonschema.Draft202012Validator)
    # a genome without budgets is untouched: no channel, no key
    plain = parse_genome_text("id: p\nroot: {name: solo, leaf_operation: coding}\n", name="p.yaml")
    assert not BudgetPlan.of_genome(plain).active and "budget" not in genome_to_concise(plain)["root"]


@pytest.mark.parametrize("budget, message", [
    ("{tokens_per_epoch: -5}", "x.yaml:4:12: tokens_per_epoch must be 0 or more, got -5"),
    ("{tokens: 5}", "x.yaml:4:3: unknown field(s): tokens"),
    ("7", "x.yaml:4:3: budget must be a mapping"),
])
def test_a_bad_budget_is_reported_where_it_is_written(budget, message):
    with pytest.raises(GenomeFileError) as err:
        parse_genome_text(f"id: x\nroot:\n  name: solo\n  budget: {budget}\n", name="x.yaml")
    assert str(err.value).startswith(message)


def test_a_budget_given_twice_and_differently_is_refused():
    text = TEXT + """channels:
  - {id: explicit, from: root, to: backend-team, channel_type: ResourceBargaining, max_token_budget_per_epoch: 1}
"""
    with pytest.raises(GenomeFileError, match="give it in one place"):
        parse_genome_text(text, name="twice.yaml")


def test_with_budgets_puts_them_on_an_existing_genome():
    plain = parse_genome_text("\n".join(ln for ln in TEXT.splitlines() if "  budget:" not in ln)
                              .replace(", budget: {tokens_per_epoch: 4000}", ""), name="plain.yaml")
    assert not BudgetPlan.of_genome(plain).active
    again = with_budgets(plain, {"root": NodeBudget(tokens_per_epoch=10), "coder": NodeBudget(messages_per_epoch=3)})
    assert BudgetPlan.of_genome(again).budgets == {"root": NodeBudget(tokens_per_epoch=10),
                                                   "coder": NodeBudget(messages_per_epoch=3)}


# -- grants and refusals -------------------------------------------------------------------------

def opened(node: str) -> Book:
    return Book().at(KEY).declaring(BudgetPlan.of_genome(G).of(node))


def test_grants_go_top_down_and_never_exceed_what_the_parent_has_left():
    plan = BudgetPlan.of_genome(G)
    root, out = grant(G, "root", opened("root"), "backend-team", plan.of("backend-team"), now=NOW)
    assert out.decision.approved_tokens == 6000 and out.metadata["resource_epoch_key"] == KEY
    team = opened("backend-team").granted(out.decision.approved_tokens)
    team, coder = grant(G, "backend-team", team, "coder", plan.of("coder"), now=NOW)
    team, reviewer = grant(G, "backend-team", team, "reviewer", plan.of("reviewer"), now=NOW)
    assert coder.decision.approved_tokens == 4000 and reviewer.decision.approved_tokens == 2000
    assert any("by the parent's budget" in r for r in reviewer.decision.reasons)
    assert team.grants.granted() == 6000 == team.limit
    # the per-task caps of System 3 do not shrink an epoch grant
    capped = parse_genome_text(TEXT.replace("  name: root\n", "  name: root\n  system_3: {default_task_budget_tokens: 10}\n"),
                               name="capped.yaml")
    _, big = grant(capped, "root", opened("root"), "backend-team", plan.of("backend-team"), now=NOW)
    assert big.decision.approved_tokens == 6000


def test_a_refusal_names_the_budget_its_use_and_who_granted_less():
    book = opened("coder").granted(2500)
    assert refusal(book, "coder") is None
    book = book.spent(2600)
    why = refusal(book, "coder", granted_by="backend-team")
    assert why.budget == "tokens" and why.message == (
        f"token budget of coder exhausted for epoch {KEY}: 2600 of 2500 used "
        "(backend-team granted 2500 of the 4000 it declares)")
    team = opened("backend-team")
    assert refusal(team, "backend-team", in_flight=50).message == (
        f"message budget of backend-team exhausted for epoch {KEY}: 50 of 50 tasks taken")
    assert refusal(Book().at(KEY), "tester") is None  # no budget of its own: never refused here


@settings(max_examples=300, deadline=None)
@given(root=st.integers(0, 20_000),
       teams=st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 12_000)),
                                st.lists(st.one_of(st.none(), st.integers(0, 8_000)), min_size=1, max_size=4)),
                      min_size=1, max_size=4),
       order=st.randoms(use_true_random=False))
def test_granted_tokens_in_a_subtree_never_exceed_the_parents_allocation(root, teams, order):
    """Any tree of budgets, granted in any order: what each metasystem grants sums to at most what
    it holds, no child holds more than it declares, and the grants folded back from the recorded
    events give the same accounts."""
    budgets = {"root": NodeBudget(tokens_per_epoch=root)}
    children = "\n".join(
        f"    - name: t{i}\n      children:\n" + "\n".join(
            f"        - {{name: t{i}l{j}, leaf_operation: coding}}" for j in range(len(leaves)))
        for i, (_, leaves) in enumerate(teams))
    genome = parse_genome_text(f"id: h\nroot:\n  name: root\n  children:\n{children}\n", name="h.yaml")
    for i, (team, leaves) in enumerate(teams):
        if team is not None:
            budgets[f"t{i}"] = NodeBudget(tokens_per_epoch=team)
        budgets.update({f"t{i}l{j}": NodeBudget(tokens_per_epoch=b) for j, b in enumerate(leaves) if b is not None})
    genome = with_budgets(genome, budgets)
    plan = BudgetPlan.of_genome(genome)
    books = {n: Book().at(KEY).declaring(plan.of(n)) for n in genome.nodes}
    recorded: dict[str, list] = {n: [] for n in genome.nodes}
    frontier = ["root"]
    while frontier:
        parent = frontier.pop(order.randrange(len(frontier)))
        kids = [c for c in genome.node(parent).children]
        order.shuffle(kids)
        for child in kids:
            frontier.append(child)
            if plan.of(child).tokens_per_epoch is None:
                continue
            books[parent], out = grant(genome, parent, books[parent], child, plan.of(child), now=NOW)
            approved = out.decision.approved_tokens or 0
            books[child] = books[child].granted(approved)
            recorded[parent].append(event(DECISION_EVENT, parent, {"requested_by": child, "approved_tokens": approved}))
            recorded[child].append(event(GRANTED_EVENT, child, {"granted_tokens": approved}))
    for node_id, book in books.items():
        if book.limit is not None:
            assert book.grants.granted() <= book.limit
        for child, tokens in book.grants.tokens.items():
            assert tokens <= plan.of(child).tokens_per_epoch
        folded = Book.fold([event(OPENED_EVENT, node_id, {"budget_tokens": plan.of(node_id).tokens_per_epoch}),
                            *recorded[node_id]], node_id)
        assert (folded.allocation, folded.grants.tokens) == (book.allocation, book.grants.tokens)


# -- the fold ----------------------------------------------------------------------------------

_IDS = iter(range(1_000_000))


def event(name: str, node: str, payload: dict, at: datetime | None = None) -> LedgerEvent:
    kind = {"trace_written": LedgerEventKind.TraceWritten,
            "task_result_received": LedgerEventKind.TaskResultReceived}.get(name) or Other(name)
    if name not in ("trace_written", "task_result_received"):
        payload = {EPOCH_KEY: epoch_key(at or NOW), **payload}
    return LedgerEvent(id=f"e{next(_IDS)}", kind=kind, created_at=at or NOW, node_id=node, payload=payload)


def result(node: str, produced_by: str, used: int, at=None, **meta) -> LedgerEvent:
    return event("task_result_received", node, {"produced_by": produced_by,
                                                "metadata": {USED_KEY: str(used), **meta}}, at)


def test_the_account_is_a_fold_of_the_nodes_own_events():
    events = [event(OPENED_EVENT, "backend-team", {"budget_tokens": 6000, "budget_messages": 50}),
              event(GRANTED_EVENT, "backend-team", {"granted_tokens": 5000}),
              event(DECISION_EVENT, "backend-team", {"requested_by": "coder", "approved_tokens": 4000}),
              result("backend-team", "coder", 1200), result("backend-team", "coder", 800),
              result("backend-team", "backend-team", 0, **{REFUSED_BY: "backend-team"})]
    book = Book.fold(events, "backend-team")
    assert (book.epoch, book.limit, book.used, book.messages, book.grants.tokens) == (
        KEY, 5000, 2000, 2, {"coder": 4000})
    leaf = Book.fold([event("trace_written", "coder", {"input_tokens": 300, "output_tokens": 200})], "coder")
    assert (leaf.used, leaf.messages) == (500, 1)
    # a later epoch starts afresh (declarations kept); an event of an earlier epoch is history
    later = NOW + timedelta(hours=1)
    book = Book.fold([*events, result("backend-team", "coder", 50, at=later), result("backend-team", "coder", 9)],
                     "backend-team")
    assert (book.epoch, book.used, book.allocation, book.budget_tokens) == (epoch_key(later), 50, None, 6000)
    assert len(Book.fold_epochs([*events, result("backend-team", "coder", 50, at=later)], "backend-team")) == 2


def test_a_restored_snapshot_replaces_what_came_before_it():
    book = Book.fold([event(OPENED_EVENT, "coder", {"budget_tokens": 4000}),
                      event("trace_written", "coder", {"input_tokens": 1000})], "coder")
    snap = event("resource_epoch_restored", "coder", book.snapshot())
    again = Book.fold([snap, event("trace_written", "coder", {"output_tokens": 10})], "coder")
    assert (again.used, again.messages, again.budget_tokens) == (1010, 2, 4000)
    assert Book.from_snapshot(book.snapshot()).snapshot() == book.snapshot()


# -- the views ---------------------------------------------------------------------------------

def test_the_budget_rows_and_the_status_column():
    events = [event(OPENED_EVENT, "root", {"budget_tokens": 10000}),
              event(DECISION_EVENT, "root", {"requested_by": "backend-team", "approved_tokens": 6000}),
              event(OPENED_EVENT, "coder", {"budget_tokens": 4000}),
              event(GRANTED_EVENT, "coder", {"granted_tokens": 4000}),
              event("trace_written", "coder", {"input_tokens": 4000, "output_tokens": 100}),
              event("resource_budget_refused", "coder", {}),
              event("resource_budget_exhausted", "coder", {}),
              result("root", "coder", 4100)]
    rows = budget_rows(events, order=["root", "backend-team", "coder"])
    assert [(r["node_id"], r["budget"], r["approved"], r["used"], r["remaining"], r["granted"]) for r in rows] == [
        ("root", 10000, None, 4100, 5900, 6000), ("coder", 4000, 4000, 4100, 0, 0)]
    assert rows[1]["exhausted"] and rows[1]["refused"] == 1
    text = "\n".join(render_budgets(rows))
    assert "coder!" in text and "5,900" in text
    data = status_data(G, pids={}, restarts={}, events=events, traces=[], now=NOW, started_at=NOW - timedelta(1),
                       boot_genome=G, providers={}, ledger="sqlite:l")
    left = {n["name"]: n["budget_left"] for n in data["nodes"]}
    assert left == {"root": 5900, "backend-team": 6000, "coder": 0, "reviewer": 4000, "tester": None}
    rendered = render_status(data)
    assert " budget left " in rendered.splitlines()[2]
    coder_line = next(ln for ln in rendered.splitlines() if ln.strip().startswith("coder"))
    assert coder_line.split()[6] == "0"
