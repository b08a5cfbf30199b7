"""Per-actor runtime services: ids, clock, and the codec hook for ledger payloads.

Production uses uuid4 and the wall clock; deterministic runs use counters prefixed by the actor's
node id (unique across actors without coordination) and a stepping clock.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from .. import codec
from ..core.ids import SequentialIds, SteppingClock


def uuid_ids() -> str:
    return str(uuid.uuid4())


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Services:
    def __init__(self, owner: str, deterministic: bool) -> None:
        if deterministic:
            self.new_id = SequentialIds(owner)
            self.now = SteppingClock()
        else:
            self.new_id = uuid_ids
            self.now = utc_now

    @staticmethod
    def to_json(value: object) -> object:
        """Ledger payload form: wire data with sorted keys, as the reference's serde `Value`."""
        return codec.sort_keys(codec.to_wire(value))

    @staticmethod
    def to_json_text(value: object) -> str:
        """Prompt input form: pretty JSON in field declaration order."""
        return codec.dumps(value, indent=2)
