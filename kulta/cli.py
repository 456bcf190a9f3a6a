"""`kulta`: see and steer rollouts from a terminal.

Steering (promote, abort, retry, conclude) is a validated Temporal update when Temporal is
reachable (TEMPORAL_ADDRESS and friends): the workflow itself accepts it and says what happens
next, or refuses it and says why. Without Temporal access it falls back to the Rollout's
annotation, the same path as `kubectl annotate`: the watcher turns it into a signal and removes
it once delivered, which is what the command then waits for. User mistakes exit non-zero with
one line, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from activities.errors import Gone, NotFound
from activities.naming import (
    ANNOTATION_ABORT,
    ANNOTATION_CONCLUDE,
    ANNOTATION_PROMOTE,
    ANNOTATION_RESUME,
    ANNOTATION_RETRY,
    LABEL_ROLLOUT,
    REPLICASETS,
    ROLLOUT_API_VERSION,
    ROLLOUTS,
    SEED_ROLLOUT_API_VERSION,
    UPDATE_ABORT,
    UPDATE_CONCLUDE,
    UPDATE_PROMOTE,
    UPDATE_RETRY,
)
from activities.phases import CONCLUDABLE_PHASES, RETRYABLE_PHASES
from kulta import __version__
from kulta.cli_common import (
    Kubeconfig,
    Namespace,
    Output,
    Timeout,
    emit,
    fail,
    get_rollout,
    kube_client,
    read_rollout,
    rollout_path,
    run_async,
)
from kulta.release_cli import release_app
from kulta.steering import RUNNING, Steering, annotate, deliver, when_paused

# A command imports what it needs when it runs (see kulta/cli_common.py).

app = typer.Typer(add_completion=True, no_args_is_help=True, help=__doc__.split("\n")[0])
app.add_typer(release_app, name="release")


@app.callback()
def _global_options(
    temporal_address: Annotated[
        str | None, typer.Option(help="Temporal frontend (overrides TEMPORAL_ADDRESS)")
    ] = None,
    temporal_namespace: Annotated[
        str | None, typer.Option(help="Temporal namespace (overrides TEMPORAL_NAMESPACE)")
    ] = None,
) -> None:
    """See and steer kulta rollouts (kube context from KUBECONFIG; Temporal from TEMPORAL_*)."""
    # Every command reads its settings from the environment; the flags write there first.
    for variable, value in (
        ("TEMPORAL_ADDRESS", temporal_address),
        ("TEMPORAL_NAMESPACE", temporal_namespace),
    ):
        if value:
            os.environ[variable] = value


ROLLOUT_WORDS = frozenset({"rollout", "rollouts", "ro", "kro"})


@app.command()
def get(
    name: Annotated[str, typer.Argument(help="the Rollout (or the word `rollout`, then it)")],
    then: Annotated[str | None, typer.Argument(show_default=False, hidden=True)] = None,
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    output: Output = "text",
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="redraw in place as it changes (Ctrl-C stops)")
    ] = False,
) -> None:
    """Show a rollout: phase, step, weight, pause, revisions with images and ready pods,
    analysis, experiment, recent decisions and its Temporal UI link."""
    if then is not None:  # `kulta get rollout NAME`, kubectl style
        if name not in ROLLOUT_WORDS:
            fail(f"kulta get takes one Rollout name, got {name!r} and {then!r}")
        name = then
    if watch:
        if output != "text":
            fail("--watch shows text; use -o json|yaml without --watch")
        _run_watch(kubeconfig, namespace, name)
        return
    from kulta.rendering import render

    rollout, replicasets = run_async(_get_with_replicasets(kubeconfig, namespace, name))
    emit(rollout, output, render(rollout, replicasets) if output == "text" else "")


async def _get_with_replicasets(
    kubeconfig: str | None, namespace: str, name: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    async with kube_client(kubeconfig) as kube:
        rollout = await read_rollout(kube, namespace, name)
        listing = await kube.get(
            REPLICASETS.path(namespace),
            params={"labelSelector": f"{LABEL_ROLLOUT}={name}"},
        )
    return rollout, listing.get("items", [])


def _run_watch(kubeconfig: str | None, namespace: str, name: str) -> None:
    """In place on a terminal (rich's Live); elsewhere each changed frame, separated by a line."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        with Live(console=Console(), auto_refresh=False) as view:
            show = lambda frame: view.update(Text(frame), refresh=True)  # noqa: E731
            _until_interrupted(watch_rollout(kubeconfig, namespace, name, show, tick=True))
    else:
        first = True

        def show(frame: str) -> None:
            nonlocal first
            typer.echo(frame if first else f"---\n{frame}")
            first = False

        _until_interrupted(watch_rollout(kubeconfig, namespace, name, show, tick=False))


def _until_interrupted(coro: Any) -> None:
    try:
        run_async(coro)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


async def watch_rollout(
    kubeconfig: str | None,
    namespace: str,
    name: str,
    show: Callable[[str], None],
    *,
    tick: bool,
) -> None:
    """Shows a frame whenever the Rollout or its ReplicaSets change; with `tick`, also each
    second (a pause's countdown), redrawn from what is already known, without API requests."""
    import asyncio

    from kulta import live
    from kulta.rendering import render

    last = ""
    async with kube_client(kubeconfig) as kube:
        await read_rollout(kube, namespace, name)  # a clear error for a wrong name, before watching
        snapshots = live.follow(kube, namespace, name).__aiter__()
        pending = asyncio.ensure_future(snapshots.__anext__())
        latest: live.Snapshot | None = None
        try:
            while True:
                done, _ = await asyncio.wait({pending}, timeout=1.0 if tick else None)
                if done:
                    latest = pending.result()
                    pending = asyncio.ensure_future(snapshots.__anext__())
                if latest is None:
                    continue
                if latest.rollout is None:
                    frame = f"Rollout {namespace}/{name} was deleted"
                else:
                    frame = render(latest.rollout, list(latest.replicasets.values()))
                if frame != last:
                    show(frame)
                    last = frame
        finally:
            pending.cancel()
            await snapshots.aclose()  # type: ignore[attr-defined]


def _steer(action: Steering, help_text: str) -> None:
    def command(
        name: str,
        namespace: Namespace = "default",
        kubeconfig: Kubeconfig = None,
        timeout: Timeout = 30.0,
    ) -> None:
        typer.echo(run_async(deliver(kubeconfig, namespace, name, action, timeout)))

    app.command(name=action.verb, help=help_text)(command)


@app.command()
def promote(
    name: str,
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    full: Annotated[bool, typer.Option(help="skip all remaining steps")] = False,
    timeout: Timeout = 30.0,
) -> None:
    """Pass the current pause (or, with --full, every remaining step)."""
    action = Steering(
        verb="promote --full" if full else "promote",
        annotation=ANNOTATION_PROMOTE,
        value="full" if full else "true",
        update=UPDATE_PROMOTE,
        arg=lambda: _promote_request(full),
        when=(RUNNING, "nothing to promote") if full else when_paused(),
    )
    typer.echo(run_async(deliver(kubeconfig, namespace, name, action, timeout)))


def _promote_request(full: bool) -> Any:
    from workflows.messages import PromoteRequest

    return PromoteRequest(full=full)


def _abort_request(reason: str) -> Any:
    from workflows.messages import AbortRequest

    return AbortRequest(reason=reason)


_steer(
    Steering(
        "abort",
        ANNOTATION_ABORT,
        "true",
        UPDATE_ABORT,
        lambda: _abort_request("aborted with kulta abort"),
        (RUNNING, "nothing to abort"),
    ),
    "Roll back: traffic to stable, then the canary scales down.",
)


_steer(
    Steering(
        "retry", ANNOTATION_RETRY, "true", UPDATE_RETRY, None, (RETRYABLE_PHASES, "not failed")
    ),
    "Run a failed revision again from its first step.",
)


_steer(
    Steering(
        "conclude",
        ANNOTATION_CONCLUDE,
        "true",
        UPDATE_CONCLUDE,
        None,
        (CONCLUDABLE_PHASES, "no experiment is running"),
    ),
    "Conclude an A/B experiment now (the leader wins).",
)


async def _patch_paused(kubeconfig: str | None, namespace: str, name: str, paused: bool) -> None:
    """spec.paused, as `kubectl patch` would set it: kulta holds (or resumes) at the next step."""
    async with kube_client(kubeconfig) as kube:
        try:
            await kube.patch(rollout_path(namespace, name), {"spec": {"paused": paused}})
        except NotFound:
            fail(f"Rollout {namespace}/{name} not found")


@app.command(name="pause")
def pause_rollout(
    name: str, namespace: Namespace = "default", kubeconfig: Kubeconfig = None
) -> None:
    """Hold the rollout before its next step (sets spec.paused: true)."""
    run_async(_patch_paused(kubeconfig, namespace, name, True))
    typer.echo(f"pause requested: {namespace}/{name}")


@app.command(name="resume")
def resume_rollout(
    name: str,
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    timeout: Timeout = 30.0,
) -> None:
    """Continue: clears spec.paused and resumes a pause analysis chose (it measures again)."""
    run_async(_patch_paused(kubeconfig, namespace, name, False))
    when = (RUNNING, "nothing to resume")
    run_async(annotate(kubeconfig, namespace, name, ANNOTATION_RESUME, "true", timeout, when=when))
    typer.echo(f"resume delivered: {namespace}/{name}")


@app.command(name="list")
def list_rollouts(
    namespace: Namespace = "default",
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="every namespace")
    ] = False,
    kubeconfig: Kubeconfig = None,
    output: Output = "text",
) -> None:
    """One line per rollout: strategy, phase, step, weight and revisions."""
    from kulta.rendering import render_list

    path = ROLLOUTS.path(None if all_namespaces else namespace)
    items = run_async(_list(kubeconfig, path)).get("items", [])
    emit(items, output, render_list(items) if output == "text" else "")


