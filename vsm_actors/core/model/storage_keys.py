"""Storage keys: the snake_case names under which ledger backends index enum values.

A unit variant `TaskRouted` is stored as `task_routed`; an open-ended `Other("x")` as `other:x`.
"""

from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache
from typing import TypeVar

from .variants import Other

OTHER_PREFIX = "other:"

E = TypeVar("E", bound="StorageKeyed")

_KEYS: dict[type, dict[str, Enum]] = {}


@lru_cache(maxsize=None)
def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class StorageKeyed(str, Enum):
    """Base of unit enums that have a storage key (their snake_case name)."""

    @property
    def storage_key(self) -> str:
        return snake_case(self.value)

    @classmethod
    def from_storage_key(cls: type[E], key: str) -> E:
        members = _KEYS.get(cls)
        if members is None:
            members = _KEYS[cls] = {m.storage_key: m for m in cls}
        try:
            return members[key]  # type: ignore[return-value]
        except KeyError:
            raise ValueError(f"unknown {cls.__name__} storage key {key!r}") from None


def open_storage_key(value: StorageKeyed | Other) -> str:
    """Storage key of a value of an open enum (`SomeEnum | Other`)."""
    if isinstance(value, Other):
        return OTHER_PREFIX + value.value
    return value.storage_key


def open_from_storage_key(key: str, enum: type[E]) -> E | Other:
    """Inverse of `open_storage_key`; an unknown key without the prefix reads as `Other(key)`."""
    if key.startswith(OTHER_PREFIX):
        return Other(key[len(OTHER_PREFIX):])
    try:
        return enum.from_storage_key(key)
    except ValueError:
        return Other(key)
