"""The building blocks of the Rollout spec: the base model (camelCase, strict, unknown fields
rejected) and the constrained types the spec's fields share. Pure."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from workflows.durations import DURATION_PATTERN, parse_duration

MAX_METRICS = 20
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, max_length=64),
    AfterValidator(_check_duration),
]
ServiceName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
ResourceName = Annotated[str, Field(min_length=1, max_length=253)]
Port = Annotated[int, Field(ge=1, le=65535)]
Weight = Annotated[int, Field(ge=0, le=100)]


def _check_int_or_percent(value: int | str) -> int | str:
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,3}%", value) and int(value[:-1]) <= 100:
        return value
    raise ValueError(f"{value!r} is not a pod count or a percentage such as 25%")


# A pod count or a percentage of replicas, as in a Deployment's rolling update.
IntOrPercent = Annotated[int | str, AfterValidator(_check_int_or_percent)]


class Model(BaseModel):
    """Base for spec models: camelCase on the wire, unknown fields rejected, and types strict
    as in the CRD's schema ("50" is not an integer), so `kulta lint` and the API server agree."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True, strict=True
    )


class LabelSelectorRequirement(Model):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


# Kubernetes label syntax: kulta copies the selector onto ReplicaSets and pod templates, where
# the API server would refuse a bad label only after the rollout had started.
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def label_problem(key: str, value: str) -> str | None:
    """Why `key: value` is not a valid Kubernetes label, or None."""
    prefix, _, name = key.rpartition("/")
    if (prefix and not _LABEL_PREFIX.match(prefix)) or not _LABEL_NAME.match(name):
        return f"label key {key!r} is not a valid label name"
    if not _LABEL_VALUE.match(value):
        return f"label value {value!r} of {key!r} is not a valid label value"
    return None


class LabelSelector(Model):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None

    def as_string(self) -> str:
        """The selector as the API server writes one (`app=shop,track in (a,b),!legacy`): what
        a scale subresource's `labelSelectorPath` must point at."""
        parts = [f"{key}={value}" for key, value in sorted((self.match_labels or {}).items())]
        for expression in self.match_expressions or []:
            values = ",".join(sorted(expression.values or []))
            parts.append(
                {
                    "In": f"{expression.key} in ({values})",
                    "NotIn": f"{expression.key} notin ({values})",
                    "Exists": expression.key,
                    "DoesNotExist": f"!{expression.key}",
                }[expression.operator]
            )
        return ",".join(parts)

    @model_validator(mode="after")
    def _valid_labels(self) -> LabelSelector:
        for key, value in (self.match_labels or {}).items():
            problem = label_problem(key, value)
            if problem is not None:
                raise ValueError(problem)
        return self
