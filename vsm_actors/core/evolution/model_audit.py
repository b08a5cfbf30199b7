"""A model-directed System 3* auditor: a model reads the subtree and its evidence and answers with
genome patches as JSON; every patch is validated as a genome file would be, and an answer (or a
suggestion in it) that does not pass is recorded as rejected and dropped, never queued.

The model is reached through `ask` (the shell wires a `ModelProvider` to it) and patches are
decoded by `decode_patch(raw, where)` (files.patch_files), so this module stays pure. The answer's
shape is stated in the instructions the model receives::

    {"findings":    [{"title": str, "evidence": [str], "severity": 0-10}],
     "suggestions": [{"patch": {<one genome patch>}, "hypothesis": str,
                      "evidence": [str], "trial_mode": "Canary|Probation|Shadow|Direct"}]}

Suggestions from a model always get the audit's bounded limits and need approval, whatever the
model asked for: the model proposes, the trial decides.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from attrs import field, frozen

from ..model.genome import OrganizationalGenome
from ..model.ids import IdFactory
from ..model.patch import GenomePatch
from ..model.payloads import AuditFinding, AuditReport
from ..model.suggestion import GeneSuggestion, GeneSuggestionSourceKind, TrialMode
from ..model.trace import TaskTrace
from .audit import AUDIT_LIMITS, AuditInput, AuditOutcome, default_policy, policy_for, trace_failed
from .candidates import CandidateError, build_candidate
from .trials import task_class_of_trace

AUDIT_OPERATION = "system_3_star_audit"
MAX_SUGGESTIONS = 5      # more than this from one answer is noise, not a plan
EXCERPT = 400            # characters of a rejected answer kept as evidence

INSTRUCTIONS = """You are System 3* (audit) of a viable system: a metasystem that never writes code.
Read the subtree and the evidence, and propose at most {limit} bounded structural changes that would
make the subtree succeed more often or cost less. Answer with one JSON object and nothing else:
{{"findings": [{{"title": "...", "evidence": ["..."], "severity": 0-10}}],
 "suggestions": [{{"patch": {{"<PatchKind>": {{...}}}}, "hypothesis": "...", "evidence": ["..."],
                  "trial_mode": "Canary"}}]}}
