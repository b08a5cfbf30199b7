"""Pure domain model and decision logic: no I/O, no clock, no randomness, no actors.

Clock and id generation are passed in by callers, so every function here is deterministic.
"""