async def _list(kubeconfig: str | None, path: str) -> dict[str, Any]:
    async with kube_client(kubeconfig) as kube:
        return await kube.get(path)


@app.command()
def history(
    name: str,
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    output: Output = "text",
) -> None:
    """The rollout's decisions as a timeline (the last 20, as kept in status)."""
    from kulta.rendering import render_history, status_of

    rollout = run_async(get_rollout(kubeconfig, namespace, name))
    decisions = status_of(rollout).decisions
    raw = [d.model_dump(mode="json", by_alias=True, exclude_none=True) for d in decisions]
    emit(raw, output, render_history(decisions))


# `kulta status` exit codes, for scripts and CI.
STATUS_EXIT = {"Completed": 0, "Failed": 1, "Paused": 2}


EXIT_TIMEOUT = 3


@app.command()
def status(
    name: str,
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait at most")] = 600.0,
) -> None:
    """Wait until the rollout is Completed (exit 0), Failed (1) or Paused (2); 3 on timeout.

    Only a status that describes the current spec counts (observedGeneration), so running this
    right after a change waits for that change."""
    phase, message = run_async(_settled(kubeconfig, namespace, name, timeout))
    if phase is None:
        typer.echo(f"kulta: {namespace}/{name} still {message} after {timeout:.0f}s", err=True)
        raise typer.Exit(EXIT_TIMEOUT)
    typer.echo(f"{namespace}/{name}: {phase}  {message}".rstrip())
    raise typer.Exit(STATUS_EXIT[phase])


