"""WorldProvider: a simulation's scripted world (DESIGN 3.5) answering a leaf's provider call.

The leaf tells it who is asking (operation, id, name, whether it specializes in the task's class,
its team's operations); the world's rules and the seed decide success, tokens and latency. The
draw is keyed by (directive, leaf), so the same run is the same on every replay.
"""

from __future__ import annotations

from ..core.world import LeafView, WorldSpec, world_outcome
from .base import ModelRequest, ModelResponse, ModelUsage


class WorldProvider:
    name = "world"

    def __init__(self, world: WorldSpec, seed: int = 0) -> None:
        self.world, self.seed = world, int(seed)

    def complete(self, request: ModelRequest) -> ModelResponse:
        meta = request.metadata
        view = LeafView(task_class=meta.get("task_class", ""), operation=meta.get("operation_kind", "").lower(),
                        leaf_id=meta.get("node_id", ""), leaf_name=meta.get("node_name", ""),
                        specialist=meta.get("task_specialist") == "true",
                        team_operations=frozenset(o for o in meta.get("team_operations", "").split(",") if o))
        key = (meta.get("directive_id") or meta.get("task_id", ""), view.leaf_id, meta.get("task_title", ""))
        outcome = world_outcome(self.world, view, self.seed, key)
        output = outcome.tokens // 4
        usage = ModelUsage(input_tokens=outcome.tokens - output, output_tokens=output)
        raw = ({"merged": True, "tests_passed": True, "review_passed": True} if outcome.success
               else {"merged": False, "tests_passed": False})
        text = "world: change merged" if outcome.success else "world: change not merged, tests failed"
        return ModelResponse(output_text=text, usage=usage, raw=raw, latency_ms=outcome.latency_ms)
