"""Process helpers shared by the adapters that start child processes."""

from __future__ import annotations


def die_with_parent() -> None:
    """In a child, before exec: get SIGKILL when the parent dies (e.g. kill -9), so no helper
    process outlives the actor that started it. Linux only; elsewhere a no-op."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass
