"""Releases on the local stack: several Rollouts shipped as one plan by a parent workflow that
only edits templates and follows each Rollout's own workflow. Order comes from etcd (every
write recorded with its resourceVersion): a stage's Rollouts never change before the stages
it is after are Completed, and a rollback gives the templates back newest first."""

from __future__ import annotations

import asyncio
import itertools
import urllib.parse

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.naming import (
    ANNOTATION_ABORT,
    ANNOTATION_PROMOTE,
    ANNOTATION_RELEASE,
    ANNOTATION_RESUME,
    RELEASE_WORKFLOW_NAME,
    SA_RELEASE,
    revision_of,
)
from tests.support import builders
from tests.support.cdevents_check import schema_problems
from tests.support.cdevents_receiver import CDEventReceiver, Received
from tests.support.histories import replay_and_record
from tests.support.invariants import RECORDED_KINDS, Write, WriteRecorder, violations
from tests.support.kube import Kube
from tests.support.releases import (
    APPS,
    MANUAL,
    annotate,
    apps,
    image_of,
    kulta,
    paused_on,
    release_phase,
    rollout_phase,
    two_stages,
)
from tests.support.scenario import Scenario, watched
from tests.support.worker import running_worker
from watcher.loop import watch_forever
from watcher.releases import ReleaseSource, decide_release
from watcher.runner import Runner
from watcher.source import RolloutSource

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]


def _template_changes(writes: list[Write], name: str) -> list[tuple[int, str]]:
    """(resourceVersion, image) of each write that changed the Rollout's template."""
    out, last = [], None
    for w in sorted(writes, key=lambda w: w.resource_version):
        if w.kind != "Rollout" or w.name != name:
            continue
        image = image_of(w.object)
        if last is not None and image != last:
            out.append((w.resource_version, image))
        last = image
    return out


def _completed_on(writes: list[Write], name: str, image: str, after: int = 0) -> int:
    """The resourceVersion at which the Rollout was first Completed on a template with `image`
    (after `after`)."""
    for w in sorted(writes, key=lambda w: w.resource_version):
        if w.resource_version <= after:
            continue
        status = w.object.get("status") or {}
        if (
            w.kind == "Rollout"
            and w.name == name
            and status.get("phase") == "Completed"
            and status.get("stableRevision") == revision_of(w.object["spec"]["template"])
            and image_of(w.object) == image
        ):
            return w.resource_version
    raise AssertionError(f"{name} was never Completed on {image}")


async def test_three_rollouts_in_two_stages_ship_in_dependency_order(stack: Scenario) -> None:
    sc = stack
    await apps(sc)
    async with WriteRecorder(sc.kube, sc.namespace, kinds=RECORDED_KINDS).running() as writes:
        await sc.kube.apply(sc.namespace, builders.release("shop", two_stages()))
        done = await release_phase(sc, "Completed")
        for name in APPS:  # the claims are gone once the Release ended
            rollout = await sc.kube.get("Rollout", sc.namespace, name)
            assert ANNOTATION_RELEASE not in (rollout["metadata"].get("annotations") or {})
            assert rollout["status"]["phase"] == "Completed"
    history = writes.history
    backend_done = max(
        _completed_on(history, "orders", "example/orders:v2"),
        _completed_on(history, "payments", "example/payments:v2"),
    )
    [(web_changed, image)] = _template_changes(history, "web")
    assert image == "example/web:v2"
    assert web_changed > backend_done, "web changed before the backend stage was Completed"
    status = done["status"]
    assert [s["phase"] for s in status["stages"]] == ["Completed", "Completed"]
    web = status["stages"][1]["rollouts"][0]
    assert web["state"] == "Completed" and web["revision"] != web["previousRevision"]
    assert web["workflowId"].startswith(f"rollout/{sc.namespace}/web/")
    assert violations(history) == []
    # The Temporal UI finds the parent and the Rollouts' own runs under one search attribute.
    found = [
        e.workflow_type
        async for e in sc.client.list_workflows(f"{SA_RELEASE} = '{sc.namespace}/shop'")
    ]
    assert sorted(found) == ["Release", "Rollout", "Rollout", "Rollout"]


