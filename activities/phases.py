"""Which steering makes sense in which phase of a Rollout.

A module of its own, without pydantic: the CLI reads these sets before it loads anything
heavier (`kulta version` and a refused command stay fast). Pure data.
"""

from __future__ import annotations

TERMINAL_PHASES: frozenset[str] = frozenset({"Completed", "Failed"})
# Which steering makes sense in which phase: the workflow's update validators and the CLI's
# checks read the same sets (a timed pause, which keeps Progressing, is promotable too).
RUNNING_PHASES: frozenset[str] = frozenset(
    {"Initializing", "Progressing", "Paused", "Preview", "Experimenting", "Concluded"}
)
PROMOTABLE_PHASES: frozenset[str] = frozenset({"Paused", "Preview", "Concluded"})
RETRYABLE_PHASES: frozenset[str] = frozenset({"Failed"})
CONCLUDABLE_PHASES: frozenset[str] = frozenset({"Experimenting"})
# A rollout stays Progressing through a timed pause (it ends by itself; Paused means someone
# must act), yet `kulta promote` may end one: the CLI tells the two apart.
TIMED_PAUSE = "Progressing (in a timed pause)"
