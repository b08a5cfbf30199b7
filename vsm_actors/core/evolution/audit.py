"""System 3* audit: the observed traces and events of a subtree in, a report and gene suggestions out.

An audit never changes the genome; what it suggests becomes queued candidates (candidates.py).

`RuleBasedAuditor` is the reference's rule (a failure ratio over a trace window suggests a
probationary review leaf) with its thresholds from the genome's `AuditPolicy`, plus two findings
the reference cannot make: when the failures concentrate in one task class, the review leaf comes
with a routing rule sending that class to it (otherwise the router keeps sending the work to the
leaf that fails it); and work that no child could take at all (routing failures for a missing
capability) suggests a leaf with that capability.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from attrs import field, frozen

from ..model.capability import LeafOperationSpec
from ..model.genes import AuditPolicy, RoutingRule
from ..model.genome import OrganizationalGenome
from ..model.ids import IdFactory
from ..model.node import NodeLifecycleStatus, System5Policy, ViableNode
from ..model.patch import AddChild, Batch, GenomePatch
from ..model.payloads import AuditFinding, AuditReport
from ..model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialSafetyLimits
from ..model.trace import TaskTrace
from ..model.patch import AddRoutingRule
from .trials import task_class_of_trace

REVIEW_LEAF_NAME = "review-probation-leaf"
AUDIT_LIMITS = TrialSafetyLimits(max_tasks=10, max_token_budget=100_000, requires_approval=True)
# a leaf preset for each capability a routing failure can name
_PRESET_FOR_CAPABILITY = {"review": ("reviewer", LeafOperationSpec.reviewer),
                          "run_tests": ("tester", LeafOperationSpec.tester),
                          "write_code": ("coder", LeafOperationSpec.coding)}


@frozen(kw_only=True)
class RoutingFailure:
    """A task the metasystem could not route: its class and the capabilities it needed."""

    task_id: str
    task_class: str = ""
    required: tuple[str, ...] = ()


@frozen(kw_only=True)
class AuditInput:
    genome: OrganizationalGenome
    controller_node_id: str
    traces: tuple[TaskTrace, ...]
    routing_failures: tuple[RoutingFailure, ...] = ()
    policy: AuditPolicy | None = None


@frozen(kw_only=True)
class AuditOutcome:
    report: AuditReport
    suggestions: tuple[GeneSuggestion, ...] = field(default=())
    rejected: tuple[str, ...] = field(default=())   # answers or suggestions dropped, with the reason


class Auditor(Protocol):
    """System 3*: reads what a subtree did and proposes bounded mutations, never applies them."""

    def audit(self, observed: AuditInput, new_id: IdFactory) -> AuditOutcome: ...


def default_policy(controller_node_id: str) -> AuditPolicy:
    """The reference auditor's defaults (5 traces, ratio 0.25) for a metasystem without a policy."""
    return AuditPolicy(id=f"default-audit-{controller_node_id}", node_id=controller_node_id, window_tasks=100,
                       min_traces=5, failure_ratio_threshold=0.25)


def policy_for(genome: OrganizationalGenome, node_id: str) -> AuditPolicy | None:
    return next((p for p in genome.audit_policies if p.node_id == node_id), None)


def trace_failed(trace: TaskTrace) -> bool:
    return trace.merged is False or trace.reverted is True


class RuleBasedAuditor:
    """The reference's System 3* rule with the genome's thresholds (see the module docstring)."""

    def audit(self, observed: AuditInput, new_id: IdFactory) -> AuditOutcome:
        genome, controller = observed.genome, observed.controller_node_id
        policy = observed.policy or policy_for(genome, controller) or default_policy(controller)
        parent = genome.node(controller)
        traces = observed.traces[-policy.window_tasks:] if policy.window_tasks > 0 else observed.traces
        findings, patches, suggestions = [], [], []
        failed = [t for t in traces if trace_failed(t)]
        ratio = len(failed) / len(traces) if traces else 0.0
        if len(traces) >= policy.min_traces and ratio >= policy.failure_ratio_threshold and not _has_reviewer(genome, controller):
            findings.append(AuditFinding(
                title="High child failure ratio",
                evidence=(f"{len(failed)} failed/reverted traces across {len(traces)} observed traces",),
                severity=6, related_nodes=parent.children, related_tasks=tuple(t.task_id for t in traces)))
            patch, evidence = self._review_patch(genome, controller, traces, failed)
            patches.append(patch)
            suggestions.append(GeneSuggestion.new(
                controller, controller, GeneSuggestionSourceKind.System3StarAudit, patch,
                "Observed failure ratio suggests trialing a bounded review child.", new_id,
                evidence=(f"failure_ratio={ratio:.3f}, failed={len(failed)}, traces={len(traces)}", *evidence),
                safety_limits=AUDIT_LIMITS))
        for capability, failures in _capability_gaps(genome, controller, observed.routing_failures, policy):
            name, preset = _PRESET_FOR_CAPABILITY[capability]
            leaf = _new_leaf(genome, controller, f"{capability.replace('_', '-')}-{name}", preset(),
                             f"Leaf that takes {capability} work no child could take (System 3* audit).")
            patch = AddChild(parent_id=controller, child=leaf)
            findings.append(AuditFinding(
                title=f"Work needing {capability} has no child able to take it",
                evidence=(f"{len(failures)} routing failures for capability {capability}",),
                severity=7, related_nodes=(controller,), related_tasks=tuple(f.task_id for f in failures)))
            patches.append(patch)
            suggestions.append(GeneSuggestion.new(
                controller, controller, GeneSuggestionSourceKind.System3StarAudit, patch,
                f"Unroutable {capability} work suggests trialing a bounded {name} child.", new_id,
                evidence=(f"routing_failures={len(failures)}", f"missing_capability={capability}"),
                safety_limits=AUDIT_LIMITS))
        report = AuditReport(target_node_id=controller, findings=tuple(findings), suggested_patches=tuple(patches))
        return AuditOutcome(report=report, suggestions=tuple(suggestions))

    @staticmethod
    def _review_patch(genome: OrganizationalGenome, controller: str, traces: Sequence[TaskTrace],
                      failed: Sequence[TaskTrace]) -> tuple[GenomePatch, tuple[str, ...]]:
        leaf = _new_leaf(genome, controller, REVIEW_LEAF_NAME, LeafOperationSpec.reviewer(),
                         "Probationary review leaf suggested by System 3* audit.",
                         values=("catch regressions before integration",),
                         constraints=("Do not write code; review only according to leaf capabilities.",),
                         metadata={"suggested_by": "system_3_star", "task_tag": "review"})
        add = AddChild(parent_id=controller, child=leaf)
        worst = _worst_class(traces, failed)
        if worst is None:
            return add, ()
        cls, rate, size = worst
        rule = RoutingRule(id=f"route-{cls}-to-{leaf.id}", node_id=controller, target_child=leaf.id, task_class=cls)
        patch = Batch(patches=(add, AddRoutingRule(rule=rule)))
        return patch, (f"failing_class={cls} failure_rate={rate:.3f} class_traces={size}",)


