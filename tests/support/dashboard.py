"""The Grafana dashboard shipped in deploy/grafana, read as the tests need it."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.kube import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "kulta-dashboard.json"
KULTA_METRIC = re.compile(r"\bkulta_[a-z_]+")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    """The panels that show data (rows left out)."""
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def queries() -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every target of every panel."""
    return [(p["title"], t["expr"]) for p in panels() for t in p["targets"]]
