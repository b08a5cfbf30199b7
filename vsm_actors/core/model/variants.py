"""Newtype variants of the reference's open-ended enums.

The reference serialises `Other("x")` as `{"Other": "x"}`; an enum-typed field whose enum has such
a variant is typed here as `SomeEnum | Other`. One class per variant *name* is enough because the
field annotation already says which enum it belongs to.
"""

from __future__ import annotations

from attrs import frozen


@frozen
class Other:
    value: str

    def __str__(self) -> str:
        return f'Other("{self.value}")'


@frozen
class Custom:
    value: str

    def __str__(self) -> str:
        return f'Custom("{self.value}")'


@frozen
class Sibling:
    node_id: str

    def __str__(self) -> str:
        return f'Sibling("{self.node_id}")'


@frozen
class Baseline:
    value: str

    def __str__(self) -> str:
        return f'Baseline("{self.value}")'


NEWTYPE_VARIANTS: dict[str, type] = {
    "Other": Other,
    "Custom": Custom,
    "Sibling": Sibling,
    "Baseline": Baseline,
}


def debug_name(value: object) -> str:
    """The reference's `Debug` rendering of an enum value, as used in event payloads and metadata."""
    from enum import Enum

    if isinstance(value, Enum):
        return str(value.value)
    return str(value)
