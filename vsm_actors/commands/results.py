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
        "results": [{"task_id": r.task_id, "produced_by": r.produced_by, "status": r.status.value,
                     "summary": r.summary, "error": r.error, "files_touched": list(r.files_touched)}
                    for r in done.results],
    }


def text_lines(text: str, done) -> list[str]:
    mark = "ok  " if done.ok else "FAIL"
    title = text.splitlines()[0][:70] if text.strip() else ""
    return [f"{mark} {title!r}  directive {done.directive_id}",
            *(f"     {r.status.value:<9} by {r.produced_by}: {_first_line(r)}" for r in done.results)]


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

KEY = "run_directive_key"


def keyed(items, source: str) -> list:
    """Each directive with a key naming its place in this command's input (source, position,
    text), so `--resume` can tell which a previous run of the same input finished."""
    import hashlib
    from attrs import evolve
    out = []
    for n, item in enumerate(items):
        digest = hashlib.sha256(f"{source}\0{n}\0{item.title}\0{item.body}".encode("utf-8", "replace")).hexdigest()
        out.append(evolve(item, metadata={**item.metadata, KEY: digest[:20]}))
    return out


def finished_keys(org) -> set[str]:
    """The keys of directives this organization's ledger shows answered at the root."""
    from ..core.model.events import LedgerEventKind
    from ..ledger import EventQuery
    root = org.status().genome.root_node_id
    answered = {e.directive_id for e in org.read_ledger("events", EventQuery(
        kinds=(LedgerEventKind.TaskResultReceived,), node_id=root))}
    keys = set()
    for event in org.read_ledger("events", EventQuery(kinds=(LedgerEventKind.DirectiveAccepted,))):
        metadata = event.payload.get("metadata", {}) if isinstance(event.payload, dict) else {}
        if event.directive_id in answered and KEY in metadata:
            keys.add(metadata[KEY])
    return keys
