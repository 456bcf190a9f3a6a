"""End to end on the local stack: the Temporal dev server, the watcher and the worker, steered only
through the Kubernetes API (apply, patch, annotate), as a user would."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from activities.naming import (
    ANNOTATION_ABORT,
    ANNOTATION_PROMOTE,
    ANNOTATION_RETRY,
    LABEL_ROLLOUT,
    SA_NAMESPACE,
    revision_of,
)
from kulta import cli
from tests.support import builders
from tests.support.exporter import free_port
from tests.support.kube import kubectl
from tests.support.scenario import Scenario

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

STEPS: list[dict[str, Any]] = [
    {"setWeight": 25, "pause": {"duration": "1s"}},
    {"setWeight": 50, "pause": {}},
    {"setWeight": 100},
]


async def test_canary_through_completion(stack: Scenario) -> None:
    sc = stack
    await sc.create(steps=STEPS, scale_down_delay=1, replicas=4)
    done = await sc.wait_phase("Completed")
    v1 = done["status"]["stableRevision"]
    assert (await sc.replicaset(v1))["status"]["availableReplicas"] == 4

    await sc.set_image("example/app:v2")
    v2 = revision_of((await sc.rollout())["spec"]["template"])
    paused = await sc.wait_phase("Paused", "waiting for promotion")
    assert paused["status"]["currentWeight"] == 50 and paused["status"]["currentStepIndex"] == 1
    assert await sc.weights() == {"app-stable": 50, "app-canary": 50, "mirror-sink": 0}
    assert (await sc.replicaset(v2))["status"]["availableReplicas"] == 2
    assert (await sc.replicaset(v1))["spec"]["replicas"] == 4
    steps = [d for d in paused["status"]["decisions"] if d["action"] == "set-weight"]
    assert [d["reason"] for d in steps] == ["canary weight set to 25%", "canary weight set to 50%"]

    await sc.annotate(ANNOTATION_PROMOTE)
    done = await sc.wait_phase("Completed", f"revision {v2} is stable")
    assert ANNOTATION_PROMOTE not in ((await sc.rollout())["metadata"].get("annotations") or {})
    assert done["status"]["stableRevision"] == v2
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    assert await sc.selector("app-stable") == {"app": "app", "pod-template-hash": v2}
    await sc.wait_rs_replicas(v1, 0, timeout=30)

    # The Temporal UI can list this namespace's rollouts by search attribute.
    found = [w async for w in sc.client.list_workflows(f"{SA_NAMESPACE} = '{sc.namespace}'")]
    assert len(found) == 2


async def test_abort_by_annotation_rolls_back_and_retry_runs_again(stack: Scenario) -> None:
    sc = stack
    await sc.create(steps=STEPS, abort_delay=1, replicas=4)
    v1 = (await sc.wait_phase("Completed"))["status"]["stableRevision"]
    await sc.set_image("example/app:v2")
    v2 = revision_of((await sc.rollout())["spec"]["template"])
    await sc.wait_phase("Paused", "waiting for promotion")

    await sc.annotate(ANNOTATION_ABORT)
    failed = await sc.wait_phase("Failed", "aborted by annotation")
    assert failed["status"]["currentWeight"] == 0
    assert await sc.weights() == {"app-stable": 100, "app-canary": 0, "mirror-sink": 0}
    await sc.wait_rs_replicas(v2, 0, timeout=30)
    assert (await sc.replicaset(v1))["spec"]["replicas"] == 4
    events = await sc.kube.list("Event", sc.namespace)
    assert any(e["reason"] == "Aborted" and e["type"] == "Warning" for e in events)

    await sc.annotate(ANNOTATION_RETRY)
    again = await sc.wait_phase("Paused", "waiting for promotion")
    assert again["status"]["canaryRevision"] == v2 and again["status"]["currentWeight"] == 50


async def test_a_deferred_service_edit_applies_once_the_revision_is_stable(stack: Scenario) -> None:
    sc = stack
    await sc.create(steps=[{"setWeight": 50, "pause": {}}], replicas=2)
    await sc.wait_phase("Completed")
    await sc.kube.apply(sc.namespace, builders.service("app-canary2", "app"))
    route = builders.httproute("app-route", "app-stable", "app-canary")
    route["spec"]["rules"][1]["backendRefs"].append(
        {"name": "app-canary2", "port": 8080, "weight": 0}
    )
    await sc.kube.apply(sc.namespace, route)
    await sc.set_image("example/app:v2")
    v2 = revision_of((await sc.rollout())["spec"]["template"])
    await sc.wait_phase("Paused", "waiting for promotion")
    edited = await sc.patch_spec(strategy={"canary": {"canaryService": "app-canary2"}})
    generation = edited["metadata"]["generation"]

    def deferred(r: dict[str, Any]) -> bool:
        conditions = (r.get("status") or {}).get("conditions") or []
        return any(c["type"] == "SpecApplied" and c["reason"] == "EditDeferred" for c in conditions)

    await sc.wait_until(deferred, "the edit deferred")
    assert (await sc.weights())["app-canary"] == 50  # the canary goes on where it serves
    await sc.annotate(ANNOTATION_PROMOTE)
    await sc.wait_until(
        lambda r: (
            (r.get("status") or {}).get("observedGeneration") == generation
            and r["status"].get("phase") == "Completed"
        ),
        "the edit applied to the stable revision",
    )
    assert await sc.selector("app-canary2") == {"app": "app", "pod-template-hash": v2}
    weights = await sc.weights()
    assert weights["app-stable"] == 100 and weights["app-canary2"] == 0, weights


async def kulta(sc: Scenario, *args: str) -> Result:
    """Runs the `kulta` CLI (in a thread: it runs its own event loop)."""
    argv = [*args, "-n", sc.namespace, "--kubeconfig", sc.kube.kubeconfig]
    return await asyncio.to_thread(CliRunner().invoke, cli.app, argv)


async def test_cli_get_and_promote(stack: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = stack
    # The test owns its environment: a Temporal address where nothing listens (whatever runs
    # on the default one, e.g. `make demo`'s server) and the UI address it checks.
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("TEMPORAL_UI_URL", "http://localhost:8233")
    await sc.create(steps=STEPS, replicas=4)
    await sc.wait_phase("Completed")
    await sc.set_image("example/app:v2")
    await sc.wait_phase("Paused", "waiting for promotion")

    shown = await kulta(sc, "get", "rollout", "app")
    assert shown.exit_code == 0, shown.output
    assert "  canary  " in shown.output and "example/app:v2" in shown.output
    paused = "Phase:       Paused  step 2/3: canary weight 50%, waiting for promotion"
    assert paused in shown.output
    assert "Step:        2/3" in shown.output and "Weight:      50" in shown.output
    assert (
        "Temporal UI: http://localhost:8233/namespaces/default/workflows/rollout%2F" in shown.output
    )

    # No Temporal at TEMPORAL_ADDRESS: through the annotation.
    promoted = await kulta(sc, "promote", "app")
    assert promoted.exit_code == 0, promoted.output
    assert "promote delivered (annotation kulta.io/promote)" in promoted.output
    assert "not reachable" in promoted.output
    await sc.wait_phase("Completed", "is stable")

    missing = await kulta(sc, "get", "nope")
    assert missing.exit_code == 1
    assert "Rollout" in missing.output and "not found" in missing.output


async def test_a_temporal_that_does_not_know_the_workflow_falls_back_to_the_annotation(
    stack: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = stack
    # A real Temporal that answers but does not run this Rollout (as when another server
    # listens on the default address): here the same server, asked in another namespace.
    monkeypatch.setenv("TEMPORAL_ADDRESS", sc.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", f"elsewhere-{sc.namespace}")
    await sc.create(steps=STEPS, replicas=2)
    await sc.wait_phase("Completed")
    await sc.set_image("example/app:v2")
    await sc.wait_phase("Paused", "waiting for promotion")

    promoted = await kulta(sc, "promote", "app")
    assert promoted.exit_code == 0, promoted.output
    assert f"(namespace elsewhere-{sc.namespace}) does not know rollout/" in promoted.output
    assert "promote delivered (annotation kulta.io/promote)" in promoted.output
    await sc.wait_phase("Completed", "is stable")


async def test_steering_is_acknowledged_by_the_workflow_when_temporal_is_reachable(
    stack: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = stack
    monkeypatch.setenv("TEMPORAL_ADDRESS", sc.client.service_client.config.target_host)
    manual = [{"setWeight": 25, "pause": {}}, {"setWeight": 50, "pause": {}}, {"setWeight": 100}]
    await sc.create(steps=manual, replicas=2, abort_delay=1)
    await sc.wait_phase("Completed")
    await sc.set_image("example/app:v2")
    await sc.wait_phase("Paused", "waiting for promotion")

    promoted = await kulta(sc, "promote", "app")
    assert promoted.exit_code == 0, promoted.output
    assert promoted.output.startswith("promote acknowledged: promoted: the current pause ends")
    rollout = await sc.rollout()
    assert ANNOTATION_PROMOTE not in (rollout["metadata"].get("annotations") or {})
    await sc.wait_paused_at(50)

    aborted = await kulta(sc, "abort", "app")
    assert aborted.exit_code == 0, aborted.output
    assert "abort acknowledged: aborting" in aborted.output
    await sc.wait_phase("Failed", "aborted with kulta abort")
    # The CLI's own phase check answers first; the workflow's validator is the second guard
    # (tests/workflow/test_steering_updates.py).
    again = await kulta(sc, "abort", "app")
    assert again.exit_code == 1 and "nothing to abort" in again.output
    retried = await kulta(sc, "retry", "app")
    assert retried.exit_code == 0 and "retry acknowledged" in retried.output, retried.output
    await sc.wait_phase("Paused", "waiting for promotion")


async def test_get_watch_redraws_as_the_rollout_moves(stack: Scenario) -> None:
    """Frames arrive from watch events: paused at 50%, then promoted through to stable."""
    sc = stack
    await sc.create(steps=STEPS, replicas=4, scale_down_delay=1)
    await sc.wait_phase("Completed")
    await sc.set_image("example/app:v2")
    await sc.wait_phase("Paused", "waiting for promotion")
    frames: list[str] = []
    shown = asyncio.Event()

    def show(frame: str) -> None:
        frames.append(frame)
        shown.set()

    watching = asyncio.create_task(
        cli.watch_rollout(sc.kube.kubeconfig, sc.namespace, sc.name, show, tick=False)
    )
    try:
        await asyncio.wait_for(shown.wait(), 30)
        paused = "Phase:       Paused  step 2/3: canary weight 50%, waiting for promotion"
        assert paused in frames[0]
        assert "waiting for promotion since" in frames[0]
        await sc.annotate(ANNOTATION_PROMOTE)
        await sc.wait_phase("Completed", "is stable")
        await sc.wait_rs_replicas((await sc.rollout())["status"]["stableRevision"], 4)
        for _ in range(100):  # the last events may still be on their way to the view
            if "Phase:       Completed" in frames[-1]:
                break
            await asyncio.sleep(0.05)
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    assert "Phase:       Completed" in frames[-1]
    assert len(frames) == len(set(frames)), "a frame repeated without a change"
    assert any("Weight:      100" in f for f in frames)


async def test_cli_status_exit_codes_list_and_history(stack: Scenario) -> None:
    sc = stack
    await sc.create(steps=STEPS, replicas=2, abort_delay=1)
    done = await kulta(sc, "status", "app", "--timeout", "60")
    assert done.exit_code == 0 and "Completed" in done.output, done.output
    refused = await kulta(sc, "promote", "app")
    assert refused.exit_code == 1 and "nothing is paused" in refused.output
    refused = await kulta(sc, "retry", "app")
    assert refused.exit_code == 1 and "not failed" in refused.output

    await sc.set_image("example/app:v2")  # status waits for the new generation, not the old one
    paused = await kulta(sc, "status", "app", "--timeout", "60")
    assert paused.exit_code == 2 and "Paused" in paused.output  # the first (timed) pause
    assert "  Progressing  step 1/3: canary weight 25%" in paused.output  # progress, on stderr
    await sc.wait_phase("Paused", "waiting for promotion")

    listed = await kulta(sc, "list")
    assert listed.exit_code == 0
    header, row = listed.output.splitlines()
    assert header.split() == [
        "NAMESPACE",
        "NAME",
        "STRATEGY",
        "PHASE",
        "STEP",
        "WEIGHT",
        "STABLE",
        "CANARY",
    ]
    assert row.split()[:6] == [sc.namespace, "app", "canary", "Paused", "2/3", "50"]

    as_json = await kulta(sc, "get", "app", "-o", "json")
    assert json.loads(as_json.output)["status"]["phase"] == "Paused"
    as_yaml = await kulta(sc, "list", "-o", "yaml")
    assert yaml.safe_load(as_yaml.output)[0]["metadata"]["name"] == "app"
    wrong = await kulta(sc, "get", "app", "-o", "xml")
    assert wrong.exit_code == 1 and "--output must be" in wrong.output

    timeline = await kulta(sc, "history", "app")
    assert "set-weight" in timeline.output and "canary weight set to 50%" in timeline.output
    as_json = await kulta(sc, "history", "app", "-o", "json")
    assert "canary weight set to 50%" in [d["reason"] for d in json.loads(as_json.output)]

    await sc.annotate(ANNOTATION_ABORT)
    await sc.wait_phase("Failed")
    failed = await kulta(sc, "status", "app", "--timeout", "5")
    assert failed.exit_code == 1 and "Failed" in failed.output

    await sc.set_image("example/app:v3")
    busy = await kulta(sc, "status", "app", "--timeout", "0.01")
    assert busy.exit_code == 3 and "still" in busy.output


async def test_old_revisions_beyond_the_history_limit_are_deleted(stack: Scenario) -> None:
    """The most recently run revisions are kept, whatever their creation order: a revert makes
    an old revision the newest (creation times, with one-second resolution, would also tie)."""
    sc = stack
    await sc.create(steps=[{"setWeight": 100}], replicas=1, scale_down_delay=0)
    await sc.patch_spec(revisionHistoryLimit=2)
    await sc.wait_phase("Completed")
    revisions = {"v1": await sc.revision()}

    async def roll_to(image: str) -> None:
        await sc.set_image(f"example/app:{image}")
        revisions[image] = await sc.revision()
        await sc.wait_until(
            lambda r: (r.get("status") or {}).get("stableRevision") == revisions[image],
            f"{image} stable",
        )

    for image in ("v2", "v3", "v1", "v4"):  # v1 again: a revert to the first revision
        await roll_to(image)
    selector = f"{LABEL_ROLLOUT}={sc.name}"

    async def names() -> set[str]:
        found = await sc.kube.list("ReplicaSet", sc.namespace, selector)
        return {rs["metadata"]["name"] for rs in found}

    kept = {f"{sc.name}-{revisions[image]}" for image in ("v4", "v1", "v3")}
    for _ in range(50):
        if await names() == kept:
            break
        await asyncio.sleep(0.2)
    assert await names() == kept  # v2, the least recently run, is gone


async def test_kubectl_scale_mid_canary_resizes_both_revisions_at_the_current_weight(
    stack: Scenario,
) -> None:
    """The scale subresource (what `kubectl scale`, an HPA and KEDA use): a new replica count
    during a manual pause applies at once, stable at full size and the canary at the weight's
    share, with the weights unchanged; the selector for the scaler's pod query is in status."""
    sc = stack
    await sc.create(steps=STEPS, scale_down_delay=1, replicas=2)
    v1 = (await sc.wait_phase("Completed"))["status"]["stableRevision"]
    await sc.set_image("example/app:v2")
    v2 = revision_of((await sc.rollout())["spec"]["template"])
    await sc.wait_phase("Paused", "waiting for promotion")
    assert (await sc.replicaset(v2))["spec"]["replicas"] == 1

    scaled = kubectl(
        sc.kube.kubeconfig, "-n", sc.namespace, "scale", "rollouts.kulta.io/app", "--replicas=4"
    )
    assert scaled.returncode == 0, scaled.stderr
    await sc.wait_rs_replicas(v1, 4)
    await sc.wait_rs_replicas(v2, 2)  # ceil(4 * 50%)
    paused = await sc.wait_until(
        lambda r: any(d["action"] == "scaled" for d in r["status"]["decisions"]), "the rescale"
    )
    assert paused["status"]["phase"] == "Paused"
    assert await sc.weights() == {"app-stable": 50, "app-canary": 50, "mirror-sink": 0}
    scale = json.loads(
        kubectl(
            sc.kube.kubeconfig,
            "-n",
            sc.namespace,
            "get",
            "rollouts.kulta.io/app",
            "--subresource=scale",
            "-o",
            "json",
        ).stdout
    )
    # An HPA reads the Rollout's size as current, not the canary's share of it.
    assert scale["spec"]["replicas"] == 4 and scale["status"]["replicas"] == 4
    assert scale["status"]["selector"] == "app=app"

    await sc.annotate(ANNOTATION_PROMOTE)
    await sc.wait_phase("Completed", f"revision {v2} is stable")
    assert (await sc.replicaset(v2))["status"]["availableReplicas"] == 4
