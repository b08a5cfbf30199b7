"""Short ids for text views: the shortest fragment of each id that tells the ids shown apart.

Ids are time-ordered UUIDv7 text. All ids of a run share their leading characters (the
millisecond timestamp), and the runtime's factory keeps its last 12 hex digits fixed per actor
(`actors/runtime.TimeOrderedIds`): ids written by one actor differ only in the counter in the
middle. So neither a prefix (git's choice) nor a plain suffix is short for them: a suffix that
tells a run's directives apart is 17-22 characters long.

The rule, for the ids of one column of one view:

- only opaque ids (UUIDs, hex digests: `is_opaque`) are cut; names (`backend-coder`, a genome
  named `two-level`) and sequential ids (`root-16`) print whole;
- every opaque id is cut to a window of the same width and the same place counted from the end of
  the id, at least `MIN_LENGTH` characters wide, wider on a ledger of many ids of the kind
  (`width_for`; an id shorter than that is shown whole);
- the window is the narrowest one that makes each fragment occur in exactly one of the ids it is
  computed over (as a substring anywhere, since that is how a filter reads it back); among
  windows of one width the one nearest the end wins, so ids with random tails get their plain
  suffix;
- a filter value resolves by `matching`: an exact id first, else every id containing the value
  (case-insensitive).

Which ids a window is computed over, and how a value that several ids contain resolves, is the
commands' part (`commands/ledger_ids.py`), and why is here. A printed fragment must name the
record it was printed for in the whole ledger, and a ledger holds millions of ids. No index
answers "which ids contain this text" (a B-tree finds prefixes, and a UUIDv7's prefix is its
timestamp), so checking fragments against every id reads every id, on every view; nor does the
id's form bound which older ids can contain a fragment, since each actor's counter starts at
random: an id of any age can hold the same middle characters, at the same place or another.
Considered and left for that reason: one substring query per window width (a scan of the column
per view, in SQL instead of Python), and matching a value only at the place it was printed (no
index serves a place in the middle either, and a value does not say its place). What is cheap is
the ledger's tail: the ids recorded since a given event, through the primary key. Hence the
recency rule: of the ids containing a value, the one first recorded last is meant, unless
another was recorded close before it (then the value is ambiguous, as before). A view's window
is computed over the ids shown and every id recorded from a little before the oldest of them on,
so a fragment occurs in no newer id than its own and names it, whatever older ids contain it.

What recency gives up: once a newer id containing a printed fragment is recorded (beyond the
near window), the fragment names that id; before, it became ambiguous. Two things keep that as
rare as the fragments of a window over every id would become ambiguous: the window also tells a
sample of the older ids apart, so it widens to the characters that change over the whole ledger
(for one actor's ids, the part of the counter that moves, not the two digits that repeat every
256 ids), and it is at least `width_for` the ledger's count of ids wide. A value that named one
id before still names it while no newer id contains it (the only id containing it is the newest).

Pure functions over strings; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from attrs import frozen

MIN_LENGTH = 6
NONE = "-"
_SAMPLES = (2048,)
# `width_for`: places a fragment of hex digits fits in a UUID's text, and the chance allowed that
# one of as many new random ids as the ledger holds contains a given fragment
_PLACES, _CHANCE = 10, 0.01
_OPAQUE = re.compile(r"[0-9a-fA-F-]{16,}")


@frozen
class ShortIds:
    """The window chosen for one column: `width` characters ending `skip` characters before
    the end of each id. `ShortIds()(id)` gives an id's fragment ("-" for no id)."""

    width: int = MIN_LENGTH
    skip: int = 0

    def __call__(self, value: str | None) -> str:
        if not value:
            return NONE
        return fragment(value, self.width, self.skip) if is_opaque(value) else value


def fragment(value: str, width: int, skip: int) -> str:
    """`width` characters of `value` ending `skip` from its end, moved to the start when the id
    is too short for that place, and the whole id when it is no wider than `width`."""
    if len(value) <= width:
        return value
    end = max(len(value) - skip, width)
    return value[end - width:end]


def is_opaque(value: str) -> bool:
    """A machine-made id (a UUID, a hex digest): the only kind a view shortens. Names (`root`,
    `backend-coder`, `two-level`) and sequential ids (`root-16`) print whole."""
    return _OPAQUE.fullmatch(value) is not None and len(value) - value.count("-") >= 16


