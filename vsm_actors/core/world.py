"""The scripted world of a simulation (DESIGN 3.5): which directives arrive, and how a leaf's
attempt at one turns out. Pure and seeded: every draw is a hash of (seed, key), so the same
inputs give the same run in any order and any process."""

from __future__ import annotations

import hashlib

from attrs import field, frozen

DEFAULT_SUCCESS, DEFAULT_TOKENS, DEFAULT_LATENCY = 0.8, (800, 1600), (100, 900)


@frozen(kw_only=True)
class DirectiveMix:
    task_class: str
    title: str
    weight: float = 1.0
    body: str | None = None
    metadata: dict[str, str] = field(factory=dict)


@frozen(kw_only=True)
class WorldEffect:
    success: float | None = None
    tokens: tuple[int, int] | None = None
    latency_ms: tuple[int, int] | None = None

    def over(self, base: WorldEffect) -> WorldEffect:
        """This effect's keys win over `base`'s."""
        return WorldEffect(success=self.success if self.success is not None else base.success,
                           tokens=self.tokens or base.tokens, latency_ms=self.latency_ms or base.latency_ms)


@frozen(kw_only=True)
class WorldCondition:
    """Every key given must hold; a key's list means any of its values; empty means anything."""

    classes: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    leaves: tuple[str, ...] = ()
    specialist: bool | None = None
    team_has: tuple[str, ...] = ()


@frozen(kw_only=True)
class WorldRule:
    when: WorldCondition
    then: WorldEffect


@frozen(kw_only=True)
class WorldSpec:
    default: WorldEffect = WorldEffect(success=DEFAULT_SUCCESS, tokens=DEFAULT_TOKENS, latency_ms=DEFAULT_LATENCY)
    rules: tuple[WorldRule, ...] = ()


@frozen(kw_only=True)
class SimulationSpec:
    name: str
    directives: tuple[DirectiveMix, ...]
    world: WorldSpec = WorldSpec()
    per_generation: int = 100
    approve_trials: bool = True


@frozen(kw_only=True)
class LeafView:
    task_class: str
    operation: str
    leaf_id: str
    leaf_name: str
    specialist: bool = False
    team_operations: frozenset[str] = frozenset()


@frozen(kw_only=True)
class WorldOutcome:
    success: bool
    tokens: int
    latency_ms: int


def unit_draw(seed: int, *key: object) -> float:
    """A number in [0, 1) fixed by (seed, key)."""
    text = "\x1f".join(map(str, (seed, *key))).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") / 2**64


def uniform_int(seed: int, lo: int, hi: int, *key: object) -> int:
    return lo + int(unit_draw(seed, *key) * (hi - lo + 1)) if hi > lo else lo


def holds(when: WorldCondition, view: LeafView) -> bool:
    if when.classes and view.task_class not in when.classes:
        return False
    if when.operations and view.operation not in when.operations:
        return False
    if when.leaves and view.leaf_id not in when.leaves and view.leaf_name not in when.leaves:
        return False
    if when.specialist is not None and when.specialist != view.specialist:
        return False
    return not when.team_has or any(op in view.team_operations for op in when.team_has)


def effect_for(world: WorldSpec, view: LeafView) -> WorldEffect:
    effect = world.default.over(WorldSpec().default)
    for rule in world.rules:
        if holds(rule.when, view):
            effect = rule.then.over(effect)
    return effect


def world_outcome(world: WorldSpec, view: LeafView, seed: int, key: tuple) -> WorldOutcome:
    e = effect_for(world, view)
    return WorldOutcome(success=unit_draw(seed, "success", *key) < e.success,
                        tokens=uniform_int(seed, *e.tokens, "tokens", *key),
                        latency_ms=uniform_int(seed, *e.latency_ms, "latency", *key))


def draw_directive(spec: SimulationSpec, seed: int, n: int) -> tuple[str, str, str, dict[str, str]]:
    """(class, title, body, metadata) of the run's n-th directive, its class drawn by weight."""
    total = sum(d.weight for d in spec.directives)
    point, chosen = unit_draw(seed, "directive", n) * total, spec.directives[-1]
    for mix in spec.directives:
        if point < mix.weight:
            chosen = mix
            break
        point -= mix.weight
    title = chosen.title.replace("{n}", str(n))
    body = (chosen.body or chosen.title).replace("{n}", str(n))
    return chosen.task_class, title, body, {**chosen.metadata, "task_class": chosen.task_class}


def operation_name(node) -> str:
    kind = node.leaf_operation.kind
    if kind is None:
        return ""
    return str(getattr(kind, "value", kind)).lower()


def is_specialist(genome, leaf_id: str, task_class: str) -> bool:
    node = genome.node(leaf_id)
    if task_class and task_class in [s.strip() for s in node.metadata.get("specialties", "").split(",")]:
        return True
    return any(r.target_child == leaf_id and r.node_id == node.parent_id and r.task_class == task_class
               for r in genome.routing_rules) if task_class else False


def team_operations(genome, leaf_id: str) -> frozenset[str]:
    parent = genome.node(leaf_id).parent_id
    if parent is None:
        return frozenset()
    return frozenset(operation_name(c) for c in genome.children(parent) if c.id != leaf_id and c.is_leaf) - {""}


def leaf_view(genome, leaf_id: str, task_class: str) -> LeafView:
    node = genome.node(leaf_id)
    return LeafView(task_class=task_class, operation=operation_name(node), leaf_id=leaf_id, leaf_name=node.name,
                    specialist=is_specialist(genome, leaf_id, task_class), team_operations=team_operations(genome, leaf_id))
