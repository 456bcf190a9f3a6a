"""Strategies: each file is one whole strategy (plan, run, undo, and where a stable revision's
traffic goes), chosen by kind in one place, `strategy_for`.

A strategy receives the run's parts (`Parts`) and never calls an activity itself: pods, Services
and weights go through `Workload`, status through `Transitions`, waits through `Holds` and the
`Inbox`.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.model import StrategyKind
    from workflows.strategies.ab_testing import ABTesting
    from workflows.strategies.base import Parts, StableLayout, Strategy
    from workflows.strategies.blue_green import BlueGreen
    from workflows.strategies.canary import Canary
    from workflows.strategies.simple import Simple

__all__ = ["Parts", "StableLayout", "Strategy", "strategy_for"]

STRATEGIES: dict[StrategyKind, Callable[[Parts], Strategy]] = {
    "canary": Canary,
    "blueGreen": BlueGreen,
    "abTesting": ABTesting,
    "simple": Simple,
}


def strategy_for(kind: StrategyKind, parts: Parts) -> Strategy:
    """The one place a strategy is chosen by its kind."""
    return STRATEGIES[kind](parts)
