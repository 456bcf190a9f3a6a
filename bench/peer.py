"""Side by side: kulta and Argo Rollouts (with its Gateway API plugin) on one local control plane.

The same canaries for both, one system at a time, on a control plane of the benchmark's own with
an audit log (`bench/peer_cluster.py`); each controller process has its own client certificate,
so API requests are counted per system from the log. Three parts:

- promote: one canary with manual pauses, promoted in turn by each system's command (`kulta
  promote`, `kubectl argo rollouts promote`) and by its API request sent in-process (kulta: the
  promote annotation; Argo: the status patch its command sends), timed from the start to a
  watch seeing the HTTPRoute's canary weight move; and each command's start-up alone;
- steps: a 2-step and a 10-step canary (10 replicas, 1 s pauses); the requests from the image
  change to completion, the difference over the 8 extra steps being one step;
- scale: N canaries (1 replica, two Services, an HTTPRoute, setWeight 50 + a manual pause):
  created 32 at a time until all are stable, all paused after an image change, all complete after
  all are promoted by API (kulta: the promote annotation; Argo: the status patch its command
  sends). Per phase: wall time, CPU of every process, requests per rollout; peak RSS.

Argo needs `scripts/argo-build` (or KULTA_ARGO_CONTROLLER) and a Gateway API plugin binary
(KULTA_ARGO_PLUGIN, or one built by `PLUGIN_SRC=... scripts/argo-build`); without them the
scenario says so and measures nothing. kulta's Temporal dev server is a process of its own,
reported apart: Argo needs no such server.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from activities.adapters.kube import KubeClient, load_credentials
from activities.errors import NotFound
from bench import argo, audit
from bench.peer_cluster import PeerCluster
from bench.peer_systems import Argo, Kulta, Predicate, System, argo_binaries, namespace_object
from bench.report import Row
from bench.stack import route_change
from tests.support import builders, proc_stats
from tests.support.fleet import bounded
from tests.support.kube import path_of

CONCURRENCY = 32
STEPS_MANY, STEPS_FEW = 10, 2
PROMOTE_RUNS = 5


@dataclass(frozen=True)
class Phase:
    label: str
    took: float  # from the first write of the phase until all are there
    after_writes: float  # of which after the benchmark's last write (the system's own time)
    cpu: dict[str, float]
    writes_per_rollout: float
    reads_per_rollout: float


@dataclass
class Figures:
    """One system's measurements."""

    promote_ms: float | None = None  # the promote command
    promote_api_ms: float | None = None  # its API request, in-process
    startup_ms: float | None = None  # the command's version subcommand, start to exit
    writes_per_step: float = 0.0
    reads_per_step: float = 0.0
    phases: list[Phase] = field(default_factory=list)
    rss: dict[str, float] = field(default_factory=dict)
    apiserver_cpu: float = 0.0


async def run(rollouts: int) -> list[Row]:
    found = argo_binaries()
    if isinstance(found, str):
        print(f"  side by side skipped: {found}", flush=True)
        return [Row("peer", "kulta and Argo Rollouts side by side", f"skipped: {found}")]
    controller, plugin, crds, cli = found
    work = Path(tempfile.mkdtemp(prefix="kulta-peer-"))
    with PeerCluster(work) as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(crds))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        kube = KubeClient(
            load_credentials(str(cluster.admin_kubeconfig)), max_connections=CONCURRENCY
        )
        try:
            systems: list[System] = [
                Kulta(cluster, kube, work / "kulta"),
                Argo(
                    cluster,
                    kube,
                    argo.ArgoController(
                        controller, plugin, cluster.identity("argo-controller"), work / "argo"
                    ),
                    cli,
                ),
            ]
            results = {}
            for system in systems:
                (work / system.name.split()[0].lower()).mkdir(exist_ok=True)
                results[system.name] = await _measure(system, kube, cluster, rollouts)
        finally:
            await kube.aclose()
    return _rows(rollouts, results)


