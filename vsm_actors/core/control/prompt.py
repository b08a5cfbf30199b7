"""The task prompt a leaf sends to its model provider (reference §4.4)."""

from __future__ import annotations

from ..model.node import ViableNode

_HEADER = ("You are an operational leaf in a recursive Viable System Model coding organization.\n"
           "You must operate only within the runtime capabilities and permissions granted to this node.\n\n")
DEFAULT_OUTPUT_CONTRACT = ("Return a concise execution summary. If you produce a patch, include it as a unified "
                           "diff in the response.")


def _debug_list(items) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def build_instructions(node: ViableNode) -> str:
    s5 = node.system_5
    lines = ["# Node identity", f"Node name: {node.name}", f"System 5 identity: {s5.identity}"]
    if s5.values:
        lines += ["Values:", *(f"- {v}" for v in s5.values)]
    if s5.non_negotiable_constraints:
        lines += ["", "Non-negotiable constraints:", *(f"- {c}" for c in s5.non_negotiable_constraints)]
    lines += ["", "# Runtime capabilities", node.capabilities().debug()]
    p = node.permissions
    lines += ["", "# Permissions", f"Allowed paths: {_debug_list(p.allowed_paths)}",
              f"Denied paths: {_debug_list(p.denied_paths)}", f"Allowed tools: {_debug_list(p.allowed_tools)}",
              f"Denied tools: {_debug_list(p.denied_tools)}"]
    prompt = node.prompt
    for title, components in (("Behavior rules", prompt.behavior_rules), ("Domain hints", prompt.domain_hints),
                              ("Codebase conventions", prompt.codebase_conventions),
                              ("Negative constraints", prompt.negative_constraints)):
        active = [c.text for c in components if c.active]
        if active:
            lines += ["", f"# {title}", *(f"- {t}" for t in active)]
    contract = prompt.output_contract
    lines += ["", "# Output contract",
              contract.text if contract is not None and contract.active else DEFAULT_OUTPUT_CONTRACT]
    return _HEADER + "".join(f"{line}\n" for line in lines)
