"""Pod template edits a Release makes, as pure functions (workflow code uses them to compute
the template it writes, the activity to write only the difference)."""

from __future__ import annotations

import copy
from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def merge_diff(current: Any, wanted: Any) -> Any:
    """The RFC 7386 patch that turns `current` into `wanted` (`merge_patch`'s inverse)."""
    if not isinstance(current, dict) or not isinstance(wanted, dict):
        return copy.deepcopy(wanted)
    patch: dict[str, Any] = {key: None for key in current if key not in wanted}
    for key, value in wanted.items():
        if key not in current:
            patch[key] = copy.deepcopy(value)
        elif current[key] != value:
            patch[key] = merge_diff(current[key], value)
    return patch


def with_images(
    template: dict[str, Any], images: dict[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """The template with the named containers' (and init containers') images replaced, and the
    names that matched no container (a typo would otherwise ship nothing)."""
    out = copy.deepcopy(template)
    spec = out.setdefault("spec", {})
    found = set()
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if container.get("name") in images:
                container["image"] = images[container["name"]]
                found.add(container["name"])
    return out, sorted(set(images) - found)
