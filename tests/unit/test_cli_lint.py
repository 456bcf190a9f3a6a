"""`kulta lint`: offline validation with the model's rules, every problem with its field path."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from kulta import cli

ROOT = Path(__file__).resolve().parents[2]
GOOD = """
apiVersion: kulta.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: example/web:v1}]}
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      steps: [{setWeight: 20}, {pause: {duration: 5m}}]
"""


def lint(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "rollout.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli.app, ["lint", str(path)])
    return result.exit_code, result.output


def test_every_example_passes() -> None:
    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.yaml"))
    result = CliRunner().invoke(cli.app, ["lint", *examples])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok") == len(examples)


def test_good_manifest(tmp_path: Path) -> None:
    assert lint(tmp_path, GOOD) == (0, f"{tmp_path}/rollout.yaml: Rollout web: ok\n")


def test_every_problem_is_named_with_its_path(tmp_path: Path) -> None:
    bad = (
        GOOD.replace("setWeight: 20", "setWeight: 120")
        .replace("duration: 5m", "duration: 5 minutes")
        .replace("{app: web}}\n  template", "{app: other}}\n  template")
    )
    code, output = lint(tmp_path, bad)
    assert code == 1
    assert (
        "spec.strategy.canary.steps[0].setWeight: Input should be less than or equal to 100"
        in output
    )
    assert "spec.strategy.canary.steps[1].pause.duration" in output


def test_selector_and_strategy_rules(tmp_path: Path) -> None:
    code, output = lint(
        tmp_path, GOOD.replace("{app: web}}\n  template", "{app: other}}\n  template")
    )
    assert code == 1 and "selector.matchLabels: app=other does not match" in output
    two = GOOD.replace("  strategy:\n", "  strategy:\n    simple: {}\n")
    code, output = lint(tmp_path, two)
    assert code == 1 and "spec.strategy" in output


def test_wrong_api_version_and_unreadable_file(tmp_path: Path) -> None:
    code, output = lint(tmp_path, GOOD.replace("kulta.io/v1alpha1", "kulta.io/v1"))
    assert code == 1 and "apiVersion: expected kulta.io/v1alpha1" in output
    code, output = lint(tmp_path, "spec: [unclosed\n")
    assert code == 1 and "cannot read" in output


def test_the_original_kultas_api_version_passes_with_a_warning(tmp_path: Path) -> None:
    code, output = lint(tmp_path, GOOD.replace("kulta.io/v1alpha1", "kulta.io/v1beta1"))
    assert code == 0, output
    assert "warning: apiVersion: kulta.io/v1beta1 is deprecated; use kulta.io/v1alpha1" in output
    assert ": ok" in output
