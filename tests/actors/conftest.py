"""Behaviour-test fixtures for the actor shell: every test runs on both Thespian bases.

`org_factory` starts organizations with a fresh SQLite ledger in tmp_path and ALWAYS shuts them
down; afterwards no process started by the test may survive (thespian.md pitfall 8). On the simple
base every message an actor sends is round-tripped through pickle (pitfall 6).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from vsm_actors.actors import base as actor_base
from vsm_actors.actors.protocol import ProviderSpec, RuntimeConfig
from vsm_actors.core.model.events import kind_storage_key
from vsm_actors.files.genome_files import load_genome
from vsm_actors.ledger import EventQuery, open_ledger
from vsm_actors import _posix as posix
from vsm_actors.system import Organization

GENOMES = Path(__file__).resolve().parents[2] / "genomes"
BASES = ("simple", "multiproc")
DEADLINE = 20.0


# -- processes --------------------------------------------------------------------------------

def _proc_table() -> dict[int, tuple[int, str, int]]:
    return posix.process_table()


def session_of(pid: int) -> int | None:
    entry = _proc_table().get(pid)
    return None if entry is None else entry[2]


def session_members(sessions: set[int]) -> set[int]:
    """Live processes in any of `sessions` (see `vsm_actors._posix.session_members`)."""
    return set().union(*(posix.session_members(s) for s in sessions))


def descendants(root: int | None = None) -> set[int]:
    """Live (non-zombie) processes descended from `root` (default: this test process)."""
    root = os.getpid() if root is None else root
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _state, _sid) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return {p for p in found if table.get(p, (0, "X"))[1] not in ("Z", "X")}


def wait_until(predicate, timeout: float = DEADLINE, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; a deadline loop, not a sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


# -- ledger access ----------------------------------------------------------------------------

class RunningOrg:
    """An organization under test plus read access to its ledger."""

    def __init__(self, org: Organization, ledger_path: Path, base: str, genome) -> None:
        self.org, self.ledger_path, self.base, self.initial_genome = org, ledger_path, base, genome

    def __getattr__(self, name):
        return getattr(self.org, name)

    def ledger(self):
        return open_ledger(str(self.ledger_path))

    def events(self, kind: str | None = None, **links) -> list:
        with self.ledger() as ledger:
            found = ledger.events(EventQuery(**links))
        if kind is None:
            return found
        return [e for e in found if kind_storage_key(e.kind) in (kind, f"other:{kind}")]

    def wait_events(self, kind: str, count: int = 1, **links) -> list:
        return wait_until(lambda: (lambda es: es if len(es) >= count else None)(self.events(kind, **links)),
                          what=f"{count} {kind} event(s) {links}")

    def traces(self) -> list:
        with self.ledger() as ledger:
            return ledger.recent_task_traces()


def scripted(script: dict | None = None) -> ProviderSpec:
    return ProviderSpec(name="scripted", options={"script": script or {}})


@pytest.fixture(params=BASES)
def base(request) -> str:
    return request.param


@pytest.fixture
def org_factory(base, tmp_path, monkeypatch):
    if base == "simple":
        monkeypatch.setenv("VSM_PICKLE_CHECK", "1")
        monkeypatch.setattr(actor_base, "PICKLE_CHECK", True)
    before = descendants()
    started: list[Organization] = []
    sessions: set[int] = set()

    def start(genome="single_coder", provider: ProviderSpec | None = None, **config) -> RunningOrg:
        g = load_genome(GENOMES / f"{genome}.yaml") if isinstance(genome, str) else genome
        path = tmp_path / f"ledger-{len(started)}.sqlite"
        cfg = RuntimeConfig(ledger_url=str(path), provider=provider or scripted(), **config)
        org = Organization.start(g, cfg, base=base, restore=False, timeout=DEADLINE)
        started.append(org)
        own = os.getpid()
        sessions.update(session_of(pid) for pid in org.status().pids.values() if pid != own)
        sessions.discard(None)
        sessions.discard(os.getsid(0))
        assert base == "simple" or sessions, "cannot see the actor processes: the leak check would be vacuous"
        return RunningOrg(org, path, base, g)

    try:
        yield start
    finally:
        errors = []
        for org in started:
            try:
                org.shutdown()
            except Exception as exc:  # noqa: BLE001 - shut the others down anyway
                errors.append(exc)
        try:
            wait_until(lambda: not (descendants() - before) and not session_members(sessions), timeout=15,
                       what="actor processes to exit")
        except AssertionError:
            leftover = (descendants() - before) | session_members(sessions)
            for pid in leftover:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            pytest.fail(f"actor processes outlived shutdown: {sorted(leftover)}")
        assert not errors, errors
