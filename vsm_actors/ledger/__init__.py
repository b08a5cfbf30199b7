"""The empirical ledger: every event, trace and piece of evolution state an organization records.

`open_ledger(url)` picks the backend from a URL or path:

    None               $VSM_LEDGER, else ./vsm-ledger.sqlite
    memory://          MemoryLedger (in-process, gone at exit)
    :memory:           SQLite in memory (the SQL code path, nothing on disk)
    PATH, sqlite:///PATH                        SQLite file (WAL)
    postgresql://USER@HOST:PORT/DB[?schema=S]   PostgreSQL
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

from .base import (
    Ledger, LedgerConflictError, LedgerError, LedgerFullError, LedgerSerializationError, LedgerStorageError,
    utc_now,
)
from .lineage import DirectiveLineage, LineageTask, TaskOutcome, TaskRoute, TraceRef
from .memory import MemoryLedger
from .query import EventQuery
from ._database import mask_url, parse_target
from .store import PeeweeLedger

DEFAULT_LEDGER = "vsm-ledger.sqlite"
MEMORY_URL = "memory://"


def describe_ledger(url: str) -> str:
    """The ledger's location for people and files: never its password."""
    if url == MEMORY_URL:
        return url
    try:
        return parse_target(url).describe()
    except LedgerError:
        return mask_url(url)


def open_ledger(url_or_path: str | os.PathLike[str] | None = None, *,
                clock: Callable[[], datetime] = utc_now, read_only: bool = False) -> Ledger:
    """Open (creating if needed) the ledger `url_or_path` names; see the module docstring. With
    `read_only`, open an existing ledger for reading only (nothing is created or written)."""
    if url_or_path is None:
        url_or_path = os.environ.get("VSM_LEDGER") or DEFAULT_LEDGER
    url = os.fspath(url_or_path)
    if url == MEMORY_URL:
        return MemoryLedger(clock=clock)
    return PeeweeLedger(url, clock=clock, read_only=read_only)


__all__ = [
    "DEFAULT_LEDGER",
    "DirectiveLineage",
    "EventQuery",
    "Ledger",
    "LedgerConflictError",
    "LedgerError",
    "LedgerFullError",
    "LedgerSerializationError",
    "LedgerStorageError",
    "LineageTask",
    "MEMORY_URL",
    "MemoryLedger",
    "PeeweeLedger",
    "TaskOutcome",
    "TaskRoute",
    "TraceRef",
    "describe_ledger",
    "open_ledger",
]
