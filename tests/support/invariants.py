"""kulta's safety invariants, checked on every recorded write to the API server.

`WriteRecorder` watches Rollouts, Services, ReplicaSets and HTTPRoutes of a namespace and keeps
every change with its resourceVersion. resourceVersions come from etcd's one revision counter,
so sorting by them replays the cluster's history in the order it happened across kinds (four
watch streams deliver in their own order; the check therefore runs on the sorted record, after
the fact, never on arrival order).

`violations` replays that history and, after each write, checks for each canary Rollout with a
route:
1. the managed weights of stable + canary are integers in 0..100 summing to 100;
2. while the stable Service carries weight s > 0, the ReplicaSet it selects has at least
   ceil(replicas * s / 100) available pods;
3. while the canary Service carries weight c > 0, the ReplicaSet it selects has available pods;
4. a ReplicaSet never has fewer desired replicas than the traffic routed to it needs, which is
   what "on rollback, weight 0 is written before the canary scales down" comes to.
`terminal_problems` checks the end state (5): no ReplicaSet but the stable one keeps replicas,
no rule on the route beyond the ones the user wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from activities.errors import Gone
from activities.naming import LABEL_ROLLOUT, LABEL_TEMPLATE_HASH
from tests.support.kube import Kube, path_of

JsonObject = dict[str, Any]
RECORDED_KINDS = ("Rollout", "Service", "ReplicaSet", "HTTPRoute")


@dataclass(frozen=True)
class Write:
    resource_version: int
    kind: str
    name: str
    object: JsonObject
    deleted: bool = False


@dataclass
class WriteRecorder:
    """Every change to the given kinds in a namespace, in etcd order (see the module doc)."""

    kube: Kube
    namespace: str
    kinds: tuple[str, ...] = ("ReplicaSet", "HTTPRoute")
    writes: list[Write] = field(default_factory=list)  # changes while recording
    initial: list[Write] = field(default_factory=list)  # the objects when recording began

    @property
    def history(self) -> list[Write]:
        """The starting objects and every change since, in etcd order."""
        return sorted([*self.initial, *self.writes], key=lambda w: w.resource_version)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WriteRecorder]:
        tasks = [asyncio.create_task(self._watch(kind)) for kind in self.kinds]
        await asyncio.sleep(0.3)  # let the watches open before the test acts
        try:
            yield self
            await self.caught_up()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.writes.sort(key=lambda w: w.resource_version)

    async def _watch(self, kind: str) -> None:
        path = path_of(kind, self.namespace)
        listing = await self.kube.client.get(path)
        for item in listing.get("items", []):  # the state the record starts from
            meta = item["metadata"]
            self.initial.append(Write(int(meta["resourceVersion"]), kind, meta["name"], item))
        version = listing["metadata"]["resourceVersion"]
        while True:
            try:
                async for event in self.kube.client.watch(path, resource_version=version):
                    if event.type in ("ADDED", "MODIFIED", "DELETED"):
                        self._keep(kind, event.object, deleted=event.type == "DELETED")
                        version = event.object["metadata"]["resourceVersion"]
            except Gone as err:  # a gap in the record would hide violations: say so
                raise AssertionError(f"the {kind} watch expired; the record has a gap") from err

    def _keep(self, kind: str, obj: JsonObject, *, deleted: bool) -> None:
        meta = obj["metadata"]
        self.writes.append(
            Write(int(meta["resourceVersion"]), kind, meta["name"], obj, deleted=deleted)
        )

    async def caught_up(self, timeout: float = 15) -> None:
        """Until the record holds every recorded object as the API server has it now: each
        kind has its own watch, and one may lag behind another (or behind the test's), so a
        record read too early could end before writes that already happened."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        wanted = {}
        for kind in self.kinds:
            listing = await self.kube.client.get(path_of(kind, self.namespace))
            for item in listing.get("items", []):
                meta = item["metadata"]
                wanted[(kind, meta["name"])] = int(meta["resourceVersion"])
        while True:
            seen: dict[tuple[str, str], int] = {}
            for w in [*self.initial, *self.writes]:
                seen[(w.kind, w.name)] = max(seen.get((w.kind, w.name), 0), w.resource_version)
            behind = [key for key, version in wanted.items() if seen.get(key, 0) < version]
            if not behind:
                return
            if loop.time() > deadline:
                raise AssertionError(f"the record never caught up with {behind[:5]}")
            await asyncio.sleep(0.05)

    def first(self, kind: str, name: str, predicate: Any, after: int = 0) -> Write:
        """The earliest write of `kind`/`name` (with resourceVersion > `after`) that matches."""
        for write in sorted(self.writes, key=lambda w: w.resource_version):
            if write.resource_version <= after:
                continue
            if write.kind == kind and write.name == name and predicate(write.object):
                return write
        raise AssertionError(f"no {kind} {name} write matched")


class State:
    """The namespace as of some write: the latest object of each kind and name, with indexes
    from each Rollout to its ReplicaSets and from each Service and route to its Rollouts."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, JsonObject]] = {kind: {} for kind in RECORDED_KINDS}
        self._replicasets: dict[str, dict[str, JsonObject]] = {}
        self._owners: dict[tuple[str, str], set[str]] = {}

    def apply(self, write: Write) -> None:
        kind = self.objects.setdefault(write.kind, {})
        if write.deleted:
            kind.pop(write.name, None)
        else:
            kind[write.name] = write.object
        if write.kind == "ReplicaSet":
            owner = (write.object["metadata"].get("labels") or {}).get(LABEL_ROLLOUT)
            if owner is not None:
                mine = self._replicasets.setdefault(owner, {})
                if write.deleted:
                    mine.pop(write.name, None)
                else:
                    mine[write.name] = write.object
        elif write.kind == "Rollout" and not write.deleted:
            stable, canary, route = _canary_names(write.object)
            for key in (("Service", stable), ("Service", canary), ("HTTPRoute", route)):
                if key[1]:
                    self._owners.setdefault(key, set()).add(write.name)

    def affected(self, write: Write) -> set[str]:
        """The Rollouts whose invariants this write can change."""
        if write.kind == "Rollout":
            return {write.name}
        if write.kind == "ReplicaSet":
            owner = (write.object["metadata"].get("labels") or {}).get(LABEL_ROLLOUT)
            return {owner} if owner else set()
        return self._owners.get((write.kind, write.name), set())

    def get(self, kind: str, name: str) -> JsonObject | None:
        return self.objects.get(kind, {}).get(name)

    def replicasets_of(self, rollout: str) -> list[JsonObject]:
        return list(self._replicasets.get(rollout, {}).values())

    def selected_replicasets(self, rollout: str, service: JsonObject) -> list[JsonObject]:
        """The Rollout's ReplicaSets whose pods the Service selects (its pinned revision, or all
        of them when the selector is not pinned)."""
        pinned = (service.get("spec", {}).get("selector") or {}).get(LABEL_TEMPLATE_HASH)
        return [
            rs
            for rs in self.replicasets_of(rollout)
            if pinned is None
            or (rs["metadata"].get("labels") or {}).get(LABEL_TEMPLATE_HASH) == pinned
        ]


def _canary_names(rollout: JsonObject) -> tuple[str | None, str | None, str | None]:
    """(stable Service, canary Service, HTTPRoute) of a canary Rollout, None where absent."""
    canary = ((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}
    route = ((canary.get("trafficRouting") or {}).get("gatewayAPI") or {}).get("httpRoute")
    return canary.get("stableService"), canary.get("canaryService"), route


def _managed_weights(route: JsonObject, stable: str, canary: str) -> list[dict[str, Any]]:
    """For each rule routing to both Services, {service: weight}."""
    rules = []
    for rule in route.get("spec", {}).get("rules") or []:
        refs = {ref.get("name"): ref.get("weight", 1) for ref in rule.get("backendRefs") or []}
        if stable in refs and canary in refs:
            rules.append({stable: refs[stable], canary: refs[canary]})
    return rules


def _routes_only_to(route: JsonObject, service: str) -> bool:
    """A rule of the route sends to `service` alone (kulta's header rule)."""
    for rule in route.get("spec", {}).get("rules") or []:
        names = {ref.get("name") for ref in rule.get("backendRefs") or []}
        if names == {service}:
            return True
    return False


def _available(state: State, rollout_name: str, service: JsonObject | None) -> int:
    if service is None:
        return 0
    return sum(
        int(rs.get("status", {}).get("availableReplicas") or 0)
        for rs in state.selected_replicasets(rollout_name, service)
    )


def _check(state: State, rollout_name: str) -> list[str]:
    rollout = state.get("Rollout", rollout_name)
    if rollout is None:
        return []
    stable, canary_service, route_name = _canary_names(rollout)
    route = state.get("HTTPRoute", route_name) if route_name else None
    if route is None or stable is None or canary_service is None:
        return []
    replicas = int(rollout.get("spec", {}).get("replicas", 1))
    found = []
    if (
        _routes_only_to(route, canary_service)
        and _available(state, rollout_name, state.get("Service", canary_service)) < 1
    ):
        found.append("(3) a rule sends requests to the canary alone with no available pods")
    for weights in _managed_weights(route, stable, canary_service):
        values = list(weights.values())
        if not all(isinstance(v, int) and 0 <= v <= 100 for v in values) or sum(values) != 100:
            found.append(f"(1) managed weights {weights} are not integers summing to 100")
        for service_name, weight in weights.items():
            if not isinstance(weight, int) or weight <= 0:
                continue
            service = state.get("Service", service_name)
            if service is None:
                found.append(f"weight {weight} on Service {service_name}, which does not exist")
                continue
            serving = state.selected_replicasets(rollout_name, service)
            available = _available(state, rollout_name, service)  # the object, found above
            desired = sum(int(rs.get("spec", {}).get("replicas") or 0) for rs in serving)
            need = math.ceil(replicas * weight / 100)
            role = "stable" if service_name == stable else "canary"
            if role == "stable" and available < need:
                found.append(f"(2) stable carries {weight}% with {available} available < {need}")
            if role == "canary" and available < 1:
                found.append(f"(3) canary carries {weight}% with no available pods")
            if desired < need:
                found.append(f"(4) {role} carries {weight}% but wants {desired} pods < {need}")
    return found


def violations(
    writes: Iterable[Write], rollout: str | None = None, *, from_version: int = 0
) -> list[str]:
    """Every invariant broken after any write with resourceVersion >= `from_version` (for one
    Rollout, or all), each naming the write that left the cluster in that state. One pass:
    after each write only the Rollouts it concerns are checked."""
    state = State()
    found = []
    for write in sorted(writes, key=lambda w: w.resource_version):
        state.apply(write)
        if write.resource_version < from_version:
            continue
        for name in sorted(state.affected(write)):
            if rollout is not None and name != rollout:
                continue
            for problem in _check(state, name):
                found.append(
                    f"{name}: after {write.kind} {write.name} rv {write.resource_version}: "
                    f"{problem}"
                )
    return found


def terminal_problems(writes: Iterable[Write], rollout: str, user_rules: int) -> list[str]:
    """(5) at the end: only the stable revision keeps replicas; the route has the user's rules."""
    state = State()
    for write in sorted(writes, key=lambda w: w.resource_version):
        state.apply(write)
    found = []
    obj = state.get("Rollout", rollout)
    if obj is None:
        return [f"Rollout {rollout} is gone"]
    stable = (obj.get("status") or {}).get("stableRevision")
    for rs in state.replicasets_of(rollout):
        if (rs["metadata"].get("labels") or {}).get(LABEL_TEMPLATE_HASH) == stable:
            continue
        if int(rs.get("spec", {}).get("replicas") or 0) > 0:
            found.append(f"(5) ReplicaSet {rs['metadata']['name']} keeps replicas")
    route_name = _canary_names(obj)[2]
    route = state.get("HTTPRoute", route_name) if route_name else None
    if route is not None and len(route["spec"].get("rules") or []) != user_rules:
        found.append(f"(5) route {route_name} has {len(route['spec']['rules'])} rules")
    return found
