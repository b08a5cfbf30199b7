"""Deterministic trial exposure: which tasks fall inside a candidate's traffic share.

A canary or probation trial sees a fixed share of tasks, chosen by hashing the task id together
with the suggestion id into one of 10,000 buckets (reference §3.14.7). Hashing, not sampling, so
live routing, offline replay and a restarted controller all admit exactly the same tasks, and two
trials admit different (uncorrelated) slices of the same work.
"""

from __future__ import annotations

from collections.abc import Mapping

EXPOSURE_BUCKETS = 10_000

_FNV_OFFSET_BASIS = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_U64_MASK = (1 << 64) - 1
_SEPARATOR = b":"


def _fnv1a_64(state: int, data: bytes) -> int:
    for byte in data:
        state = ((state ^ byte) * _FNV_PRIME) & _U64_MASK
    return state


def exposure_bucket(task_id: str, suggestion_id: str) -> int:
    """64-bit FNV-1a over `task_id`, ":", `suggestion_id` (UTF-8), reduced mod 10,000."""
    state = _fnv1a_64(_FNV_OFFSET_BASIS, task_id.encode("utf-8"))
    state = _fnv1a_64(state, _SEPARATOR)
    state = _fnv1a_64(state, suggestion_id.encode("utf-8"))
    return state % EXPOSURE_BUCKETS


def within_traffic_share(bucket: int, basis_points: int | None) -> bool:
    """A bucket is exposed iff a share is set and bucket < min(share, 10,000).

    So a share of 0 admits nothing, 10,000 or more admits everything, and no share admits nothing
    (a probation trial without a share needs explicit approval for every task).
    """
    return basis_points is not None and bucket < min(basis_points, EXPOSURE_BUCKETS)


def is_approved(metadata: Mapping[str, str], suggestion_id: str) -> bool:
    """A task approves a trial by `trial_approved` = "true" (any trial) or = the suggestion id."""
    value = metadata.get("trial_approved")
    return value is not None and (value == "true" or value == suggestion_id)
