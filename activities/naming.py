"""Names that running histories and clusters depend on: revisions, workflow ids, labels.

Changing anything here changes which workflow and ReplicaSet a Rollout maps to: treat it as an API.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

TASK_QUEUE = "kulta"
WORKFLOW_NAME = "Rollout"
ROLLOUT_API_VERSION = "kulta.io/v1alpha1"
# The original kulta's version, served with the same schema for its manifests (deprecated).
SEED_ROLLOUT_API_VERSION = "kulta.io/v1beta1"


def api_path(
    api_version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """`/api/v1/namespaces/ns/services/x` or `/apis/group/v1/...` for a resource."""
    base = "/api/" + api_version if "/" not in api_version else "/apis/" + api_version
    parts = [base]
    if namespace is not None:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name is not None:
        parts.append(name)
    if subresource is not None:
        parts.append(subresource)
    return "/".join(parts)


@dataclass(frozen=True)
class Resource:
    """A Kubernetes resource type kulta reads or writes: its API version and plural."""

    kind: str
    api_version: str
    plural: str

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        return api_path(self.api_version, self.plural, namespace, name, subresource)

    @property
    def group(self) -> str:
        """The API group ("" for the core group)."""
        return self.api_version.rpartition("/")[0]


ROLLOUTS = Resource("Rollout", ROLLOUT_API_VERSION, "rollouts")
RELEASES = Resource("Release", ROLLOUT_API_VERSION, "releases")
REPLICASETS = Resource("ReplicaSet", "apps/v1", "replicasets")
DEPLOYMENTS = Resource("Deployment", "apps/v1", "deployments")
CONFIGMAPS = Resource("ConfigMap", "v1", "configmaps")
SECRETS = Resource("Secret", "v1", "secrets")
SERVICES = Resource("Service", "v1", "services")
HTTPROUTES = Resource("HTTPRoute", "gateway.networking.k8s.io/v1", "httproutes")
REFERENCE_GRANTS = Resource(
    "ReferenceGrant", "gateway.networking.k8s.io/v1beta1", "referencegrants"
)
EVENTS = Resource("Event", "v1", "events")
LEASES = Resource("Lease", "coordination.k8s.io/v1", "leases")
NAMESPACES = Resource("Namespace", "v1", "namespaces")
RESOURCES: dict[str, Resource] = {
    r.kind: r
    for r in (
        ROLLOUTS,
        RELEASES,
        REPLICASETS,
        DEPLOYMENTS,
        CONFIGMAPS,
        SECRETS,
        SERVICES,
        HTTPROUTES,
        REFERENCE_GRANTS,
        EVENTS,
        LEASES,
        NAMESPACES,
    )
}

# Custom search attributes (Keyword), registered on the Temporal namespace at worker start.
SA_ROLLOUT = "KultaRollout"
SA_NAMESPACE = "KultaNamespace"
SA_STRATEGY = "KultaStrategy"
SA_PHASE = "KultaPhase"
# `<namespace>/<name>` of the Release: on the Release's workflow and on the workflows of the
# Rollouts it changed, so one query (`KultaRelease = "shop/checkout"`) shows all of them.
SA_RELEASE = "KultaRelease"
SEARCH_ATTRIBUTES = (SA_ROLLOUT, SA_NAMESPACE, SA_STRATEGY, SA_PHASE, SA_RELEASE)

LABEL_TEMPLATE_HASH = "pod-template-hash"
# Steering by annotation: the watcher turns each into a signal and removes it once delivered.
# The same steering as the signals, as validated updates: the caller learns at once whether the
# workflow accepted it, and why not (`kulta promote` and friends use these when Temporal is
# reachable; annotations, through the watcher, use the signals).
UPDATE_PROMOTE = "steer-promote"
UPDATE_ABORT = "steer-abort"
UPDATE_RETRY = "steer-retry"
UPDATE_CONCLUDE = "steer-conclude"

ANNOTATION_PROMOTE = "kulta.io/promote"
ANNOTATION_ABORT = "kulta.io/abort"
ANNOTATION_RETRY = "kulta.io/retry"
ANNOTATION_CONCLUDE = "kulta.io/conclude-experiment"
ANNOTATION_RESUME = "kulta.io/resume"  # resumes a pause kulta itself chose (analysis)
# On each ReplicaSet: the Rollout generation that last ran it, so old revisions are ordered by
# use (a revert makes an old one the newest), not by creation's one-second timestamps.
ANNOTATION_GENERATION = "rollouts.kulta.io/generation"
LABEL_MANAGED = "rollouts.kulta.io/managed"
# On a Rollout while a Release changes it: `<cluster>/<namespace>/<release>`. A second Release
# that names the Rollout is refused with this owner; the owner removes it when it ends.
ANNOTATION_RELEASE = "kulta.io/release"
# On a Release: approves the named stage's gate (`kulta release approve`).
ANNOTATION_APPROVE = "kulta.io/approve"
LABEL_ROLLOUT = "rollouts.kulta.io/rollout"

# Alphabet without vowels, so a hash never spells a word (the same idea as Kubernetes' own).
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def revision_of(template: dict[str, Any]) -> str:
    """A stable 10-character hash of a pod template, independent of key order."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    number = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        number, rest = divmod(number, len(_SAFE))
        chars.append(_SAFE[rest])
    return "".join(chars)