async def _measure(system: System, kube: KubeClient, cluster: PeerCluster, n: int) -> Figures:
    namespace = f"peer-{system.name.split()[0].lower()}-{uuid.uuid4().hex[:4]}"
    await kube.create(path_of("Namespace", None), namespace_object(namespace))
    await system.start(namespace)
    figures = Figures()
    try:
        print(f"  {system.name}: promote", flush=True)
        if not isinstance(system, Argo) or system.cli is not None:
            await _promote(system, kube, namespace, figures)
        print(f"  {system.name}: steps", flush=True)
        await _steps(system, kube, cluster, namespace, figures)
        print(f"  {system.name}: scale ({n})", flush=True)
        await _scale(system, kube, cluster, namespace, n, figures)
        figures.rss = system.rss()
    finally:
        system.stop()
        await kube.delete(path_of("Namespace", None, namespace))
        await _gone(kube, path_of("Namespace", None, namespace))
    return figures


async def _app(
    system: System,
    kube: KubeClient,
    namespace: str,
    name: str,
    steps: list[dict[str, Any]],
    replicas: int,
) -> None:
    """Two Services, an HTTPRoute and the system's Rollout."""
    for body in (
        builders.service(f"{name}-stable", name),
        builders.service(f"{name}-canary", name),
        builders.httproute(f"{name}-route", f"{name}-stable", f"{name}-canary"),
    ):
        await kube.create(path_of(body["kind"], namespace), body)
    await kube.create(system.rollouts_path(namespace), system.rollout(name, steps, replicas))


