"""Config that rolls out like code (`spec.trackConfig`): the ConfigMaps a template references are
copied into immutable per-revision copies owned by the revision's ReplicaSet; a change to one
starts a rollout, and a rollback brings the old pods back with the old values."""

from __future__ import annotations

from typing import Any

import pytest

from activities.config_copies import ANNOTATION_CONFIG_COPIES, LABEL_CONFIG_SOURCE
from activities.naming import ANNOTATION_ABORT
from tests.support import builders
from tests.support.scenario import Scenario

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]


def _configmap(data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config"},
        "data": data,
    }


async def _tracked_rollout(sc: Scenario) -> None:
    """Services, route and a Rollout that mounts app-config and takes env from it."""
    ns = sc.namespace
    await sc.kube.apply(ns, builders.service("app-stable", "app"))
    await sc.kube.apply(ns, builders.service("app-canary", "app"))
    await sc.kube.apply(ns, builders.httproute("app-route", "app-stable", "app-canary"))
    rollout = builders.rollout("app", steps=STEPS, scale_down_delay=1, abort_delay=1, replicas=4)
    rollout["spec"]["trackConfig"] = {"configMaps": True}
    pod = rollout["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "conf", "configMap": {"name": "app-config"}}]
    pod["containers"][0]["envFrom"] = [{"configMapRef": {"name": "app-config"}}]
    await sc.kube.apply(ns, rollout)


async def _copy_of(sc: Scenario, revision: str) -> dict[str, Any]:
    """The copy the revision's ReplicaSet names, checked to be named alike everywhere."""
    rs = await sc.replicaset(revision)
    pod = rs["spec"]["template"]["spec"]
    name = pod["volumes"][0]["configMap"]["name"]
    assert pod["containers"][0]["envFrom"] == [{"configMapRef": {"name": name}}]
    assert name.startswith("app-config-") and name != "app-config"
    copies = rs["spec"]["template"]["metadata"]["annotations"][ANNOTATION_CONFIG_COPIES]
    assert name in copies
    copy = await sc.kube.get("ConfigMap", sc.namespace, name)
    assert copy["immutable"] is True
    assert copy["metadata"]["labels"][LABEL_CONFIG_SOURCE] == "app-config"
    [owner] = copy["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("ReplicaSet", rs["metadata"]["name"])
    return copy


async def test_a_configmap_change_rolls_out_and_a_rollback_restores_the_old_values(
    stack: Scenario,
) -> None:
    sc = stack
    await sc.kube.apply(sc.namespace, _configmap({"greeting": "hello"}))
    await _tracked_rollout(sc)
    v1 = (await sc.wait_phase("Completed"))["status"]["stableRevision"]
    first = await _copy_of(sc, v1)
    assert first["data"] == {"greeting": "hello"}

    # Only the ConfigMap changes: a new revision, rolled out as a canary.
    await sc.kube.patch("ConfigMap", sc.namespace, "app-config", {"data": {"greeting": "hi"}})
    paused = await sc.wait_phase("Paused", "waiting for promotion")
    v2 = paused["status"]["canaryRevision"]
    assert v2 != v1 and paused["status"]["currentWeight"] == 50
    second = await _copy_of(sc, v2)
    assert second["data"] == {"greeting": "hi"}
    assert second["metadata"]["name"] != first["metadata"]["name"]
    # The old revision's copy is untouched: its pods keep reading "hello".
    assert (await sc.kube.get("ConfigMap", sc.namespace, first["metadata"]["name"]))["data"] == {
        "greeting": "hello"
    }

    # A rollback is to the old pods, which name the old copy: the old config is back.
    await sc.annotate(ANNOTATION_ABORT)
    await sc.wait_phase("Failed", "aborted by annotation")
    await sc.wait_rs_replicas(v2, 0, timeout=30)
    stable = await sc.replicaset(v1)
    assert stable["spec"]["replicas"] == 4
    assert (await _copy_of(sc, v1))["data"] == {"greeting": "hello"}
    pods = await sc.kube.list("Pod", sc.namespace, f"pod-template-hash={v1}")
    assert pods, "the stable revision has no pods"
    assert {p["spec"]["volumes"][0]["configMap"]["name"] for p in pods} == {
        first["metadata"]["name"]
    }
    # kulta never writes the user's ConfigMap.
    user = await sc.kube.get("ConfigMap", sc.namespace, "app-config")
    assert user["data"] == {"greeting": "hi"} and "ownerReferences" not in user["metadata"]

    # The copies go with their ReplicaSets (garbage collection through the owner references).
    await sc.kube.delete("Rollout", sc.namespace, "app")
    for copy in (first, second):
        await sc.kube.wait_deleted("ConfigMap", sc.namespace, copy["metadata"]["name"], timeout=60)


async def test_a_missing_configmap_keeps_its_reference_until_it_exists(
    stack: Scenario,
) -> None:
    sc = stack
    await _tracked_rollout(sc)  # app-config does not exist (yet)
    v1 = (await sc.wait_phase("Completed", timeout=60))["status"]["stableRevision"]
    rs = await sc.replicaset(v1)
    assert rs["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "app-config"
    assert ANNOTATION_CONFIG_COPIES not in (
        rs["spec"]["template"]["metadata"].get("annotations") or {}
    )
    # Once it exists, the revision is one that names its copy: a rollout starts.
    await sc.kube.apply(sc.namespace, _configmap({"greeting": "hello"}))
    paused = await sc.wait_phase("Paused", "waiting for promotion")
    assert (await _copy_of(sc, paused["status"]["canaryRevision"]))["data"] == {"greeting": "hello"}
