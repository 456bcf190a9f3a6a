"""Which transitions the delivery pipeline hears about, as which CDEvent. Pure.

Only these four: a rollout starting, a step advancing, a rollback, a completion (or an A/B
experiment's conclusion). Everything else (pauses, analysis runs, reconciling a revision that
is already stable) is visible in status, Events and occurrences, not in CDEvents.
"""

from __future__ import annotations

from activities.contracts import CDEventKind

STEP_REASONS = frozenset({"StepAdvanced", "CutOver"})
PUBLISHED_REASONS = frozenset({"RolloutCompleted", "ExperimentConcluded"})
# Failed transitions that are not a rollback: nothing moved (a spec kulta cannot use), or the
# rollback itself could not be confirmed (traffic may still be on the new revision).
NOT_ROLLBACKS = frozenset({"InvalidSpec", "RollbackIncomplete"})


def cdevent_kind(phase: str, reason: str, *, reconciling: bool) -> CDEventKind | None:
    if reason == "RolloutStarted":
        return "deployed"
    if reason in STEP_REASONS:
        return "upgraded"
    if phase == "Failed" and reason not in NOT_ROLLBACKS:
        return "rolledback"
    if reason in PUBLISHED_REASONS and not reconciling:
        return "published"
    return None
