"""Config that rolls out like code (`spec.trackConfig`): the ConfigMaps (and, opted in too,
Secrets) a pod template references are replaced by immutable copies named by their content.

The watcher rewrites the template it hands to the workflow: each reference to a tracked object
points at `<name>-<digest>`, and an annotation lists the copies with their sources. A change to
a tracked object's data therefore changes the template, so the revision, and starts a rollout;
the old revision's pods keep the old copy, so a rollback restores the old config with the old
pods. The worker creates the copies beside the revision's ReplicaSet, owned by it (garbage
collected with it). Pure functions, shared by both.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from activities.naming import CONFIGMAPS, SECRETS, Resource, revision_of

JsonObject = dict[str, Any]
Kind = Literal["ConfigMap", "Secret"]
ANNOTATION_CONFIG_COPIES = "kulta.io/config-copies"
LABEL_CONFIG_SOURCE = "kulta.io/config-source"
# A volume name of a ConfigMap or Secret must be a DNS subdomain.
MAX_NAME = 253


@dataclass(frozen=True, order=True)
class ConfigRef:
    kind: Kind
    name: str


@dataclass(frozen=True)
class ConfigCopy:
    kind: Kind
    source: str
    name: str  # the copy's
    digest: str


def resource_of(kind: Kind) -> Resource:
    return CONFIGMAPS if kind == "ConfigMap" else SECRETS


def tracked_kinds(rollout: JsonObject) -> set[Kind]:
    """The kinds of config a Rollout tracks (`spec.trackConfig`)."""
    track = (rollout.get("spec") or {}).get("trackConfig") or {}
    if not isinstance(track, dict):
        return set()
    kinds: set[Kind] = set()
    if track.get("configMaps") is True:
        kinds.add("ConfigMap")
    if track.get("secrets") is True:
        kinds.add("Secret")
    return kinds


def data_digest(obj: JsonObject) -> str:
    """What a copy is named by: the object's data (and a Secret's type), key order aside."""
    content: JsonObject = {
        k: obj.get(k) for k in ("data", "binaryData", "stringData", "type") if k in obj
    }
    return revision_of(content)


def copy_name(source: str, digest: str) -> str:
    return f"{source[: MAX_NAME - len(digest) - 1]}-{digest}"


def referenced(template: JsonObject, kinds: set[Kind]) -> list[ConfigRef]:
    """The objects of `kinds` the pod template references, each once, in order."""
    found: set[ConfigRef] = set()
    for ref, _ in _references(template, kinds):
        found.add(ref)
    return sorted(found)


def with_copies(template: JsonObject, digests: dict[ConfigRef, str]) -> JsonObject:
    """A copy of the template whose references to the objects in `digests` name their copies,
    annotated with the copies it needs. References to other objects stay as they are."""
    out = copy.deepcopy(template)
    copies: dict[ConfigRef, ConfigCopy] = {}
    for ref, rename in _references(out, {r.kind for r in digests}):
        digest = digests.get(ref)
        if digest is None:
            continue
        made = ConfigCopy(ref.kind, ref.name, copy_name(ref.name, digest), digest)
        copies[ref] = made
        rename(made.name)
    if copies:
        meta = out.setdefault("metadata", {})
        annotations = meta.setdefault("annotations", {})
        annotations[ANNOTATION_CONFIG_COPIES] = json.dumps(
            [
                {"kind": c.kind, "source": c.source, "copy": c.name, "digest": c.digest}
                for c in (copies[r] for r in sorted(copies))
            ],
            separators=(",", ":"),
        )
    return out


def copies_in(template: JsonObject) -> list[ConfigCopy]:
    """The copies a (rewritten) template needs, from its annotation."""
    raw = ((template.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_CONFIG_COPIES)
    if not raw:
        return []
    return [ConfigCopy(c["kind"], c["source"], c["copy"], c["digest"]) for c in json.loads(raw)]


Rename = Callable[[str], None]


def _references(template: JsonObject, kinds: set[Kind]) -> Iterator[tuple[ConfigRef, Rename]]:
    """Every place the pod spec names a ConfigMap or Secret of `kinds`, with a way to rename
    it there: volumes (also projected), envFrom and env valueFrom of every container."""
    spec = template.get("spec") or {}
    for volume in spec.get("volumes") or []:
        yield from _named(volume.get("configMap"), "ConfigMap", "name", kinds)
        yield from _named(volume.get("secret"), "Secret", "secretName", kinds)
        for source in (volume.get("projected") or {}).get("sources") or []:
            yield from _named(source.get("configMap"), "ConfigMap", "name", kinds)
            yield from _named(source.get("secret"), "Secret", "name", kinds)
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            for env_from in container.get("envFrom") or []:
                yield from _named(env_from.get("configMapRef"), "ConfigMap", "name", kinds)
                yield from _named(env_from.get("secretRef"), "Secret", "name", kinds)
            for env in container.get("env") or []:
                value_from = env.get("valueFrom") or {}
                yield from _named(value_from.get("configMapKeyRef"), "ConfigMap", "name", kinds)
                yield from _named(value_from.get("secretKeyRef"), "Secret", "name", kinds)


def _named(
    holder: JsonObject | None, kind: Kind, field: str, kinds: set[Kind]
) -> Iterator[tuple[ConfigRef, Rename]]:
    if kind not in kinds or not isinstance(holder, dict) or not holder.get(field):
        return

    def rename(name: str) -> None:
        holder[field] = name

    yield ConfigRef(kind, str(holder[field])), rename
