"""Canary planner: the spec's steps, each `setWeight`, then `analysis`, then `pause` (those a
step has)."""

from __future__ import annotations

from workflows.durations import parse_duration
from workflows.model import CanaryStrategy
from workflows.steps import Analyze, Pause, SetWeight, Step


def plan(strategy: CanaryStrategy) -> list[Step]:
    steps: list[Step] = []
    for index, step in enumerate(strategy.steps):
        if step.set_weight is not None:
            steps.append(SetWeight(weight=step.set_weight, spec_index=index))
        if step.analysis is not None:
            steps.append(Analyze(analysis=step.analysis, spec_index=index))
        if step.pause is not None:
            seconds = parse_duration(step.pause.duration) if step.pause.duration else None
            steps.append(Pause(seconds=seconds, spec_index=index))
    return steps
