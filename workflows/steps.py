"""The step vocabulary the canary interprets, produced by its pure planner."""

from __future__ import annotations

from dataclasses import dataclass

from workflows.analysis_spec import Analysis
from workflows.model import HeaderMatch


@dataclass(frozen=True)
class Pause:
    """Wait `seconds`, or until promoted when `seconds` is None."""

    seconds: int | None
    spec_index: int

    @property
    def manual(self) -> bool:
        return self.seconds is None


@dataclass(frozen=True)
class SetHeaderRoute:
    """From here on, requests with `match` go to the canary (kulta's rule on the route)."""

    match: HeaderMatch
    spec_index: int


@dataclass(frozen=True)
class SetMirrorRoute:
    """From here on, `percent` of the stable traffic is mirrored to the canary."""

    percent: int
    spec_index: int


@dataclass(frozen=True)
class SetWeight:
    """Give the canary `weight` percent of traffic (after enough canary pods are available).

    `pause`: the pause that directly follows (in the same spec step or the next one); the weight
    and the pause's start are then told in one transition."""

    weight: int
    spec_index: int
    pause: Pause | None = None


@dataclass(frozen=True)
class Analyze:
    """Measure inline: wait until each metric took its `count` measurements with a pass."""

    analysis: Analysis
    spec_index: int


Step = SetHeaderRoute | SetMirrorRoute | SetWeight | Analyze | Pause
