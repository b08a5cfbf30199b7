"""Specialization operators: structure that follows the work the controller actually observed.

The reference GA never specializes. These operators cluster the controller's recent traces by task
class and propose: a specialist sibling for a class a leaf fails disproportionately; promoting an
overloaded leaf so a specialist can sit beside its generalist; retiring a specialist that shows no
advantage; merging two leaves nobody could tell apart. Every proposal is checked to apply to the
champion and to leave a valid genome before it is returned; trials then decide on evidence.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from attrs import evolve, frozen

from ..model.genes import RoutingRule
from ..model.genome import OrganizationalGenome
from ..model.node import NodeLifecycleStatus, ViableNode
from ..model.patch import (
    AddChild, AddRoutingRule, Batch, PromoteLeafToMetasystem, RemoveRoutingRule, RemoveSubtree,
    extracted_child_id,
)
from ..model.suggestion import TrialSafetyLimits
from ..model.trace import TaskTrace
from .generation import REFERENCE_OPERATORS, Offspring, Operator, OperatorInput, applies_cleanly

# rates are ratios of small integers: a difference that equals a threshold in decimal must compare
# as equal to it in binary (0.85 - 0.70 is a 0.15 gap)
_EPS = 1e-9
_RETIRED = NodeLifecycleStatus.Retired
# bookkeeping of the node a specialist is copied from that would be false on the copy
_NOT_INHERITED = ("extracted_from_node_id", "promoted_to_metasystem")


@frozen(kw_only=True)
class SpecializationPolicy:
    """Thresholds of the specialization operators; sizes count traces with a known outcome."""

    min_cluster_size: int = 8          # traces of one class (and per leaf, for merging) before judging
    min_success_gap: float = 0.15      # how much worse a class must do to deserve a specialist
    min_baseline_size: int = 4         # traces the comparison side needs to mean anything
    overload_share: float = 0.8        # share of the controller's traces that makes a leaf overloaded
    max_token_difference: float = 0.2  # relative average-token difference of indistinguishable leaves
    trial_max_tasks: int = 10
    trial_token_budget: int = 100_000
    trial_traffic_share_basis_points: int = 1_000


DEFAULT_SPECIALIZATION = SpecializationPolicy()

# -- clustering ----------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+")


def task_class_of(trace: TaskTrace) -> str:
    """The trace's task class: explicit metadata, else the first two words of the task title
    (lowercase, digits dropped, joined by "-"); "" when there is neither."""
    meta = trace.metadata
    explicit = meta.get("task_metadata.task_class") or meta.get("task_class")
    if explicit:
        return explicit
    return "-".join(_WORD.findall(meta.get("task_title", "").lower())[:2])


def trace_succeeded(trace: TaskTrace) -> bool | None:
    """True when merged; False when the merge was refused or the tests failed; None when unknown."""
    if trace.merged is True:
        return True
    if trace.merged is False or trace.tests_passed is False:
        return False
    return None


@frozen(kw_only=True)
class Tally:
    traces: int = 0
    known: int = 0       # traces with a known outcome: the denominator of the success rate
    successes: int = 0
    tokens: int = 0

    @property
    def rate(self) -> float:
        return self.successes / self.known if self.known else 0.0

    @property
    def avg_tokens(self) -> int:
        return self.tokens // self.traces if self.traces else 0


def tally(traces: Iterable[TaskTrace]) -> Tally:
    n = known = wins = tokens = 0
    for trace in traces:
        n += 1
        tokens += trace.token_total()
        outcome = trace_succeeded(trace)
        if outcome is not None:
            known += 1
            wins += outcome
    return Tally(traces=n, known=known, successes=wins, tokens=tokens)


def specialties(node: ViableNode) -> tuple[str, ...]:
    return tuple(s.strip() for s in node.metadata.get("specialties", "").split(",") if s.strip())


def _slug(task_class: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", task_class.lower()).strip("-")


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _controller_traces(inp: OperatorInput) -> list[TaskTrace] | None:
    """The recent traces worked inside the controller's subtree; None when it has no children."""
    genome, controller = inp.champion, inp.controller_node_id
    if not genome.has_node(controller) or genome.node(controller).is_leaf:
        return None
    subtree = set(genome.subtree_ids(controller))
    return [t for t in inp.recent_traces if t.assigned_node_id in subtree]


