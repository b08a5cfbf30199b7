"""Progress on stderr: plain lines every few seconds off a terminal, a live bar on one, and a
closing line always (so a long batch never prints nothing for minutes)."""

from __future__ import annotations

import io

from vsm_actors.views.progress import Progress, format_seconds


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_plain_lines_come_every_interval_with_counts_rate_and_eta():
    out, clock = io.StringIO(), Clock()
    progress = Progress(10, "run", stream=out, tty=False, interval=5.0, clock=clock)
    progress.set_running(4)
    clock.t += 2
    progress.advance(True)
    assert out.getvalue() == ""  # not yet: one line per interval, not per item
    clock.t += 3
    progress.advance(False)
    (line,) = out.getvalue().splitlines()
    assert line.startswith("run: 2/10 (1 done, 1 failed, 2 running)")
    assert "0.4/s" in line and "ETA 20s" in line and "elapsed 5s" in line
    for _ in range(8):
        progress.advance(True)
    progress.close()
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("run: 10/10 (9 done, 1 failed, 0 running)") and "ETA 0s" in last
    progress.close()  # closing twice prints once
    assert out.getvalue().count("10/10") == 1


def test_disabled_progress_prints_nothing():
    out = io.StringIO()
    with Progress(3, "quiet", stream=out, tty=False, enabled=False) as progress:
        progress.advance()
    assert out.getvalue() == ""


def test_a_terminal_gets_a_live_bar_and_the_closing_line():
    out = io.StringIO()
    with Progress(4, "simulate", stream=out, tty=True) as progress:
        for ok in (True, True, False, True):
            progress.advance(ok)
    text = out.getvalue()
    assert "\x1b[" in text  # rendered as a terminal bar
    assert "simulate: 4/4 (3 done, 1 failed, 0 running)" in text.rstrip().splitlines()[-1]


def test_seconds_read_as_people_write_them():
    assert [format_seconds(s) for s in (4.4, 75, 3720)] == ["4s", "1m15s", "1h02m"]
