"""A test oracle for kulta's CDEvents: every event validated against the official v0.4.1 JSON
schemas (`tests/data/cdevents-v0.4.1/`, with their `links` schemas resolved), plus kulta's own
reading of the required fields and fixed values. Lives with the tests: product code never
checks its own events this way."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from activities.cdevents import REQUIRED_CONTENT, event_type

SCHEMAS = Path(__file__).parent.parent / "data" / "cdevents-v0.4.1"


@cache
def _validator(name: str) -> Draft202012Validator:
    documents = [json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("**/*.json"))]
    registry: Registry[Any] = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in documents
    )
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    return Draft202012Validator(schema, registry=registry)


def schema_problems(cdevent: dict[str, Any]) -> list[str]:
    """Where `cdevent` breaks its type's official schema (empty when it validates): the schema
    of `dev.cdevents.<subject>.<predicate>.<version>` is `<subject><predicate>.json`."""
    parts = str((cdevent.get("context") or {}).get("type", "")).split(".")
    name = "".join(parts[2:4])
    if len(parts) < 5 or not (SCHEMAS / f"{name}.json").exists():
        return [f"no official schema for {'.'.join(parts)}"]
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(event)'}: {error.message}"
        for error in _validator(name).iter_errors(cdevent)
    ]


def problems(cdevent: dict[str, Any]) -> list[str]:
    """What the spec requires and `cdevent` lacks or breaks; empty when it conforms: the
    official schema first, then kulta's own reading of the required fields and fixed values."""
    found: list[str] = schema_problems(cdevent)
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