def _limits(policy: SpecializationPolicy, classes: Sequence[str] = ()) -> TrialSafetyLimits:
    return TrialSafetyLimits(max_tasks=policy.trial_max_tasks, max_token_budget=policy.trial_token_budget,
                             max_traffic_share_basis_points=policy.trial_traffic_share_basis_points,
                             allowed_task_classes=tuple(classes))


def _checked(champion: OrganizationalGenome, proposals: Iterable[Offspring]) -> list[Offspring]:
    return [p for p in proposals if applies_cleanly(champion, p.patch)]


def _removal(genome: OrganizationalGenome, node_id: str) -> Batch:
    """Drop the rules that send work to the node, then the node: nothing routes into a hole."""
    rules = [RemoveRoutingRule(rule_id=r.id) for r in genome.routing_rules if r.target_child == node_id]
    return Batch(patches=(*rules, RemoveSubtree(node_id=node_id)))


def _rate(tally_: Tally) -> str:
    return f"{tally_.rate:.2f}"


# -- weak clusters (shared by the two growth operators) --------------------------------------------

@frozen(kw_only=True)
class WeakCluster:
    leaf_id: str
    task_class: str
    cluster: Tally
    rest: Tally
    controller: Tally
    gap: float
    leaf_share: float   # the leaf's share of all the controller's traces

    def evidence(self) -> tuple[str, ...]:
        rest = _rate(self.rest) if self.rest.known else "n/a"
        return (f"node={self.leaf_id}", f"cluster={self.task_class}", f"size={self.cluster.known}",
                f"success_rate={_rate(self.cluster)}", f"rest_success_rate={rest}",
                f"controller_success_rate={_rate(self.controller)}", f"avg_tokens={self.cluster.avg_tokens}",
                f"rest_avg_tokens={self.rest.avg_tokens}", f"success_gap={self.gap:.2f}",
                f"leaf_trace_share={self.leaf_share:.2f}")


def weak_clusters(inp: OperatorInput, policy: SpecializationPolicy) -> list[WeakCluster]:
    """Class clusters that a direct leaf child serves markedly worse than its other work (or than
    the controller overall), for classes no rule routes and no child claims; biggest gap first."""
    traces = _controller_traces(inp)
    if not traces:
        return []
    genome, controller = inp.champion, inp.controller_node_id
    children = genome.children(controller)
    overall = tally(traces)
    taken = {r.task_class for r in genome.routing_rules if r.node_id == controller and r.task_class is not None}
    taken |= {k for child in children for k in specialties(child)}
    found: list[WeakCluster] = []
    for child in children:
        if not child.is_leaf or child.status is _RETIRED:
            continue
        mine = [t for t in traces if t.assigned_node_id == child.id]
        classes = [task_class_of(t) for t in mine]
        for cls in sorted(set(classes)):
            if not cls or cls in taken or not _slug(cls):
                continue
            cluster = tally(t for t, c in zip(mine, classes) if c == cls)
            if cluster.known < policy.min_cluster_size:
                continue
            rest = tally(t for t, c in zip(mine, classes) if c != cls)
            gap = overall.rate - cluster.rate
            if rest.known >= policy.min_baseline_size:
                gap = max(gap, rest.rate - cluster.rate)
            if gap + _EPS >= policy.min_success_gap:
                found.append(WeakCluster(leaf_id=child.id, task_class=cls, cluster=cluster, rest=rest,
                                         controller=overall, gap=gap, leaf_share=len(mine) / len(traces)))
    found.sort(key=lambda w: (-w.gap, w.task_class, w.leaf_id))
    return found


def _specialist(leaf: ViableNode, task_class: str, node_id: str, name: str) -> ViableNode:
    """A copy of the leaf (operation, model, tools, prompt, permissions) that names its class."""
    metadata = {k: v for k, v in leaf.metadata.items() if k not in _NOT_INHERITED}
    metadata.update(specialties=task_class, specialized_from_node_id=leaf.id)
    return evolve(leaf, id=node_id, name=name, parent_id=None, children=(), channels=(), age_epochs=0,
                  status=NodeLifecycleStatus.Probation, metadata=metadata)


def _specialist_ids(genome: OrganizationalGenome, task_class: str, sibling_names: set[str],
                    taken_ids: set[str]) -> tuple[str, str]:
    """(id, name) `{class}-specialist`, the first free one among the siblings and the genome."""
    base = f"{_slug(task_class)}-specialist"
    candidate, n = base, 2
    while candidate in sibling_names or candidate in taken_ids or candidate in genome.nodes:
        candidate, n = f"{base}-{n}", n + 1
    return candidate, candidate


