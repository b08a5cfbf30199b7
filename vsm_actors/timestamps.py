"""Timestamps on the wire (DESIGN §3.3): RFC 3339, UTC, `Z`."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

__all__ = ["format_timestamp", "parse_timestamp"]

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$")


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with `Z` and the shortest of 0, 3 or 6 fraction digits that is exact."""
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    # isoformat is one C call (strftime costs 4x, and leaves years < 1000 unpadded): its text is
    # "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00", from which the wanted fraction is a slice
    text = value.isoformat()
    micro = value.microsecond
    return text[:19 if micro == 0 else 23 if micro % 1000 == 0 else 26] + "Z"


def parse_timestamp(text: str) -> datetime:
    """Parse RFC 3339 (`Z` or an offset). Nanoseconds beyond microseconds are truncated: Python's
    datetime stops at microseconds."""
    if not isinstance(text, str):
        raise TypeError(f"expected an RFC 3339 timestamp string, got {type(text).__name__}")
    m = _RFC3339.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    micro = int((frac or "").ljust(6, "0")[:6])
    tz = timezone.utc
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    return dt.astimezone(timezone.utc)
