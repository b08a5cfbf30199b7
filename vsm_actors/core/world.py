"""The scripted world of a simulation (DESIGN 3.5): which directives arrive, and how a leaf's
attempt at one turns out. Pure and seeded: every draw is a hash of (seed, key), so the same
inputs give the same run in any order and any process, and different keys are independent.

`when` semantics: every key a condition sets must hold, and a key given as a list holds when
any of its values matches. That applies to every key, `team_has` included: `team_has:
[reviewing, testing]` holds when the leaf has a reviewing *or* a testing sibling. `class`,
`leaf` (id or name) and `specialties` compare exactly; `operation` and `team_has` compare
case-insensitively.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from attrs import field, frozen

from .model.genome import OrganizationalGenome
from .model.node import ViableNode

DEFAULT_SUCCESS, DEFAULT_TOKENS, DEFAULT_LATENCY = 0.8, (800, 1600), (100, 900)


def _strings(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _lower_strings(value: str | Iterable[str] | None) -> tuple[str, ...]:
    return tuple(v.lower() for v in _strings(value))


def _range(value: int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """A number n is the range (n, n); a pair stays (min, max)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value), int(value)
    lo, hi = value
    return int(lo), int(hi)


@frozen(kw_only=True)
class DirectiveMix:
    """One entry of the directive mix: drawn with probability weight / total weight."""

    task_class: str
    title: str
    weight: float = 1.0
    body: str | None = None
    metadata: dict[str, str] = field(factory=dict, converter=dict)


@frozen(kw_only=True)
class WorldEffect:
    """What the world does; an unset key (None) leaves the effect below it in place."""

    success: float | None = None
    tokens: tuple[int, int] | None = field(default=None, converter=_range)
    latency_ms: tuple[int, int] | None = field(default=None, converter=_range)

    def over(self, base: WorldEffect) -> WorldEffect:
        """This effect's keys win over `base`'s."""
        return WorldEffect(success=self.success if self.success is not None else base.success,
                           tokens=self.tokens if self.tokens is not None else base.tokens,
                           latency_ms=self.latency_ms if self.latency_ms is not None else base.latency_ms)


BUILTIN_DEFAULT = WorldEffect(success=DEFAULT_SUCCESS, tokens=DEFAULT_TOKENS, latency_ms=DEFAULT_LATENCY)


@frozen(kw_only=True)
class WorldCondition:
    """Every key given must hold; a key's list means any of its values; empty means anything."""

    classes: tuple[str, ...] = field(default=(), converter=_strings)
    operations: tuple[str, ...] = field(default=(), converter=_lower_strings)
    leaves: tuple[str, ...] = field(default=(), converter=_strings)
    specialist: bool | None = None
    team_has: tuple[str, ...] = field(default=(), converter=_lower_strings)


@frozen(kw_only=True)
class WorldRule:
    when: WorldCondition = WorldCondition()
    then: WorldEffect = WorldEffect()


@frozen(kw_only=True)
class WorldSpec:
    default: WorldEffect = BUILTIN_DEFAULT
    rules: tuple[WorldRule, ...] = field(default=(), converter=tuple)


@frozen(kw_only=True)
class SimulationSpec:
    name: str
    directives: tuple[DirectiveMix, ...] = field(converter=tuple)
    world: WorldSpec = WorldSpec()
    per_generation: int = 100
    approve_trials: bool = True


@frozen(kw_only=True)
class LeafView:
    """What the world sees of the leaf attempting a task."""

    task_class: str | None
    operation: str = field(converter=str.lower)
    leaf_id: str
    leaf_name: str
    specialist: bool = False
    team_operations: frozenset[str] = field(default=frozenset(),
                                            converter=lambda ops: frozenset(o.lower() for o in ops))


@frozen(kw_only=True)
class WorldOutcome:
    success: bool
    tokens: int
    latency_ms: int


# -- seeded draws -------------------------------------------------------------------------------


def unit_draw(seed: int, *key: object) -> float:
    """A number in [0, 1) fixed by (seed, key): the top 64 bits of blake2b over the parts' text,
    joined by the unit separator."""
    text = "\x1f".join(map(str, (seed, *key))).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") / 2**64


