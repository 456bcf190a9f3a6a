"""What `kulta get`, `list` and `history` print: plain text (no colour, so it reads the same on
any terminal), from the Rollout's typed status. Pure, apart from reading the Temporal UI
address from the settings."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from activities.naming import LABEL_TEMPLATE_HASH
from activities.phases import TIMED_PAUSE
from activities.rollout_status import (
    AnalysisStatus,
    Decision,
    ExperimentStatus,
    RolloutStatus,
)
from kulta.settings import load as load_settings


def status_of(rollout: dict[str, Any]) -> RolloutStatus:
    """The Rollout's status as kulta wrote it; one that does not parse shows as unknown."""
    try:
        return RolloutStatus.model_validate(rollout.get("status") or {})
    except ValidationError as err:
        return RolloutStatus(message=f"status not readable: {err.error_count()} problems")


def situation(status: RolloutStatus, now: datetime) -> str:
    """The phase, with a running timed pause told apart."""
    phase = status.phase or "Pending"
    ends = status.pause_end_time
    if phase == "Progressing" and ends and datetime.fromisoformat(ends) > now:
        return TIMED_PAUSE
    return phase


def workflow_url(workflow_id: str) -> str:
    """The Temporal UI page of a workflow (TEMPORAL_UI_URL, TEMPORAL_NAMESPACE)."""
    settings = load_settings()
    quoted = urllib.parse.quote(workflow_id, safe="")
    base = settings.temporal_ui_url.rstrip("/")
    return f"{base}/namespaces/{settings.temporal_namespace}/workflows/{quoted}"


def _shown(value: object) -> str:
    return "-" if value is None else str(value)


def _step(status: RolloutStatus) -> str:
    step, total = status.current_step_index, status.step_count
    return f"{min(step + 1, total)}/{total}" if step is not None and total else "-"


def _strategy(rollout: dict[str, Any], unknown: str) -> str:
    return str(next(iter((rollout.get("spec") or {}).get("strategy") or {unknown: None})))


def render(
    rollout: dict[str, Any],
    replicasets: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> str:
    """A summary of one Rollout; with `replicasets`, a line per revision: role, image, ready /
    desired pods."""
    meta, spec, status = rollout["metadata"], rollout.get("spec", {}), status_of(rollout)
    fields = [
        ("Name", f"{meta['namespace']}/{meta['name']}"),
        ("Strategy", _strategy(rollout, "?")),
        ("Phase", f"{status.phase or '-'}  {status.message or ''}".rstrip()),
        ("Step", _step(status)),
        ("Weight", _shown(status.current_weight)),
        (
            "Replicas",
            f"{status.available_replicas or 0} available / {spec.get('replicas', '-')} desired",
        ),
        ("Stable", _shown(status.stable_revision)),
        ("Canary", _shown(status.canary_revision)),
        ("Workflow", _shown(status.workflow_id)),
    ]
    if status.workflow_id:
        fields.append(("Temporal UI", workflow_url(status.workflow_id)))
    pause = _pause_line(status, now or datetime.now(UTC))
    if pause:
        fields.insert(3, ("Pause", pause))
    lines = [f"{label + ':':<12} {value}" for label, value in fields]
    lines += _revision_lines(status, replicasets)
    lines += _analysis_lines(status.analysis)
    lines += _experiment_lines(status.experiment)
    if status.decisions:
        lines.append("Decisions:")
        lines += [f"  {d.time}  {d.action:<15} {d.reason}" for d in status.decisions[-5:]]
    return "\n".join(lines)


def _pause_line(status: RolloutStatus, now: datetime) -> str:
    started, ends = status.pause_start_time, status.pause_end_time
    if not started:
        return ""
    if not ends:
        return f"waiting for promotion since {started} (kulta promote)"
    left = round((datetime.fromisoformat(ends) - now).total_seconds())
    if left <= 0:
        return f"ended {ends}"
    return f"{format_seconds(left)} left (ends {ends})"


def format_seconds(seconds: int) -> str:
    """90 -> "1m30s", 3600 -> "1h0m0s", 5 -> "5s"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _revision_lines(status: RolloutStatus, replicasets: list[dict[str, Any]] | None) -> list[str]:
    if not replicasets:
        return []
    roles = {status.stable_revision: "stable", status.canary_revision: "canary"}
    rows = []
    for rs in sorted(replicasets, key=lambda r: r["metadata"].get("creationTimestamp", "")):
        revision = rs["metadata"].get("labels", {}).get(LABEL_TEMPLATE_HASH, "?")
        containers = rs.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        image = ",".join(c.get("image", "?") for c in containers) or "-"
        ready = rs.get("status", {}).get("readyReplicas") or 0
        desired = rs.get("spec", {}).get("replicas") or 0
        role = roles.get(revision, "old")
        rows.append(f"  {role:<7} {revision:<11} {image:<28} {ready}/{desired} ready")
    return ["Revisions:", *rows]


def _analysis_lines(analysis: AnalysisStatus | None) -> list[str]:
    """The latest measurement of each metric: verdict, value and the message naming its bound."""
    if analysis is None:
        return []
    lines = [
        f"  {metric.name:<16} {metric.measurements[-1].verdict:<12} "
        f"{metric.measurements[-1].message}"
        for metric in [*analysis.metrics, *analysis.inline]
        if metric.measurements
    ]
    return ["Analysis:", *lines] if lines else []


def _experiment_lines(experiment: ExperimentStatus | None) -> list[str]:
    if experiment is None:
        return []
    concluded = " (concluded)" if experiment.concluded else ""
    lines = [
        f"Experiment:  {experiment.measurements} measurements, winner "
        f"{experiment.winner or '-'}{concluded}"
    ]
    for m in experiment.metrics:
        lines.append(
            f"  {m.name:<16} A {m.rate_a:.4f} ({m.samples_a})  B {m.rate_b:.4f} "
            f"({m.samples_b})  p={m.p_value:.4g}{'  significant' if m.significant else ''}"
        )
    return lines


def render_list(rollouts: list[dict[str, Any]]) -> str:
    header = ("NAMESPACE", "NAME", "STRATEGY", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY")
    rows = [header]
    for r in rollouts:
        status = status_of(r)
        rows.append(
            (
                r["metadata"]["namespace"],
                r["metadata"]["name"],
                _strategy(r, "-"),
                status.phase or "-",
                _step(status),
                _shown(status.current_weight),
                status.stable_revision or "-",
                status.canary_revision or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def render_history(decisions: list[Decision]) -> str:
    lines = []
    for d in decisions:
        step = "-" if d.step is None else str(d.step + 1)
        lines.append(f"{d.time}  step {step:<3} {d.action:<18} {d.reason}")
    return "\n".join(lines) or "no decisions yet"
