"""What every strategy shares: the run's parts, the Strategy protocol, and the stable layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn, Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.analysis_loop import AnalysisLoop
    from workflows.effects import Effects
    from workflows.holds import Holds
    from workflows.messages import RolloutOutcome
    from workflows.model import TrafficRouting
    from workflows.run import Inbox, RollbackRequired, Run
    from workflows.transitions import Transitions
    from workflows.workload import Workload


@dataclass(frozen=True)
class Parts:
    """One run's parts, built once by the workflow and shared by reference."""

    run: Run
    inbox: Inbox
    effects: Effects
    transitions: Transitions
    holds: Holds
    workload: Workload
    analysis: AnalysisLoop

    async def failed_after_rollback(self, rollback: RollbackRequired) -> NoReturn:
        """Reports a finished rollback (phase Failed) and waits, at no cost, for a retry."""
        await self.transitions.rolled_back(rollback.reason, rollback.message)
        await self.holds.wait_for_retry()


@dataclass(frozen=True)
class StableLayout:
    """Where a stable revision's traffic goes."""

    # Services that must exist before traffic is arranged.
    services: list[str] = field(default_factory=list)
    # Service -> True to pin it to the stable revision, False to let it span every revision.
    pins: dict[str, bool] = field(default_factory=dict)
    routing: TrafficRouting | None = None
    # Route weights once the revision is stable (None: leave the route's weights alone).
    weights: dict[str, int] | None = None
    # Whether a route rule must name every Service (weighted strategies) or only exist (A/B).
    split: bool = True
    # The step count a stable revision shows (a canary's steps, all passed).
    step_count: int | None = None


class Strategy(Protocol):
    def stable_layout(self) -> StableLayout:
        """Where traffic goes once this run's revision is stable."""
        ...

    async def run(self) -> RolloutOutcome:
        """Takes the new revision from the stable one to stable, or rolls it back (Failed)."""
        ...

    async def undo(self) -> bool:
        """Superseded (cancelled): puts traffic back on stable, then removes this revision's
        pods. False if traffic could not be moved back (its pods are then kept)."""
        ...


def routed(routing: TrafficRouting | None) -> bool:
    return routing is not None and routing.gateway_api is not None
