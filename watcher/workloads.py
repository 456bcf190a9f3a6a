"""The pod templates of Deployments, for Rollouts that take theirs from one
(`spec.workloadRef`): how a team migrates a Deployment without rewriting its manifest.

The watcher resolves the reference before deciding: the workflow receives a spec with the
Deployment's template in `template`, so the revision (the template's hash) changes when the
Deployment's template does, and every strategy runs unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from activities.adapters.kube import KubeClient
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


class DeploymentTemplates:
    """Every Deployment's pod template in the watched namespace(s), kept by list+watch."""

    def __init__(self, kube: KubeClient, namespace: str | None = None) -> None:
        self._list_watch = ListWatch(kube, DEPLOYMENTS.path(namespace))
        self._templates: dict[Key, dict[str, Any]] = {}
        self._listed = False

    @property
    def progressed_at(self) -> float:
        return self._list_watch.progressed_at

    @progressed_at.setter
    def progressed_at(self, value: float) -> None:
        self._list_watch.progressed_at = value

    def template(self, key: Key) -> dict[str, Any] | None:
        return self._templates.get(key)

    async def changes(self) -> AsyncIterator[Key | None]:
        """Yields None after each full listing (from then on `template` is current), and the
        key of each Deployment whose template changed, appeared or went away."""
        async for item in self._list_watch.follow():
            if isinstance(item, Listed):
                listed = {_key(d): _template(d) for d in item.items}
                changed = {
                    key
                    for key in listed.keys() | self._templates.keys()
                    if listed.get(key) != self._templates.get(key)
                }
                relisted, self._templates = self._listed, listed
                self._listed = True
                yield None
                for key in sorted(changed) if relisted else []:  # the first: nothing was decided
                    yield key
                continue
            key = _key(item.object)
            template = None if item.type == "DELETED" else _template(item.object)
            if template == self._templates.get(key):
                continue  # a status or scale change: the template is what it was
            if template is None:
                self._templates.pop(key, None)
            else:
                self._templates[key] = template
            yield key


def _key(deployment: dict[str, Any]) -> Key:
    meta = deployment.get("metadata") or {}
    return (meta.get("namespace", "default"), meta.get("name", ""))


def _template(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict((deployment.get("spec") or {}).get("template") or {})
