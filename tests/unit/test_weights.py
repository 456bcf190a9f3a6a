"""Replica and weight arithmetic: tables for the cases people ask about, properties for the rest."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.weights import (
    RollingStep,
    RouteWeights,
    canary_replicas_for_weight,
    replica_split_without_routing,
    resolve_int_or_percent,
    rolling_plan,
    route_weights,
)


@pytest.mark.parametrize(
    ("replicas", "weight", "pods"),
    [
        (5, 0, 0),
        (5, 1, 1),  # any weight needs at least one pod
        (5, 20, 1),
        (5, 50, 3),  # ceil(2.5)
        (5, 80, 4),
        (5, 100, 5),
        (1, 50, 1),
        (10, 33, 4),  # ceil(3.3)
        (0, 50, 1),  # a rollout scaled to zero still needs a pod before it takes traffic
    ],
)
def test_canary_pods_needed_before_weight(replicas: int, weight: int, pods: int) -> None:
    assert canary_replicas_for_weight(replicas, weight) == pods


@pytest.mark.parametrize("weight", [-1, 101])
def test_weights_outside_0_to_100_are_refused(weight: int) -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        canary_replicas_for_weight(5, weight)


def test_route_weights_must_sum_to_100() -> None:
    with pytest.raises(ValueError, match="sum to 100"):
        RouteWeights(stable=50, canary=60)


@given(st.integers(min_value=0, max_value=100))
def test_route_weights_always_sum_to_100(weight: int) -> None:
    weights = route_weights(weight)
    assert weights.stable + weights.canary == 100
    assert 0 <= weights.stable <= 100 and 0 <= weights.canary <= 100


@given(st.integers(min_value=1, max_value=10000), st.integers(min_value=1, max_value=100))
def test_canary_capacity_covers_its_weight(replicas: int, weight: int) -> None:
    pods = canary_replicas_for_weight(replicas, weight)
    assert pods >= replicas * weight / 100
    assert pods <= max(1, math.ceil(replicas * weight / 100))


@given(st.integers(min_value=1, max_value=10000), st.integers(min_value=0, max_value=99))
def test_without_routing_stable_keeps_a_pod_while_it_carries_traffic(
    replicas: int, weight: int
) -> None:
    split = replica_split_without_routing(replicas, weight)
    assert split.stable >= 1
    assert split.canary <= replicas


@given(st.integers(min_value=0, max_value=10000))
def test_without_routing_full_weight_moves_every_pod(replicas: int) -> None:
    split = replica_split_without_routing(replicas, 100)
    assert split == type(split)(stable=0, canary=replicas)


# ------------------------------------------------------------------------------- rolling updates


@pytest.mark.parametrize(
    ("value", "replicas", "round_up", "count"),
    [
        (1, 10, True, 1),
        ("25%", 10, True, 3),
        ("25%", 10, False, 2),
        ("0%", 5, True, 0),
        ("100%", 4, False, 4),
    ],
)
def test_int_or_percent(value: int | str, replicas: int, round_up: bool, count: int) -> None:
    assert resolve_int_or_percent(value, replicas, round_up=round_up) == count


def test_rolling_plan_with_defaults_for_four_replicas() -> None:
    # maxSurge 25% -> 1 extra pod, maxUnavailable 25% -> 1 pod may be missing.
    # At most 5 pods, at least 3 available, at every step.
    assert rolling_plan(4, 1, 1) == [
        RollingStep(new=1, old=2),
        RollingStep(new=3, old=0),
        RollingStep(new=4, old=0),
    ]


def test_rolling_plan_without_surge_shrinks_old_first() -> None:
    assert rolling_plan(3, 0, 1)[0] == RollingStep(new=0, old=2)


def test_rolling_plan_needs_surge_or_unavailability() -> None:
    with pytest.raises(ValueError, match="cannot both be 0"):
        rolling_plan(3, 0, 0)


@given(
    st.integers(min_value=1, max_value=200),
    st.integers(min_value=0, max_value=50),
    st.integers(min_value=0, max_value=50),
)
def test_rolling_plan_respects_its_bounds_and_finishes(
    replicas: int, surge: int, unavailable: int
) -> None:
    if surge == 0 and unavailable == 0:
        return
    unavailable = min(unavailable, replicas)
    steps = rolling_plan(replicas, surge, unavailable)
    old = replicas
    new = 0
    for step in steps:
        # New pods are added first (total bounded by surge) and waited for; then old ones go.
        assert step.new >= new and step.old <= old
        assert step.new + old <= replicas + surge
        assert step.new + step.old >= replicas - unavailable
        new, old = step.new, step.old
    assert (new, old) == (replicas, 0)
    assert len(steps) <= 2 * replicas + 2


@given(
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=0, max_value=20),
    st.integers(min_value=0, max_value=20),
    st.integers(min_value=0, max_value=80),
    st.integers(min_value=0, max_value=80),
)
def test_a_rolling_plan_from_any_state_finishes_within_its_bounds(
    replicas: int, surge: int, unavailable: int, new: int, old: int
) -> None:
    """An edit mid-update (replicas, surge, unavailability) re-plans from where the pods are."""
    if surge == 0 and unavailable == 0:
        return
    steps = rolling_plan(replicas, surge, unavailable, start=RollingStep(new=new, old=old))
    allowed_missing = min(unavailable, replicas)
    for step in steps:
        # The new side never grows beyond the surge; once within the bounds, it stays so.
        if step.new > new:
            assert step.new + old <= max(replicas + surge, new + old)
        if new + old >= replicas - allowed_missing:
            assert step.new + step.old >= min(replicas - allowed_missing, new + old)
        new, old = step.new, step.old
    assert (new, old) == (replicas, 0)
    assert len(steps) <= 2 * replicas + 4


def test_a_rolling_plan_from_its_own_state_is_the_rest_of_the_plan() -> None:
    """Re-planning without an edit changes nothing: the next step depends only on the pods."""
    whole = rolling_plan(10, 2, 1)
    for done, step in enumerate(whole):
        assert rolling_plan(10, 2, 1, start=step) == whole[done + 1 :]


def test_fewer_replicas_mid_update_shrink_the_new_side_too() -> None:
    assert rolling_plan(4, 1, 1, start=RollingStep(new=6, old=0)) == [RollingStep(new=4, old=0)]