Patch kinds: {kinds}. A patch is a one-key object naming its kind, with the fields of the genome
file format (AddChild takes parent_id and a child node; AddRoutingRule takes a rule with id,
node_id, target_child and task_class). Nodes with children never write code.
An empty suggestions list is a good answer when nothing should change."""


@frozen(kw_only=True)
class AuditPrompt:
    """What the shell sends to the model: instructions, the evidence as JSON, and request metadata."""

    instructions: str
    input: str
    metadata: dict[str, str] = field(factory=dict)


class AnswerError(ValueError):
    """An answer that cannot be used; the message names the place in the answer."""


class ModelDirectedAuditor:
    """Asks a model for patches (see the module docstring); never raises for a bad answer."""

    def __init__(self, ask: Callable[[AuditPrompt], str], decode_patch: Callable[[Any, str], GenomePatch],
                 patch_kinds: Sequence[str] = ()):
        self.ask, self.decode_patch, self.patch_kinds = ask, decode_patch, tuple(patch_kinds)

    def audit(self, observed: AuditInput, new_id: IdFactory) -> AuditOutcome:
        controller = observed.controller_node_id
        policy = observed.policy or policy_for(observed.genome, controller) or default_policy(controller)
        traces = observed.traces[-policy.window_tasks:] if policy.window_tasks > 0 else observed.traces
        prompt = self.prompt(observed, traces, new_id())
        try:
            answer = self.ask(prompt)
        except Exception as exc:  # a provider failure is an audit without suggestions, not a crash
            return _rejected_only(controller, f"model audit request failed: {exc}")
        try:
            data = parse_answer(answer)
        except AnswerError as exc:
            return _rejected_only(controller, f"{exc}; answer began: {answer[:EXCERPT]!r}")
        findings, rejected = _findings(data.get("findings", []))
        suggestions, patches = [], []
        raw = data.get("suggestions", [])
        if not isinstance(raw, list):
            return _rejected_only(controller, f"answer.suggestions: must be a list, got {type(raw).__name__}")
        if len(raw) > MAX_SUGGESTIONS:
            rejected.append(f"answer.suggestions: {len(raw)} suggestions, only the first {MAX_SUGGESTIONS} are read")
        for index, item in enumerate(raw[:MAX_SUGGESTIONS]):
            try:
                suggestion = self._suggestion(observed.genome, controller, item, f"answer.suggestions[{index}]",
                                              new_id)
            except AnswerError as exc:
                rejected.append(str(exc))
                continue
            suggestions.append(suggestion)
            patches.append(suggestion.patch)
        report = AuditReport(target_node_id=controller, findings=tuple(findings), suggested_patches=tuple(patches))
        return AuditOutcome(report=report, suggestions=tuple(suggestions), rejected=tuple(rejected))

    def prompt(self, observed: AuditInput, traces: Sequence[TaskTrace], request_id: str) -> AuditPrompt:
        controller = observed.controller_node_id
        evidence = {"controller": controller, "subtree": subtree_summary(observed.genome, controller),
                    "outcomes": outcome_summary(traces),
                    "routing_failures": [{"task_class": f.task_class, "required": list(f.required)}
                                         for f in observed.routing_failures[-20:]]}
        return AuditPrompt(
            instructions=INSTRUCTIONS.format(limit=MAX_SUGGESTIONS, kinds=", ".join(self.patch_kinds) or "see format"),
            input=json.dumps(evidence, sort_keys=True),
            metadata={"node_id": controller, "task_id": request_id, "operation_kind": AUDIT_OPERATION,
                      "task_title": f"System 3* audit of {controller}"})

    def _suggestion(self, genome: OrganizationalGenome, controller: str, item: Any, where: str,
                    new_id: IdFactory) -> GeneSuggestion:
        if not isinstance(item, dict):
            raise AnswerError(f"{where}: must be an object, got {type(item).__name__}")
        unknown = sorted(set(item) - {"patch", "hypothesis", "evidence", "trial_mode"})
        if unknown:
            raise AnswerError(f"{where}: unknown key(s) {unknown}; valid keys: evidence, hypothesis, patch, trial_mode")
        if "patch" not in item:
            raise AnswerError(f"{where}.patch: missing")
        try:
            patch = self.decode_patch(item["patch"], f"{where}.patch")
        except Exception as exc:  # the decoder's messages name the bad field
            raise AnswerError(_first_line(exc)) from None
        mode = item.get("trial_mode", "Canary")
        if mode not in TrialMode.__members__:
            raise AnswerError(f"{where}.trial_mode: {mode!r} is not one of {', '.join(TrialMode.__members__)}")
        evidence = _strings(item.get("evidence", []), f"{where}.evidence")
        hypothesis = item.get("hypothesis") or "Model-directed System 3* audit suggestion."
        if not isinstance(hypothesis, str):
            raise AnswerError(f"{where}.hypothesis: must be a string")
        suggestion = GeneSuggestion.new(controller, controller, GeneSuggestionSourceKind.System3StarAudit, patch,
                                        hypothesis, new_id, evidence=("auditor=model", *evidence),
                                        trial_mode=TrialMode(mode), safety_limits=AUDIT_LIMITS)
        try:  # the same checks a candidate gets, so an invalid patch never reaches the queue
            build_candidate(genome, suggestion, "audit-check")
        except CandidateError as exc:
            raise AnswerError(f"{where}.patch: {exc}") from None
        return suggestion


class CombinedAuditor:
    """Several auditors over the same evidence; their findings, suggestions and rejections joined."""

    def __init__(self, *auditors):
        self.auditors = auditors

    def audit(self, observed: AuditInput, new_id: IdFactory) -> AuditOutcome:
        outcomes = [a.audit(observed, new_id) for a in self.auditors]
        report = AuditReport(target_node_id=observed.controller_node_id,
                             findings=tuple(f for o in outcomes for f in o.report.findings),
                             suggested_patches=tuple(p for o in outcomes for p in o.report.suggested_patches))
        return AuditOutcome(report=report, suggestions=tuple(s for o in outcomes for s in o.suggestions),
                            rejected=tuple(r for o in outcomes for r in o.rejected))


def parse_answer(answer: str) -> dict[str, Any]:
    """The answer's JSON object; a fenced code block or text around one object is tolerated."""
    if not isinstance(answer, str) or not answer.strip():
        raise AnswerError("answer: empty")
    text = answer.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    elif not text.startswith("{") and "{" in text:
        text = text[text.index("{"):text.rindex("}") + 1]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnswerError(f"answer: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise AnswerError(f"answer: must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - {"findings", "suggestions"})
    if unknown:
        raise AnswerError(f"answer: unknown key(s) {unknown}; valid keys: findings, suggestions")
    return data


