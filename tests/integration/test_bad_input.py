"""Bad input, on both gates: the API server's validation (the CRD's schema and CEL rules) and
kulta's own (the model). Fuzzed specs never make either fail in an unplanned way, anything kulta
accepts the API server accepts too, and hostile values the API server lets through are reported
on the Rollout with nothing mutated."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.errors import BadInput
from kulta.cli import lint_release, lint_rollout
from tests.support import builders
from tests.support.kube import Kube, path_of
from workflows.model import InvalidSpec, parse_spec

pytestmark = pytest.mark.cluster

HOSTILE = st.sampled_from(
    ["", "a'b", 'q"uote', "{brace}", "new\nline", "ünïcødé", "x" * 300, "-lead", "ok", "UPPER"]
)
NUMBERS = st.one_of(st.integers(-5, 150), st.sampled_from([10**6, "50", None, 12.5, True]))
DURATIONS = st.one_of(st.sampled_from(["1s", "5m", "1h30m", "0s", "5x", "", "-1m", "10"]), HOSTILE)
STEP = st.one_of(
    st.fixed_dictionaries({"setWeight": NUMBERS}),
    st.fixed_dictionaries({"pause": st.fixed_dictionaries({"duration": DURATIONS})}),
    st.fixed_dictionaries({"pause": st.just({})}),
    st.fixed_dictionaries({"setWeight": NUMBERS, "pause": st.just({})}),
    st.dictionaries(HOSTILE, NUMBERS, max_size=2),
)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """A canary Rollout, then a few fields replaced with fuzz."""
    rollout = builders.rollout("fuzz", replicas=2)
    spec = rollout["spec"]
    canary = spec["strategy"]["canary"]
    if draw(st.booleans()):
        canary["steps"] = draw(st.lists(STEP, max_size=6))
    if draw(st.booleans()):
        spec["replicas"] = draw(NUMBERS)
    if draw(st.booleans()):
        canary[draw(st.sampled_from(["stableService", "canaryService"]))] = draw(HOSTILE)
    if draw(st.booleans()):
        value = draw(HOSTILE)
        spec["selector"]["matchLabels"]["app"] = value
        spec["template"]["metadata"]["labels"]["app"] = value
    if draw(st.booleans()):
        canary["trafficRouting"] = {"gatewayAPI": {"httpRoute": draw(HOSTILE)}}
    if draw(st.booleans()):
        spec["strategy"][draw(st.sampled_from(["blueGreen", "simple", "bogus"]))] = {}
    return rollout


async def _api_accepts(kube: Kube, namespace: str, rollout: dict[str, Any]) -> tuple[bool, str]:
    """Whether the API server would store it (a dry run: nothing is written)."""
    try:
        await kube.client.create(path_of(rollout["kind"], namespace), rollout, dry_run=True)
    except BadInput as err:
        return False, str(err)
    return True, ""


def _kulta_accepts(rollout: dict[str, Any]) -> tuple[bool, str]:
    try:
        parse_spec(rollout["spec"])
    except InvalidSpec as err:  # the one way kulta says no; anything else fails the test
        assert str(err), "a refusal without a reason"
        return False, str(err)
    return True, ""


def _fuzzed(count: int) -> list[dict[str, Any]]:
    """`count` specs drawn by hypothesis (drawn first, then sent: the API calls are async, and
    hypothesis runs sync functions)."""
    drawn: list[dict[str, Any]] = []

    @settings(max_examples=count, deadline=None, database=None)
    @given(specs())
    def collect(rollout: dict[str, Any]) -> None:
        drawn.append(rollout)

    collect()
    return drawn


async def test_fuzzed_specs_through_both_gates(kube: Kube, namespace: str) -> None:
    seen = {"both": 0, "api only": 0, "neither": 0}
    for rollout in _fuzzed(200):
        api, api_reason = await _api_accepts(kube, namespace, copy.deepcopy(rollout))
        ours, our_reason = _kulta_accepts(rollout)
        assert api or not ours, (
            f"kulta accepts what the API server refuses ({api_reason}):\n{json.dumps(rollout)}"
        )
        assert lint_rollout(rollout) == ([] if ours else our_reason.split("; "))
        seen["both" if ours else ("api only" if api else "neither")] += 1
    # The fuzz reached every outcome, so the property above was tested on each.
    assert all(count > 0 for count in seen.values()), seen


async def test_ten_thousand_steps_are_refused_by_the_api_server(kube: Kube, namespace: str) -> None:
    rollout = builders.rollout("long", steps=[{"setWeight": 1}] * 10_000)
    api, reason = await _api_accepts(kube, namespace, rollout)
    assert not api and "100" in reason, reason
    assert any("at most 100 items" in p for p in lint_rollout(rollout))


BAD_MANIFESTS = sorted((Path(__file__).parent / "bad_manifests").glob("*.yaml"))


def _load(manifest: Path) -> tuple[dict[str, Any], str]:
    """The manifest, and the field it must be refused at (its `# refused-at:` comment)."""
    text = manifest.read_text()
    for line in text.splitlines():
        if line.startswith("# refused-at:"):
            return yaml.safe_load(text), line.split(":", 1)[1].strip()
    raise AssertionError(f"{manifest.name} says not where it must be refused")


@pytest.mark.parametrize("manifest", BAD_MANIFESTS, ids=lambda p: p.stem)
async def test_bad_manifests_are_refused_by_both_gates_at_their_field(
    kube: Kube, namespace: str, manifest: Path
) -> None:
    rollout, field = _load(manifest)  # e.g. spec.strategy.canary.canaryService
    api, reason = await _api_accepts(kube, namespace, copy.deepcopy(rollout))
    assert not api, f"the API server accepted {manifest.name}"
    assert field in reason, reason
    problems = lint_rollout(rollout) if rollout["kind"] == "Rollout" else lint_release(rollout)
    leaf = field.removeprefix("spec.strategy.").split(".", 1)[1]  # named within its strategy
    assert any(leaf in problem for problem in problems), problems
