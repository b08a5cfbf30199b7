"""Genes beyond the reference's node/channel set: relations, routing rules, audit policies and
mutation/trial settings (the seed lists them as genes; the reference kernel never modelled them).

They travel in genome files and snapshots; on the reference wire they are emitted only when they
differ from their defaults, so a Rust node still reads (and ignores) them.
"""

from __future__ import annotations

from attrs import field, frozen

from .ids import NodeId


@frozen(kw_only=True)
class Relation:
    """A non-containment edge between two nodes (peer work, review, supply, dependency)."""

    id: str
    kind: str
    from_: NodeId
    to: NodeId
    metadata: dict[str, str] = field(factory=dict)


@frozen(kw_only=True)
class RoutingRule:
    """Sends matching tasks arriving at metasystem `node_id` to its direct child `target_child`.

    A rule matches when every condition it sets holds; unset conditions match anything. Rules are
    consulted after explicit assignment and `target_child` metadata, before capability routing.
    """

    id: str
    node_id: NodeId
    target_child: NodeId
    task_class: str | None = None
    required_capability: str | None = None
    keywords: tuple[str, ...] = ()
    risk: tuple[str, ...] = ()
    priority: int = 0


@frozen(kw_only=True)
class AuditPolicy:
    """How System 3* at `node_id` audits its subtree and when it proposes a gene."""

    id: str
    node_id: NodeId
    window_tasks: int = 50
    min_traces: int = 2
    failure_ratio_threshold: float = 0.5
    suggestion: str = "add_review_leaf"


@frozen(kw_only=True)
class TrialSettings:
    """Bounds on mutation trials; every trial ends by one of these limits (no stalled trials)."""

    max_active_trials: int = 1
    default_trial_mode: str = "Probation"
    min_tasks_before_decision: int = 1
    promote_margin: float = 0.1
    prune_below: float = -5.0
    max_trial_tasks: int | None = 25
    max_trial_seconds: int | None = 3600
