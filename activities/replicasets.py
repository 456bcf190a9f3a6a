"""ReplicaSet activities: one ReplicaSet per revision, scaled to absolute counts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from temporalio import activity

from activities.adapters.kube import KubeClient, WatchEvent
from activities.config_copies import LABEL_CONFIG_SOURCE, copies_in, data_digest, resource_of
from activities.contracts import (
    EnsureReplicaSetInput,
    ReplicaSetState,
    ScaleAndWaitInput,
    ScaleAndWaitResult,
    ScaleDownOthersInput,
    ScaleInput,
    WaitAvailableInput,
    WaitAvailableResult,
)
from activities.errors import AlreadyExists, BadInput, ConfigChanged, Gone, NotFound, Transient
from activities.naming import (
    ANNOTATION_GENERATION,
    DEPLOYMENTS,
    LABEL_MANAGED,
    LABEL_ROLLOUT,
    LABEL_TEMPLATE_HASH,
    REPLICASETS,
    ROLLOUT_API_VERSION,
    replicaset_name,
)

HEARTBEAT_SECONDS = 5.0


def _generation(rs: dict[str, Any]) -> int:
    value = (rs["metadata"].get("annotations") or {}).get(ANNOTATION_GENERATION, "0")
    return int(value) if value.isdigit() else 0


def _age(rs: dict[str, Any]) -> tuple[int, str, str]:
    """Sorts ReplicaSets by the generation that last ran them, then by creation (RFC 3339
    strings sort as times), then name."""
    meta = rs["metadata"]
    return (_generation(rs), meta.get("creationTimestamp", ""), meta["name"])


def _state(rs: dict[str, Any]) -> ReplicaSetState:
    status = rs.get("status") or {}
    return ReplicaSetState(
        name=rs["metadata"]["name"],
        replicas=int(rs.get("spec", {}).get("replicas", 0)),
        ready=int(status.get("readyReplicas", 0)),
        available=int(status.get("availableReplicas", 0)),
    )


def build_replicaset(inp: EnsureReplicaSetInput) -> dict[str, Any]:
    """The ReplicaSet object for one revision of a Rollout."""
    template: dict[str, Any] = {**inp.template}
    metadata = {**(template.get("metadata") or {})}
    labels = {**(metadata.get("labels") or {}), LABEL_TEMPLATE_HASH: inp.revision}
    metadata["labels"] = labels
    template["metadata"] = metadata
    name = replicaset_name(inp.rollout.name, inp.revision)
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": inp.rollout.namespace,
            "annotations": {ANNOTATION_GENERATION: str(inp.generation)},
            "labels": {
                **labels,
                LABEL_MANAGED: "true",
                LABEL_ROLLOUT: inp.rollout.name,
            },
            "ownerReferences": [
                {
                    "apiVersion": ROLLOUT_API_VERSION,
                    "kind": "Rollout",
                    "name": inp.rollout.name,
                    "uid": inp.rollout.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": inp.replicas,
            "minReadySeconds": inp.min_ready_seconds,
            "selector": {"matchLabels": {**inp.match_labels, LABEL_TEMPLATE_HASH: inp.revision}},
            "template": template,
        },
    }


class ReplicaSetActivities:
    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    @activity.defn(name="ensure_replicaset")
    async def ensure_replicaset(self, inp: EnsureReplicaSetInput) -> ReplicaSetState:
        """Creates the revision's ReplicaSet or scales it to `replicas`.

        Idempotent: the replica count is absolute, and creating an existing one reads it instead.
        """
        return _state(await self._ensure(inp))

    async def _ensure(self, inp: EnsureReplicaSetInput) -> dict[str, Any]:
        """`ensure_replicaset`, returning the ReplicaSet as the API server last answered."""
        ns = inp.rollout.namespace
        name = replicaset_name(inp.rollout.name, inp.revision)
        path = REPLICASETS.path(ns, name)
        try:
            current = await self._kube.get(path)
        except NotFound:
            body = build_replicaset(inp)
            try:
                created = await self._kube.create(REPLICASETS.path(ns), body)
            except AlreadyExists:
                current = await self._kube.get(path)
            else:
                await self._ensure_config_copies(created, inp.template)
                return created
        owners = current["metadata"].get("ownerReferences") or []
        if not any(o.get("uid") == inp.rollout.uid for o in owners):
            raise BadInput(
                f"ReplicaSet {ns}/{name} exists but is not owned by Rollout {inp.rollout.name}"
            )
        # Before any pod: a ReplicaSet made at zero, then scaled by a later call of this.
        await self._ensure_config_copies(current, inp.template)
        change: dict[str, Any] = {}
        if int(current["spec"].get("replicas", 0)) != inp.replicas:
            change["spec"] = {"replicas": inp.replicas}
        if _generation(current) < inp.generation:  # run again (a revert): newest in use
            change["metadata"] = {"annotations": {ANNOTATION_GENERATION: str(inp.generation)}}
        if change:
            current = await self._kube.patch(path, change)
        return current

    async def _ensure_config_copies(self, rs: dict[str, Any], template: dict[str, Any]) -> None:
        """The immutable copies of tracked config the revision's template names
        (`activities/config_copies.py`), owned by its ReplicaSet so that they go with it.
        Idempotent: a copy that exists is the one its name says (names are content digests)."""
        ns = rs["metadata"]["namespace"]
        for wanted in copies_in(template):
            resource = resource_of(wanted.kind)
            try:
                await self._kube.get(resource.path(ns, wanted.name))
                continue
            except NotFound:
                pass
            try:
                source = await self._kube.get(resource.path(ns, wanted.source))
            except NotFound:
                raise ConfigChanged(
                    f"{wanted.kind} {ns}/{wanted.source} is gone since revision "
                    f"{rs['metadata']['name']} was made from it"
                ) from None
            if data_digest(source) != wanted.digest:
                raise ConfigChanged(
                    f"{wanted.kind} {ns}/{wanted.source} changed since revision "
                    f"{rs['metadata']['name']} was made from it; the next revision carries it"
                )
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": wanted.kind,
                "metadata": {
                    "name": wanted.name,
                    "labels": {
                        LABEL_ROLLOUT: rs["metadata"].get("labels", {}).get(LABEL_ROLLOUT, ""),
                        LABEL_CONFIG_SOURCE: wanted.source,
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": rs["metadata"]["name"],
                            "uid": rs["metadata"]["uid"],
                        }
                    ],
                },
                "immutable": True,
                **{k: source[k] for k in ("data", "binaryData", "type") if k in source},
            }
            with contextlib.suppress(AlreadyExists):
                await self._kube.create(resource.path(ns), body)

    @activity.defn(name="scale_replicaset")
    async def scale_replicaset(self, inp: ScaleInput) -> ReplicaSetState:
        """Sets `spec.replicas` of a ReplicaSet; scaling a missing one to zero is a no-op."""
        path = REPLICASETS.path(inp.namespace, inp.name)
        try:
            rs = await self._kube.patch(path, {"spec": {"replicas": inp.replicas}})
        except NotFound:
            if inp.replicas == 0:
                return ReplicaSetState(
                    name=inp.name, replicas=0, ready=0, available=0, exists=False
                )
            raise
        return _state(rs)

    @activity.defn(name="scale_deployment")
    async def scale_deployment(self, inp: ScaleInput) -> str:
        """Sets a Deployment's replicas through its scale subresource (a Rollout took over its
        template): "scaled", or "missing" when there is no such Deployment any more."""
        try:
            await self._kube.patch(
                DEPLOYMENTS.path(inp.namespace, inp.name, "scale"),
                {"spec": {"replicas": inp.replicas}},
            )
        except NotFound:
            return "missing"
        return "scaled"

    @activity.defn(name="scale_down_other_revisions")
    async def scale_down_other_revisions(self, inp: ScaleDownOthersInput) -> list[str]:
        """Scales every managed ReplicaSet of the Rollout outside `keep_revisions` to zero, then
        deletes the oldest of them beyond `history_limit` (idempotent: a second run finds them
        at zero, or gone)."""
        ns = inp.rollout.namespace
        selector = f"{LABEL_MANAGED}=true,{LABEL_ROLLOUT}={inp.rollout.name}"
        listing = await self._kube.get(REPLICASETS.path(ns), params={"labelSelector": selector})
        scaled, old = [], []
        for rs in listing.get("items", []):
            revision = rs["metadata"].get("labels", {}).get(LABEL_TEMPLATE_HASH)
            if revision in inp.keep_revisions:
                continue
            old.append(rs)
            if int(rs["spec"].get("replicas", 0)) == 0:
                continue
            name = rs["metadata"]["name"]
            await self._kube.patch(REPLICASETS.path(ns, name), {"spec": {"replicas": 0}})
            scaled.append(name)
        if inp.history_limit is not None:
            # Most recently run first: the first `limit` stay.
            old.sort(key=_age, reverse=True)
            for rs in old[inp.history_limit :]:
                with contextlib.suppress(NotFound):
                    await self._kube.delete(REPLICASETS.path(ns, rs["metadata"]["name"]))
        return scaled

    @activity.defn(name="scale_replicaset_and_wait")
    async def scale_and_wait(self, inp: ScaleAndWaitInput) -> ScaleAndWaitResult:
        """`ensure_replicaset`, then `wait_replicaset_available` for all its replicas: one
        activity per canary step instead of two (each activity costs the workflow's history
        six events). Idempotent, as both parts are."""
        replicaset = await self._ensure(inp.replicaset)
        state = _state(replicaset)
        want = inp.replicaset.replicas
        if want == 0 or state.available >= want:
            return ScaleAndWaitResult(
                state=state, wait=WaitAvailableResult(met=True, available=state.available)
            )
        wait = await self._wait(
            WaitAvailableInput(
                namespace=inp.replicaset.rollout.namespace,
                name=state.name,
                want=want,
                progress_deadline_seconds=inp.progress_deadline_seconds,
            ),
            # The write's answer is as fresh as a read: the watch starts from it (a read less).
            replicaset,
        )
        return ScaleAndWaitResult(state=state, wait=wait)

    @activity.defn(name="wait_replicaset_available")
    async def wait_available(self, inp: WaitAvailableInput) -> WaitAvailableResult:
        """Waits, watching (not polling), until `want` pods are available.

        Gives up with `met=False` once no new pod became available for the progress deadline.
        Heartbeats while it waits, so a dead worker is noticed and another one resumes the wait.
        """
        return await self._wait(inp, None)

    async def _wait(
        self, inp: WaitAvailableInput, known: dict[str, Any] | None
    ) -> WaitAvailableResult:
        """`wait_available`; `known` is the ReplicaSet as just returned by a write, used in
        place of the first read."""
        path = REPLICASETS.path(inp.namespace)
        name_path = REPLICASETS.path(inp.namespace, inp.name)
        best = -1
        last_progress = time.monotonic()
        while True:
            rs = known if known is not None else await self._kube.get(name_path)
            known = None  # after a watch ends, read again
            state = _state(rs)
            if state.available >= inp.want:
                return WaitAvailableResult(met=True, available=state.available)
            if state.available > best:
                best, last_progress = state.available, time.monotonic()
            queue: asyncio.Queue[WatchEvent | Exception] = asyncio.Queue()
            pump = asyncio.create_task(
                self._pump(path, inp.name, rs["metadata"]["resourceVersion"], queue)
            )
            try:
                while True:
                    left = inp.progress_deadline_seconds - (time.monotonic() - last_progress)
                    if left <= 0:
                        return WaitAvailableResult(
                            met=False,
                            available=best,
                            message=(
                                f"ReplicaSet {inp.name} has {best}/{inp.want} available pods and "
                                f"made no progress for {inp.progress_deadline_seconds}s"
                            ),
                        )
                    activity.heartbeat(best)
                    try:
                        item = await asyncio.wait_for(queue.get(), min(HEARTBEAT_SECONDS, left))
                    except TimeoutError:
                        continue
                    if isinstance(item, Exception):
                        break  # watch ended or expired: re-read and watch again
                    if item.type == "BOOKMARK":
                        continue
                    state = _state(item.object)
                    if state.available >= inp.want:
                        return WaitAvailableResult(met=True, available=state.available)
                    if state.available > best:
                        best, last_progress = state.available, time.monotonic()
            finally:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pump

    async def _pump(
        self,
        path: str,
        name: str,
        resource_version: str,
        queue: asyncio.Queue[WatchEvent | Exception],
    ) -> None:
        try:
            async for event in self._kube.watch(
                path,
                resource_version=resource_version,
                params={"fieldSelector": f"metadata.name={name}"},
                timeout_seconds=120,
            ):
                await queue.put(event)
            await queue.put(Transient("watch closed"))
        except (Gone, Transient) as err:
            await queue.put(err)
