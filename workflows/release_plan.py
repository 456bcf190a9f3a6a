"""Pure decisions of a Release: which stages may start, what a Rollout's status means for the
Release, and what its phase is. No I/O; deterministic."""

from __future__ import annotations

from typing import Literal

from activities.release_contracts import MemberObservation
from activities.release_status import ReleasePhase, ReleaseStageStatus

MemberVerdict = Literal["running", "completed", "failed", "edited"]


def ready_stages(after: dict[str, list[str]], done: set[str], started: set[str]) -> list[str]:
    """Stages not started yet whose prerequisites are all done, in the spec's order."""
    return [
        stage
        for stage, needs in after.items()
        if stage not in started and all(need in done for need in needs)
    ]


def verdict(seen: MemberObservation, target: str) -> MemberVerdict:
    """What a Rollout's status says about the revision `target` the Release wants it on.

    `edited`: its template is another one now (a person, or a pipeline, changed it).
    `failed`: the Rollout's workflow for `target` reports Failed (it rolled itself back).
    `completed`: `target` is the Rollout's stable revision and the rollout ended.
    """
    if seen.template_revision != target:
        return "edited"
    if seen.phase == "Completed" and seen.stable_revision == target:
        return "completed"
    if seen.phase == "Failed" and seen.running_revision == target:
        return "failed"
    return "running"


def release_phase(stages: list[ReleaseStageStatus], *, held: bool) -> ReleasePhase:
    """The phase while the plan runs: Paused when nothing moves and something waits for a
    person (an approval, a resume after a hand edit)."""
    phases = {stage.phase for stage in stages}
    if "RollingBack" in phases:
        return "RollingBack"
    if held or ("WaitingForApproval" in phases and not phases & {"Progressing", "Soaking"}):
        return "Paused"
    return "Progressing"


_ACTIVE = {
    "Progressing": "shipping",
    "Soaking": "soaking",
    "WaitingForApproval": "waiting for approval",
}


def shipping_message(stages: list[ReleaseStageStatus]) -> str:
    """What moves now: `stage backend shipping; stage eu waiting for approval`."""
    active = [f"stage {s.name} {_ACTIVE[s.phase]}" for s in stages if s.phase in _ACTIVE]
    done = sum(1 for s in stages if s.phase == "Completed")
    return (
        "; ".join(active) + f" ({done}/{len(stages)} stages done)"
        if active
        else (f"{done}/{len(stages)} stages done")
    )
