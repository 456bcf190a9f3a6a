"""Logging for kulta's processes: text for people, or one JSON object per line for pipelines.

JSON lines carry the rollout's namespace, name, revision and workflow id whenever the record
comes from an activity or a workflow (Temporal's loggers attach their info to the record, and
kulta's workflow ids spell out the rollout: `rollout/<namespace>/<name>/<revision>.<uid>`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from activities.naming import WORKFLOW_ID_PREFIX

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(rollout_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def rollout_fields(record: logging.LogRecord) -> dict[str, str]:
    """namespace, rollout, revision and workflowId of the record, where it has them."""
    info = getattr(record, "temporal_activity", None) or getattr(record, "temporal_workflow", None)
    workflow_id = str((info or {}).get("workflow_id") or getattr(record, "workflow_id", "") or "")
    fields: dict[str, str] = {}
    if workflow_id:
        fields["workflowId"] = workflow_id
        parts = workflow_id.removeprefix(WORKFLOW_ID_PREFIX).split("/")
        if workflow_id.startswith(WORKFLOW_ID_PREFIX) and len(parts) == 3:
            fields["namespace"], fields["rollout"] = parts[0], parts[1]
            fields["revision"] = parts[2].split(".")[0]
    for key in ("namespace", "rollout", "revision"):
        value = getattr(record, key, None)
        if value is not None:
            fields[key] = str(value)
    return fields


def configure(
    log_format: Literal["text", "json"],
    level: Literal["debug", "info", "warning", "error"] = "info",
) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request at INFO: thousands of lines a minute, and the probes' every 5 s.
    # kulta's own lines say what was done; the request counts are in kulta_kube_requests_total.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