async def test_a_failing_rollout_in_stage_two_puts_every_changed_rollout_back_newest_first(
    stack: Scenario,
) -> None:
    sc = stack
    # orders waits for a promotion on the way forward (a person gives it) and on the way back
    # (the Release promotes it through: its previous revision was stable before).
    await apps(sc, steps={"web": MANUAL, "orders": MANUAL})
    async with WriteRecorder(sc.kube, sc.namespace, kinds=RECORDED_KINDS).running() as writes:
        await sc.kube.apply(sc.namespace, builders.release("shop", two_stages()))
        await paused_on(sc, "orders", "example/orders:v2")
        await annotate(sc, "Rollout", "orders", ANNOTATION_PROMOTE, "true")
        await paused_on(sc, "web", "example/web:v2")
        await annotate(sc, "Rollout", "web", ANNOTATION_ABORT, "true")
        done = await release_phase(sc, "RolledBack", timeout=180)
        for name in APPS:
            rollout = await rollout_phase(sc, name, "Completed")
            assert image_of(rollout) == "example/app:v1", name
            assert rollout["status"]["stableRevision"] == revision_of(rollout["spec"]["template"])
    history = writes.history
    status = done["status"]
    assert status["reason"] == "RolloutFailed", status
    assert "stage frontend failed" in status["message"]
    assert [s["phase"] for s in status["stages"]] == ["RolledBack", "RolledBack"]
    # Newest first: web (stage 2) back before the backend, whose two (changed at once) go back
    # in reverse of the order the stage lists them.
    changed = {name: _template_changes(history, name) for name in APPS}
    assert all(len(c) == 2 for c in changed.values()), changed
    forward = sorted(APPS, key=lambda n: changed[n][0][0])
    backward = sorted(APPS, key=lambda n: changed[n][1][0])
    assert forward[-1] == "web" and backward == ["web", "payments", "orders"], changed
    # One back at a time: each revert starts once the previous one is stable again.
    for earlier, later in itertools.pairwise(backward):
        back = _completed_on(history, earlier, "example/app:v1", after=changed[earlier][1][0])
        assert changed[later][1][0] > back
    assert violations(history) == []
    promoted = [
        d
        for d in (await sc.kube.get("Rollout", sc.namespace, "orders"))["status"]["decisions"]
        if d["action"] == "promote-full"
    ]
    assert promoted, "the way back waited in orders' pause without the Release promoting it"
    # Its history (claims, two stages, a failure, a rollback with a promotion) replays.
    handle = sc.client.get_workflow_handle(status["workflowId"])
    await replay_and_record(sc.client, handle, "release-rolled-back")


async def test_an_approval_gate_holds_the_next_stage_until_approved(stack: Scenario) -> None:
    sc = stack
    await apps(sc)
    await sc.kube.apply(
        sc.namespace,
        builders.release(
            "shop",
            [
                builders.stage(
                    "backend",
                    {"orders": "example/orders:v2", "payments": "example/payments:v2"},
                    gate={"type": "Approval"},
                ),
                builders.stage("frontend", {"web": "example/web:v2"}),
            ],
        ),
    )
    paused = await release_phase(sc, "Paused")
    assert paused["status"]["stages"][0]["phase"] == "WaitingForApproval"
    assert "kulta release approve shop backend" in paused["status"]["stages"][0]["message"]
    web = await sc.kube.get("Rollout", sc.namespace, "web")
    assert image_of(web) == "example/app:v1"
    shown = await kulta(sc, "release", "get", "shop")
    assert "stage backend  WaitingForApproval" in shown and "stage frontend  Pending" in shown
    assert "✓ orders" in shown, shown
    wrong = await kulta(sc, "release", "approve", "shop", "frontnd", check=False)
    assert "has no stage 'frontnd' (it has backend, frontend)" in wrong
    said = await kulta(sc, "release", "approve", "shop", "backend")
    assert "stage backend of Release" in said and "approved" in said
    await release_phase(sc, "Completed")
    assert image_of(await sc.kube.get("Rollout", sc.namespace, "web")) == "example/web:v2"


