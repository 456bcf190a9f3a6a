"""deploy/argocd/rollout-health.lua, run in Lua 5.1 (Argo CD runs gopher-lua, a Lua 5.1) on
Rollouts as kulta writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "argocd"
SCRIPT = (DEPLOY / "rollout-health.lua").read_text()


def health(rollout: dict[str, Any]) -> tuple[str, str]:
    runtime = lua51.LuaRuntime()

    def table(value: Any) -> Any:
        if isinstance(value, dict):
            return runtime.table_from({k: table(v) for k, v in value.items()})
        return value

    runtime.globals().obj = table(rollout)
    result = runtime.execute(SCRIPT)
    return result["status"], result["message"]


def rollout(generation: int = 2, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "shop", "generation": generation}, "status": status or None}


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Completed", "Healthy"),
        ("Paused", "Suspended"),
        ("Failed", "Degraded"),
        ("Progressing", "Progressing"),
        ("Pending", "Progressing"),
    ],
)
def test_each_phase_maps_to_an_argo_cd_health(phase: str, expected: str) -> None:
    status, message = health(
        rollout(phase=phase, message=f"{phase} for a reason", observedGeneration=2)
    )
    assert (status, message) == (expected, f"{phase} for a reason")


def test_a_status_behind_the_latest_generation_is_progressing_not_healthy() -> None:
    # Right after a sync changed the template, the status still says the old revision is stable.
    status, message = health(
        rollout(3, phase="Completed", message="revision a is stable", observedGeneration=2)
    )
    assert status == "Progressing"
    assert message == "generation 3 is not applied yet: revision a is stable"


def test_a_rollout_kulta_has_not_seen_is_progressing() -> None:
    assert health(rollout())[0] == "Progressing"


def test_the_configmap_patch_carries_the_same_script() -> None:
    patch = yaml.safe_load((DEPLOY / "argocd-cm-patch.yaml").read_text())
    assert patch["data"]["resource.customizations.health.kulta.io_Rollout"] == SCRIPT
