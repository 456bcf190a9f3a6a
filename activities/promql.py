"""Filling PromQL templates with values a Rollout (or a cluster) controls.

A template names variables as `{{name}}`; each renders escaped for the inside of a PromQL
double-quoted string, so `service="{{service}}"` stays one label matcher whatever the Service is
called: no value can close the quotes, add a matcher, or start a new expression. `{{interval}}`
is a duration and renders as is (it is validated by the duration grammar first).
"""

from __future__ import annotations

import re

from activities.errors import BadInput

_VARIABLE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
# PromQL strings use Go's escapes; these are the characters that must not appear raw.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class TemplateError(BadInput):
    """A template names a variable kulta does not provide, or a value cannot be used."""


def escape(value: str) -> str:
    """`value` as the content of a PromQL double-quoted string."""
    return "".join(_ESCAPES.get(ch, ch) for ch in value)


def render(template: str, variables: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            known = ", ".join(sorted(variables))
            raise TemplateError(f"query uses {{{{{name}}}}}, but only {known} are available")
        value = variables[name]
        if name == "interval":
            if not _DURATION.match(value):
                raise TemplateError(f"interval {value!r} is not a PromQL duration")
            return value
        return escape(value)

    return _VARIABLE.sub(fill, template)
