"""`kulta`: see and steer rollouts from a terminal.

Steering goes through the Rollout's annotations, the same path as `kubectl annotate`: the watcher
turns each into a Temporal signal and removes it once delivered, which is what these commands wait
for. User mistakes exit non-zero with one line, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from typing import Annotated, Any

import typer

from activities.adapters.kube import KubeClient, load_credentials, resource_path
from activities.errors import Gone, KultaError, NotFound
from activities.naming import ROLLOUT_API_VERSION
from kulta import __version__
from kulta.settings import load as load_settings

app = typer.Typer(add_completion=True, no_args_is_help=True, help=__doc__.split("\n")[0])

Namespace = Annotated[str, typer.Option("--namespace", "-n", help="the Rollout's namespace")]
Kubeconfig = Annotated[str | None, typer.Option(help="kubeconfig file (default: KUBECONFIG)")]
Timeout = Annotated[float, typer.Option(help="seconds to wait for the watcher to take it")]


def fail(message: str) -> None:
    typer.echo(f"kulta: {message}", err=True)
    raise typer.Exit(1)


def _client(kubeconfig: str | None) -> KubeClient:
    try:
        credentials = load_credentials(kubeconfig or os.environ.get("KUBECONFIG"))
    except Exception as err:  # the kubernetes package raises several kinds; all mean the same
        fail(f"cannot load Kubernetes credentials: {err}")
        raise
    return KubeClient(credentials)


def _path(namespace: str, name: str) -> str:
    return resource_path(ROLLOUT_API_VERSION, "rollouts", namespace, name)


async def _get(kubeconfig: str | None, namespace: str, name: str) -> dict[str, Any]:
    async with _client(kubeconfig) as kube:
        try:
            return await kube.get(_path(namespace, name))
        except NotFound:
            fail(f"Rollout {namespace}/{name} not found")
            raise


def workflow_url(workflow_id: str) -> str:
    """The Temporal UI page of a workflow (TEMPORAL_UI_URL, TEMPORAL_NAMESPACE)."""
    settings = load_settings()
    quoted = urllib.parse.quote(workflow_id, safe="")
    base = settings.temporal_ui_url.rstrip("/")
    return f"{base}/namespaces/{settings.temporal_namespace}/workflows/{quoted}"


def render(rollout: dict[str, Any]) -> str:
    """A plain-text summary (no colour, so it reads the same on any terminal)."""
    meta, spec, status = rollout["metadata"], rollout.get("spec", {}), rollout.get("status") or {}
    strategy = next(iter(spec.get("strategy") or {"?": None}))
    step, total = status.get("currentStepIndex"), status.get("stepCount")
    where = f"{min(step + 1, total)}/{total}" if step is not None and total else "-"
    available, desired = status.get("availableReplicas", 0), spec.get("replicas", "-")
    fields = [
        ("Name", f"{meta['namespace']}/{meta['name']}"),
        ("Strategy", strategy),
        ("Phase", f"{status.get('phase', '-')}  {status.get('message', '')}".rstrip()),
        ("Step", where),
        ("Weight", status.get("currentWeight", "-")),
        ("Replicas", f"{available} available / {desired} desired"),
        ("Stable", status.get("stableRevision", "-")),
        ("Canary", status.get("canaryRevision", "-")),
        ("Workflow", status.get("workflowId", "-")),
    ]
    if status.get("workflowId"):
        fields.append(("Temporal UI", workflow_url(status["workflowId"])))
    lines = [f"{label + ':':<12} {value}" for label, value in fields]
    decisions = status.get("decisions") or []
    if decisions:
        lines.append("Decisions:")
        lines += [f"  {d['time']}  {d['action']:<15} {d['reason']}" for d in decisions[-5:]]
    return "\n".join(lines)


@app.command()
def get(
    name: str,
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
) -> None:
    """Show a rollout: phase, step, weight, revisions and recent decisions."""
    typer.echo(render(_run(_get(kubeconfig, namespace, name))))


async def _annotate(
    kubeconfig: str | None, namespace: str, name: str, key: str, value: str, timeout: float
) -> None:
    async with _client(kubeconfig) as kube:
        path = _path(namespace, name)
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
    collection = resource_path(ROLLOUT_API_VERSION, "rollouts", namespace)
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
            rollout = await kube.get(_path(namespace, name))
            if key not in (rollout["metadata"].get("annotations") or {}):
                return
            resource_version = rollout["metadata"]["resourceVersion"]


def _steer(key: str, value: str, what: str) -> Any:
    def command(
        name: str,
        namespace: Namespace = "default",
        kubeconfig: Kubeconfig = None,
        timeout: Timeout = 30.0,
    ) -> None:
        _run(_annotate(kubeconfig, namespace, name, key, value, timeout))
        typer.echo(f"{what}: {namespace}/{name}")

    return command


@app.command()
def promote(
    name: str,
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    full: Annotated[bool, typer.Option(help="skip all remaining steps")] = False,
    timeout: Timeout = 30.0,
) -> None:
    """Pass the current pause (or, with --full, every remaining step)."""
    value = "full" if full else "true"
    _run(_annotate(kubeconfig, namespace, name, "kulta.io/promote", value, timeout))
    typer.echo(f"promote{' --full' if full else ''} delivered: {namespace}/{name}")


app.command(name="abort", help="Roll back: traffic to stable, then the canary scales down.")(
    _steer("kulta.io/abort", "true", "abort delivered")
)
app.command(name="retry", help="Run a failed revision again from its first step.")(
    _steer("kulta.io/retry", "true", "retry delivered")
)


@app.command()
def version() -> None:
    """Print kulta's version."""
    typer.echo(__version__)


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except KultaError as err:
        fail(str(err))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
