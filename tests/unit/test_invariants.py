"""The invariant checker itself, on made-up write histories: it must catch each kind of unsafe
order and stay quiet on the safe one (a checker that cannot fail proves nothing)."""

from __future__ import annotations

from typing import Any

from tests.support import builders
from tests.support.invariants import Write, terminal_problems, violations


class History:
    """Writes with increasing resourceVersions, like etcd's revision counter."""

    def __init__(self) -> None:
        self.writes: list[Write] = []

    def put(self, obj: dict[str, Any]) -> None:
        obj = {**obj, "metadata": {**obj["metadata"]}}
        self.writes.append(Write(len(self.writes) + 1, obj["kind"], obj["metadata"]["name"], obj))

    def replicaset(self, revision: str, replicas: int, available: int) -> None:
        self.put(
            {
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"app-{revision}",
                    "labels": {
                        "rollouts.kulta.io/rollout": "app",
                        "pod-template-hash": revision,
                    },
                },
                "spec": {"replicas": replicas},
                "status": {"availableReplicas": available},
            }
        )

    def service(self, name: str, revision: str) -> None:
        svc = builders.service(name, "app")
        svc["spec"]["selector"] = {"app": "app", "pod-template-hash": revision}
        self.put(svc)

    def weights(self, stable: int, canary: int) -> None:
        route = builders.httproute("app-route", "app-stable", "app-canary")
        for ref in route["spec"]["rules"][1]["backendRefs"]:
            ref["weight"] = {"app-stable": stable, "app-canary": canary}.get(ref["name"], 0)
        self.put(route)


def stable_v1_then_canary_at(weight: int) -> History:
    h = History()
    h.put(builders.rollout("app", replicas=4))
    h.replicaset("v1", 4, 4)
    h.service("app-stable", "v1")
    h.service("app-canary", "v2")
    h.weights(100, 0)
    h.replicaset("v2", 1, 0)
    h.replicaset("v2", 1, 1)
    h.weights(100 - weight, weight)
    return h


def test_a_safe_canary_and_rollback_break_nothing() -> None:
    h = stable_v1_then_canary_at(25)
    h.weights(100, 0)  # rollback: traffic first...
    h.replicaset("v2", 0, 0)  # ...then the scale-down
    h.put(rolled_back())
    assert violations(h.writes, "app") == []
    assert terminal_problems(h.writes, "app", user_rules=2) == []


def test_scaling_the_canary_down_before_its_weight_is_caught() -> None:
    h = stable_v1_then_canary_at(25)
    h.replicaset("v2", 0, 0)
    h.weights(100, 0)
    found = violations(h.writes, "app")
    assert any("(3) canary carries 25% with no available pods" in v for v in found), found
    assert any("(4) canary carries 25% but wants 0 pods < 1" in v for v in found), found


def test_weight_to_a_canary_without_available_pods_is_caught() -> None:
    h = History()
    h.put(builders.rollout("app", replicas=4))
    h.replicaset("v1", 4, 4)
    h.service("app-stable", "v1")
    h.service("app-canary", "v2")
    h.replicaset("v2", 1, 0)
    h.weights(75, 25)
    assert any("(3)" in v for v in violations(h.writes, "app"))


def test_weights_must_be_integers_summing_to_100() -> None:
    h = stable_v1_then_canary_at(25)
    h.weights(70, 25)
    assert any("(1) managed weights" in v for v in violations(h.writes, "app"))


def test_stable_must_keep_capacity_for_its_share() -> None:
    h = stable_v1_then_canary_at(50)
    h.replicaset("v1", 1, 1)  # stable scaled to 1 while still serving 50% of 4 replicas
    found = violations(h.writes, "app")
    assert any("(2) stable carries 50% with 1 available < 2" in v for v in found), found


def test_only_writes_from_the_given_version_count() -> None:
    h = History()
    h.put(builders.rollout("app", replicas=4))
    h.service("app-stable", "v1")
    h.service("app-canary", "v2")
    h.weights(100, 0)  # before anything runs: the user's route, no pods yet
    armed = len(h.writes) + 1
    h.replicaset("v1", 4, 4)
    assert violations(h.writes, "app") != []
    assert violations(h.writes, "app", from_version=armed) == []


def rolled_back() -> dict[str, Any]:
    rollout = builders.rollout("app", replicas=4)
    rollout["status"] = {"phase": "Failed", "stableRevision": "v1"}
    return rollout


def test_leftovers_at_the_end_are_reported() -> None:
    h = stable_v1_then_canary_at(25)
    h.put(rolled_back())
    found = terminal_problems(h.writes, "app", user_rules=1)
    assert "(5) ReplicaSet app-v2 keeps replicas" in found
    assert "(5) route app-route has 2 rules" in found
