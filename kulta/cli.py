"""`kulta`: see and steer rollouts from a terminal.

Steering (promote, abort, retry, conclude) is a validated Temporal update when Temporal is
reachable (TEMPORAL_ADDRESS and friends): the workflow itself accepts it and says what happens
next, or refuses it and says why. Without Temporal access it falls back to the Rollout's
annotation, the same path as `kubectl annotate`: the watcher turns it into a signal and removes
it once delivered, which is what the command then waits for. User mistakes exit non-zero with
one line, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.adapters.kube import KubeClient, load_credentials, resource_path
from activities.errors import Gone, KultaError, NotFound
from activities.naming import LABEL_ROLLOUT, LABEL_TEMPLATE_HASH, ROLLOUT_API_VERSION
from kulta import __version__, live
from kulta.settings import load as load_settings
from kulta.temporal import connect
from workflows.messages import (
    UPDATE_ABORT,
    UPDATE_CONCLUDE,
    UPDATE_PROMOTE,
    UPDATE_RETRY,
    AbortRequest,
    PromoteRequest,
)
from workflows.model import KIND, InvalidSpec, parse_spec

app = typer.Typer(add_completion=True, no_args_is_help=True, help=__doc__.split("\n")[0])


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
        return await _read(kube, namespace, name)


async def _read(kube: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    """The Rollout, or a one-line "not found" exit."""
    try:
        return await kube.get(_path(namespace, name))
    except NotFound:
        fail(f"Rollout {namespace}/{name} not found")
        raise


def _refuse_unless_in(when: tuple[frozenset[str], str], rollout: dict[str, Any]) -> None:
    """`when` = (phases in which an action makes sense, what to say otherwise)."""
    phases, refusal = when
    phase = situation(rollout.get("status") or {}, datetime.now(UTC))
    if phase not in phases:
        meta = rollout["metadata"]
        fail(f"{refusal}: {meta['namespace']}/{meta['name']} is {phase}")


def workflow_url(workflow_id: str) -> str:
    """The Temporal UI page of a workflow (TEMPORAL_UI_URL, TEMPORAL_NAMESPACE)."""
    settings = load_settings()
    quoted = urllib.parse.quote(workflow_id, safe="")
    base = settings.temporal_ui_url.rstrip("/")
    return f"{base}/namespaces/{settings.temporal_namespace}/workflows/{quoted}"


def render(
    rollout: dict[str, Any],
    replicasets: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> str:
    """A plain-text summary (no colour, so it reads the same on any terminal). With
    `replicasets`, a line per revision: role, image, ready / desired pods."""
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
    pause = _pause_line(status, now or datetime.now(UTC))
    if pause:
        fields.insert(3, ("Pause", pause))
    lines = [f"{label + ':':<12} {value}" for label, value in fields]
    lines += _revision_lines(status, replicasets)
    lines += _analysis_lines(status.get("analysis") or {})
    lines += _experiment_lines(status.get("experiment"))
    decisions = status.get("decisions") or []
    if decisions:
        lines.append("Decisions:")
        lines += [f"  {d['time']}  {d['action']:<15} {d['reason']}" for d in decisions[-5:]]
    return "\n".join(lines)


def _pause_line(status: dict[str, Any], now: datetime) -> str:
    started, ends = status.get("pauseStartTime"), status.get("pauseEndTime")
    if not started:
        return ""
    if not ends:
        return f"waiting for promotion since {started} (kulta promote)"
    left = round((datetime.fromisoformat(ends) - now).total_seconds())
    if left <= 0:
        return f"ended {ends}"
    return f"{format_seconds(left)} left (ends {ends})"


def format_seconds(seconds: int) -> str:
    """90 -> "1m30s", 3600 -> "1h0m0s", 5 -> "5s"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _revision_lines(status: dict[str, Any], replicasets: list[dict[str, Any]] | None) -> list[str]:
    if not replicasets:
        return []
    roles = {status.get("stableRevision"): "stable", status.get("canaryRevision"): "canary"}
    rows = []
    for rs in sorted(replicasets, key=lambda r: r["metadata"].get("creationTimestamp", "")):
        revision = rs["metadata"].get("labels", {}).get(LABEL_TEMPLATE_HASH, "?")
        containers = rs.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        image = ",".join(c.get("image", "?") for c in containers) or "-"
        ready = rs.get("status", {}).get("readyReplicas") or 0
        desired = rs.get("spec", {}).get("replicas") or 0
        role = roles.get(revision, "old")
        rows.append(f"  {role:<7} {revision:<11} {image:<28} {ready}/{desired} ready")
    return ["Revisions:", *rows]