def _rule_id(genome: OrganizationalGenome, task_class: str) -> str:
    return _unique(f"route-{_slug(task_class)}-to-specialist", {r.id for r in genome.routing_rules})


# -- a. add_specialist_sibling -----------------------------------------------------------------------

def add_specialist_sibling(inp: OperatorInput, policy: SpecializationPolicy = DEFAULT_SPECIALIZATION) -> list[Offspring]:
    genome, controller = inp.champion, inp.controller_node_id
    proposals, seen = [], set()
    for weak in weak_clusters(inp, policy):
        if weak.task_class in seen:  # one specialist per class, for the leaf that fails it worst
            continue
        seen.add(weak.task_class)
        leaf = genome.node(weak.leaf_id)
        names = {c.name for c in genome.children(controller)}
        node_id, name = _specialist_ids(genome, weak.task_class, names, set())
        rule = RoutingRule(id=_rule_id(genome, weak.task_class), node_id=controller, target_child=node_id,
                           task_class=weak.task_class)
        patch = Batch(patches=(AddChild(parent_id=controller, child=_specialist(leaf, weak.task_class, node_id, name)),
                               AddRoutingRule(rule=rule)))
        proposals.append(Offspring(
            operator="add_specialist_sibling", patch=patch, evidence=weak.evidence(),
            hypothesis=(f"{leaf.name} succeeds on {weak.task_class} work markedly less often than on the rest; "
                        f"a specialist sibling that receives that class by rule should close the gap."),
            safety_limits=_limits(policy, (weak.task_class,))))
    return _checked(genome, proposals)


# -- b. promote_overloaded_leaf ----------------------------------------------------------------------

def promote_overloaded_leaf(inp: OperatorInput, policy: SpecializationPolicy = DEFAULT_SPECIALIZATION) -> list[Offspring]:
    genome = inp.champion
    for weak in weak_clusters(inp, policy):
        if weak.leaf_share + _EPS < policy.overload_share:
            continue
        leaf = genome.node(weak.leaf_id)
        generalist_name = f"{leaf.name}-generalist"
        # the id the promotion will give the extracted child (candidates apply patches without an
        # id factory), so the specialist's id cannot collide with it
        generalist_id = extracted_child_id(genome, generalist_name, None)
        node_id, name = _specialist_ids(genome, weak.task_class, {generalist_name}, {generalist_id})
        rule = RoutingRule(id=_rule_id(genome, weak.task_class), node_id=leaf.id, target_child=node_id,
                           task_class=weak.task_class)
        patch = Batch(patches=(
            PromoteLeafToMetasystem(node_id=leaf.id, extracted_child_name=generalist_name),
            AddChild(parent_id=leaf.id, child=_specialist(leaf, weak.task_class, node_id, name)),
            AddRoutingRule(rule=rule),
        ))
        proposal = Offspring(
            operator="promote_overloaded_leaf", patch=patch,
            evidence=(*weak.evidence(), f"generalist={generalist_id}", f"specialist={node_id}"),
            hypothesis=(f"{leaf.name} carries most of the work and fails its {weak.task_class} share; promoted to a "
                        f"metasystem over a generalist and a {weak.task_class} specialist it should do better."),
            safety_limits=_limits(policy, (weak.task_class,)))
        # promotion is all-or-nothing for the leaf: the strongest class that applies is the proposal
        checked = _checked(genome, [proposal])
        if checked:
            return checked
    return []


# -- c. retire_redundant_specialist ------------------------------------------------------------------