WORKFLOW_ID_PREFIX = "rollout/"


def workflow_id(namespace: str, name: str, uid: str, revision: str) -> str:
    """`rollout/<ns>/<name>/<revision>.<uid prefix>`; the uid keeps a re-created Rollout apart."""
    return f"{WORKFLOW_ID_PREFIX}{namespace}/{name}/{revision}.{uid[:8]}"


def parse_workflow_id(workflow_id: str) -> tuple[str, str, str] | None:
    """(namespace, name, uid prefix) of the Rollout a `workflow_id` names, or None."""
    return _parse_id(WORKFLOW_ID_PREFIX, workflow_id)


def _parse_id(prefix: str, workflow_id: str) -> tuple[str, str, str] | None:
    """`<prefix><ns>/<name>/<anything>.<uid prefix>` -> (ns, name, uid prefix)."""
    if not workflow_id.startswith(prefix):
        return None
    parts = workflow_id.removeprefix(prefix).split("/")
    if len(parts) != 3 or "." not in parts[2]:
        return None
    return parts[0], parts[1], parts[2].rsplit(".", 1)[1]


def parse_revision(workflow_id: str) -> str | None:
    """The revision a Rollout workflow id names, or None."""
    if not workflow_id.startswith(WORKFLOW_ID_PREFIX):
        return None
    last = workflow_id.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[0] if "." in last else None


def replicaset_name(rollout: str, revision: str) -> str:
    return f"{rollout}-{revision}"


RELEASE_WORKFLOW_NAME = "Release"
RELEASE_WORKFLOW_ID_PREFIX = "release/"


def release_workflow_id(namespace: str, name: str, uid: str, generation: int) -> str:
    """`release/<ns>/<name>/<generation>.<uid prefix>`: one run per generation of a Release."""
    return f"{RELEASE_WORKFLOW_ID_PREFIX}{namespace}/{name}/{generation}.{uid[:8]}"


def cluster_task_queue(cluster: str) -> str:
    """The task queue on which the worker of cluster `cluster` (its KULTA_CLUSTER_NAME) takes
    the activities a Release in another cluster asks of it."""
    return f"kulta-cluster-{cluster}"


def parse_release_workflow_id(workflow_id: str) -> tuple[str, str, str] | None:
    """(namespace, name, uid prefix) of the Release a `release_workflow_id` names, or None."""
    return _parse_id(RELEASE_WORKFLOW_ID_PREFIX, workflow_id)
