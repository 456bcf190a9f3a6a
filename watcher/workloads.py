"""What Rollouts reference and the watcher resolves before deciding: the pod templates of
Deployments, for Rollouts that take theirs from one (`spec.workloadRef`: how a team migrates a
Deployment without rewriting its manifest), and the data digests of the ConfigMaps and Secrets
that Rollouts tracking their config reference (`spec.trackConfig`).

The watcher resolves the reference before deciding: the workflow receives a spec with the
Deployment's template in `template`, so the revision (the template's hash) changes when the
Deployment's template does, and every strategy runs unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from activities.adapters.kube import KubeClient
from activities.config_copies import (
    ConfigRef,
    Kind,
    data_digest,
    referenced,
    resource_of,
    tracked_kinds,
    with_copies,
)
from activities.naming import DEPLOYMENTS
from watcher.listwatch import Listed, ListWatch

Key = tuple[str, str]  # (namespace, name)


def referenced_deployment(rollout: dict[str, Any]) -> Key | None:
    """The Deployment a Rollout takes its template from (None: it has its own)."""
    ref = (rollout.get("spec") or {}).get("workloadRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    return ((rollout.get("metadata") or {}).get("namespace", "default"), str(ref["name"]))


def with_template(rollout: dict[str, Any], template: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of `rollout` whose spec carries `template` (None: the Deployment is missing, so
    the spec has none and the workflow reports it)."""
    spec = {k: v for k, v in (rollout.get("spec") or {}).items() if k != "template"}
    if template is not None:
        spec["template"] = template
    return {**rollout, "spec": spec}


def with_config(
    rollout: dict[str, Any], digests: list[DataDigests]
) -> tuple[dict[str, Any], set[tuple[Kind, Key]]]:
    """A copy of `rollout` whose template names content-named copies of the config it tracks
    (`activities/config_copies.py`), and every config object it references (so that a change
    of any of them decides it again). An object not found keeps its reference as it is."""
    kinds = tracked_kinds(rollout)
    spec = rollout.get("spec") or {}
    template = spec.get("template")
    if not kinds or not isinstance(template, dict):
        return rollout, set()
    namespace = (rollout.get("metadata") or {}).get("namespace", "default")
    found: dict[ConfigRef, str] = {}
    watched: set[tuple[Kind, Key]] = set()
    for source in digests:
        if source.kind not in kinds:
            continue
        for ref in referenced(template, {source.kind}):
            key = (namespace, ref.name)
            watched.add((source.kind, key))
            digest = source.get(key)
            if digest is not None:
                found[ref] = digest
    if not found:
        return rollout, watched
    return {**rollout, "spec": {**spec, "template": with_copies(template, found)}}, watched


class Projected:
    """One projection of every object of a kind in the watched namespace(s) (a Deployment's
    pod template, a ConfigMap's data digest), kept by list+watch; only the projection is held.
    """

    def __init__(
        self,
        kube: KubeClient,
        path: str,
        project: Callable[[dict[str, Any]], Any],
        describe: str,
    ) -> None:
        self.describe = describe  # what it lists, for the logs
        self._list_watch = ListWatch(kube, path)
        self._project = project
        self._values: dict[Key, Any] = {}
        self._listed = False

    @property
    def progressed_at(self) -> float:
        return self._list_watch.progressed_at

    @progressed_at.setter
    def progressed_at(self, value: float) -> None:
        self._list_watch.progressed_at = value

    def get(self, key: Key) -> Any:
        return self._values.get(key)

    async def changes(self) -> AsyncIterator[Key | None]:
        """Yields None after each full listing (from then on `get` is current), and the key
        of each object whose projection changed, appeared or went away."""
        async for item in self._list_watch.follow():
            if isinstance(item, Listed):
                listed = {_key(d): self._project(d) for d in item.items}
                changed = {
                    key
                    for key in listed.keys() | self._values.keys()
                    if listed.get(key) != self._values.get(key)
                }
                relisted, self._values = self._listed, listed
                self._listed = True
                yield None
                for key in sorted(changed) if relisted else []:  # the first: nothing was decided
                    yield key
                continue
            key = _key(item.object)
            value = None if item.type == "DELETED" else self._project(item.object)
            if value == self._values.get(key):
                continue  # a change of something else (status, scale, labels)
            if value is None:
                self._values.pop(key, None)
            else:
                self._values[key] = value
            yield key


class DeploymentTemplates(Projected):
    """Every Deployment's pod template in the watched namespace(s)."""

    def __init__(self, kube: KubeClient, namespace: str | None = None) -> None:
        super().__init__(kube, DEPLOYMENTS.path(namespace), _template, "Deployments")

    def template(self, key: Key) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.get(key)
        return found


class DataDigests(Projected):
    """The data digest (`activities/config_copies.data_digest`) of every ConfigMap or Secret
    in the watched namespace(s), for Rollouts that track their config (`spec.trackConfig`)."""

    def __init__(self, kube: KubeClient, kind: Kind, namespace: str | None = None) -> None:
        super().__init__(kube, resource_of(kind).path(namespace), data_digest, f"{kind}s")
        self.kind: Kind = kind


def _key(deployment: dict[str, Any]) -> Key:
    meta = deployment.get("metadata") or {}
    return (meta.get("namespace", "default"), meta.get("name", ""))


def _template(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict((deployment.get("spec") or {}).get("template") or {})
