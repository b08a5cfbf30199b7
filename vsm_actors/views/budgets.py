"""Budgets per node and epoch (`vsm ledger budgets`, and the budget column of `vsm status`):
each node's account folded from its own events exactly as the running node folds it
(core.control.budgets.Book), so the view and the node never disagree. Pure: the command reads
the events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from ..core.control.budgets import Book
from ..core.model.events import LedgerEvent


def _kept(book: Book) -> bool:
    """A node that only spends on its ancestors' account keeps none of its own."""
    return (book.budget_tokens is not None or book.budget_messages is not None or book.allocation is not None
            or bool(book.grants.tokens) or book.refused > 0)


def budget_books(events: Iterable[LedgerEvent]) -> dict[tuple[str, str], Book]:
    """(node id, epoch) -> the node's account in that epoch, for every node that keeps one."""
    by_node: dict[str, list[LedgerEvent]] = defaultdict(list)
    for event in events:
        if event.node_id:
            by_node[event.node_id].append(event)
    out = {}
    for node_id, mine in by_node.items():
        mine.sort(key=lambda e: e.created_at)  # the fold reads a node's events oldest first
        for book in Book.fold_epochs(mine, node_id):
            if _kept(book):
                out[(node_id, book.epoch)] = book
    return out


def budget_row(node_id: str, book: Book) -> dict[str, Any]:
    remaining_messages = None if book.budget_messages is None else max(book.budget_messages - book.messages, 0)
    return {"node_id": node_id, "epoch": book.epoch, "budget": book.budget_tokens, "approved": book.allocation,
            "used": book.used, "remaining": book.remaining, "granted": book.grants.granted(),
            "granted_to": dict(sorted(book.grants.tokens.items())), "message_budget": book.budget_messages,
            "messages": book.messages, "remaining_messages": remaining_messages, "refused": book.refused,
            "exhausted": book.signaled}


def budget_rows(events: Iterable[LedgerEvent], *, order: Sequence[str] = (), node_id: str | None = None,
                ) -> list[dict[str, Any]]:
    """One row per node and epoch, epochs oldest first, nodes in `order` (tree order) then by id."""
    rank = {n: i for i, n in enumerate(order)}
    books = budget_books(events)
    keys = sorted(books, key=lambda k: (k[1], rank.get(k[0], len(rank)), k[0]))
    return [budget_row(n, books[(n, e)]) for n, e in keys if node_id is None or n == node_id]


def _cell(value) -> str:
    return "-" if value is None else f"{value:,}"


def render_budgets(rows: Sequence[dict[str, Any]], depth: dict[str, int] | None = None) -> list[str]:
    """Aligned lines; `!` marks a node that ran out (and raised pain) in that epoch."""
    if not rows:
        return ["no budgets recorded (declare `budget:` on genome nodes)"]
    depth = depth or {}
    lines = [f"{'epoch':<21} {'node':<28} {'budget':>10} {'approved':>10} {'used':>10} {'remaining':>10} "
             f"{'granted':>10} {'tasks':>9} {'refused':>7}"]
    for r in rows:
        label = ("  " * depth.get(r["node_id"], 0) + r["node_id"])[:27] + ("!" if r["exhausted"] else "")
        tasks = f"{r['messages']:,}" + (f"/{r['message_budget']:,}" if r["message_budget"] is not None else "")
        lines.append(f"{r['epoch']:<21} {label:<28} {_cell(r['budget']):>10} {_cell(r['approved']):>10} "
                     f"{_cell(r['used']):>10} {_cell(r['remaining']):>10} {_cell(r['granted'] or None):>10} "
                     f"{tasks:>9} {r['refused']:>7}")
    return lines


def remaining_now(events: Iterable[LedgerEvent], epoch: str, declared: dict[str, int]) -> dict[str, int | None]:
    """Node id -> tokens left in `epoch`: from its account when it kept one in that epoch, else
    all it declares (the epoch has not touched it yet). `vsm status` prints it beside each node."""
    books = budget_books(events)
    out: dict[str, int | None] = dict(declared)
    for (node_id, key), book in books.items():
        if key == epoch:
            out[node_id] = book.remaining
    return out
