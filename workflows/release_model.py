"""The Release custom resource (`kulta.io/v1alpha1`): several Rollouts, possibly in several
clusters, shipped as one plan of stages.

A Release only edits the pod templates of the Rollouts it names and follows their status; each
Rollout's own workflow does the rollout. Like `workflows/model.py`, this module is the source of
the CRD (`make crd`) and is validated again by the workflow and by `kulta lint`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from workflows.model import describe_validation_error
from workflows.spec_types import DNS_LABEL, Duration, Model, ResourceName

RELEASE_KIND = "Release"
RELEASE_PLURAL = "releases"
MAX_STAGES = 20
MAX_ROLLOUTS_PER_STAGE = 50

StageName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
ClusterName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]


class RolloutChange(Model):
    """One Rollout of a stage and the change of its pod template."""

    name: ResourceName = Field(
        description="A Rollout in the Release's namespace (of the stage's cluster)."
    )
    images: dict[str, Annotated[str, Field(min_length=1, max_length=1024)]] | None = Field(
        default=None,
        description="New image by container name (containers not named keep theirs).",
    )
    template: dict[str, Any] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="A JSON merge patch (RFC 7386) applied to the Rollout's pod template.",
    )

    @model_validator(mode="after")
    def _one_change(self) -> RolloutChange:
        if (self.images is None) == (self.template is None):
            raise ValueError(
                f"images: give exactly one of images and template (Rollout {self.name})"
            )
        if self.images is not None and not self.images:
            raise ValueError(f"images: names no container (Rollout {self.name})")
        return self


class Gate(Model):
    """What must happen after a stage's Rollouts completed, before the stages after it start."""

    type: Literal["Automatic", "Soak", "Approval"] = "Automatic"
    duration: Duration | None = Field(
        default=None, description="Soak: how long the completed stage runs before the next starts."
    )

    @model_validator(mode="after")
    def _duration_for_soak(self) -> Gate:
        if (self.type == "Soak") != (self.duration is not None):
            raise ValueError("duration: a Soak gate needs a duration, and only a Soak gate has one")
        return self


class Stage(Model):
    name: StageName
    cluster: ClusterName | None = Field(
        default=None,
        description="The cluster (its kulta worker's KULTA_CLUSTER_NAME) whose Rollouts this "
        "stage changes; default: the Release's own cluster.",
    )
    after: Annotated[list[StageName], Field(max_length=MAX_STAGES)] | None = Field(
        default=None,
        description="Stages that must be done (completed and through their gate) first; "
        "default: the stage before this one ([] to start with the first).",
    )
    rollouts: Annotated[list[RolloutChange], Field(min_length=1, max_length=MAX_ROLLOUTS_PER_STAGE)]
    gate: Gate = Gate()


class FailurePolicy(Model):
    rollback: Literal["all", "failed-stage"] = Field(
        default="all",
        description="all: every Rollout this Release changed gets its previous template back, "
        "newest first; failed-stage: only the Rollouts of the stage that failed.",
    )


class ReleaseSpec(Model):
    stages: Annotated[list[Stage], Field(min_length=1, max_length=MAX_STAGES)]
    failure_policy: FailurePolicy = FailurePolicy()

    @model_validator(mode="after")
    def _a_plan(self) -> ReleaseSpec:
        names = [s.name for s in self.stages]
        seen: set[str] = set()
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"stages: stage name {stage.name!r} is used twice")
            seen.add(stage.name)
        targets: set[tuple[str | None, str]] = set()
        for stage in self.stages:
            for dependency in stage.after or []:
                if dependency not in names:
                    raise ValueError(
                        f"stages: stage {stage.name!r} is after unknown stage {dependency!r}"
                    )
            for change in stage.rollouts:
                target = (stage.cluster, change.name)
                if target in targets:
                    where = f" in cluster {stage.cluster}" if stage.cluster else ""
                    raise ValueError(f"stages: Rollout {change.name}{where} is named twice")
                targets.add(target)
        cycle = find_cycle(dependencies(self))
        if cycle:
            raise ValueError("stages: the stages' after form a cycle: " + " -> ".join(cycle))
        return self


def dependencies(spec: ReleaseSpec) -> dict[str, list[str]]:
    """Each stage's prerequisites, with the default (the stage before) filled in."""
    out: dict[str, list[str]] = {}
    for index, stage in enumerate(spec.stages):
        if stage.after is not None:
            out[stage.name] = list(stage.after)
        else:
            out[stage.name] = [spec.stages[index - 1].name] if index else []
    return out


def find_cycle(after: dict[str, list[str]]) -> list[str]:
    """A cycle of the dependency graph as a path (first stage repeated at the end), or []."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for dep in after.get(node, []):
            if state.get(dep) == "open":
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = "done"
        return []

    for node in after:
        if node not in state and (found := visit(node)):
            return found
    return []


class InvalidRelease(ValueError):
    """A Release spec kulta does not understand; the message names the fields."""


def parse_release_spec(raw: dict[str, Any]) -> ReleaseSpec:
    try:
        return ReleaseSpec.model_validate(raw)
    except ValidationError as err:
        raise InvalidRelease(describe_validation_error(err)) from None
