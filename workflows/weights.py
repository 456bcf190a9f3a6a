"""Replica and traffic-weight arithmetic, in one place (table-tested in tests/unit).

Rules (DESIGN §2.3): a canary carrying weight w of a rollout with n replicas needs
ceil(n * w / 100) available pods, at least one; the stable side keeps full capacity while it
carries traffic. Route weights are integers in 0..100 that sum to 100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def canary_replicas_for_weight(replicas: int, weight: int) -> int:
    """Pods the canary needs before it may receive `weight` percent of traffic."""
    _check_weight(weight)
    if weight == 0:
        return 0
    return max(1, math.ceil(replicas * weight / 100))


@dataclass(frozen=True)
class RouteWeights:
    """Backend weights for the stable and canary Services on the HTTPRoute."""

    stable: int
    canary: int

    def __post_init__(self) -> None:
        _check_weight(self.stable)
        _check_weight(self.canary)
        if self.stable + self.canary != 100:
            raise ValueError(f"weights must sum to 100, got {self.stable}+{self.canary}")


def route_weights(canary_weight: int) -> RouteWeights:
    return RouteWeights(stable=100 - canary_weight, canary=canary_weight)


@dataclass(frozen=True)
class ReplicaSplit:
    stable: int
    canary: int


def replica_split_without_routing(replicas: int, weight: int) -> ReplicaSplit:
    """Without an HTTPRoute, a shared Service splits traffic by pod count.

    The canary gets ceil(n*w/100) pods and the stable side the rest; the caller scales the canary
    up and waits for it before scaling stable down, so capacity never dips below n.
    """
    canary = min(replicas, canary_replicas_for_weight(replicas, weight))
    if weight == 100:
        return ReplicaSplit(stable=0, canary=replicas)
    return ReplicaSplit(stable=max(replicas - canary, 1 if replicas else 0), canary=canary)


def _check_weight(weight: int) -> None:
    if not 0 <= weight <= 100:
        raise ValueError(f"weight {weight} is outside 0..100")
