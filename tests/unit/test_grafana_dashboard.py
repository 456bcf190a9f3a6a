"""deploy/grafana/kulta-dashboard.json: well formed for Grafana's import, laid out without
overlaps, and naming only metrics kulta exports (their queries run against a real Prometheus in
tests/integration/test_grafana_dashboard.py)."""

from __future__ import annotations

from prometheus_client import REGISTRY

import activities.telemetry  # noqa: F401 - registers kulta's metrics
from tests.support.dashboard import KULTA_METRIC, dashboard, panels, queries


def _exported_names() -> set[str]:
    """Every sample name kulta's metrics are exported under (`_total`, `_bucket`, ...)."""
    names = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("kulta_"):
            continue
        base = family.name
        names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    return names


def test_it_imports_into_any_grafana_with_a_prometheus_datasource_picked_at_import() -> None:
    d = dashboard()
    assert d["uid"] == "kulta-overview" and d["title"] == "kulta"
    [variable] = d["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))


def test_panels_fit_the_grid_without_overlapping() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps at {(x, y)}"
                cells.add((x, y))


def test_every_metric_a_query_names_is_one_kulta_exports() -> None:
    exported = _exported_names()
    named = {m for _, expr in queries() for m in KULTA_METRIC.findall(expr)}
    assert named, "no kulta metric in the dashboard"
    assert named <= exported, sorted(named - exported)
    # And every kulta metric has a panel.
    assert {_family(n) for n in exported} <= {_family(n) for n in named}


def _family(sample_name: str) -> str:
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        sample_name = sample_name.removesuffix(suffix)
    return sample_name
