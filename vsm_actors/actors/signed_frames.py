"""Authenticated process traffic: every frame Thespian's TCP transport sends carries an HMAC of its
pickle under the organization's key, and a frame that does not verify is refused *before* it is
unpickled (Thespian unpickles whatever reaches its ports; a local process could run code in every
actor, the admin included).

The key is per process tree: `install(key)` once, before an actor system starts, and every actor
process (forked from it) inherits it. A client joining a running organization (`vsm send`)
installs the key from the organization's state file, which only its owner can read. Thespian's
two acknowledgement frames ("ACK", "ACK+DATAERR") are precomputed plain pickles of a string; they
are accepted by exact bytes, since they carry nothing to run.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
import secrets

MAGIC = b"VSM1"
DIGEST = hashlib.sha256
MAC_SIZE = DIGEST().digest_size
log = logging.getLogger("vsm.transport")

_installed: SignedPickle | None = None


class UnsignedFrame(ValueError):
    """A frame without a valid signature: dropped, never unpickled."""


class SignedPickle:
    """Stands in for the `pickle` module in Thespian's TCP transport (`dumps` and `loads`)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("an organization key needs at least 16 bytes")
        self.key = key
        self.rejected = 0
        self._control = {pickle.dumps(p) for p in ("ACK", "ACK+DATAERR")}
        try:  # Thespian's own precomputed forms, whatever protocol its pickle used
            from thespian.system.transport.streamBuffer import ackDataErrMsg, ackMsg
            for frame in (ackMsg, ackDataErrMsg):
                self._control.add(frame.split(b">", 1)[1])
        except ImportError:  # pragma: no cover - Thespian is a dependency
            pass

    def dumps(self, obj, *args, **kwargs) -> bytes:
        data = pickle.dumps(obj, *args, **kwargs)
        return MAGIC + hmac.new(self.key, data, DIGEST).digest() + data

    def loads(self, frame: bytes, *args, **kwargs):
        frame = bytes(frame)
        if frame in self._control:
            return pickle.loads(frame)
        head = len(MAGIC) + MAC_SIZE
        if len(frame) < head or not frame.startswith(MAGIC):
            self._reject("unsigned")
        mac, data = frame[len(MAGIC):head], frame[head:]
        if not hmac.compare_digest(mac, hmac.new(self.key, data, DIGEST).digest()):
            self._reject("bad signature")
        return pickle.loads(data, *args, **kwargs)

    def _reject(self, why: str):
        self.rejected += 1
        # a flood must not flood the log: the first, then at every power of ten (vsm status counts all)
        if str(self.rejected).rstrip("0") == "1":
            log.warning("refused a %s frame on an organization port (never unpickled); %d refused so far",
                        why, self.rejected)
        raise UnsignedFrame(f"{why} frame refused")


def new_key() -> bytes:
    return secrets.token_bytes(32)


def install(key: bytes | None = None) -> bytes:
    """Sign and verify this process's TCP frames with `key`; with None, keep the key already
    installed (or make one). Returns the key in force."""
    global _installed
    from thespian.system.transport import TCPTransport

    if key is None and _installed is not None:
        return _installed.key
    _installed = SignedPickle(key or new_key())
    TCPTransport.serializer = _installed
    return _installed.key


def installed() -> SignedPickle | None:
    return _installed


def rejected_frames() -> int:
    """Frames this process refused since it started (0 where frames are not signed: in process)."""
    return _installed.rejected if _installed is not None else 0