def subtree_summary(genome: OrganizationalGenome, controller: str) -> list[dict[str, Any]]:
    """The nodes under the controller as the model needs them: ids, kinds, capabilities, rules."""
    out = []
    for node_id in genome.subtree_ids(controller):
        node = genome.node(node_id)
        entry: dict[str, Any] = {"id": node.id, "name": node.name, "parent": node.parent_id,
                                 "status": node.status.value, "kind": "leaf" if node.is_leaf else "metasystem", "children": list(node.children)}
        if node.is_leaf:
            entry["capabilities"] = sorted(k.removeprefix("can_") for k, v in attrs.asdict(node.capabilities()).items() if v is True)
        rules = [{"id": r.id, "target_child": r.target_child, "task_class": r.task_class}
                 for r in genome.routing_rules if r.node_id == node_id]
        if rules:
            entry["routing_rules"] = rules
        out.append(entry)
    return out


def outcome_summary(traces: Sequence[TaskTrace]) -> list[dict[str, Any]]:
    """Per leaf and task class: tasks, failures and mean tokens (the evidence, not the raw traces)."""
    groups: dict[tuple[str, str], list[TaskTrace]] = defaultdict(list)
    for trace in traces:
        groups[(trace.assigned_node_id, task_class_of_trace(trace))].append(trace)
    return [{"node_id": node, "task_class": cls, "tasks": len(items),
             "failed": sum(trace_failed(t) for t in items),
             "mean_tokens": round(sum(t.token_total() for t in items) / len(items), 1)}
            for (node, cls), items in sorted(groups.items())]


def _findings(raw: Any) -> tuple[list[AuditFinding], list[str]]:
    findings, rejected = [], []
    if not isinstance(raw, list):
        return [], [f"answer.findings: must be a list, got {type(raw).__name__}"]
    for index, item in enumerate(raw):
        where = f"answer.findings[{index}]"
        try:
            if not isinstance(item, dict) or not isinstance(item.get("title"), str):
                raise AnswerError(f"{where}: must be an object with a string title")
            severity = item.get("severity", 5)
            if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 10:
                raise AnswerError(f"{where}.severity: must be a whole number from 0 to 10, got {severity!r}")
            findings.append(AuditFinding(title=item["title"], severity=severity,
                                         evidence=_strings(item.get("evidence", []), f"{where}.evidence")))
        except AnswerError as exc:
            rejected.append(str(exc))
    return findings, rejected


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise AnswerError(f"{where}: must be a list of strings")
    return tuple(raw)


def _rejected_only(controller: str, reason: str) -> AuditOutcome:
    return AuditOutcome(report=AuditReport(target_node_id=controller), rejected=(reason,))


def _first_line(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]

