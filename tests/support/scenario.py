"""A rollout under test: its objects in a namespace, and starts done the way the watcher does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.naming import SA_NAMESPACE, replicaset_name, revision_of
from tests.support import builders
from tests.support.kube import Kube
from tests.support.worker import running_worker
from watcher.dispatch import StartWorkflow, decide
from watcher.loop import watch_forever
from watcher.releases import ReleaseSource, decide_release
from watcher.runner import Runner
from watcher.source import RolloutSource
from watcher.workloads import DataDigests, DeploymentTemplates
from workflows.messages import RolloutOutcome


@dataclass
class Scenario:
    kube: Kube
    client: Client
    namespace: str
    task_queue: str
    name: str = "app"
    env: WorkflowEnvironment | None = None
    started: set[str] = field(default_factory=set)

    async def create(self, **rollout_args: Any) -> None:
        ns, name = self.namespace, self.name
        await self.kube.apply(ns, builders.service(f"{name}-stable", name))
        await self.kube.apply(ns, builders.service(f"{name}-canary", name))
        await self.kube.apply(
            ns, builders.httproute(f"{name}-route", f"{name}-stable", f"{name}-canary")
        )
        await self.kube.apply(ns, builders.rollout(name, **rollout_args))

    async def set_image(self, image: str) -> None:
        await self.kube.patch(
            "Rollout",
            self.namespace,
            self.name,
            {"spec": {"template": builders.pod_template(self.name, image)}},
        )

    async def patch_spec(self, **changes: Any) -> dict[str, Any]:
        """Merge-patches the Rollout's spec; returns the Rollout as stored."""
        return await self.kube.patch("Rollout", self.namespace, self.name, {"spec": changes})

    async def start(self) -> WorkflowHandle[Any, RolloutOutcome]:
        """Starts the workflow for the Rollout's current revision, as the watcher would."""
        rollout = await self.rollout()
        starts = [a for a in decide(rollout) if isinstance(a, StartWorkflow)]
        assert starts, f"the watcher would start nothing for {rollout.get('status')}"
        await Runner(self.client, self.kube.as_watcher, self.task_queue).apply(starts[0])
        self.started.add(starts[0].workflow_id)
        return self.client.get_workflow_handle(starts[0].workflow_id, result_type=RolloutOutcome)

    async def close(self) -> None:
        """Terminates what this test started: an open workflow whose worker is gone would keep
        a workflow task pending, and the time-skipping server does not skip past one."""
        for workflow_id in self.started:
            with contextlib.suppress(RPCError):
                await self.client.get_workflow_handle(workflow_id).terminate("test finished")

    async def terminate_running(self) -> None:
        """Terminates every workflow still running for this namespace (a Failed rollout waits
        for a retry forever), found by search attribute, whoever started it."""
        async for execution in self.client.list_workflows(
            f"{SA_NAMESPACE} = '{self.namespace}' AND ExecutionStatus = 'Running'"
        ):
            with contextlib.suppress(RPCError):  # it may have finished since it was listed
                await self.client.get_workflow_handle(execution.id).terminate("test done")

    async def skip(self, seconds: float, handle: WorkflowHandle[Any, Any] | None = None) -> None:
        """Advances the test server's clock; workflows here are not started by the env's own
        `start_workflow`, so their `result()` does not skip time by itself.

        With `handle`, first waits until that workflow sits on a started timer: its status is
        published just before the timer starts, and skipping in between can miss the timer.
        """
        assert self.env is not None
        if handle is not None:
            await self._until_waiting_on_timer(handle)
        try:
            await asyncio.wait_for(self.env.sleep(seconds), 30)
        except (TimeoutError, RPCError):
            last = ""
            if handle is not None:
                events = (await handle.fetch_history()).events[-6:]
                last = ", ".join(EventType.Name(e.event_type) for e in events)
            raise AssertionError(
                f"the test server did not skip {seconds}s within 30s; last events: {last}"
            ) from None

    async def _until_waiting_on_timer(self, handle: WorkflowHandle[Any, Any]) -> None:
        """Until the workflow has a started timer that has neither fired nor been cancelled
        (activities it started without waiting, such as CDEvent sends, may come after it)."""
        for _ in range(200):
            pending: set[str] = set()
            for e in (await handle.fetch_history()).events:
                if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                    pending.add(e.timer_started_event_attributes.timer_id)
                elif e.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
                    pending.discard(e.timer_fired_event_attributes.timer_id)
                elif e.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
                    pending.discard(e.timer_canceled_event_attributes.timer_id)
            if pending:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"workflow {handle.id} never waited on a timer")

    async def rollout(self) -> dict[str, Any]:
        return await self.kube.get("Rollout", self.namespace, self.name)

    async def revision(self) -> str:
        return revision_of((await self.rollout())["spec"]["template"])

    async def replicaset(self, revision: str) -> dict[str, Any]:
        return await self.kube.get(
            "ReplicaSet", self.namespace, replicaset_name(self.name, revision)
        )

    async def weights(self) -> dict[str, int]:
        route = await self.kube.get("HTTPRoute", self.namespace, f"{self.name}-route")
        # The user's weighted rule (the second of theirs; kulta's own rules, named, come first).
        rule = [r for r in route["spec"]["rules"] if not r.get("name", "").startswith("kulta-")][1]
        return {ref["name"]: ref.get("weight", 1) for ref in rule["backendRefs"]}

    async def route(self) -> dict[str, Any]:
        return await self.kube.get("HTTPRoute", self.namespace, f"{self.name}-route")

    async def selector(self, service: str) -> dict[str, str]:
        svc = await self.kube.get("Service", self.namespace, service)
        selector: dict[str, str] = svc["spec"]["selector"]
        return selector

    async def wait_phase(
        self, phase: str, message: str = "", timeout: float = 60
    ) -> dict[str, Any]:
        return await self.kube.wait_for(
            "Rollout",
            self.namespace,
            self.name,
            lambda r: (
                (r.get("status") or {}).get("phase") == phase
                and message in ((r.get("status") or {}).get("message") or "")
            ),
            timeout=timeout,
            what=f"phase {phase} {message!r}",
        )

    async def annotate(self, key: str, value: str = "true") -> None:
        """Sets an annotation on the Rollout, as `kubectl annotate` (and the watcher reads)."""
        await self.kube.patch(
            "Rollout", self.namespace, self.name, {"metadata": {"annotations": {key: value}}}
        )

    async def wait_until(self, predicate: Any, what: str, timeout: float = 60) -> dict[str, Any]:
        """The Rollout once `predicate(rollout)` holds (watched, not polled)."""
        return await self.kube.wait_for(
            "Rollout", self.namespace, self.name, predicate, timeout=timeout, what=what
        )

    async def wait_paused_at(self, weight: int, timeout: float = 60) -> dict[str, Any]:
        """The Rollout once it is Paused with the canary at `weight`%."""
        return await self.kube.wait_for(
            "Rollout",
            self.namespace,
            self.name,
            lambda r: (
                r["status"].get("currentWeight") == weight and r["status"]["phase"] == "Paused"
            ),
            timeout=timeout,
            what=f"paused at {weight}%",
        )

    async def wait_rs_replicas(self, revision: str, replicas: int, timeout: float = 60) -> None:
        await self.kube.wait_for(
            "ReplicaSet",
            self.namespace,
            replicaset_name(self.name, revision),
            lambda rs: rs["spec"]["replicas"] == replicas,
            timeout=timeout,
            what=f"spec.replicas == {replicas}",
        )


@contextlib.asynccontextmanager
async def watched(
    env: WorkflowEnvironment, kube: Kube, namespace: str, **worker_args: Any
) -> AsyncIterator[Scenario]:
    """A worker and a watcher of `namespace` running in this process, as in production; what
    the test leaves running is terminated at the end."""
    async with running_worker(env.client, kube, **worker_args) as worker:
        runner = Runner(env.client, kube.as_watcher, worker.task_queue)
        watchers = [
            asyncio.create_task(
                watch_forever(
                    runner,
                    RolloutSource(
                        kube.as_watcher,
                        namespace,
                        templates=DeploymentTemplates(kube.as_watcher, namespace),
                        configs=[DataDigests(kube.as_watcher, "ConfigMap", namespace)],
                    ),
                )
            ),
            asyncio.create_task(
                watch_forever(
                    runner,
                    ReleaseSource(kube.as_watcher, namespace),
                    decider=lambda release, deleted: decide_release(
                        release, cluster="default", deleted=deleted
                    ),
                )
            ),
        ]
        scenario = Scenario(kube, env.client, namespace, worker.task_queue)
        try:
            yield scenario
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await scenario.terminate_running()
