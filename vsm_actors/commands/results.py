"""How `vsm run` and `vsm send` report: each directive's result as it completes (text and JSON
lines) beside a progress bar on stderr (views/progress.py); `-o json` prints the array at the end."""

from __future__ import annotations

import json

import click

from ..core.model.task import TaskResult
from ..views.progress import Progress
from .common import emit_json


def result_data(done) -> dict:
    return {
        "directive_id": done.directive_id, "ok": done.ok, "correlation_id": done.correlation_id,
        "error": done.error,  # why the directive failed as a whole (its results may be empty)
        "results": [{"task_id": r.task_id, "produced_by": r.produced_by, "status": r.status.value,
                     "summary": r.summary, "error": r.error, "files_touched": list(r.files_touched)}
                    for r in done.results],
    }


def text_lines(text: str, done) -> list[str]:
    mark = "ok  " if done.ok else "FAIL"
    title = text.splitlines()[0][:70] if text.strip() else ""
    return [f"{mark} {title!r}  directive {done.directive_id}",
            *(f"     {r.status.value:<9} by {r.produced_by}: {_first_line(r)}" for r in done.results),
            *([f"     error: {done.error}"] if done.error else [])]


def _first_line(r: TaskResult) -> str:
    text = r.error if r.error else r.summary
    return (text or "").strip().splitlines()[0][:100] if (text or "").strip() else ""


def print_results(texts: list[str], dones: list, output: str) -> None:
    if output == "text":
        for text, done in zip(texts, dones):
            for line in text_lines(text, done):
                print(line)
    else:
        emit_json([result_data(d) for d in dones], lines=output == "jsonl")


class ResultStream:
    """Called with each DirectiveDone as it arrives (`Organization.run_many(on_done=...)`)."""

    def __init__(self, items, output: str, *, quiet: bool, label: str) -> None:
        self.titles = {d.id: d.title for d in items}
        self.output = output
        self.progress = Progress(len(items), label, enabled=not quiet)
        self.progress.set_running(len(items))
        self.finished: set[str] = set()
        self.dones: list = []

    def __call__(self, done) -> None:
        self.finished.add(done.directive_id)
        self.dones.append(done)
        self.progress.advance(done.ok)
        if self.output == "text":
            for line in text_lines(self.titles.get(done.directive_id, ""), done):
                self.progress.echo(line)
        elif self.output == "jsonl":
            self.progress.echo(json.dumps(result_data(done), ensure_ascii=False, separators=(",", ":")))

    def stopped(self, org, why: str) -> int:
        """The run ends early (Ctrl-C, SIGTERM, --timeout): what finished is printed already; say
        how far it got, record `run_interrupted` with the directives left unanswered, and give the
        exit code (130 interrupted, 1 timed out)."""
        self.progress.close()
        unfinished = sorted(set(self.titles) - self.finished)
        click.echo(f"{why} after {len(self.finished):,} of {len(self.titles):,} directives "
                   f"({len(unfinished):,} unanswered)", err=True)
        try:
            org.record_event("run_interrupted", {"reason": why, "completed": len(self.finished),
                                                 "total": len(self.titles), "unanswered_directive_ids": unfinished})
        except Exception as exc:  # noqa: BLE001 - the summary above stands; the record is best effort
            click.echo(f"(run_interrupted not recorded: {exc})", err=True)
        if self.output == "json":
            emit_json([result_data(d) for d in self.dones])
        return 130 if why == "interrupted" else 1

    def finish(self, dones: list) -> None:
        self.progress.close()
        if self.output == "json":
            emit_json([result_data(d) for d in dones])


# -- resuming an interrupted run -----------------------------------------------------------------

def directive_key(title: str, body: str, metadata: dict) -> str:
    """What makes two directives the same work: their text and metadata (ids are new each run)."""
    return json.dumps([title, body, sorted((metadata or {}).items())], ensure_ascii=False)


def not_yet_finished(org, items) -> list:
    """`items` without those an earlier run answered: the ledger's answered directives are counted
    by content, and each counted one skips one equal item, in order."""
    from collections import Counter
    from ..core.model.events import LedgerEventKind
    from ..ledger import EventQuery
    root = org.status().genome.root_node_id
    answered = {e.directive_id for e in org.read_ledger("events", EventQuery(
        kinds=(LedgerEventKind.TaskResultReceived,), node_id=root))}
    done = Counter()
    for event in org.read_ledger("events", EventQuery(kinds=(LedgerEventKind.DirectiveAccepted,))):
        p = event.payload if isinstance(event.payload, dict) else {}
        if event.directive_id in answered:
            done[directive_key(p.get("title", ""), p.get("body", ""), p.get("metadata", {}))] += 1
    left = []
    for item in items:
        key = directive_key(item.title, item.body, item.metadata)
        if done[key] > 0:
            done[key] -= 1
        else:
            left.append(item)
    return left
