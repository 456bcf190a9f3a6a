"""What every `kulta` command shares: its options, one-line failures, the Kubernetes client
and reading a Rollout, output in text, json or yaml.

The CLI imports what a command needs when it runs (the Kubernetes client, YAML, pydantic,
Temporal's SDK): `kulta version` and `--help` load none of it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from activities.errors import KultaError, NotFound
from activities.naming import ROLLOUTS

if TYPE_CHECKING:
    from activities.adapters.kube import KubeClient

Namespace = Annotated[str, typer.Option("--namespace", "-n", help="the Rollout's namespace")]

Kubeconfig = Annotated[str | None, typer.Option(help="kubeconfig file (default: KUBECONFIG)")]

Timeout = Annotated[float, typer.Option(help="seconds to wait for the watcher to take it")]

Output = Annotated[str, typer.Option("--output", "-o", help="text, json or yaml")]


def fail(message: str) -> None:
    typer.echo(f"kulta: {message}", err=True)
    raise typer.Exit(1)


def kube_client(kubeconfig: str | None) -> KubeClient:
    from activities.adapters.kube import KubeClient, load_credentials

    try:
        credentials = load_credentials(kubeconfig or os.environ.get("KUBECONFIG"))
    except Exception as err:  # the kubernetes package raises several kinds; all mean the same
        fail(f"cannot load Kubernetes credentials: {err}")
        raise
    return KubeClient(credentials)


def rollout_path(namespace: str, name: str) -> str:
    return ROLLOUTS.path(namespace, name)


async def get_rollout(kubeconfig: str | None, namespace: str, name: str) -> dict[str, Any]:
    async with kube_client(kubeconfig) as kube:
        return await read_rollout(kube, namespace, name)


async def read_rollout(kube: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    """The Rollout, or a one-line "not found" exit."""
    try:
        return await kube.get(rollout_path(namespace, name))
    except NotFound:
        fail(f"Rollout {namespace}/{name} not found")
        raise


def emit(obj: Any, output: str, text: str) -> None:
    if output == "json":
        import json

        typer.echo(json.dumps(obj, indent=2, sort_keys=True))
    elif output == "yaml":
        import yaml

        typer.echo(yaml.safe_dump(obj, sort_keys=True).rstrip())
    elif output == "text":
        typer.echo(text)
    else:
        fail(f"--output must be text, json or yaml, not {output!r}")


def run_async(coro: Any) -> Any:
    import asyncio

    try:
        return asyncio.run(coro)
    except KultaError as err:
        fail(str(err))
