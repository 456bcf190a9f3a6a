"""Every example manifest is accepted by the real API server and understood by kulta."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kulta.cli import lint_release, lint_rollout, lint_warnings
from tests.support.kube import Kube, path_of
from workflows.model import parse_spec

pytestmark = pytest.mark.cluster
EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
DOCS = {path.name: list(yaml.safe_load_all(path.read_text())) for path in EXAMPLES}


@pytest.mark.parametrize("name", sorted(DOCS))
async def test_example_applies_and_parses(kube: Kube, namespace: str, name: str) -> None:
    docs: list[dict[str, Any]] = DOCS[name]
    rollouts = [d for d in docs if d["kind"] == "Rollout"]
    assert len(rollouts) == 1
    parse_spec(rollouts[0]["spec"])
    for doc in docs:
        # Server-side validation (schema, CEL) without creating anything.
        await kube.client.create(path_of(doc["kind"], namespace), doc, dry_run=True)


def test_there_is_an_example_per_strategy() -> None:
    kinds = {
        next(iter(d["spec"]["strategy"]))
        for docs in DOCS.values()
        for d in docs
        if d["kind"] == "Rollout"
    }
    assert kinds == {"canary", "blueGreen", "abTesting", "simple"}


async def test_a_v1beta1_manifest_of_the_original_kulta_is_read_as_v1alpha1(
    kube: Kube, namespace: str
) -> None:
    """The original kulta served v1beta1: its manifests apply unchanged, with a deprecation
    warning, and kulta (which reads v1alpha1) sees the same object."""
    rollout = next(d for d in DOCS["canary.yaml"] if d["kind"] == "Rollout")
    seed = {**rollout, "apiVersion": "kulta.io/v1beta1"}
    beta = path_of("Rollout", namespace).replace("/v1alpha1/", "/v1beta1/")
    created = await kube.client.create(beta, seed)
    assert created["apiVersion"] == "kulta.io/v1beta1"
    name = rollout["metadata"]["name"]
    read = await kube.get("Rollout", namespace, name)  # kulta's version
    assert read["apiVersion"] == "kulta.io/v1alpha1" and read["spec"] == created["spec"]


SEED_MANIFESTS = {
    path.stem: yaml.safe_load(path.read_text())
    for path in sorted((Path(__file__).parent / "seed_manifests").glob("*.yaml"))
}


@pytest.mark.parametrize("name", sorted(SEED_MANIFESTS))
async def test_the_original_kultas_fields_are_accepted_with_warnings(
    kube: Kube, namespace: str, name: str
) -> None:
    rollout = SEED_MANIFESTS[name]
    beta = path_of("Rollout", namespace).replace("/v1alpha1/", "/v1beta1/")
    await kube.client.create(beta, rollout, dry_run=True)  # the API server accepts it
    assert lint_rollout(rollout) == []  # kulta too
    warnings = lint_warnings(rollout)
    assert warnings and all(": " in w for w in warnings), warnings


RELEASE_EXAMPLES = {
    path.name: [d for d in yaml.safe_load_all(path.read_text()) if d]
    for path in sorted(
        (Path(__file__).resolve().parents[2] / "examples" / "release").glob("*.yaml")
    )
}


@pytest.mark.parametrize("name", sorted(RELEASE_EXAMPLES))
async def test_the_release_example_applies_and_lints(kube: Kube, namespace: str, name: str) -> None:
    """`make demo STRATEGY=release`'s manifests: every document accepted by the API server,
    every Rollout and Release understood by kulta."""
    for doc in RELEASE_EXAMPLES[name]:
        await kube.client.create(path_of(doc["kind"], namespace), doc, dry_run=True)
        if doc["kind"] == "Rollout":
            assert lint_rollout(doc) == []
        if doc["kind"] == "Release":
            assert lint_release(doc) == []