async def _settled(
    kubeconfig: str | None, namespace: str, name: str, timeout: float
) -> tuple[str | None, str]:
    """(phase, message) once settled; (None, last phase) on timeout. Watches, never polls."""
    import asyncio

    from kulta.rendering import status_of

    last = "unknown"
    shown = ("", "")

    def settled(rollout: dict[str, Any]) -> tuple[str, str] | None:
        nonlocal last, shown
        status = status_of(rollout)
        last = status.phase or "pending"
        progress = (last, status.message or "")
        if progress != shown:  # progress on stderr, so stdout stays the one result line
            typer.echo(f"  {progress[0]}  {progress[1]}".rstrip(), err=True)
            shown = progress
        current = status.observed_generation == rollout["metadata"].get("generation")
        if current and status.phase in STATUS_EXIT:
            return status.phase, status.message or ""
        return None

    async def run() -> tuple[str, str]:
        async with kube_client(kubeconfig) as kube:
            collection = ROLLOUTS.path(namespace)
            selector = {"fieldSelector": f"metadata.name={name}"}
            while True:
                listing = await kube.get(collection, params=selector)
                if not listing.get("items"):
                    fail(f"Rollout {namespace}/{name} not found")
                if found := settled(listing["items"][0]):
                    return found
                try:
                    async for event in kube.watch(
                        collection,
                        resource_version=listing["metadata"]["resourceVersion"],
                        params=selector,
                    ):
                        if found := settled(event.object):
                            return found
                except Gone:
                    continue

    try:
        return await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        return None, last


