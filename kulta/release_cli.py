"""`kulta release`: see and steer Releases. Steering goes through the Release's annotations,
which the watcher turns into signals to the running workflow and removes once delivered: the
command waits for that removal, so it tells whether the watcher took it."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import typer

from activities.errors import NotFound
from activities.naming import ANNOTATION_ABORT, ANNOTATION_APPROVE, ANNOTATION_RESUME, RELEASES
from kulta.cli_common import (
    Kubeconfig,
    Namespace,
    Output,
    Timeout,
    emit,
    fail,
    kube_client,
    run_async,
)

release_app = typer.Typer(
    no_args_is_help=True, help="See and steer Releases (several Rollouts as one plan)."
)

STATE_MARKS = {
    "Completed": "✓",
    "Reverted": "↩",
    "Failed": "✗",
    "Progressing": "…",
    "Reverting": "↩…",
    "Pending": "·",
    "Unchanged": "=",
}


def render_release(release: dict[str, Any]) -> str:
    """A tree: the Release, its stages, each stage's Rollouts with phase, step and weight."""
    from kulta.rendering import workflow_url

    meta, status = release["metadata"], release.get("status") or {}
    lines = [
        f"Release {meta.get('namespace')}/{meta['name']}  {status.get('phase') or 'Pending'}"
        + (f" ({status['reason']})" if status.get("reason") else "")
        + f"  generation {meta.get('generation')}, observed {status.get('observedGeneration', '-')}"
    ]
    if status.get("message"):
        lines.append(f"  {status['message']}")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Degraded" and condition.get("status") == "True":
            lines.append(f"  degraded: {condition.get('message')}")
    stages = status.get("stages") or [
        {"name": s.get("name"), "cluster": s.get("cluster"), "rollouts": s.get("rollouts", [])}
        for s in (release.get("spec") or {}).get("stages", [])
    ]
    for stage in stages:
        where = f"  [cluster {stage['cluster']}]" if stage.get("cluster") else ""
        phase = stage.get("phase") or "Pending"
        lines.append(f"  stage {stage['name']}{where}  {phase}")
        if stage.get("message"):
            lines.append(f"    {stage['message']}")
        for member in stage.get("rollouts") or []:
            state = member.get("state") or "Pending"
            total = member.get("stepCount")
            step = (
                f"step {min(member['step'] + 1, total)}/{total}"
                if member.get("step") is not None and total
                else ""
            )
            weight = f"weight {member['weight']}%" if member.get("weight") is not None else ""
            revisions = (
                f"{member.get('previousRevision')} -> {member['revision']}"
                if member.get("revision")
                else ""
            )
            parts = [
                f"{STATE_MARKS.get(state, '?')} {member['name']:<20}",
                f"{state:<12}",
                member.get("phase") or "",
                step,
                weight,
                revisions,
            ]
            lines.append("    " + "  ".join(p for p in parts if p).rstrip())
            if member.get("message"):
                lines.append(f"        {member['message']}")
    if status.get("workflowId"):
        lines.append(f"  Temporal: {workflow_url(status['workflowId'])}")
    return "\n".join(lines)


async def _read(kubeconfig: str | None, namespace: str, name: str) -> dict[str, Any]:
    async with kube_client(kubeconfig) as kube:
        try:
            return await kube.get(RELEASES.path(namespace, name))
        except NotFound:
            fail(f"Release {namespace}/{name} not found")
            raise


@release_app.command("get")
def get_release(
    name: Annotated[str, typer.Argument(help="the Release")],
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    output: Output = "text",
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="redraw as it changes (Ctrl-C stops)")
    ] = False,
) -> None:
    """Show a Release as a tree: stages, their Rollouts, each one's phase, step and weight."""
    if not watch:
        release = run_async(_read(kubeconfig, namespace, name))
        emit(release, output, render_release(release) if output == "text" else "")
        return
    if output != "text":
        fail("--watch shows text; use -o json|yaml without --watch")
    try:
        run_async(_watch(kubeconfig, namespace, name))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


async def _watch(kubeconfig: str | None, namespace: str, name: str) -> None:
    from kulta.live import list_and_watch

    await _read(kubeconfig, namespace, name)  # a clear error for a wrong name
    last = ""
    async with kube_client(kubeconfig) as kube:
        events = list_and_watch(kube, RELEASES.path(namespace), f"metadata.name={name}", None)
        async for kind, objects in events:
            if kind == "DELETED":
                typer.echo(f"Release {namespace}/{name} was deleted")
                return
            if not objects:
                continue
            frame = render_release(objects[-1])
            if frame != last:
                typer.echo(
                    frame if not last or not sys.stdout.isatty() else "\033[2J\033[H" + frame
                )
                if not sys.stdout.isatty():
                    typer.echo("---")
                last = frame


async def _annotate_and_wait(
    kubeconfig: str | None, namespace: str, name: str, key: str, value: str, timeout: float
) -> bool:
    """Sets the annotation; True once the watcher removed it (delivered)."""
    path = RELEASES.path(namespace, name)
    async with kube_client(kubeconfig) as kube:
        try:
            await kube.patch(path, {"metadata": {"annotations": {key: value}}})
        except NotFound:
            fail(f"Release {namespace}/{name} not found")
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            release = await kube.get(path)
            if key not in (release["metadata"].get("annotations") or {}):
                return True
            await asyncio.sleep(0.3)
    return False


def _steer(
    namespace: str,
    name: str,
    key: str,
    value: str,
    kubeconfig: str | None,
    timeout: float,
    done: str,
) -> None:
    if run_async(_annotate_and_wait(kubeconfig, namespace, name, key, value, timeout)):
        typer.echo(done)
        return
    fail(
        f"annotation {key}={value} is set on Release {namespace}/{name}, but no watcher took it "
        f"within {timeout:.0f}s (is kulta-watcher running?); it is delivered once one does"
    )


@release_app.command("approve")
def approve(
    name: Annotated[str, typer.Argument(help="the Release")],
    stage: Annotated[str, typer.Argument(help="the stage whose gate to pass")],
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    timeout: Timeout = 30.0,
) -> None:
    """Approve a stage's gate: the stages after it start."""
    release = run_async(_read(kubeconfig, namespace, name))
    stages = [s.get("name") for s in (release.get("spec") or {}).get("stages", [])]
    if stage not in stages:
        fail(
            f"Release {namespace}/{name} has no stage {stage!r} "
            f"(it has {', '.join(map(str, stages))})"
        )
    _steer(
        namespace,
        name,
        ANNOTATION_APPROVE,
        stage,
        kubeconfig,
        timeout,
        f"stage {stage} of Release {namespace}/{name} approved",
    )


@release_app.command("abort")
def abort(
    name: Annotated[str, typer.Argument(help="the Release")],
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    timeout: Timeout = 30.0,
) -> None:
    """Abort a Release: every Rollout it changed gets its previous template back, newest first."""
    _steer(
        namespace,
        name,
        ANNOTATION_ABORT,
        "true",
        kubeconfig,
        timeout,
        f"Release {namespace}/{name} aborting: its Rollouts go back, newest first",
    )


@release_app.command("resume")
def resume(
    name: Annotated[str, typer.Argument(help="the Release")],
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    timeout: Timeout = 30.0,
) -> None:
    """Resume a Release held by a hand edit: it follows the edited template from here."""
    _steer(
        namespace,
        name,
        ANNOTATION_RESUME,
        "true",
        kubeconfig,
        timeout,
        f"Release {namespace}/{name} resumed",
    )
