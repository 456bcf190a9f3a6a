"""Steering a rollout by either route: a validated Temporal update when Temporal is reachable
(the workflow itself accepts and says what happens next, or refuses and says why), otherwise the
Rollout's annotation, which the watcher delivers as a signal and then removes (what the command
waits for). A command that makes no sense in the current phase is refused first, by the same
phase sets the workflow's validators use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import typer

from activities.errors import Gone, NotFound
from activities.naming import ROLLOUTS
from activities.phases import PROMOTABLE_PHASES, RUNNING_PHASES, TIMED_PAUSE
from kulta.cli_common import fail, get_rollout, kube_client, read_rollout, rollout_path

if TYPE_CHECKING:  # imported where used: a command loads Temporal's SDK only to steer by it
    from temporalio.client import Client

    from activities.adapters.kube import KubeClient

RUNNING = RUNNING_PHASES | {TIMED_PAUSE}


PROMOTABLE = PROMOTABLE_PHASES | {TIMED_PAUSE}


def refuse_unless_in(when: tuple[frozenset[str], str], rollout: dict[str, Any]) -> None:
    """`when` = (phases in which an action makes sense, what to say otherwise)."""
    from kulta.rendering import situation, status_of

    phases, refusal = when
    phase = situation(status_of(rollout), datetime.now(UTC))
    if phase not in phases:
        meta = rollout["metadata"]
        fail(f"{refusal}: {meta['namespace']}/{meta['name']} is {phase}")


async def annotate(
    kubeconfig: str | None,
    namespace: str,
    name: str,
    key: str,
    value: str,
    timeout: float,
    *,
    when: tuple[frozenset[str], str] | None = None,
) -> None:
    """Sets the annotation and waits for the watcher to take it. `when` = (phases in which the
    action makes sense, what to say otherwise): checked first, so a pointless action is refused
    with a reason instead of being delivered and ignored."""
    async with kube_client(kubeconfig) as kube:
        path = rollout_path(namespace, name)
        if when is not None:
            refuse_unless_in(when, await read_rollout(kube, namespace, name))
        try:
            patched = await kube.patch(path, {"metadata": {"annotations": {key: value}}})
        except NotFound:
            fail(f"Rollout {namespace}/{name} not found")
            raise
        rv = patched["metadata"]["resourceVersion"]
        try:
            await asyncio.wait_for(_annotation_removed(kube, namespace, name, key, rv), timeout)
            return
        except TimeoutError:
            pass
        fail(f"the watcher did not take {key} within {timeout:.0f}s; is kulta-watcher running?")


async def _annotation_removed(
    kube: KubeClient, namespace: str, name: str, key: str, resource_version: str
) -> None:
    """Returns once the watcher has removed `key` (it does so after delivering the signal),
    watching the Rollout from our own write onwards."""
    collection = ROLLOUTS.path(namespace)
    while True:
        try:
            async for event in kube.watch(
                collection,
                resource_version=resource_version,
                params={"fieldSelector": f"metadata.name={name}"},
            ):
                meta = event.object.get("metadata") or {}
                resource_version = meta.get("resourceVersion", resource_version)
                if event.type == "MODIFIED" and key not in (meta.get("annotations") or {}):
                    return
        except Gone:
            rollout = await kube.get(rollout_path(namespace, name))
            if key not in (rollout["metadata"].get("annotations") or {}):
                return
            resource_version = rollout["metadata"]["resourceVersion"]


def when_paused() -> tuple[frozenset[str], str]:
    """The phases a plain promote makes sense in, and what to say otherwise."""
    return PROMOTABLE, "nothing is paused"


@dataclass(frozen=True)
class Steering:
    """One steering action, by both routes: the validated update (answered by the workflow
    itself) and the annotation (delivered by the watcher as a signal)."""

    verb: str
    annotation: str
    value: str
    update: str
    arg: Callable[[], Any] | None  # builds the update's argument (the messages load lazily)
    when: tuple[frozenset[str], str]


async def deliver(
    kubeconfig: str | None, namespace: str, name: str, action: Steering, timeout: float
) -> str:
    """The update when Temporal is reachable (the workflow says accepted, or refused and why);
    otherwise the annotation, acknowledged by the watcher once it has delivered the signal."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.exceptions import ApplicationError
    from temporalio.service import RPCError, RPCStatusCode

    from kulta.rendering import status_of
    from kulta.settings import load as load_settings

    rollout = await get_rollout(kubeconfig, namespace, name)
    refuse_unless_in(action.when, rollout)
    workflow_id = status_of(rollout).workflow_id
    client = await _temporal_client() if workflow_id else None
    if client is None or workflow_id is None:
        await annotate(kubeconfig, namespace, name, action.annotation, action.value, timeout)
        return f"{action.verb} delivered (annotation {action.annotation}): {namespace}/{name}"
    handle = client.get_workflow_handle(workflow_id)
    args = [] if action.arg is None else [action.arg()]
    try:
        reply = await handle.execute_update(
            action.update, *args, result_type=str, rpc_timeout=timedelta(seconds=timeout)
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
        fail(f"{action.verb} refused by the workflow: {reason}")
        raise
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            fail(f"{action.verb} not delivered: Temporal said {err.message}")
            raise
        # The Temporal reached is not the one running this Rollout (another server on the
        # default address, another namespace): say which answered, and use the annotation.
        settings = load_settings()
        typer.echo(
            f"kulta: Temporal at {settings.temporal_address} (namespace "
            f"{settings.temporal_namespace}) does not know {workflow_id}: {err.message}; "
            "steering through the Rollout's annotation instead",
            err=True,
        )
        await annotate(kubeconfig, namespace, name, action.annotation, action.value, timeout)
        return f"{action.verb} delivered (annotation {action.annotation}): {namespace}/{name}"
    return f"{action.verb} acknowledged: {reply} ({namespace}/{name})"


async def _temporal_client() -> Client | None:
    """A client when Temporal answers within a few seconds; None (and why, on stderr) if not."""
    from kulta.settings import load as load_settings
    from kulta.temporal import connect

    settings = load_settings()
    try:
        return await asyncio.wait_for(connect(settings), 5)
    except Exception as err:  # unreachable, TLS, auth: each means "use the annotation"
        typer.echo(
            f"kulta: Temporal at {settings.temporal_address} not reachable ({type(err).__name__});"
            " steering through the Rollout's annotation instead",
            err=True,
        )
        return None
