"""Progress of a batch on stderr: a live bar on a terminal (rich), a plain line every few seconds
otherwise (logs, CI), and always one closing line, so a long run is never silent.

Counts are done (completed), failed and running; rate and ETA come from the completions so far.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

PLAIN_INTERVAL = 5.0   # seconds between plain lines when stderr is not a terminal


class Progress:
    """Counts completions of `total` items and shows them; `close()` prints the final line."""

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None, tty: bool | None = None,
                 enabled: bool = True, interval: float = PLAIN_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval, self.clock = interval, clock
        self.done = self.failed = self.running = 0
        self.started = self.last_line = clock()
        self._bar = None
        if enabled and self.tty:
            self._bar = _RichBar(self)

    # -- counting ------------------------------------------------------------------------------

    def add_total(self, n: int) -> None:
        self.total += n
        self._show()

    def set_running(self, n: int) -> None:
        self.running = max(0, n)
        self._show()

    def advance(self, ok: bool = True, n: int = 1) -> None:
        self.done += n if ok else 0
        self.failed += 0 if ok else n
        self.running = max(0, self.running - n)
        self._show()

    def echo(self, text: str, out: TextIO | None = None) -> None:
        """Print a result line on stdout; above the live bar when both share the terminal."""
        out = out if out is not None else sys.stdout
        if self._bar is not None and out.isatty():
            self._bar.rich.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            out.write(text + "\n")
            out.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        self.stream.write(self.line() + "\n")
        self.stream.flush()
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- rendering -----------------------------------------------------------------------------

    @property
    def finished(self) -> int:
        return self.done + self.failed

    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.finished / elapsed if elapsed > 0 else 0.0

    def eta_seconds(self) -> float | None:
        rate = self.rate()
        left = self.total - self.finished
        return left / rate if rate > 0 and left > 0 else (0.0 if left <= 0 else None)

    def counts(self) -> str:
        return (f"{self.finished}/{self.total} ({self.done} done, {self.failed} failed, "
                f"{self.running} running)")

    def line(self) -> str:
        eta = self.eta_seconds()
        return (f"{self.label}: {self.counts()}  {self.rate():.1f}/s  "
                f"ETA {format_seconds(eta) if eta is not None else '?'}  elapsed "
                f"{format_seconds(self.clock() - self.started)}")

    def _show(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update()
            return
        now = self.clock()
        if now - self.last_line >= self.interval:
            self.last_line = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class _RichBar:
    """The terminal form: a transient rich bar that leaves the closing line behind."""

    def __init__(self, progress: Progress) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

        self.owner = progress
        console = Console(file=progress.stream, force_terminal=True)
        self.rich = RichProgress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[counts]}"),
                                 TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                 console=console, transient=True, refresh_per_second=4)
        self.task = self.rich.add_task(progress.label, total=progress.total or None, counts=progress.counts(),
                                       rate="")
        self.rich.start()

    def update(self) -> None:
        p = self.owner
        self.rich.update(self.task, completed=p.finished, total=p.total or None, counts=p.counts(),
                         rate=f"{p.rate():.1f}/s")

    def stop(self) -> None:
        self.update()
        self.rich.stop()
