"""workloadRef: the model's two readings of a spec (as written, as resolved), and the source
that hands the watcher each Rollout with its Deployment's template and again when it changes.

The source test uses a fake client, named as such, to script the order of list and watch
events exactly; tests/integration/test_workload_ref.py runs the same on the real API server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from activities.adapters.kube import WatchEvent
from kulta.cli import lint_rollout
from tests.support.fake_listwatch import FakeListWatch
from watcher.source import Observed, RolloutSource
from watcher.workloads import DeploymentTemplates, with_template
from workflows.model import InvalidSpec, parse_spec

TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": "a:1"}]}}


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"simple": {}},
        **extra,
    }


def test_as_written_a_workload_ref_stands_for_the_template() -> None:
    written = spec(workloadRef={"name": "web"})
    assert parse_spec(written, resolved=False).workload_ref is not None
    assert (
        lint_rollout(
            {"apiVersion": "kulta.io/v1alpha1", "metadata": {"name": "x"}, "spec": written}
        )
        == []
    )


@pytest.mark.parametrize(
    "written",
    [spec(), spec(workloadRef={"name": "web"}, template=TEMPLATE)],
    ids=["neither", "both"],
)
def test_exactly_one_of_template_and_workload_ref(written: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.template: give exactly one of template and"):
        parse_spec(written, resolved=False)


def test_resolved_without_a_template_names_the_missing_deployment() -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.workloadRef: Deployment web not found"):
        parse_spec(spec(workloadRef={"name": "web"}))
    resolved = parse_spec(spec(workloadRef={"name": "web"}, template=TEMPLATE))
    assert resolved.template == TEMPLATE


def test_with_template_replaces_or_drops_the_template() -> None:
    rollout = {"metadata": {"name": "r"}, "spec": spec(workloadRef={"name": "web"}, template={})}
    assert with_template(rollout, TEMPLATE)["spec"]["template"] == TEMPLATE
    assert "template" not in with_template(rollout, None)["spec"]
    assert rollout["spec"]["template"] == {}  # the observed object is not changed


def deployment(name: str, image: str, rv: str) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": image}]}}
    return {
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv},
        "spec": {"replicas": 1, "template": template},
    }


def rollout(rv: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "r", "namespace": "ns", "uid": "u", "resourceVersion": rv},
        "spec": spec(workloadRef={"name": "web"}),
    }


def images(observed: Observed) -> str | None:
    template = observed.rollout["spec"].get("template")
    return None if template is None else template["spec"]["containers"][0]["image"]


async def test_the_source_resolves_and_re_observes_on_a_template_change() -> None:
    fake = FakeListWatch(
        {"deployments": [deployment("web", "a:1", "2")], "rollouts": [rollout("3")]}
    )
    source = RolloutSource(fake, "ns", templates=DeploymentTemplates(fake, "ns"))  # type: ignore[arg-type]
    seen = source.observe().__aiter__()
    assert images(await seen.__anext__()) == "a:1"  # resolved from the first listing

    # A scale change of the Deployment is not a template change: nothing to decide again.
    scaled = deployment("web", "a:1", "4")
    scaled["spec"]["replicas"] = 0
    await fake.events["deployments"].put(WatchEvent("MODIFIED", scaled))
    await fake.events["deployments"].put(WatchEvent("MODIFIED", deployment("web", "a:2", "5")))
    assert images(await asyncio.wait_for(seen.__anext__(), 5)) == "a:2"

    await fake.events["deployments"].put(WatchEvent("DELETED", deployment("web", "a:2", "6")))
    assert images(await asyncio.wait_for(seen.__anext__(), 5)) is None  # reported as missing
    await seen.aclose()  # type: ignore[attr-defined]
