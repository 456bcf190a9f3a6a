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


# ------------------------------------------------------------------------------- rolling updates


def resolve_int_or_percent(value: int | str, replicas: int, *, round_up: bool) -> int:
    """`maxSurge`/`maxUnavailable` as a pod count: an int, or a percent of `replicas`.

    Like Kubernetes Deployments, surge rounds up and unavailability rounds down.
    """
    if isinstance(value, int):
        return value
    percent = int(value.removesuffix("%"))
    exact = replicas * percent / 100
    return math.ceil(exact) if round_up else math.floor(exact)


@dataclass(frozen=True)
class RollingStep:
    """Scale the new revision to `new` (and wait until those pods are available), then the old
    one to `old`."""

    new: int
    old: int


def rolling_plan(
    replicas: int, max_surge: int, max_unavailable: int, *, start: RollingStep | None = None
) -> list[RollingStep]:
    """The replica targets of a rolling update to `replicas` new pods, from `start` (by default
    `replicas` old pods and no new ones).

    Bounds at every step: at most `replicas + max_surge` pods exist, and at least
    `replicas - max_unavailable` are available (new pods count once they are available, which
    the workflow waits for before it scales the old side down). The next step depends only on
    the pods there are, so an edit mid-update re-plans from where they are, and re-planning
    without an edit gives the rest of the same plan.
    """
    if max_surge == 0 and max_unavailable == 0:
        raise ValueError("maxSurge and maxUnavailable cannot both be 0")
    unavailable = min(max_unavailable, replicas)
    new, old = (0, replicas) if start is None else (start.new, start.old)
    steps: list[RollingStep] = []
    while new != replicas or old > 0:
        # Grow within the surge; fewer replicas (an edit) shrink the new side at once.
        new = min(replicas, max(new, replicas + max_surge - old))
        old = min(old, max(0, replicas - unavailable - new))
        steps.append(RollingStep(new=new, old=old))
    return steps