def shorten(ids: Iterable[str | None], min_length: int = MIN_LENGTH) -> ShortIds:
    """The narrowest window (at least `min_length` wide) telling the distinct opaque `ids`
    apart; other ids print whole but count when checking that no fragment occurs in them."""
    distinct, names = _split(ids)
    if not distinct:
        return ShortIds(min_length, 0)
    longest = max(len(i) for i in distinct)
    every = _Ids(distinct, names)
    # a window that fails on some of the ids fails on all of them: try each on samples first
    samples = [_Ids(distinct[::len(distinct) // size]) for size in _SAMPLES if len(distinct) > 2 * size]
    for width in range(min_length, longest + 1):
        # fragments that neither start nor end with a dash first ("b5c6-41", not "-b5c6-")
        skips = sorted(range(0, longest - width + 1), key=lambda k: (_dash_edged(distinct[0], width, k), k))
        for skip in skips:
            if not all(sample.window_works(width, skip) for sample in samples):
                continue
            if every.window_works(width, skip):
                return ShortIds(width, skip)
    return ShortIds(longest, 0)  # whole ids: distinct, and an exact id always resolves first


def width_for(count: int, min_length: int = MIN_LENGTH) -> int:
    """The narrowest width (at least `min_length`) at which a fragment of a random id is contained
    in one of `count` other random ids with a chance under `_CHANCE`: what keeps a fragment
    unique as the ledger grows, once it is no longer checked against every id (module
    docstring). `count` 10,000: 6; 100,000: 7; 1,000,000: 8."""
    width = min_length
    while count * _PLACES > _CHANCE * 16 ** width:
        width += 1
    return width


def matching(value: str, candidates: Iterable[str]) -> list[str]:
    """The candidates a filter value names: the exact id if it is one of them, else every
    candidate containing `value` (case-insensitive), in the order given, without repeats."""
    pool = list(dict.fromkeys(c for c in candidates if c))
    if value in pool:
        return [value]
    needle = value.strip().lower()
    if not needle:
        return []
    return [c for c in pool if needle in c.lower()]


def _split(ids: Iterable[str | None]) -> tuple[list[str], list[str]]:
    distinct = list(dict.fromkeys(i for i in ids if i))
    return [i for i in distinct if is_opaque(i)], [i for i in distinct if not is_opaque(i)]


class _Ids:
    """Distinct ids with what every window test needs of them computed once."""

    def __init__(self, distinct: Sequence[str], others: Sequence[str] = ()) -> None:
        self.lows = [v.lower() for v in distinct]
        self.layouts = [_shape(v) for v in self.lows]
        lengths = {len(v) for v in self.lows}
        self.length = lengths.pop() if len(lengths) == 1 else None  # UUIDs: one length, one slice for all
        # ids that are not shortened but must not contain another id's fragment either
        self.others = [v.lower() for v in others]

    def window_works(self, width: int, skip: int) -> bool:
        if self.length is not None and self.length > width:
            # every id the same length: one slice for all, and a set tells a clash at C speed
            end = max(self.length - skip, width)
            pieces = [low[end - width:end] for low in self.lows]
            if len(set(pieces)) != len(pieces):
                return False  # two ids share the fragment (or are equal but for case)
            owner = dict(zip(pieces, range(len(pieces))))
        else:
            owner = {}
            for n, low in enumerate(self.lows):
                piece = fragment(low, width, skip)
                if owner.setdefault(piece, n) != n:
                    return False
        # a fragment must not occur anywhere else in another shown id; a whole id is exempt,
        # since an exact id resolves before any substring match
        partial = {piece: n for piece, n in owner.items() if piece != self.lows[n]}
        if not partial:
            return True
        # only places where an id's dashes line up with a fragment's can hold it: work those
        # out once per layout of dashes (UUIDs all share one), not once per id
        texts = {layout: "-".join("x" * k for k in layout) for layout in set(self.layouts)}
        layouts = {self.layouts[n] for n in partial.values()}  # UUIDs: one
        shapes = {_shape(fragment(texts[layout], width, skip)) for layout in layouts}
        starts_for = {layout: [start for start in range(0, len(text) - width + 1)
                               if _shape(text[start:start + width]) in shapes]
                      for layout, text in texts.items()}
        for n, low in enumerate(self.lows):
            for start in starts_for[self.layouts[n]]:
                other = partial.get(low[start:start + width])
                if other is not None and other != n:
                    return False
        return not any(low[start:start + width] in partial
                       for low in self.others for start in range(0, len(low) - width + 1))


def _dash_edged(value: str, width: int, skip: int) -> bool:
    piece = fragment(value, width, skip)
    return piece.startswith("-") or piece.endswith("-")


def _shape(text: str) -> tuple[int, ...]:
    """Where the dashes are, as the lengths of the parts between them."""
    return tuple(map(len, text.split("-")))


class GrowingShortIds:
    """Short ids for a view that keeps growing (`vsm ledger tail`): the window fits the ids
    seen so far and widens when a new id needs it (lines already printed keep their form).
    A new id is checked against the fragments already given out; that a new fragment occurs
    inside an older id is not checked (a later filter then takes the newer id if the older one
    was recorded well before it, else lists both)."""

    def __init__(self, ids: Iterable[str | None] = (), min_length: int = MIN_LENGTH) -> None:
        self._ids: dict[str, None] = {}
        self._owner: dict[str, str] = {}
        self._min = min_length
        self.window = ShortIds(min_length)
        self._extend([i for i in ids if i], rebuild=True)

    def __call__(self, value: str | None) -> str:
        return self.window(value)

    @property
    def width(self) -> int:
        return self.window.width

    def add(self, ids: Iterable[str | None]) -> None:
        self._extend([i for i in ids if i and i not in self._ids and is_opaque(i)], rebuild=False)

    def _extend(self, new: list[str], *, rebuild: bool) -> None:
        for value in new:
            self._ids[value] = None
        if not rebuild:
            width = self.window.width
            for value in new:
                piece, low = self.window(value).lower(), value.lower()
                clash = self._owner.get(piece, value) != value or any(
                    self._owner.get(low[s:s + width], value) != value for s in range(0, len(low) - width + 1))
                if clash:
                    rebuild = True
                    break
                self._owner[piece] = value
        if rebuild:
            self.window = shorten(self._ids, self._min)
            self._owner = {self.window(v).lower(): v for v in self._ids if is_opaque(v)}
