"""Applies dispatch decisions: starts workflows, sends signals, removes consumed annotations."""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Hashable

from temporalio.client import Client
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.adapters.kube import KubeClient
from activities.errors import NotFound
from activities.naming import (
    RELEASE_WORKFLOW_NAME,
    RESOURCES,
    ROLLOUTS,
    SA_NAMESPACE,
    SA_PHASE,
    SA_RELEASE,
    SA_ROLLOUT,
    SA_STRATEGY,
    WORKFLOW_NAME,
)
from watcher.dispatch import (
    Action,
    CancelWorkflow,
    ClaimAnnotation,
    RemoveAnnotation,
    Signal,
    StartWorkflow,
)
from watcher.releases import StartRelease
from watcher.source import RunningWorkflow, running_workflow
from workflows.messages import RolloutStart, SpecUpdate
from workflows.release_messages import ReleaseStart

log = logging.getLogger(__name__)

MAX_REMEMBERED = 20_000

RunnerAction = Action | StartRelease


class Remembered:
    """Keys already acted on, to skip repeated RPCs. Bounded: the oldest are forgotten first
    (a forgotten one costs one idempotent RPC)."""

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._limit = limit

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        while len(self._keys) > self._limit:
            self._keys.popitem(last=False)


class Runner:
    def __init__(self, temporal: Client, kube: KubeClient, task_queue: str) -> None:
        self._temporal = temporal
        self._kube = kube
        self._task_queue = task_queue
        # (workflow id, generation) already started by this process: skips repeated RPCs while a
        # running workflow updates the Rollout's status many times.
        self._started = Remembered()
        # (workflow id, generation) whose spec update was delivered: a deferred edit leaves
        # observedGeneration behind, and every status write would otherwise signal it again.
        self._told_specs = Remembered()
        self.starts = 0

    @property
    def kube(self) -> KubeClient:
        return self._kube

    async def apply(self, action: RunnerAction) -> None:
        match action:
            case StartWorkflow():
                await self._start(action)
            case StartRelease():
                await self._start_release(action)
            case Signal():
                await self._signal(action)
            case CancelWorkflow():
                await self._cancel(action)
            case RemoveAnnotation():
                await self._remove_annotation(action)
            case ClaimAnnotation():
                await self._claim_annotation(action)

    async def _start(self, action: StartWorkflow) -> None:
        start = action.start
        release = [(SA_RELEASE, action.release)] if action.release else []
        # ALLOW_DUPLICATE lets a closed revision run again to reconcile (a scale change, a
        # revert to stable); that run reads the Rollout's status to see what is left to do.
        await self._start_once(
            WORKFLOW_NAME,
            start,
            action.workflow_id,
            start.generation,
            WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            [
                (SA_ROLLOUT, start.name),
                (SA_NAMESPACE, start.namespace),
                (SA_STRATEGY, action.strategy),
                (SA_PHASE, "Initializing"),
                *release,
            ],
            f"{start.namespace}/{start.name} revision {start.revision}",
        )

    async def _start_release(self, action: StartRelease) -> None:
        """One run per Release generation, never again once it ran (REJECT_DUPLICATE)."""
        start = action.start
        await self._start_once(
            RELEASE_WORKFLOW_NAME,
            start,
            action.workflow_id,
            start.generation,
            WorkflowIDReusePolicy.REJECT_DUPLICATE,
            [(SA_RELEASE, f"{start.namespace}/{start.name}"), (SA_NAMESPACE, start.namespace)],
            f"Release {start.namespace}/{start.name} generation {start.generation}",
        )

    async def _start_once(
        self,
        workflow: str,
        start: RolloutStart | ReleaseStart,
        workflow_id: str,
        generation: int,
        reuse: WorkflowIDReusePolicy,
        attributes: list[tuple[str, str]],
        summary: str,
    ) -> None:
        """Starts the workflow unless this process already did for this generation.
        USE_EXISTING makes racing starters (or watcher replicas) converge on one run."""
        key = (workflow_id, generation)
        if key in self._started:
            return
        try:
            await self._temporal.start_workflow(
                workflow,
                start,
                id=workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=reuse,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(SearchAttributeKey.for_keyword(name), value)
                        for name, value in attributes
                    ]
                ),
                static_summary=summary,
            )
            self.starts += 1
        except WorkflowAlreadyStartedError:
            pass
        self._started.add(key)
        log.info("workflow %s running for generation %d", workflow_id, generation)

    async def _signal(self, action: Signal) -> None:
        told = (
            (action.workflow_id, action.arg.generation)
            if isinstance(action.arg, SpecUpdate)
            else None
        )
        if told is not None and told in self._told_specs:
            return
        handle = self._temporal.get_workflow_handle(action.workflow_id)
        try:
            if action.arg is None:
                await handle.signal(action.name)
            else:
                await handle.signal(action.name, action.arg)
            if told is not None:
                self._told_specs.add(told)
            log.info("signalled %s to %s", action.name, action.workflow_id)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            log.info(
                "%s not delivered: workflow %s is not running", action.name, action.workflow_id
            )

    async def _cancel(self, action: CancelWorkflow) -> None:
        try:
            await self._temporal.get_workflow_handle(action.workflow_id).cancel()
        except RPCError as err:
            if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise

    async def running_workflows(
        self, namespace: str | None, workflow_type: str = WORKFLOW_NAME
    ) -> list[RunningWorkflow]:
        """kulta's running workflows of a type (Rollout's, or Release's) on this task queue (in
        `namespace`, or in all): what a first listing compares with, to cancel the runs of
        objects deleted meanwhile."""
        query = (
            f"WorkflowType = '{workflow_type}' AND ExecutionStatus = 'Running' "
            f"AND TaskQueue = '{self._task_queue}'"
        )
        if namespace is not None:
            query += f" AND {SA_NAMESPACE} = '{namespace}'"
        found = []
        async for execution in self._temporal.list_workflows(query):
            parsed = running_workflow(execution.id)
            if parsed is not None:
                found.append(parsed)
        return found

    async def _remove_annotation(self, action: RemoveAnnotation) -> None:
        path = RESOURCES[action.kind].path(action.namespace, action.name)
        with contextlib.suppress(NotFound):
            await self._kube.patch(path, {"metadata": {"annotations": {action.key: None}}})

    async def _claim_annotation(self, action: ClaimAnnotation) -> None:
        """Only if the value is still the one decided on (a JSON patch `test`): a person's
        newer value is never overwritten. A refused test is an Invalid error; the newer event
        that changed the value is decided on its own."""
        pointer = "/metadata/annotations/" + action.key.replace("~", "~0").replace("/", "~1")
        with contextlib.suppress(NotFound):
            await self._kube.patch(
                ROLLOUTS.path(action.namespace, action.name),
                [
                    {"op": "test", "path": pointer, "value": action.was},
                    {"op": "replace", "path": pointer, "value": action.claim},
                ],
                patch_type="json",
            )
