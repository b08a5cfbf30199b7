"""Storage faults in plain words: what a driver error means for the people running an organization.

A driver's own words mislead: SQLite rolls a transaction back by itself on a full disk, so the
error that reaches us is peewee's failed ROLLBACK ("cannot rollback - no transaction is active");
psycopg2 says "connection already closed" for every write after the server went away. Here the
whole exception chain (`__cause__`, `__context__`) is searched for the fault that started it,
recognised by SQLite's result code (`sqlite_errorname`), PostgreSQL's SQLSTATE (`pgcode`), an
`errno`, or, failing those, the driver's message, and told as one sentence:

    ledger disk is full (sqlite:/var/vsm/l.sqlite): writing a batch stored nothing; free space ...
    lost connection to PostgreSQL (postgresql://app@db:5432/vsm): writing a batch was not ...

Pure: no I/O, no driver imports; the exceptions are read by their attributes and text. The
ledger's location is passed in already described (`Target.describe`, never a password), and any
URL password in a driver's text is masked too.
"""

from __future__ import annotations

import errno
import re
from enum import Enum

from .base import LedgerError, LedgerFullError, LedgerStorageError

__all__ = [
    "LOW_SPACE_BYTES",
    "LedgerDiskFullError",
    "LedgerFaultError",
    "StorageFault",
    "classify_storage_error",
    "describe_storage_error",
    "open_failure",
    "storage_error",
]


class StorageFault(str, Enum):
    """What went wrong with the ledger's storage, as far as its users are concerned."""

    DISK_FULL = "disk_full"
    READ_ONLY = "read_only"
    LOCKED = "locked"
    CONNECTION_LOST = "connection_lost"
    CANNOT_CONNECT = "cannot_connect"
    CANNOT_OPEN = "cannot_open"
    IO_ERROR = "io_error"
    DAMAGED = "damaged"
    OTHER = "other"


class LedgerFaultError(LedgerStorageError):
    """A storage fault told in plain words (the message is the sentence, with no prefix)."""

    def __init__(self, message: str, fault: StorageFault = StorageFault.OTHER) -> None:
        LedgerError.__init__(self, message)  # LedgerStorageError would prefix "ledger storage error: "
        self.fault = fault

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.fault))


class LedgerDiskFullError(LedgerFaultError, LedgerFullError):
    """The disk or the database is full: nothing of the failed write was stored."""


# SQLite primary result codes (sqlite_errorname, e.g. "SQLITE_IOERR_WRITE" -> "SQLITE_IOERR")
_SQLITE = {"SQLITE_FULL": StorageFault.DISK_FULL, "SQLITE_READONLY": StorageFault.READ_ONLY,
           "SQLITE_BUSY": StorageFault.LOCKED, "SQLITE_LOCKED": StorageFault.LOCKED,
           "SQLITE_CANTOPEN": StorageFault.CANNOT_OPEN, "SQLITE_IOERR": StorageFault.IO_ERROR,
           "SQLITE_CORRUPT": StorageFault.DAMAGED, "SQLITE_NOTADB": StorageFault.DAMAGED}
# PostgreSQL SQLSTATEs: 53100 disk_full, 25006 read_only_sql_transaction, 55P03 lock_not_available,
# 57P01-57P03 the server shutting down or refusing, class 08 connection exceptions
_PG = {"53100": StorageFault.DISK_FULL, "25006": StorageFault.READ_ONLY, "55P03": StorageFault.LOCKED,
       "57P01": StorageFault.CONNECTION_LOST, "57P02": StorageFault.CONNECTION_LOST,
       "57P03": StorageFault.CANNOT_CONNECT, "08001": StorageFault.CANNOT_CONNECT,
       "08004": StorageFault.CANNOT_CONNECT}
_ERRNO = {errno.ENOSPC: StorageFault.DISK_FULL, errno.EDQUOT: StorageFault.DISK_FULL,
          errno.EROFS: StorageFault.READ_ONLY, errno.EIO: StorageFault.IO_ERROR}
# the driver's words, for errors that carry no code (psycopg2's connection errors, older Pythons)
_TEXT = (
    (re.compile(r"disk is full|no space left|disk quota", re.I), StorageFault.DISK_FULL),
    (re.compile(r"readonly database|read-only (sql )?transaction|read-only file system", re.I),
     StorageFault.READ_ONLY),
    (re.compile(r"database is locked|database table is locked", re.I), StorageFault.LOCKED),
    (re.compile(r"could not connect|connection refused|connection to server at .* failed|could not translate "
                r"host|password authentication failed|no pg_hba.conf entry|timeout expired", re.I),
     StorageFault.CANNOT_CONNECT),
    (re.compile(r"server closed the connection|connection already closed|terminating connection|"
                r"connection (has been )?lost|ssl connection has been closed|no connection to the server|"
                r"connection not open|could not receive data|could not send data", re.I),
     StorageFault.CONNECTION_LOST),
    (re.compile(r"unable to open database file", re.I), StorageFault.CANNOT_OPEN),
    (re.compile(r"disk i/o error", re.I), StorageFault.IO_ERROR),
    (re.compile(r"malformed|file is not a database|file is encrypted", re.I), StorageFault.DAMAGED),
)
# what a failed ROLLBACK or savepoint release says after the real fault ended the transaction
_AFTERMATH = re.compile(r"no transaction is active|no such savepoint|current transaction is aborted", re.I)
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@")
_CHAIN_LIMIT = 16
# less free space than this on a filesystem whose ledger reports an I/O error: it is full (a
# batch of the ledger writer is rarely larger; a failing disk with room to spare is not "full")
LOW_SPACE_BYTES = 1 << 20
_NOT_WRITES = ("reading", "naming", "opening", "checking")


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what caused it, outermost first (a cycle or a very long chain is cut)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < _CHAIN_LIMIT and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _fault_of(exc: BaseException) -> StorageFault | None:
    if isinstance(exc, LedgerError):  # ours: its text names the ledger (a path may hold any words)
        return exc.fault if isinstance(exc, LedgerFaultError) and exc.fault is not StorageFault.OTHER else None
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str):
        primary = "_".join(name.split("_")[:2])
        if primary in _SQLITE:
            return _SQLITE[primary]
    code = getattr(exc, "pgcode", None)
    if isinstance(code, str) and code:
        return _PG.get(code) or (StorageFault.CONNECTION_LOST if code.startswith("08") else None)
    number = getattr(exc, "errno", None)
    if isinstance(number, int) and number in _ERRNO:
        return _ERRNO[number]
    text = str(exc)
    return next((fault for pattern, fault in _TEXT if pattern.search(text)), None)


