"""Restart intensity, as OTP supervisors bound it: at most `max_restarts` in `period_seconds`.

A node that dies again and again (a provider that crashes its process on every call, a genome
patch that breaks it at boot) would otherwise be restarted forever, each restart failing the
tasks in it. Past the intensity the supervisor stops restarting it and escalates: the node's
metasystem pauses its subtree with an algedonic pain signal (so nothing more is routed into it
and nothing is lost), and a person's `vsm resume` restarts it with a fresh window.
"""

from __future__ import annotations

from attrs import field, frozen


@frozen(kw_only=True)
class RestartIntensity:
    max_restarts: int = 5
    period_seconds: float = 60.0

    def __attrs_post_init__(self) -> None:
        if self.max_restarts < 0 or self.period_seconds <= 0:
            raise ValueError(f"restart intensity needs max_restarts >= 0 and period_seconds > 0, got "
                             f"{self.max_restarts} in {self.period_seconds}s")


@frozen(kw_only=True)
class RestartWindow:
    """When (monotonic seconds) a node was restarted within the current period."""

    times: tuple[float, ...] = field(factory=tuple)

    def admit(self, now: float, intensity: RestartIntensity) -> tuple[RestartWindow, bool]:
        """The window after one more death at `now`, and whether a restart is still allowed."""
        recent = tuple(t for t in self.times if now - t < intensity.period_seconds)
        if len(recent) >= intensity.max_restarts:
            return RestartWindow(times=recent), False
        return RestartWindow(times=(*recent, now)), True


def hung_reason(silent: float, is_stopped: bool, hang_seconds: float, provider_timeout: float) -> str | None:
    """Why a node silent for `silent` seconds is hung, or None. A leaf inside a provider call
    answers no heartbeat until the call returns, which its provider's timeout bounds; a stopped
    process answers none at all."""
    if is_stopped and silent > hang_seconds:
        return f"its process is stopped and answered no heartbeat for {silent:.1f}s"
    if silent > provider_timeout + hang_seconds:
        return f"no heartbeat for {silent:.1f}s, past its provider's {provider_timeout:g}s timeout"
    return None
