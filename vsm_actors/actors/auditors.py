"""Which System 3* auditor a metasystem runs, from its audit policy's `suggestion` field:
`add_review_leaf` (the default, the rule-based auditor), `model` (a model asked for patches) or
`rules_and_model` (both). The model is the node's provider, asked with the audit operation kind,
so a scripted provider can answer audits with a rule matching `operation_kind: system_3_star_audit`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.evolution.audit import Auditor, RuleBasedAuditor
from ..core.evolution.model_audit import AuditPrompt, CombinedAuditor, ModelDirectedAuditor
from ..core.model.genes import AuditPolicy
from ..core.model.patch import PATCH_TYPES
from ..files.patch_files import decode_patch

def auditor_for(policy: AuditPolicy | None, ask: Callable[[AuditPrompt], str]) -> Auditor:
    kind = policy.suggestion if policy is not None else "add_review_leaf"
    if kind == "model":
        return ModelDirectedAuditor(ask, decode_patch, tuple(PATCH_TYPES))
    if kind == "rules_and_model":
        return CombinedAuditor(RuleBasedAuditor(), ModelDirectedAuditor(ask, decode_patch, tuple(PATCH_TYPES)))
    return RuleBasedAuditor()
