"""Which edits of a Rollout's spec a running revision can take.

Most fields apply from the run's next step (steps, analysis, replicas, pauses, delays,
auto-promotion). The fields below are the run's frame: once the revision has pods, its Services
select them and the route names those Services, so changing them mid-rollout would strand
traffic on objects the run no longer knows. Such an edit is deferred: it applies when the
revision is stable (the stable revision's run sets the new frame up) or at a retry after a
rollback. Before the revision has pods, nothing depends on the frame, and the run starts over
with the edit. Pure code, shared by the workflow and its tests.
"""

from __future__ import annotations

from typing import Any

from workflows.model import RolloutSpec

# Per strategy kind: the fields (wire names, under spec.strategy.<kind>) that frame a revision.
FRAME_FIELDS: dict[str, tuple[str, ...]] = {
    "canary": ("stableService", "canaryService", "trafficRouting"),
    "blueGreen": ("activeService", "previewService", "trafficRouting"),
    "abTesting": ("variantAService", "variantBService", "trafficRouting", "variantBMatch"),
    "simple": (),
}


def frame_changes(before: RolloutSpec, after: RolloutSpec) -> list[str]:
    """The frame fields `after` changes, as spec paths (empty: the edit can apply mid-run)."""
    kind = before.strategy.kind
    if after.strategy.kind != kind:
        return [f"spec.strategy (from {kind} to {after.strategy.kind})"]
    changed = []
    if _wire(before.selector) != _wire(after.selector):
        changed.append("spec.selector")
    old, new = _wire(before.strategy)[kind], _wire(after.strategy)[kind]
    for field in FRAME_FIELDS[kind]:
        if old.get(field) != new.get(field):
            changed.append(f"spec.strategy.{kind}.{field}")
    return changed


def _wire(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True)
    return dumped
