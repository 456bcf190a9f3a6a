"""CDEvents built for transitions: valid under the official v0.4.1 schemas, deterministic ids,
purls, structured mode."""

from __future__ import annotations

import json

import pytest

from activities import cdevents
from activities.contracts import Announcement, RolloutRef
from tests.support.cdevents_check import problems, schema_problems


def announcement(**changes: object) -> Announcement:
    base = Announcement(
        kind="upgraded",
        transition_id="rollout/shop/web/abc.1234/1/3",
        timestamp="2026-12-01T10:00:00Z",
        rollout=RolloutRef(namespace="shop", name="web", uid="1234-5678"),
        strategy="canary",
        phase="Progressing",
        reason="StepAdvanced",
        message="step 1/3: canary weight 20%",
        revision="abc",
        stable_revision="old",
        images=["registry.example/team/web:v2"],
        step_index=0,
        step_count=3,
        weight=20,
    )
    return base.model_copy(update=changes)


@pytest.mark.parametrize("kind", ["deployed", "upgraded", "rolledback", "published"])
def test_every_kind_conforms(kind: str) -> None:
    event = cdevents.build(announcement(kind=kind))
    assert problems(event) == []
    assert event["context"]["type"] == f"dev.cdevents.service.{kind}.0.2.0"
    assert event["context"]["version"] == "0.4.1"
    content = {"environment": {"id": "shop", "source": "/kulta.io/controller"}}
    if kind != "published":  # its schema has no artifactId and allows no other field
        content["artifactId"] = "pkg:oci/web?repository_url=registry.example/team/web&tag=v2"
    assert event["subject"] == {
        "id": "shop/web",
        "source": "/kulta.io/controller",
        "type": "service",
        "content": content,
    }
    custom = event["customData"]
    assert (custom["rollout"], custom["namespace"], custom["uid"]) == ("web", "shop", "1234-5678")
    assert (custom["stepIndex"], custom["stepCount"], custom["weight"]) == (0, 3, 20)


def test_ids_derive_from_the_transition() -> None:
    first = cdevents.event_id(announcement())
    assert first == cdevents.event_id(announcement(message="retried, same transition"))
    assert first != cdevents.event_id(announcement(transition_id="rollout/shop/web/abc.1234/1/4"))
    assert first != cdevents.event_id(announcement(kind="published"))


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", "pkg:oci/nginx?repository_url=nginx"),
        ("example/app:v2", "pkg:oci/app?repository_url=example/app&tag=v2"),
        ("host:5000/a/B:1.0", "pkg:oci/b?repository_url=host:5000/a/B&tag=1.0"),
        ("ghcr.io/x/y@sha256:abc", "pkg:oci/y@sha256%3Aabc?repository_url=ghcr.io/x/y"),
    ],
)
def test_purl(image: str, expected: str) -> None:
    assert cdevents.purl(image) == expected


def test_problems_are_named() -> None:
    event = cdevents.build(announcement())
    del event["context"]["id"]
    event["subject"]["content"].pop("artifactId")
    event["extra"] = 1
    assert problems(event) == [
        # the official schema's words, then kulta's own
        "context: 'id' is a required property",
        "subject.content: 'artifactId' is a required property",
        "(event): Additional properties are not allowed ('extra' was unexpected)",
        "context.id is missing or empty",
        "subject.content.artifactId is required for upgraded",
        "unexpected top-level field 'extra'",
    ]
    published = cdevents.build(announcement(kind="published", images=[]))
    assert problems(published) == []  # published needs no artifact
    published["subject"]["content"]["artifactId"] = "pkg:oci/web"  # what kulta used to send
    assert schema_problems(published) == [
        "subject.content: Additional properties are not allowed ('artifactId' was unexpected)"
    ]


def test_structured_mode_cloud_event() -> None:
    event = cdevents.build(announcement())
    headers, body = cdevents.structured(event)
    assert headers["content-type"] == "application/cloudevents+json"
    cloud = json.loads(body)
    assert cloud["specversion"] == "1.0" and cloud["id"] == event["context"]["id"]
    assert (
        cloud["type"] == event["context"]["type"] and cloud["source"] == event["context"]["source"]
    )
    assert cloud["data"] == event