def uniform_int(seed: int, lo: int, hi: int, *key: object) -> int:
    """A whole number in [lo, hi], every value equally likely, fixed by (seed, key)."""
    return lo + int(unit_draw(seed, *key) * (hi - lo + 1)) if hi > lo else lo


# -- the world's rules ----------------------------------------------------------------------------


def holds(when: WorldCondition, view: LeafView) -> bool:
    if when.classes and view.task_class not in when.classes:
        return False
    if when.operations and view.operation.lower() not in when.operations:
        return False
    if when.leaves and view.leaf_id not in when.leaves and view.leaf_name not in when.leaves:
        return False
    if when.specialist is not None and when.specialist != view.specialist:
        return False
    return not when.team_has or any(op in view.team_operations for op in when.team_has)


def effect_for(world: WorldSpec, view: LeafView) -> WorldEffect:
    """The built-in default, under the world's default, under every rule that holds, in order."""
    effect = world.default.over(BUILTIN_DEFAULT)
    for rule in world.rules:
        if holds(rule.when, view):
            effect = rule.then.over(effect)
    return effect


def world_outcome(world: WorldSpec, view: LeafView, seed: int, draw_key: tuple) -> WorldOutcome:
    """Success, tokens and latency of one attempt, each drawn with its own sub-key."""
    e = effect_for(world, view)
    return WorldOutcome(success=unit_draw(seed, "success", *draw_key) < e.success,
                        tokens=uniform_int(seed, *e.tokens, "tokens", *draw_key),
                        latency_ms=uniform_int(seed, *e.latency_ms, "latency", *draw_key))


def draw_directive(spec: SimulationSpec, seed: int, n: int) -> tuple[str, str, str, dict[str, str]]:
    """(class, title, body, metadata) of the run's n-th directive (n from 1), its class drawn by
    weight. `{n}` in the title and body becomes n; the body defaults to the title; the metadata is
    the mix entry's plus `task_class`."""
    total = sum(d.weight for d in spec.directives)
    point, chosen = unit_draw(seed, "directive", n) * total, spec.directives[-1]
    for mix in spec.directives:
        if point < mix.weight:
            chosen = mix
            break
        point -= mix.weight
    title = chosen.title.replace("{n}", str(n))
    body = (chosen.body if chosen.body is not None else chosen.title).replace("{n}", str(n))
    return chosen.task_class, title, body, {**chosen.metadata, "task_class": chosen.task_class}


# -- what the world sees of a genome --------------------------------------------------------------


def operation_name(node: ViableNode) -> str:
    """The leaf operation kind, lowercased (`coding`, ..., or a custom kind's own name); "" if none."""
    kind = node.leaf_operation.kind
    if kind is None:
        return ""
    return str(getattr(kind, "value", kind)).lower()


def is_specialist(genome: OrganizationalGenome, leaf_id: str, task_class: str | None) -> bool:
    """A routing rule of the leaf's parent sends `task_class` to it, or its metadata `specialties`
    (a comma list) names the class."""
    if not task_class:
        return False
    node = genome.node(leaf_id)
    if task_class in (s.strip() for s in node.metadata.get("specialties", "").split(",")):
        return True
    return any(r.target_child == leaf_id and r.node_id == node.parent_id and r.task_class == task_class
               for r in genome.routing_rules)


def team_operations(genome: OrganizationalGenome, leaf_id: str) -> frozenset[str]:
    """Operation names of the leaf's sibling leaves, itself excluded."""
    parent = genome.node(leaf_id).parent_id
    if parent is None:
        return frozenset()
    return frozenset(operation_name(c) for c in genome.children(parent) if c.id != leaf_id and c.is_leaf) - {""}


def leaf_view(genome: OrganizationalGenome, leaf_id: str, task_class: str | None) -> LeafView:
    node = genome.node(leaf_id)
    return LeafView(task_class=task_class, operation=operation_name(node), leaf_id=leaf_id, leaf_name=node.name,
                    specialist=is_specialist(genome, leaf_id, task_class),
                    team_operations=team_operations(genome, leaf_id))