def _analysis_lines(analysis: dict[str, Any]) -> list[str]:
    """The latest measurement of each metric: verdict, value and the message naming its bound."""
    lines = []
    for kind in ("metrics", "inline"):
        for metric in analysis.get(kind) or []:
            latest = (metric.get("measurements") or [{}])[-1]
            if not latest:
                continue
            verdict, message = latest.get("verdict", "-"), latest.get("message", "")
            lines.append(f"  {metric['name']:<16} {verdict:<12} {message}")
    return ["Analysis:", *lines] if lines else []


def _experiment_lines(experiment: dict[str, Any] | None) -> list[str]:
    if not experiment:
        return []
    lines = [
        f"Experiment:  {experiment.get('measurements', 0)} measurements, winner "
        f"{experiment.get('winner') or '-'}{' (concluded)' if experiment.get('concluded') else ''}"
    ]
    for m in experiment.get("metrics") or []:
        lines.append(
            f"  {m['name']:<16} A {m['rateA']:.4f} ({m['samplesA']})  B {m['rateB']:.4f} "
            f"({m['samplesB']})  p={m['pValue']:.4g}{'  significant' if m['significant'] else ''}"
        )
    return lines


Output = Annotated[str, typer.Option("--output", "-o", help="text, json or yaml")]


def _emit(obj: Any, output: str, text: str) -> None:
    if output == "json":
        typer.echo(json.dumps(obj, indent=2, sort_keys=True))
    elif output == "yaml":
        typer.echo(yaml.safe_dump(obj, sort_keys=True).rstrip())
    elif output == "text":
        typer.echo(text)
    else:
        fail(f"--output must be text, json or yaml, not {output!r}")


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
    rollout, replicasets = _run(_get_with_replicasets(kubeconfig, namespace, name))
    _emit(rollout, output, render(rollout, replicasets) if output == "text" else "")