async def test_a_rollout_edited_by_hand_pauses_the_release_with_the_reason(stack: Scenario) -> None:
    sc = stack
    await apps(sc, steps={"orders": MANUAL})
    await sc.kube.apply(
        sc.namespace,
        builders.release("shop", [builders.stage("backend", {"orders": "example/orders:v2"})]),
    )
    await paused_on(sc, "orders", "example/orders:v2")
    await sc.kube.patch(
        "Rollout",
        sc.namespace,
        "orders",
        {"spec": {"template": builders.pod_template("orders", "example/orders:hotfix")}},
    )
    paused = await release_phase(sc, "Paused")
    assert paused["status"]["reason"] == "EditedByHand"
    assert "orders was edited by hand" in paused["status"]["message"]
    await annotate(sc, "Release", "shop", ANNOTATION_RESUME, "true")
    # The Release follows the person's template from here (its canary waits for a promotion).
    await sc.kube.wait_for(
        "Release",
        sc.namespace,
        "shop",
        lambda r: (r.get("status") or {}).get("phase") == "Progressing",
        what="Release resumed",
    )


async def test_a_second_release_naming_an_owned_rollout_is_refused_with_the_owner(
    stack: Scenario, kube: Kube
) -> None:
    sc = stack
    await apps(sc, steps={"orders": MANUAL})
    await sc.kube.apply(
        sc.namespace,
        builders.release("first", [builders.stage("backend", {"orders": "example/orders:v2"})]),
    )
    await release_phase(sc, "Progressing", name="first")
    await sc.kube.apply(
        sc.namespace,
        builders.release(
            "second",
            [builders.stage("all", {"web": "example/web:v3", "orders": "example/orders:v3"})],
        ),
    )
    refused = await release_phase(sc, "Failed", name="second")
    assert refused["status"]["reason"] == "RolloutOwned"
    assert f"owned by Release default/{sc.namespace}/first" in refused["status"]["message"]
    # Nothing changed: web is still v1 and unclaimed, orders is still the first one's.
    web = await sc.kube.get("Rollout", sc.namespace, "web")
    assert image_of(web) == "example/app:v1"
    assert ANNOTATION_RELEASE not in (web["metadata"].get("annotations") or {})
    await annotate(sc, "Release", "first", ANNOTATION_ABORT, "true")
    aborted = await release_phase(sc, "Aborted", name="first", timeout=120)
    assert "every changed Rollout is back" in aborted["status"]["message"]
    orders = await rollout_phase(sc, "orders", "Completed")
    assert image_of(orders) == "example/app:v1"


async def test_a_release_is_told_as_a_pipeline_run_with_a_task_run_per_stage(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str
) -> None:
    receiver = CDEventReceiver()
    await receiver.start()
    try:
        async with watched(dev_env, kube, namespace, cdevents_url=receiver.url) as sc:
            await apps(sc)
            await sc.kube.apply(sc.namespace, builders.release("shop", two_stages()))
            done = await release_phase(sc, "Completed")
            run = done["status"]["workflowId"]
            wanted = [
                "pipelinerun.started",
                "taskrun.started",
                "taskrun.finished",
                "taskrun.started",
                "taskrun.finished",
                "pipelinerun.finished",
            ]

            def told() -> list[Received]:
                return [
                    r
                    for r in receiver.received
                    if r.cdevent["subject"]["id"].startswith(run) and r.answered == 202
                ]

            for _ in range(100):
                if len(told()) >= len(wanted):
                    break
                await asyncio.sleep(0.1)
    finally:
        await receiver.stop()
    events = told()
    assert [r.subject_and_kind for r in events] == wanted
    for received in events:
        assert schema_problems(received.cdevent) == [], received.cdevent
    finished = events[-1].cdevent["subject"]["content"]
    assert finished["pipelineName"] == f"{namespace}/shop" and finished["outcome"] == "success"
    assert finished["url"].endswith(urllib.parse.quote(run, safe=""))
    stage = events[2].cdevent["subject"]["content"]
    assert stage["taskName"] == "backend" and stage["pipelineRun"]["id"] == run


