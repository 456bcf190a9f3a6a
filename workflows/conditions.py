"""A Rollout's status conditions: which ones a transition sets, each with its own reason, and
how one condition changes. Deterministic workflow code (times come from `workflow.now()`)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.rollout_status import Condition
    from workflows.durations import iso_time


# phase -> the Progressing condition's status.
_PROGRESSING = {"Paused": "Unknown", "Completed": "False", "Failed": "False"}


def conditions_after(
    current: list[Condition],
    phase: str,
    reason: str,
    message: str,
    generation: int,
    extra: tuple[str, str] | None,
    *,
    stable_revision: str | None = None,
) -> list[Condition]:
    """The conditions after a transition to `phase`, each with its own reason: Progressing
    carries the transition's; Paused says why it is paused or that it is not; Available says
    whether a stable revision serves (it does through a canary and after a rollback); Valid is
    the spec's. Other conditions (Degraded) are kept. A condition's time moves only when its
    status changes."""
    paused = phase == "Paused"
    wanted: dict[str, tuple[str, str, str]] = {
        "Progressing": (_PROGRESSING.get(phase, "True"), reason, message),
        "Paused": ("True", reason, message) if paused else ("False", "NotPaused", "not paused"),
        "Available": (
            ("True", "StableRevisionServing", f"revision {stable_revision} serves")
            if stable_revision is not None and reason != "RollbackIncomplete"
            else ("False", "NoStableRevision", "no revision is known to serve yet")
        ),
        "Valid": ("True", "SpecValid", "the spec is valid"),
    }
    if extra is not None:
        wanted[extra[0]] = (extra[1], reason, message)
    out = list(current)
    for ctype, (status, why, text) in wanted.items():
        out = with_condition(out, ctype, status, why, text, generation)
    return out


def with_condition(
    current: list[Condition], ctype: str, status: str, reason: str, message: str, generation: int
) -> list[Condition]:
    """`current` with one condition set; its time moves only when its status changes."""
    old = next((c for c in current if c.type == ctype), None)
    condition = Condition(
        type=ctype,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=(
            iso_time(workflow.now())
            if old is None or old.status != status
            else old.last_transition_time
        ),
        observed_generation=generation,
    )
    return [condition if c.type == ctype else c for c in current] + ([] if old else [condition])
