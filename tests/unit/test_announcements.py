"""Which transitions become which CDEvent."""

from __future__ import annotations

import pytest

from workflows.announcements import cdevent_kind


@pytest.mark.parametrize(
    ("phase", "reason", "kind"),
    [
        ("Progressing", "RolloutStarted", "deployed"),
        ("Progressing", "StepAdvanced", "upgraded"),
        ("Progressing", "CutOver", "upgraded"),
        ("Failed", "AnalysisFailed", "rolledback"),
        ("Failed", "Aborted", "rolledback"),
        ("Failed", "ProgressDeadlineExceeded", "rolledback"),
        ("Failed", "ExperimentLost", "rolledback"),
        ("Failed", "InvalidSpec", None),
        ("Failed", "RollbackIncomplete", None),
        ("Completed", "RolloutCompleted", "published"),
        ("Concluded", "ExperimentConcluded", "published"),
        ("Paused", "PausedForPromotion", None),
        ("Progressing", "PauseEnded", None),
        ("Progressing", "AnalysisRunning", None),
        ("Progressing", "Superseded", None),
    ],
)
def test_kind(phase: str, reason: str, kind: str | None) -> None:
    assert cdevent_kind(phase, reason, reconciling=False) == kind


def test_reconciling_a_stable_revision_publishes_nothing_again() -> None:
    assert cdevent_kind("Completed", "RolloutCompleted", reconciling=True) is None