async def test_a_deleted_release_lets_go_of_its_rollouts_and_changes_nothing_more(
    stack: Scenario,
) -> None:
    sc = stack
    await apps(sc, steps={"orders": MANUAL})
    await sc.kube.apply(
        sc.namespace,
        builders.release(
            "shop",
            [
                builders.stage("backend", {"orders": "example/orders:v2"}),
                builders.stage("frontend", {"web": "example/web:v2"}),
            ],
        ),
    )
    running = await release_phase(sc, "Progressing")
    await paused_on(sc, "orders", "example/orders:v2")
    await sc.kube.delete("Release", sc.namespace, "shop")
    for name in APPS:  # every claim is removed
        await sc.kube.wait_for(
            "Rollout",
            sc.namespace,
            name,
            lambda r: ANNOTATION_RELEASE not in (r["metadata"].get("annotations") or {}),
            what="claim removed",
        )
    handle = sc.client.get_workflow_handle(running["status"]["workflowId"])
    for _ in range(100):  # it closes right after its last claim is removed
        if (state := (await handle.describe()).status.name) != "RUNNING":
            break
        await asyncio.sleep(0.1)
    assert state == "CANCELED"
    # orders stays where the person left it; web was never changed.
    assert image_of(await sc.kube.get("Rollout", sc.namespace, "orders")) == "example/orders:v2"
    assert image_of(await sc.kube.get("Rollout", sc.namespace, "web")) == "example/app:v1"


async def test_a_release_deleted_while_no_watcher_ran_has_its_run_cancelled(
    dev_env: WorkflowEnvironment, kube: Kube, namespace: str
) -> None:
    async with running_worker(dev_env.client, kube) as worker:
        runner = Runner(dev_env.client, kube.as_watcher, worker.task_queue)

        def watcher() -> list[asyncio.Task[None]]:
            releases = ReleaseSource(
                kube.as_watcher,
                namespace,
                running=lambda: runner.running_workflows(namespace, RELEASE_WORKFLOW_NAME),
            )
            return [
                asyncio.create_task(
                    watch_forever(runner, RolloutSource(kube.as_watcher, namespace))
                ),
                asyncio.create_task(
                    watch_forever(
                        runner,
                        releases,
                        decider=lambda r, d: decide_release(r, cluster="default", deleted=d),
                    )
                ),
            ]

        sc = Scenario(kube, dev_env.client, namespace, worker.task_queue)
        first = watcher()
        try:
            await apps(sc, steps={"orders": MANUAL})
            await sc.kube.apply(
                namespace,
                builders.release(
                    "shop", [builders.stage("backend", {"orders": "example/orders:v2"})]
                ),
            )
            running = await release_phase(sc, "Progressing")
        finally:
            for task in first:
                task.cancel()
            await asyncio.gather(*first, return_exceptions=True)
        await kube.delete("Release", namespace, "shop")  # while no watcher runs
        handle = dev_env.client.get_workflow_handle(running["status"]["workflowId"])
        second = watcher()
        try:
            for _ in range(150):
                if (state := (await handle.describe()).status.name) != "RUNNING":
                    break
                await asyncio.sleep(0.2)
            assert state == "CANCELED"
            orders = await kube.get("Rollout", namespace, "orders")
            assert ANNOTATION_RELEASE not in (orders["metadata"].get("annotations") or {})
        finally:
            for task in second:
                task.cancel()
            await asyncio.gather(*second, return_exceptions=True)
            await sc.terminate_running()
