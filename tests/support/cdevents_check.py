"""A test oracle for kulta's CDEvents: the required fields and fixed values of the service
events (not a JSON Schema engine). Lives with the tests: product code never checks its own
events this way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from activities.cdevents import REQUIRED_CONTENT, event_type


def problems(cdevent: dict[str, Any]) -> list[str]:
    """What the spec requires and `cdevent` lacks; empty when it conforms. kulta's own check of
    the required fields and fixed values of the service events (not a JSON Schema engine)."""
    found: list[str] = []
    context, subject = cdevent.get("context") or {}, cdevent.get("subject") or {}
    for key in ("version", "id", "source", "type", "timestamp"):
        if not isinstance(context.get(key), str) or not context[key]:
            found.append(f"context.{key} is missing or empty")
    kind = str(context.get("type", "")).removeprefix("dev.cdevents.service.").split(".")[0]
    if kind not in REQUIRED_CONTENT or context.get("type") != event_type(kind):
        found.append(f"context.type {context.get('type')!r} is not a service event of 0.2.0")
        return found
    try:
        datetime.fromisoformat(str(context.get("timestamp")))
    except ValueError:
        found.append("context.timestamp is not RFC 3339")
    for key in ("id", "type", "content"):
        if not subject.get(key):
            found.append(f"subject.{key} is missing or empty")
    if subject.get("type") != "service":
        found.append("subject.type must be 'service'")
    content = subject.get("content") or {}
    for key in REQUIRED_CONTENT[kind]:
        if not content.get(key):
            found.append(f"subject.content.{key} is required for {kind}")
    if "environment" in content and not (content["environment"] or {}).get("id"):
        found.append("subject.content.environment.id is required")
    extra = set(cdevent) - {"context", "subject", "customData", "customDataContentType"}
    found.extend(f"unexpected top-level field {key!r}" for key in sorted(extra))
    return found