async def _until(
    kube: KubeClient,
    system: System,
    namespace: str,
    name: str,
    predicate: Predicate,
    timeout: float = 300,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    path = f"{system.rollouts_path(namespace)}/{name}"
    while time.monotonic() < deadline:
        rollout = await kube.get(path)
        if predicate(rollout):
            return rollout
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{system.name}: {name} did not get there in {timeout:.0f}s")


async def _set_image(kube: KubeClient, system: System, namespace: str, name: str) -> None:
    patch = {"spec": {"template": builders.pod_template(name, "example/app:v2")}}
    await kube.patch(f"{system.rollouts_path(namespace)}/{name}", patch)


async def _promote(system: System, kube: KubeClient, namespace: str, figures: Figures) -> None:
    """Median ms from a promotion to the route's canary weight moving, by the system's command
    and by its API request sent in-process, alternating on one canary; and the command's own
    start-up (its version subcommand)."""
    weights = [5 * (i + 1) for i in range(2 * PROMOTE_RUNS)]
    steps = [{"setWeight": w, "pause": {}} for w in weights] + [{"setWeight": 100}]
    await _app(system, kube, namespace, "promote", steps, 1)
    await _until(kube, system, namespace, "promote", system.stable())
    await _set_image(kube, system, namespace, "promote")
    loop = asyncio.get_running_loop()
    taken: dict[str, list[float]] = {"command": [], "api": []}
    for pause, (weight, following) in enumerate(zip(weights, [*weights[1:], 100], strict=True)):
        await _until(kube, system, namespace, "promote", system.paused_at(pause, weight))

        def moved(route: dict[str, Any], weight: int = following) -> bool:
            return builders.route_weight(route, "promote-canary") == weight or (
                weight == 100 and builders.route_weight(route, "promote-canary") == 0
            )

        changed = asyncio.create_task(route_change(kube, namespace, "promote-route", moved))
        await asyncio.sleep(0.3)  # the watch is open
        start = loop.time()
        how = "command" if pause % 2 == 0 else "api"
        try:
            if how == "command":
                await _command(system.promote_command("promote"), system.command_env())
            else:
                await system.promote("promote")
        except Exception:
            changed.cancel()
            raise
        taken[how].append(await asyncio.wait_for(changed, 60) - start)
    figures.promote_ms = statistics.median(taken["command"]) * 1000
    figures.promote_api_ms = statistics.median(taken["api"]) * 1000
    startup = []
    for _ in range(PROMOTE_RUNS):
        start = loop.time()
        await _command(system.version_command(), system.command_env())
        startup.append(loop.time() - start)
    figures.startup_ms = statistics.median(startup) * 1000


async def _command(argv: list[str], env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed: {err.decode()[-500:]}")


async def _steps(
    system: System, kube: KubeClient, cluster: PeerCluster, namespace: str, figures: Figures
) -> None:
    """Requests per canary step: the 10-step canary's minus the 2-step one's, over 8."""
    tallies = []
    for count in (STEPS_FEW, STEPS_MANY):
        name = f"steps-{count}"
        weights = [round(100 * (i + 1) / (count + 1)) for i in range(count)]
        steps: list[dict[str, Any]] = [
            {"setWeight": w, "pause": {"duration": "1s"}} for w in weights
        ]
        steps.append({"setWeight": 100})
        await _app(system, kube, namespace, name, steps, 10)
        before = await _until(kube, system, namespace, name, system.stable())
        start = time.time()
        await _set_image(kube, system, namespace, name)
        await _until(kube, system, namespace, name, system.completed({name: before}))
        await asyncio.sleep(3)  # the last writes (scale-down, status) land
        tallies.append(audit.count(audit.read(cluster.audit_log), system.users, start, time.time()))
    extra = STEPS_MANY - STEPS_FEW
    figures.writes_per_step = (tallies[1].writes - tallies[0].writes) / extra
    figures.reads_per_step = (tallies[1].reads - tallies[0].reads) / extra


async def _scale(
    system: System,
    kube: KubeClient,
    cluster: PeerCluster,
    namespace: str,
    n: int,
    figures: Figures,
) -> None:
    names = [f"s{i:04d}" for i in range(n)]
    steps: list[dict[str, Any]] = [{"setWeight": 50, "pause": {}}, {"setWeight": 100}]
    apiservers = proc_stats.pids_running("kube-apiserver")
    ours = [p for p in apiservers if str(cluster.state) in _cmdline(p)] or apiservers

    def apiserver_cpu() -> float:
        return sum(proc_stats.cpu_seconds(p) for p in ours)

    async def phase(label: str, act: Callable[[str], Awaitable[None]], done: Predicate) -> None:
        cpu, api_cpu, start, wall = system.cpu(), apiserver_cpu(), time.monotonic(), time.time()
        await bounded(names, act, CONCURRENCY)
        written = time.monotonic()
        await until_all_at(kube, system.rollouts_path(namespace), n, done)
        end = time.monotonic()
        spent = {k: v - cpu.get(k, 0.0) for k, v in system.cpu().items()}
        tally = audit.count(audit.read(cluster.audit_log), system.users, wall, time.time())
        figures.phases.append(
            Phase(label, end - start, end - written, spent, tally.writes / n, tally.reads / n)
        )
        figures.apiserver_cpu += apiserver_cpu() - api_cpu
        print(f"    {label}: {end - start:.1f}s ({end - written:.1f}s after the last write)")

    await phase(
        "all stable after creation",
        lambda name: _app(system, kube, namespace, name, steps, 1),
        system.stable(),
    )
    listing = await kube.get(system.rollouts_path(namespace))
    before = {r["metadata"]["name"]: r for r in listing["items"]}
    await phase(
        "all paused after the image change",
        lambda name: _set_image(kube, system, namespace, name),
        system.paused(),
    )
    await phase("all complete after promotion", system.promote, system.completed(before))


async def until_all_at(kube: KubeClient, path: str, count: int, predicate: Predicate) -> None:
    """`tests.support.fleet.until_all` for any kind of Rollout (kulta's or Argo's)."""
    while True:
        listing = await kube.get(path)
        if sum(1 for r in listing["items"] if predicate(r)) >= count:
            return
        await asyncio.sleep(0.5)


async def _gone(kube: KubeClient, path: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await kube.get(path)
        except NotFound:
            return
        await asyncio.sleep(1)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _rows(n: int, results: dict[str, Figures]) -> list[Row]:
    k, a = results["kulta"], results["Argo Rollouts"]
    rows = []

    def side(figure: str, kulta: str, argo_value: str, ratio: float | None = None) -> None:
        value = f"kulta {kulta} | Argo {argo_value}"
        if ratio is not None:
            value += f" | x{ratio:.1f}"
        rows.append(Row("peer", figure, value))

    if a.promote_ms is not None:
        assert k.promote_ms and k.promote_api_ms and a.promote_api_ms and k.startup_ms
        assert a.startup_ms
        side(
            "promotion by API in-process → route weight, median (kulta: the annotation)",
            f"{k.promote_api_ms:.0f} ms",
            f"{a.promote_api_ms:.0f} ms",
            k.promote_api_ms / a.promote_api_ms,
        )
        side(
            "the command's start-up (`kulta version`, `kubectl argo rollouts version`)",
            f"{k.startup_ms:.0f} ms",
            f"{a.startup_ms:.0f} ms",
            k.startup_ms / a.startup_ms,
        )
        side(
            "promote command → route weight, median",
            f"{k.promote_ms:.0f} ms",
            f"{a.promote_ms:.0f} ms",
            k.promote_ms / a.promote_ms,
        )
    side("API writes per canary step", f"{k.writes_per_step:.1f}", f"{a.writes_per_step:.1f}")
    side("API reads per canary step", f"{k.reads_per_step:.1f}", f"{a.reads_per_step:.1f}")
    for kp, ap in zip(k.phases, a.phases, strict=True):
        side(f"{n} rollouts: {kp.label}", f"{kp.took:.1f} s", f"{ap.took:.1f} s", kp.took / ap.took)
        side(
            "  of which after the benchmark's last write",
            f"{kp.after_writes:.1f} s",
            f"{ap.after_writes:.1f} s",
            kp.after_writes / max(ap.after_writes, 1e-9),
        )
        kulta_cpu = kp.cpu.get("kulta-worker", 0) + kp.cpu.get("kulta-watcher", 0)
        temporal = kp.cpu.get("Temporal dev server", 0)
        argo_cpu = sum(ap.cpu.values())
        side(
            "  CPU per rollout (kulta: worker + watcher)",
            f"{kulta_cpu / n * 1000:.0f} ms",
            f"{argo_cpu / n * 1000:.0f} ms",
            kulta_cpu / max(argo_cpu, 1e-9),
        )
        side(
            "  CPU per rollout with kulta's Temporal server",
            f"{(kulta_cpu + temporal) / n * 1000:.0f} ms",
            f"{argo_cpu / n * 1000:.0f} ms",
            (kulta_cpu + temporal) / max(argo_cpu, 1e-9),
        )
        side(
            "  API writes / reads per rollout",
            f"{kp.writes_per_rollout:.1f} / {kp.reads_per_rollout:.1f}",
            f"{ap.writes_per_rollout:.1f} / {ap.reads_per_rollout:.1f}",
        )
    kulta_rss = k.rss.get("kulta-worker", 0) + k.rss.get("kulta-watcher", 0)
    argo_rss = sum(a.rss.values())
    side(
        "peak RSS, controller processes",
        f"{kulta_rss:.0f} MB",
        f"{argo_rss:.0f} MB",
        kulta_rss / max(argo_rss, 1e-9),
    )
    side("peak RSS, Temporal dev server", f"{k.rss.get('Temporal dev server', 0):.0f} MB", "—")
    side(
        "kube-apiserver CPU over the scale phases",
        f"{k.apiserver_cpu:.0f} s",
        f"{a.apiserver_cpu:.0f} s",
    )
    return rows
