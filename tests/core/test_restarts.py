"""OTP-style restart intensity: never more than N restarts in any period of T seconds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsm_actors.core.control.restarts import RestartIntensity, RestartWindow


@given(st.lists(st.floats(0, 1000, allow_nan=False), max_size=40).map(sorted), st.integers(0, 6),
       st.floats(0.5, 100, allow_nan=False))
def test_restarts_in_any_period_never_exceed_the_intensity(deaths, max_restarts, period) -> None:
    intensity = RestartIntensity(max_restarts=max_restarts, period_seconds=period)
    window, restarted = RestartWindow(), []
    for now in deaths:
        window, allowed = window.admit(now, intensity)
        if allowed:
            restarted.append(now)
    for start in restarted:
        assert sum(1 for t in restarted if start <= t < start + period) <= max_restarts


def test_a_quiet_period_allows_restarts_again() -> None:
    intensity = RestartIntensity(max_restarts=2, period_seconds=10)
    window = RestartWindow()
    verdicts = []
    for now in (0, 1, 2, 30, 31):
        window, allowed = window.admit(now, intensity)
        verdicts.append(allowed)
    assert verdicts == [True, True, False, True, True]


def test_a_nonsense_intensity_is_refused() -> None:
    with pytest.raises(ValueError, match="max_restarts"):
        RestartIntensity(max_restarts=-1)
    with pytest.raises(ValueError, match="period_seconds"):
        RestartIntensity(period_seconds=0)


def test_a_node_is_hung_when_silent_past_what_its_state_explains() -> None:
    from vsm_actors.core.control.restarts import hung_reason

    assert hung_reason(0.5, True, 1.0, 600) is None          # stopped, but not for long
    assert "stopped" in hung_reason(1.5, True, 1.0, 600)
    assert hung_reason(300, False, 10, 600) is None            # inside a long provider call
    assert "timeout" in hung_reason(611, False, 10, 600)