def retire_redundant_specialist(inp: OperatorInput,
                                policy: SpecializationPolicy = DEFAULT_SPECIALIZATION) -> list[Offspring]:
    traces = _controller_traces(inp)
    if not traces:
        return []
    genome, controller = inp.champion, inp.controller_node_id
    children = genome.children(controller)
    proposals = []
    for child in children:
        if child.status is _RETIRED:
            continue
        routed = {r.task_class for r in genome.routing_rules
                  if r.node_id == controller and r.target_child == child.id and r.task_class is not None}
        classes = set(specialties(child)) | routed
        if not classes or not any(c.id != child.id and c.status is not _RETIRED for c in children):
            continue
        own = set(genome.subtree_ids(child.id))
        others = {n for c in children if c.id != child.id for n in genome.subtree_ids(c.id)}
        special = tally(t for t in traces if t.assigned_node_id in own and task_class_of(t) in classes)
        rest = tally(t for t in traces if t.assigned_node_id in others and task_class_of(t) not in classes)
        if special.known < policy.min_cluster_size or rest.known < policy.min_baseline_size:
            continue
        advantage = special.rate - rest.rate
        if advantage + _EPS >= policy.min_success_gap / 2:
            continue
        ordered = tuple(sorted(classes))
        proposals.append(Offspring(
            operator="retire_redundant_specialist", patch=_removal(genome, child.id),
            evidence=(f"node={child.id}", f"cluster={','.join(ordered)}", f"size={special.known}",
                      f"success_rate={_rate(special)}", f"rest_success_rate={_rate(rest)}",
                      f"avg_tokens={special.avg_tokens}", f"rest_avg_tokens={rest.avg_tokens}",
                      f"advantage={advantage:.2f}"),
            hypothesis=(f"{child.name} adds a node and routing for {', '.join(ordered)} without succeeding more "
                        f"often than the rest of the organization; removing it should cost nothing."),
            safety_limits=_limits(policy, ordered)))
    return _checked(genome, proposals)


# -- d. merge_indistinguishable_leaves ----------------------------------------------------------------

def _same_operation(a: ViableNode, b: ViableNode) -> bool:
    if a.leaf_operation.kind is None or b.leaf_operation.kind is None:
        return a.leaf_operation == b.leaf_operation
    return a.leaf_operation.kind == b.leaf_operation.kind


def _token_difference(a: int, b: int) -> float:
    high = max(a, b)
    return abs(a - b) / high if high else 0.0


def merge_indistinguishable_leaves(inp: OperatorInput,
                                   policy: SpecializationPolicy = DEFAULT_SPECIALIZATION) -> list[Offspring]:
    traces = _controller_traces(inp)
    if not traces:
        return []
    genome = inp.champion
    leaves = [c for c in genome.children(inp.controller_node_id) if c.is_leaf and c.status is not _RETIRED]
    tallies = {leaf.id: tally(t for t in traces if t.assigned_node_id == leaf.id) for leaf in leaves}
    for i, a in enumerate(leaves):
        for b in leaves[i + 1:]:
            ta, tb = tallies[a.id], tallies[b.id]
            if (not _same_operation(a, b) or min(ta.known, tb.known) < policy.min_cluster_size
                    or abs(ta.rate - tb.rate) + _EPS >= policy.min_success_gap / 3
                    or _token_difference(ta.avg_tokens, tb.avg_tokens) + _EPS >= policy.max_token_difference):
                continue
            # keep the leaf that carries more work; on a tie, the one listed first
            kept, removed = (a, b) if ta.traces >= tb.traces else (b, a)
            tk, tr = tallies[kept.id], tallies[removed.id]
            proposal = Offspring(
                operator="merge_indistinguishable_leaves", patch=_removal(genome, removed.id),
                evidence=(f"kept={kept.id}", f"removed={removed.id}", f"kept_size={tk.known}",
                          f"removed_size={tr.known}", f"kept_success_rate={_rate(tk)}",
                          f"removed_success_rate={_rate(tr)}", f"kept_avg_tokens={tk.avg_tokens}",
                          f"removed_avg_tokens={tr.avg_tokens}"),
                hypothesis=(f"{kept.name} and {removed.name} do the same kind of work with indistinguishable "
                            f"success and cost; one leaf should serve both loads."),
                safety_limits=_limits(policy))
            checked = _checked(genome, [proposal])
            if checked:
                return checked
    return []


SPECIALIZATION_OPERATORS: tuple[Operator, ...] = (
    add_specialist_sibling, promote_overloaded_leaf, retire_redundant_specialist, merge_indistinguishable_leaves,
)
ALL_OPERATORS: tuple[Operator, ...] = (*REFERENCE_OPERATORS, *SPECIALIZATION_OPERATORS)


def specialization_operators(policy: SpecializationPolicy) -> tuple[Operator, ...]:
    """The four specialization operators with other thresholds, in the same order."""
    return tuple(functools.partial(op, policy=policy) for op in SPECIALIZATION_OPERATORS)