def _has_reviewer(genome: OrganizationalGenome, controller: str) -> bool:
    return any(c.is_leaf and c.leaf_operation.allows_review and c.status is not NodeLifecycleStatus.Retired
               for c in genome.children(controller))


def _worst_class(traces: Sequence[TaskTrace], failed: Sequence[TaskTrace]) -> tuple[str, float, int] | None:
    """The task class whose failure rate is highest, when it is clearly worse than the rest."""
    sizes = Counter(task_class_of_trace(t) for t in traces)
    fails = Counter(task_class_of_trace(t) for t in failed)
    best = None
    for cls, size in sizes.items():
        if not cls or size < 3:
            continue
        rate = fails[cls] / size
        rest = len(traces) - size
        rest_rate = (len(failed) - fails[cls]) / rest if rest else 0.0
        if rate >= rest_rate + 0.25 and (best is None or rate > best[1]):
            best = (cls, rate, size)
    return best


def _capability_gaps(genome: OrganizationalGenome, controller: str, failures: Sequence[RoutingFailure],
                     policy: AuditPolicy):
    wanted: dict[str, list[RoutingFailure]] = {}
    for failure in failures[-policy.window_tasks:] if policy.window_tasks > 0 else failures:
        for capability in failure.required:
            if capability in _PRESET_FOR_CAPABILITY:
                wanted.setdefault(capability, []).append(failure)
    for capability, items in sorted(wanted.items()):
        able = any(c.is_leaf and c.capabilities().allows(capability) for c in genome.children(controller))
        if not able and len(items) >= max(policy.min_traces, 1):
            yield capability, items


def _new_leaf(genome: OrganizationalGenome, controller: str, name: str, spec: LeafOperationSpec, identity: str, *,
              values: tuple[str, ...] = (), constraints: tuple[str, ...] = (),
              metadata: dict[str, str] | None = None) -> ViableNode:
    """A probationary leaf with a name unique among the controller's children (and an id unique in
    the genome), on the model its siblings use."""
    taken = {c.name for c in genome.children(controller)}
    unique, n = name, 2
    while unique in taken or unique in genome.nodes:
        unique, n = f"{name}-{n}", n + 1
    sibling = next((c for c in genome.children(controller) if c.is_leaf), None)
    extra = {"model": sibling.model} if sibling is not None else {}
    return ViableNode.leaf(
        unique, unique, spec, status=NodeLifecycleStatus.Probation, metadata=dict(metadata or {}),
        system_5=System5Policy(identity=identity, values=values, non_negotiable_constraints=constraints,
                               denied_capabilities=("write_code",) if not spec.allows_code_write else ()),
        **extra)


REPORT_HYPOTHESIS = "System 3* audit report suggested a bounded organizational mutation."


def suggestions_from_report(report: AuditReport, suggested_by: str, source_channel: str, new_id: IdFactory,
                            correlation_id: str | None = None) -> tuple[GeneSuggestion, ...]:
    """One bounded suggestion per patch of an audit report that arrived on a channel (reference §3.13)."""
    titles = "; ".join(f.title for f in report.findings)
    hypothesis = (f"System 3* audit report suggests a bounded organizational mutation: {titles}" if titles
                  else REPORT_HYPOTHESIS)
    evidence = [f"source_channel={source_channel}"]
    if correlation_id:
        evidence.append(f"correlation_id={correlation_id}")
    for f in report.findings:
        evidence.append(f"finding={f.title} severity={f.severity} related_nodes={len(f.related_nodes)} "
                        f"related_tasks={len(f.related_tasks)}")
        evidence.extend(f.evidence)
    if len(evidence) == 1 + bool(correlation_id):
        evidence.append("audit report supplied suggested patch without findings")
    return tuple(GeneSuggestion.new(suggested_by, report.target_node_id, GeneSuggestionSourceKind.System3StarAudit,
                                    patch, hypothesis, new_id, evidence=tuple(evidence), safety_limits=AUDIT_LIMITS)
                 for patch in report.suggested_patches)