def classify_storage_error(exc: BaseException, free_bytes: int | None = None) -> StorageFault:
    """The fault behind `exc`: the one that started its chain (the innermost recognised).

    `free_bytes`, the space left on the ledger file's filesystem when known, tells a full disk
    that SQLite reports as an I/O error (it cannot grow its -shm file: SQLITE_IOERR_SHMSIZE) from
    a failing one."""
    faults = [fault for fault in map(_fault_of, _chain(exc)) if fault is not None]
    fault = faults[-1] if faults else StorageFault.OTHER
    if fault in (StorageFault.IO_ERROR, StorageFault.CANNOT_OPEN) and free_bytes is not None \
            and free_bytes < LOW_SPACE_BYTES:
        return StorageFault.DISK_FULL
    return fault


def _detail(exc: BaseException) -> str:
    """The driver's own words of the error that started it all: first line, passwords masked."""
    texts = [str(e).strip() for e in _chain(exc) if str(e).strip() and not isinstance(e, LedgerError)]
    meaningful = [t for t in texts if not _AFTERMATH.search(t)] or texts or [type(exc).__name__]
    line = meaningful[-1].splitlines()[0].strip()
    line = re.sub(r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed: ', "", line)
    return _URL_PASSWORD.sub(r"\1***@", line)


def describe_storage_error(exc: BaseException, ledger_description: str, action: str = "writing", *,
                           free_bytes: int | None = None) -> str:
    """One plain sentence: what happened to the ledger `ledger_description` names, what became of
    the `action` (e.g. "writing a batch") and what helps. `free_bytes`: see `classify_storage_error`."""
    where, detail = ledger_description, _detail(exc)
    fault = classify_storage_error(exc, free_bytes)
    if fault is StorageFault.DISK_FULL and free_bytes is not None:
        detail += f"; {free_bytes:,} bytes free"
    # a write that failed stored nothing (one transaction); a read or an open just failed
    done = f"{action} failed" if action.startswith(_NOT_WRITES) else f"{action} stored nothing"
    if fault is StorageFault.DISK_FULL:
        return f"ledger disk is full ({where}): {done}; free space and writes resume ({detail})"
    if fault is StorageFault.READ_ONLY:
        check = "the server's read-only setting" if where.startswith("postgres") else \
            "the file's permissions and the filesystem's mount"
        return f"ledger database is read-only ({where}): {done}; check {check} ({detail})"
    if fault is StorageFault.LOCKED:
        return (f"ledger database is locked ({where}): another program held it longer than the busy timeout; "
                f"{done} ({detail})")
    if fault is StorageFault.CONNECTION_LOST:
        # the connection may have dropped during COMMIT: whether it was stored is not known
        return (f"lost connection to PostgreSQL ({where}): {action} was not acknowledged; the next "
                f"attempt reconnects ({detail})")
    if fault is StorageFault.CANNOT_CONNECT:
        return f"cannot connect to PostgreSQL ({where}): {action} failed ({detail})"
    if fault is StorageFault.CANNOT_OPEN:
        return (f"cannot open the ledger file ({where}): check that its directory exists and is writable "
                f"({detail})")
    if fault is StorageFault.IO_ERROR:
        return f"ledger disk I/O error ({where}): {done}; the disk may be failing ({detail})"
    if fault is StorageFault.DAMAGED:
        return f"ledger file is damaged or not a SQLite database ({where}): {action} failed ({detail})"
    return f"{action} failed on {where}: {detail}"


def storage_error(exc: BaseException, ledger_description: str, action: str = "writing", *,
                  free_bytes: int | None = None) -> LedgerError:
    """The ledger error to raise for driver error `exc`: a plain-worded `LedgerFaultError` (a
    `LedgerDiskFullError` for a full disk) for a recognised fault, else a `LedgerStorageError`."""
    fault = classify_storage_error(exc, free_bytes)
    message = describe_storage_error(exc, ledger_description, action, free_bytes=free_bytes)
    if fault is StorageFault.DISK_FULL:
        return LedgerDiskFullError(message, fault)
    if fault is StorageFault.OTHER:
        return LedgerStorageError(message)
    return LedgerFaultError(message, fault)


def open_failure(exc: BaseException, ledger_description: str) -> str:
    """What a failed open says: the reason, naming the ledger once."""
    text = str(exc)
    return f"cannot open the ledger: {text}" if ledger_description in text else \
        f"cannot open ledger {ledger_description}: {text}"