@app.command()
def lint(
    files: Annotated[list[Path], typer.Argument(help="manifests (YAML, several documents each)")],
) -> None:
    """Validate Rollout and Release manifests offline, with the rules the CRD and the
    workflow apply."""
    import yaml

    from workflows.model import KIND
    from workflows.release_model import RELEASE_KIND

    problems = 0
    for file in files:
        try:
            documents = [d for d in yaml.safe_load_all(file.read_text()) if d]
        except (OSError, yaml.YAMLError) as err:
            typer.echo(f"{file}: cannot read: {err}", err=True)
            problems += 1
            continue
        for doc in documents:
            if not isinstance(doc, dict) or doc.get("kind") not in (KIND, RELEASE_KIND):
                continue
            kind = doc["kind"]
            name = (doc.get("metadata") or {}).get("name", "?")
            found = lint_rollout(doc) if kind == KIND else lint_release(doc)
            for problem in found:
                typer.echo(f"{file}: {kind} {name}: {problem}")
            for warning in lint_warnings(doc) if kind == KIND else []:
                typer.echo(f"{file}: {kind} {name}: warning: {warning}")
            problems += len(found)
            if not found:
                typer.echo(f"{file}: {kind} {name}: ok")
    if problems:
        raise typer.Exit(1)


def lint_rollout(doc: dict[str, Any]) -> list[str]:
    """Every problem of one Rollout document, each naming its field path."""
    from workflows.model import InvalidSpec, parse_spec

    found = []
    if doc.get("apiVersion") not in (ROLLOUT_API_VERSION, SEED_ROLLOUT_API_VERSION):
        found.append(f"apiVersion: expected {ROLLOUT_API_VERSION}, got {doc.get('apiVersion')!r}")
    if not (doc.get("metadata") or {}).get("name"):
        found.append("metadata.name: required")
    try:
        parse_spec(doc.get("spec") or {}, resolved=False)
    except InvalidSpec as err:
        found += str(err).split("; ")
    return found


def lint_release(doc: dict[str, Any]) -> list[str]:
    """Every problem of one Release document, each naming its field path."""
    from workflows.release_model import InvalidRelease, parse_release_spec

    found = []
    if doc.get("apiVersion") != ROLLOUT_API_VERSION:
        found.append(f"apiVersion: expected {ROLLOUT_API_VERSION}, got {doc.get('apiVersion')!r}")
    if not (doc.get("metadata") or {}).get("name"):
        found.append("metadata.name: required")
    try:
        parse_release_spec(doc.get("spec") or {})
    except InvalidRelease as err:
        found += str(err).split("; ")
    return found


def lint_warnings(doc: dict[str, Any]) -> list[str]:
    """What is accepted for the original kulta's manifests but has a newer spelling."""
    from workflows.model import seed_fields

    found = seed_fields(doc.get("spec") or {})
    if doc.get("apiVersion") == SEED_ROLLOUT_API_VERSION:
        found.insert(
            0, f"apiVersion: {SEED_ROLLOUT_API_VERSION} is deprecated; use {ROLLOUT_API_VERSION}"
        )
    return found


@app.command()
def version() -> None:
    """Print kulta's version."""
    typer.echo(__version__)


def main() -> None:
    # Exits explicitly, after the output is flushed: the Temporal SDK can abort the interpreter
    # at exit (rc 134) after a client was used, and scripts rely on our exit codes.
    code: object = 0
    try:
        app()
    except SystemExit as exiting:  # typer ends every command this way
        code = exiting.code
    sys.stdout.flush()
    sys.stderr.flush()
    if isinstance(code, str):  # sys.exit(message)
        print(code, file=sys.stderr)
    os._exit(code if isinstance(code, int) else (1 if code else 0))