async def _get_with_replicasets(
    kubeconfig: str | None, namespace: str, name: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    async with _client(kubeconfig) as kube:
        rollout = await _read(kube, namespace, name)
        listing = await kube.get(
            resource_path("apps/v1", "replicasets", namespace),
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
        _run(coro)
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
    last = ""
    async with _client(kubeconfig) as kube:
        await _read(kube, namespace, name)  # a clear error for a wrong name, before watching
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


async def _annotate(
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
    async with _client(kubeconfig) as kube:
        path = _path(namespace, name)
        if when is not None:
            _refuse_unless_in(when, await _read(kube, namespace, name))
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


TIMED_PAUSE = "Progressing (in a timed pause)"
RUNNING = frozenset(
    {"Initializing", "Progressing", TIMED_PAUSE, "Paused", "Preview", "Experimenting", "Concluded"}
)
PROMOTABLE = frozenset({"Paused", TIMED_PAUSE, "Preview", "Concluded"})


def situation(status: dict[str, Any], now: datetime) -> str:
    """The phase, with a running timed pause told apart: a rollout stays Progressing through a
    timed pause (it ends by itself, Paused means someone must act), yet promote may end it."""
    phase = str(status.get("phase") or "Pending")
    ends = status.get("pauseEndTime")
    if phase == "Progressing" and ends and datetime.fromisoformat(ends) > now:
        return TIMED_PAUSE
    return phase


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
    arg: Any
    when: tuple[frozenset[str], str]


async def _deliver(
    kubeconfig: str | None, namespace: str, name: str, action: Steering, timeout: float
) -> str:
    """The update when Temporal is reachable (the workflow says accepted, or refused and why);
    otherwise the annotation, acknowledged by the watcher once it has delivered the signal."""
    rollout = await _get(kubeconfig, namespace, name)
    _refuse_unless_in(action.when, rollout)
    workflow_id = (rollout.get("status") or {}).get("workflowId")
    client = await _temporal_client() if workflow_id else None
    if client is None or workflow_id is None:
        await _annotate(kubeconfig, namespace, name, action.annotation, action.value, timeout)
        return f"{action.verb} delivered (annotation {action.annotation}): {namespace}/{name}"
    handle = client.get_workflow_handle(workflow_id)
    args = [] if action.arg is None else [action.arg]
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
        if err.status == RPCStatusCode.NOT_FOUND:
            fail(f"{action.verb}: the workflow of {namespace}/{name} is no longer running")
        fail(f"{action.verb} not delivered: Temporal said {err.message}")
        raise
    return f"{action.verb} acknowledged: {reply} ({namespace}/{name})"


async def _temporal_client() -> Client | None:
    """A client when Temporal answers within a few seconds; None (and why, on stderr) if not."""
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


def _steer(action: Steering, help_text: str) -> None:
    def command(
        name: str,
        namespace: Namespace = "default",
        kubeconfig: Kubeconfig = None,
        timeout: Timeout = 30.0,
    ) -> None:
        typer.echo(_run(_deliver(kubeconfig, namespace, name, action, timeout)))

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
        annotation="kulta.io/promote",
        value="full" if full else "true",
        update=UPDATE_PROMOTE,
        arg=PromoteRequest(full=full),
        when=(RUNNING, "nothing to promote") if full else when_paused(),
    )
    typer.echo(_run(_deliver(kubeconfig, namespace, name, action, timeout)))


_steer(
    Steering(
        "abort",
        "kulta.io/abort",
        "true",
        UPDATE_ABORT,
        AbortRequest(reason="aborted with kulta abort"),
        (RUNNING, "nothing to abort"),
    ),
    "Roll back: traffic to stable, then the canary scales down.",
)
_steer(
    Steering(
        "retry", "kulta.io/retry", "true", UPDATE_RETRY, None, (frozenset({"Failed"}), "not failed")
    ),
    "Run a failed revision again from its first step.",
)
_steer(
    Steering(
        "conclude",
        "kulta.io/conclude-experiment",
        "true",
        UPDATE_CONCLUDE,
        None,
        (frozenset({"Experimenting"}), "no experiment is running"),
    ),
    "Conclude an A/B experiment now (the leader wins).",
)


async def _patch_paused(kubeconfig: str | None, namespace: str, name: str, paused: bool) -> None:
    """spec.paused, as `kubectl patch` would set it: kulta holds (or resumes) at the next step."""
    async with _client(kubeconfig) as kube:
        try:
            await kube.patch(_path(namespace, name), {"spec": {"paused": paused}})
        except NotFound:
            fail(f"Rollout {namespace}/{name} not found")


@app.command(name="pause")
def pause_rollout(
    name: str, namespace: Namespace = "default", kubeconfig: Kubeconfig = None
) -> None:
    """Hold the rollout before its next step (sets spec.paused: true)."""
    _run(_patch_paused(kubeconfig, namespace, name, True))
    typer.echo(f"pause requested: {namespace}/{name}")


@app.command(name="resume")
def resume_rollout(
    name: str,
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    timeout: Timeout = 30.0,
) -> None:
    """Continue: clears spec.paused and resumes a pause analysis chose (it measures again)."""
    _run(_patch_paused(kubeconfig, namespace, name, False))
    when = (RUNNING, "nothing to resume")
    _run(_annotate(kubeconfig, namespace, name, "kulta.io/resume", "true", timeout, when=when))
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
    path = resource_path(ROLLOUT_API_VERSION, "rollouts", None if all_namespaces else namespace)
    items = _run(_list(kubeconfig, path)).get("items", [])
    _emit(items, output, render_list(items) if output == "text" else "")


async def _list(kubeconfig: str | None, path: str) -> dict[str, Any]:
    async with _client(kubeconfig) as kube:
        return await kube.get(path)


def render_list(rollouts: list[dict[str, Any]]) -> str:
    header = ("NAMESPACE", "NAME", "STRATEGY", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY")
    rows = [header]
    for r in rollouts:
        status, spec = r.get("status") or {}, r.get("spec") or {}
        step, total = status.get("currentStepIndex"), status.get("stepCount")
        rows.append(
            (
                r["metadata"]["namespace"],
                r["metadata"]["name"],
                next(iter(spec.get("strategy") or {"-": None})),
                status.get("phase", "-"),
                f"{min(step + 1, total)}/{total}" if step is not None and total else "-",
                str(status.get("currentWeight", "-")),
                status.get("stableRevision") or "-",
                status.get("canaryRevision") or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


@app.command()
def history(
    name: str,
    namespace: Namespace = "default",
    kubeconfig: Kubeconfig = None,
    output: Output = "text",
) -> None:
    """The rollout's decisions as a timeline (the last 20, as kept in status)."""
    rollout = _run(_get(kubeconfig, namespace, name))
    decisions = (rollout.get("status") or {}).get("decisions") or []
    lines = []
    for d in decisions:
        step = "-" if d.get("step") is None else str(d["step"] + 1)
        lines.append(f"{d['time']}  step {step:<3} {d['action']:<18} {d['reason']}")
    _emit(decisions, output, "\n".join(lines) or "no decisions yet")


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
    phase, message = _run(_settled(kubeconfig, namespace, name, timeout))
    if phase is None:
        typer.echo(f"kulta: {namespace}/{name} still {message} after {timeout:.0f}s", err=True)
        raise typer.Exit(EXIT_TIMEOUT)
    typer.echo(f"{namespace}/{name}: {phase}  {message}".rstrip())
    raise typer.Exit(STATUS_EXIT[phase])


async def _settled(
    kubeconfig: str | None, namespace: str, name: str, timeout: float
) -> tuple[str | None, str]:
    """(phase, message) once settled; (None, last phase) on timeout. Watches, never polls."""
    last = "unknown"
    shown = ("", "")

    def settled(rollout: dict[str, Any]) -> tuple[str, str] | None:
        nonlocal last, shown
        status = rollout.get("status") or {}
        last = status.get("phase") or "pending"
        progress = (last, status.get("message") or "")
        if progress != shown:  # progress on stderr, so stdout stays the one result line
            typer.echo(f"  {progress[0]}  {progress[1]}".rstrip(), err=True)
            shown = progress
        current = status.get("observedGeneration") == rollout["metadata"].get("generation")
        if current and status.get("phase") in STATUS_EXIT:
            return status["phase"], status.get("message") or ""
        return None

    async def run() -> tuple[str, str]:
        async with _client(kubeconfig) as kube:
            collection = resource_path(ROLLOUT_API_VERSION, "rollouts", namespace)
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
    """Validate Rollout manifests offline, with the rules the CRD and the workflow apply."""
    problems = 0
    for file in files:
        try:
            documents = [d for d in yaml.safe_load_all(file.read_text()) if d]
        except (OSError, yaml.YAMLError) as err:
            typer.echo(f"{file}: cannot read: {err}", err=True)
            problems += 1
            continue
        for doc in documents:
            if not isinstance(doc, dict) or doc.get("kind") != KIND:
                continue
            name = (doc.get("metadata") or {}).get("name", "?")
            found = lint_rollout(doc)
            for problem in found:
                typer.echo(f"{file}: Rollout {name}: {problem}")
            problems += len(found)
            if not found:
                typer.echo(f"{file}: Rollout {name}: ok")
    if problems:
        raise typer.Exit(1)


def lint_rollout(doc: dict[str, Any]) -> list[str]:
    """Every problem of one Rollout document, each naming its field path."""
    found = []
    if doc.get("apiVersion") != ROLLOUT_API_VERSION:
        found.append(f"apiVersion: expected {ROLLOUT_API_VERSION}, got {doc.get('apiVersion')!r}")
    if not (doc.get("metadata") or {}).get("name"):
        found.append("metadata.name: required")
    try:
        parse_spec(doc.get("spec") or {})
    except InvalidSpec as err:
        found += str(err).split("; ")
    return found


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


if __name__ == "__main__":
    main()
