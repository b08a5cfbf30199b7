"""The leaf's half of the node actor that talks to its model provider: which provider, the
request it sends (system prompt, task, metadata), and what the answer means (an Outcome)."""

from __future__ import annotations

import json

from ..core.control.harness import Outcome
from ..core.control.prompt import build_instructions
from ..core.model.task import TaskPacket
from ..core.model.variants import debug_name
from ..core.world import is_specialist, team_operations
from ..providers import ModelRequest
from .leaf_providers import leaf_provider


class LeafCalls:
    """Mixin for NodeActor (provider, provider_spec, config, genome, node_id, services, _instructions)."""

    def provider_for(self):
        if self.provider is None:
            self.provider_spec, self.provider = leaf_provider(self.provider_spec, self.config, self.genome.node(self.node_id))
        return self.provider

    def complete(self, request: ModelRequest):
        return self.provider_for().complete(request)

    def request_for(self, node, task: TaskPacket) -> ModelRequest:
        return ModelRequest(model=node.model, instructions=self.instructions(node),
                            input=self.services.to_json_text(task), metadata={
                                "node_id": node.id, "node_name": node.name, "task_id": task.id,
                                "task_title": task.title, "directive_id": task.directive_id or "",
                                "task_class": task.metadata.get("task_class", ""),
                                **_world_facts(self.genome, node.id, task.metadata.get("task_class", "")),
                                "operation_kind": debug_name(node.leaf_operation.kind) if node.leaf_operation.kind else ""})

    def outcome(self, node, response, error: Exception | None, measured_ms: int) -> Outcome:
        """What the provider's answer (or error) says; latency is the provider's own figure, else ours."""
        if error is not None:
            return Outcome(error=str(error), provider=self.provider_spec.name, model=node.model.model,
                           latency_ms=measured_ms)
        raw = response.raw if isinstance(response.raw, dict) else {}
        usage = response.usage
        return Outcome(
            output_text=response.output_text, input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0, latency_ms=response.latency_ms or measured_ms,
            files_touched=tuple(str(f) for f in raw.get("files_touched", ()) if isinstance(f, str)),
            artifacts=tuple(_artifact_text(a) for a in raw.get("artifacts", ())),
            provider=self.provider_spec.name, model=node.model.model,
            merged=_flag(raw, "merged"), tests_passed=_flag(raw, "tests_passed"), review_passed=_flag(raw, "review_passed"),
        )

    def instructions(self, node) -> str:
        """The node's system prompt, rebuilt only when the node changes (a patch replaces the
        frozen node object; equal objects make equal prompts)."""
        if self._instructions[0] is not node:
            self._instructions = (node, build_instructions(node))
        return self._instructions[1]


def _world_facts(genome, node_id: str, task_class: str) -> dict[str, str]:
    """What a world-aware provider (a simulation) may want to know about the leaf asking."""
    return {"task_specialist": "true" if is_specialist(genome, node_id, task_class) else "false",
            "team_operations": ",".join(sorted(team_operations(genome, node_id)))}


def _flag(raw: dict, key: str) -> bool | None:
    value = raw.get(key)
    return value if isinstance(value, bool) else None


def _artifact_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
