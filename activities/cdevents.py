"""CDEvents (spec v0.4.1) for rollout transitions and Releases, as structured-mode CloudEvents.
Pure.

A transition maps to `dev.cdevents.service.<kind>.0.2.0`: deployed when a rollout starts,
upgraded when a step advances, rolledback on rollback, published on completion and on an A/B
experiment's conclusion. The subject is the Rollout (the "service"); its environment is the
namespace; the artifact is the container image as a purl (pkg:oci).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from cloudevents.core.bindings.http import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from activities.contracts import Announcement, CDEventKind, ReleaseAnnouncement

SPEC_VERSION = "0.4.1"
SOURCE = "/kulta.io/controller"
_EVENT_IDS = uuid.UUID("6d1c1f0e-8f5b-4c1a-9a62-6b756c746121")  # kulta's uuid5 namespace
# Which content fields each type's schema requires (published does not require an artifact).
REQUIRED_CONTENT: dict[CDEventKind, tuple[str, ...]] = {
    "deployed": ("environment", "artifactId"),
    "upgraded": ("environment", "artifactId"),
    "rolledback": ("environment", "artifactId"),
    "published": ("environment",),
}


def event_type(kind: CDEventKind) -> str:
    return f"dev.cdevents.service.{kind}.0.2.0"


def event_id(announcement: Announcement) -> str:
    """Deterministic: the same transition always has the same id, however often it is sent."""
    return str(uuid.uuid5(_EVENT_IDS, f"{announcement.transition_id}/{announcement.kind}"))


def purl(image: str) -> str:
    """A container image reference as a purl, `pkg:oci/<name>@<digest>?repository_url=...&tag=`.

    The purl spec's oci type names the last path segment and keeps the registry and path in
    `repository_url`; kulta cannot know a digest, so the tag (or the digest, if given) is used.
    """
    reference, _, digest = image.partition("@")
    last = reference.rsplit("/", 1)[-1]
    name, _, tag = last.partition(":")
    repository = reference[: len(reference) - len(last)] + name
    qualifiers = [f"repository_url={repository}"]
    if tag:
        qualifiers.append(f"tag={tag}")
    version = f"@{digest.replace(':', '%3A')}" if digest else ""
    return f"pkg:oci/{name.lower()}{version}?{'&'.join(qualifiers)}"


def build(announcement: Announcement) -> dict[str, Any]:
    """The CDEvent for one announcement."""
    a = announcement
    ref = a.rollout
    content: dict[str, Any] = {"environment": {"id": ref.namespace, "source": SOURCE}}
    if a.images and "artifactId" in REQUIRED_CONTENT[a.kind]:
        # service.published's schema has no artifactId (and allows no other field): the image
        # goes in customData for it, as for every kind.
        content["artifactId"] = purl(a.images[0])
    custom: dict[str, Any] = {
        "rollout": ref.name,
        "namespace": ref.namespace,
        "uid": ref.uid,
        "strategy": a.strategy,
        "phase": a.phase,
        "reason": a.reason,
        "message": a.message,
        "revision": a.revision,
        "stableRevision": a.stable_revision,
        "stepIndex": a.step_index,
        "stepCount": a.step_count,
        "weight": a.weight,
        "images": a.images,
    }
    if a.experiment is not None:
        custom["experiment"] = a.experiment
    return {
        "context": {
            "version": SPEC_VERSION,
            "id": event_id(a),
            "source": SOURCE,
            "type": event_type(a.kind),
            "timestamp": a.timestamp,
        },
        "subject": {
            "id": f"{ref.namespace}/{ref.name}",
            "source": SOURCE,
            "type": "service",
            "content": content,
        },
        "customData": custom,
        "customDataContentType": "application/json",
    }


def release_event_type(announcement: ReleaseAnnouncement) -> str:
    return f"dev.cdevents.{announcement.kind}.0.2.0"


def build_release(a: ReleaseAnnouncement, url: str) -> dict[str, Any]:
    """The CDEvent of a Release (`pipelinerun.*`: the plan as a whole) or of one of its stages
    (`taskrun.*`). Each Rollout's own workflow still sends its `service.*` events, so the
    pipeline sees both levels, each once. `url`: the Release's workflow in the Temporal UI."""
    pipeline = f"{a.release.namespace}/{a.release.name}"
    finished = {"outcome": a.outcome, **({"errors": a.errors} if a.errors else {})}
    if a.kind.startswith("pipelinerun."):
        subject_id, subject_type = a.workflow_id, "pipelineRun"
        content: dict[str, Any] = {"pipelineName": pipeline, "url": url}
    else:
        subject_id, subject_type = f"{a.workflow_id}/{a.stage}", "taskRun"
        content = {
            "taskName": a.stage,
            "url": url,
            "pipelineRun": {"id": a.workflow_id, "source": SOURCE},
        }
    if a.kind.endswith(".finished"):
        content.update(finished)
    return {
        "context": {
            "version": SPEC_VERSION,
            "id": str(uuid.uuid5(_EVENT_IDS, f"{a.transition_id}/{a.kind}")),
            "source": SOURCE,
            "type": release_event_type(a),
            "timestamp": a.timestamp,
        },
        "subject": {"id": subject_id, "source": SOURCE, "type": subject_type, "content": content},
        "customData": {
            "release": a.release.name,
            "namespace": a.release.namespace,
            "uid": a.release.uid,
        },
        "customDataContentType": "application/json",
    }


def structured(cdevent: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """Headers and body of the structured-mode CloudEvent carrying `cdevent` as its data."""
    context = cdevent["context"]
    event = CloudEvent(
        {
            "specversion": "1.0",
            "id": context["id"],
            "source": context["source"],
            "type": context["type"],
            "subject": cdevent["subject"]["id"],
            "time": datetime.fromisoformat(context["timestamp"]),
            "datacontenttype": "application/json",
        },
        cdevent,
    )
    message = to_structured(event, JSONFormat())
    return dict(message.headers), message.body
