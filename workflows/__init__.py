"""Deterministic rollout logic: the Rollout model, strategy planners and the Temporal workflow.

Nothing in this package may do I/O, read the clock or draw random numbers: it runs inside
Temporal's workflow sandbox and must replay identically. I/O lives in `activities`.
"""
