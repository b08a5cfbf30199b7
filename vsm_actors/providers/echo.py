"""EchoProvider: a deterministic, offline provider that repeats its prompt back.

It is the default for demos and smoke tests: no network, no randomness, and the output shows
exactly what a leaf would have sent to a real model.
"""

from __future__ import annotations

from attrs import frozen

from .base import ModelRequest, ModelResponse, ModelUsage, rough_token_estimate

__all__ = ["EchoProvider"]


@frozen
class EchoProvider:
    """Answer every request with "{prefix}: accepted task." followed by the prompt.

    Usage is estimated the reference's way: input = est(instructions) + est(input),
    output = est(output_text); `raw` is None.
    """

    prefix: str = "echo"
    name: str = "echo"

    def complete(self, request: ModelRequest) -> ModelResponse:
        """Echo the request; never fails."""
        output_text = echo_text(self.prefix, request)
        usage = ModelUsage(
            input_tokens=rough_token_estimate(request.instructions) + rough_token_estimate(request.input),
            output_tokens=rough_token_estimate(output_text),
        )
        return ModelResponse(output_text=output_text, usage=usage, raw=None)


def echo_text(prefix: str, request: ModelRequest) -> str:
    """Render the echo output (shared with the scripted provider's default outcome)."""
    return f"{prefix}: accepted task.\n\nInstructions:\n{request.instructions}\n\nInput:\n{request.input}"
