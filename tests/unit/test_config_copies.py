"""Rewriting a pod template's ConfigMap and Secret references to content-named copies."""

from __future__ import annotations

import asyncio
from typing import Any

from activities.adapters.kube import WatchEvent
from activities.config_copies import (
    ConfigRef,
    copies_in,
    copy_name,
    data_digest,
    referenced,
    with_copies,
)
from activities.naming import revision_of
from tests.support.fake_listwatch import FakeListWatch
from watcher.source import RolloutSource
from watcher.workloads import DataDigests


def template() -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "a"}},
        "spec": {
            "volumes": [
                {"name": "conf", "configMap": {"name": "app-config"}},
                {"name": "tls", "secret": {"secretName": "app-tls"}},
                {
                    "name": "both",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "extra"}},
                            {"secret": {"name": "app-tls"}},
                        ]
                    },
                },
                {"name": "scratch", "emptyDir": {}},
            ],
            "initContainers": [{"name": "init", "envFrom": [{"configMapRef": {"name": "extra"}}]}],
            "containers": [
                {
                    "name": "app",
                    "envFrom": [
                        {"configMapRef": {"name": "app-config"}},
                        {"secretRef": {"name": "db"}},
                    ],
                    "env": [
                        {"name": "A", "value": "x"},
                        {
                            "name": "B",
                            "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "b"}},
                        },
                        {"name": "C", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
                        {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                }
            ],
        },
    }


def test_every_reference_is_found_once_by_kind() -> None:
    assert referenced(template(), {"ConfigMap"}) == [
        ConfigRef("ConfigMap", "app-config"),
        ConfigRef("ConfigMap", "extra"),
        ConfigRef("ConfigMap", "flags"),
    ]
    assert referenced(template(), {"Secret"}) == [
        ConfigRef("Secret", "app-tls"),
        ConfigRef("Secret", "db"),
    ]
    assert referenced(template(), set()) == []


def test_references_name_the_copies_and_the_annotation_lists_them() -> None:
    digests = {ConfigRef("ConfigMap", "app-config"): "d1", ConfigRef("Secret", "db"): "d2"}
    before = template()
    out = with_copies(before, digests)
    assert before == template()  # not changed in place
    spec = out["spec"]
    assert spec["volumes"][0]["configMap"]["name"] == "app-config-d1"
    assert spec["containers"][0]["envFrom"] == [
        {"configMapRef": {"name": "app-config-d1"}},
        {"secretRef": {"name": "db-d2"}},
    ]
    assert spec["containers"][0]["env"][2]["valueFrom"]["secretKeyRef"]["name"] == "db-d2"
    # Objects without a digest (not tracked, or missing) are left as they are.
    assert spec["volumes"][1]["secret"]["secretName"] == "app-tls"
    assert spec["containers"][0]["env"][1]["valueFrom"]["configMapKeyRef"]["name"] == "flags"
    assert [(c.kind, c.source, c.name, c.digest) for c in copies_in(out)] == [
        ("ConfigMap", "app-config", "app-config-d1", "d1"),
        ("Secret", "db", "db-d2", "d2"),
    ]


def test_a_data_change_changes_the_revision_and_the_same_data_does_not() -> None:
    ref = ConfigRef("ConfigMap", "app-config")
    v1 = data_digest({"data": {"greeting": "hello"}, "metadata": {"resourceVersion": "1"}})
    same = data_digest({"metadata": {"resourceVersion": "9"}, "data": {"greeting": "hello"}})
    v2 = data_digest({"data": {"greeting": "hi"}})
    assert v1 == same != v2
    first = revision_of(with_copies(template(), {ref: v1}))
    assert revision_of(with_copies(template(), {ref: same})) == first
    assert revision_of(with_copies(template(), {ref: v2})) != first


def test_a_template_without_tracked_references_is_unchanged() -> None:
    plain = {"spec": {"containers": [{"name": "app", "image": "x"}]}}
    assert with_copies(plain, {ConfigRef("ConfigMap", "app-config"): "d"}) == plain
    assert copies_in(plain) == []


def test_copy_names_stay_within_the_name_limit() -> None:
    name = copy_name("c" * 300, "abcdefghij")
    assert len(name) == 253 and name.endswith("-abcdefghij")


def configmap(data: dict[str, str], rv: str) -> dict[str, Any]:
    meta = {"name": "app-config", "namespace": "ns", "resourceVersion": rv}
    return {"metadata": meta, "data": data}


def tracked_rollout(track: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": template()}
    if track:
        spec["trackConfig"] = {"configMaps": True}
    return {"metadata": {"name": "r", "namespace": "ns", "uid": "u"}, "spec": spec}


def volume_name(observed: Any) -> str:
    return str(observed.rollout["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"])


async def test_the_watcher_names_copies_and_decides_again_when_the_data_changes() -> None:
    hello = configmap({"greeting": "hello"}, "2")
    untracked = {**tracked_rollout(track=False), "metadata": {"name": "plain", "namespace": "ns"}}
    fake = FakeListWatch({"configmaps": [hello], "rollouts": [tracked_rollout(), untracked]})
    digests = DataDigests(fake, "ConfigMap", "ns")  # type: ignore[arg-type]
    source = RolloutSource(fake, "ns", configs=[digests])  # type: ignore[arg-type]
    seen = source.observe().__aiter__()
    first = await seen.__anext__()
    assert volume_name(first) == copy_name("app-config", data_digest(hello))
    assert volume_name(await seen.__anext__()) == "app-config"  # it does not track its config

    # Labels change, data does not: nothing to decide again. Then the data changes.
    relabelled = {**hello, "metadata": {**hello["metadata"], "labels": {"x": "y"}}}
    await fake.events["configmaps"].put(WatchEvent("MODIFIED", relabelled))
    hi = configmap({"greeting": "hi"}, "4")
    await fake.events["configmaps"].put(WatchEvent("MODIFIED", hi))
    again = await asyncio.wait_for(seen.__anext__(), 5)
    assert again.rollout["metadata"]["name"] == "r"
    assert volume_name(again) == copy_name("app-config", data_digest(hi))

    # Gone: the reference stays as written (the pods would wait for it, as without kulta).
    await fake.events["configmaps"].put(WatchEvent("DELETED", hi))
    assert volume_name(await asyncio.wait_for(seen.__anext__(), 5)) == "app-config"
    await seen.aclose()  # type: ignore[attr-defined]
