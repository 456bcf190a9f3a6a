"""The committed CRD is what the model generates (regenerate with `make crd`)."""

from __future__ import annotations

from pathlib import Path

from kulta.crd import render

CRD = Path(__file__).resolve().parents[2] / "deploy" / "crd.yaml"


def test_committed_crd_is_current() -> None:
    assert CRD.read_text() == render(), "deploy/crd.yaml is stale: run `make crd`"
