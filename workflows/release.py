"""The workflow of one Release generation: claims every Rollout it names, ships the stages in
dependency order (each Rollout's template changed, then followed until its own workflow
finished), holds each stage's gate, and on a failure or an abort gives the Rollouts it changed
their previous templates back, newest first.

It never touches ReplicaSets, Services or routes: each Rollout's own workflow turns a template
change into a rollout, and a change back into a rollback (traffic first). Like a Rollout's
workflow, it never ends Failed in Temporal over a domain error: every outcome is a phase in the
Release's status. Deterministic workflow code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        EventSpec,
        ReleaseAnnouncement,
        ReleaseEventKind,
        RolloutRef,
    )
    from activities.naming import RELEASE_WORKFLOW_NAME
    from activities.release_contracts import (
        ApplyTemplateInput,
        ClaimMemberInput,
        FollowInput,
        MemberObservation,
        MemberRef,
        MemberTemplate,
        PromoteMemberInput,
        PublishReleaseStatusInput,
    )
    from activities.release_status import (
        ReleasePhase,
        ReleaseRolloutStatus,
        ReleaseStageStatus,
        ReleaseStatus,
    )
    from activities.rollout_status import Condition
    from activities.templates import merge_patch, with_images
    from workflows import options
    from workflows.durations import iso_time, parse_duration
    from workflows.release_effects import ReleaseEffects
    from workflows.release_messages import (
        QUERY_RELEASE_STATUS,
        SIGNAL_ABORT_RELEASE,
        SIGNAL_APPROVE,
        SIGNAL_RESUME_RELEASE,
        ApproveRequest,
        ReleaseAbortRequest,
        ReleaseOutcome,
        ReleaseStart,
    )
    from workflows.release_model import (
        InvalidRelease,
        ReleaseSpec,
        RolloutChange,
        Stage,
        dependencies,
        parse_release_spec,
    )
    from workflows.release_plan import ready_stages, release_phase, shipping_message, verdict
    from workflows.run import ActionFailed

# A Release waits for a cluster that is down (and says so) rather than giving up on it: the
# person who started it decides, with `kulta release abort`.
NEVER_GIVE_UP_SECONDS = 30 * 86400


class StageFailed(Exception):
    def __init__(self, stage: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.stage, self.reason, self.message = stage, reason, message


@dataclass
class Applied:
    """A Rollout this Release changed: what to give back on a rollback."""

    stage: str
    member: MemberRef
    before: MemberTemplate
    revision: str  # what the Rollout's template is now (the Release's, or a person's adopted)
    template: dict[str, object]


@workflow.defn(name=RELEASE_WORKFLOW_NAME)
class ReleaseWorkflow:
    def __init__(self) -> None:
        self._approved: set[str] = set()
        self._abort: str | None = None
        self._resumes = 0
        self._status = ReleaseStatus()
        self._dirty = False
        self._events: list[EventSpec] = []
        self._event_count = 0
        self._held: set[str] = set()  # members waiting for a resume after a hand edit
        self._applied: list[Applied] = []
        self._claimed: list[MemberRef] = []
        self._started_stages: list[str] = []
        self._closing = False
        self._sending: list[workflow.ActivityHandle[Any]] = []
        self._publisher: asyncio.Task[None] | None = None

    # -- steering ---------------------------------------------------------------------------
    @workflow.signal(name=SIGNAL_APPROVE)
    def approve(self, request: ApproveRequest) -> None:
        self._approved.add(request.stage)

    @workflow.signal(name=SIGNAL_ABORT_RELEASE)
    def abort(self, request: ReleaseAbortRequest) -> None:
        if self._abort is None:
            self._abort = request.reason

    @workflow.signal(name=SIGNAL_RESUME_RELEASE)
    def resume(self) -> None:
        self._resumes += 1

    @workflow.query(name=QUERY_RELEASE_STATUS)
    def status(self) -> ReleaseStatus:
        return self._status

    # -- the run ----------------------------------------------------------------------------
    @workflow.run
    async def run(self, start: ReleaseStart) -> ReleaseOutcome:
        self._start = start
        self._owner = f"{start.cluster}/{start.namespace}/{start.name}"
        self._effects = ReleaseEffects(start.cluster)
        self._effects.report_to(self)
        self._status = ReleaseStatus(
            phase="Pending",
            observed_generation=start.generation,
            workflow_id=workflow.info().workflow_id,
            started_at=iso_time(workflow.now()),
        )
        try:
            spec = parse_release_spec(start.spec)
        except InvalidRelease as err:
            return await self._finish("failed", "Failed", "InvalidSpec", str(err), warn=True)
        self._spec = spec
        self._status = self._status.model_copy(
            update={
                "stages": [
                    ReleaseStageStatus(
                        name=stage.name,
                        cluster=stage.cluster,
                        rollouts=[ReleaseRolloutStatus(name=c.name) for c in stage.rollouts],
                    )
                    for stage in spec.stages
                ]
            }
        )
        self._publisher = asyncio.create_task(self._publish_changes())
        try:
            return await self._ship(spec)
        except asyncio.CancelledError:
            # The Release was deleted: the Rollouts stay as they are, unclaimed.
            if self._publisher is not None:
                self._publisher.cancel()
            await self._unclaim_all()
            raise

    async def _ship(self, spec: ReleaseSpec) -> ReleaseOutcome:
        refused = await self._claim_all(spec) or await self._check_changes(spec)
        if refused is not None:
            reason, message = refused
            await self._unclaim_all()
            return await self._finish("failed", "Failed", reason, message, warn=True)
        self._set(phase="Progressing", reason="Shipping", message="claimed every Rollout")
        self._tell("ReleaseStarted", f"shipping {len(spec.stages)} stage(s)")
        self._announce("pipelinerun.started")
        failure = await self._run_stages(spec)
        if failure is None and self._abort is None:
            await self._unclaim_all()
            return await self._finish("completed", "Completed", "Shipped", "every stage completed")
        if self._abort is not None:
            why, reason = f"aborted: {self._abort}", "Aborted"
            reverting = self._applied
        else:
            assert failure is not None
            why, reason = f"stage {failure.stage} failed: {failure.message}", failure.reason
            reverting = (
                self._applied
                if spec.failure_policy.rollback == "all"
                else [a for a in self._applied if a.stage == failure.stage]
            )
        self._set(phase="RollingBack", reason=reason, message=f"{why}; rolling back")
        self._tell(reason, f"{why}; rolling back", warn=True)
        problems = await self._roll_back(self._newest_first(reverting))
        await self._unclaim_all()
        if problems:
            return await self._finish(
                "failed",
                "Failed",
                "RollbackIncomplete",
                f"{why}; rollback incomplete: " + "; ".join(problems),
                warn=True,
            )
        if self._abort is not None:
            return await self._finish(
                "aborted", "Aborted", "Aborted", f"{why}; every changed Rollout is back", warn=True
            )
        return await self._finish(
            "rolled-back",
            "RolledBack",
            reason,
            f"{why}; {len(reverting)} Rollout(s) back on their previous revision",
            warn=True,
        )

    # -- claims -----------------------------------------------------------------------------
    def _members(self, spec: ReleaseSpec) -> list[tuple[Stage, RolloutChange, MemberRef]]:
        return [
            (stage, change, self._member(stage, change))
            for stage in spec.stages
            for change in stage.rollouts
        ]

    def _member(self, stage: Stage, change: RolloutChange) -> MemberRef:
        return MemberRef(
            namespace=self._start.namespace,
            name=change.name,
            cluster=stage.cluster if stage.cluster != self._start.cluster else None,
        )

    async def _claim_all(self, spec: ReleaseSpec) -> tuple[str, str] | None:
        """Every Rollout is claimed (all at once) before any is changed: a Rollout another
        Release holds refuses this one as a whole. Returns (reason, message) when refused."""
        members = [member for _, _, member in self._members(spec)]
        results = await asyncio.gather(
            *(
                self._effects.claim_member(ClaimMemberInput(member=member, owner=self._owner))
                for member in members
            ),
            return_exceptions=True,
        )
        refused: tuple[str, str] | None = None
        for member, result in zip(members, results, strict=True):
            if isinstance(result, ActionFailed):
                refused = refused or (result.reason, f"{result.message}; nothing was changed")
            elif isinstance(result, BaseException):
                raise result
            elif not result.claimed:
                refused = refused or (
                    "RolloutOwned",
                    f"{member.label()} is owned by Release {result.owner}; nothing was changed "
                    "(it is released when that Release ends)",
                )
            else:
                self._claimed.append(member)
        return refused

    async def _check_changes(self, spec: ReleaseSpec) -> tuple[str, str] | None:
        """Every change is computed once on the templates as they are now, before any is
        made: a change that cannot apply (a container name that is not there, a Rollout whose
        template is a Deployment's) refuses the Release with nothing changed. Each stage reads
        its templates again when it starts."""
        members = self._members(spec)
        read = await asyncio.gather(
            *(self._effects.read_member(member) for _, _, member in members),
            return_exceptions=True,
        )
        for (stage, change, _), before in zip(members, read, strict=True):
            if isinstance(before, ActionFailed):
                return before.reason, f"{before.message}; nothing was changed"
            if isinstance(before, BaseException):
                raise before
            try:
                self._changed(stage, change, before)
            except StageFailed as problem:
                return problem.reason, f"{problem.message}; nothing was changed"
        return None

    async def _unclaim_all(self) -> None:
        for member in self._claimed:
            try:
                await self._effects.release_member(
                    ClaimMemberInput(member=member, owner=self._owner)
                )
            except ActionFailed as failed:  # told; the claim names this Release, which ended
                self._tell("ReleaseClaimKept", failed.message, warn=True)
        self._claimed = []

    # -- stages -----------------------------------------------------------------------------
    async def _run_stages(self, spec: ReleaseSpec) -> StageFailed | None:
        """Stages start as soon as their prerequisites are done; returns the first failure
        (the stages still running are stopped: their Rollouts carry on by themselves)."""
        after = dependencies(spec)
        by_name = {stage.name: stage for stage in spec.stages}
        done: set[str] = set()
        started: set[str] = set()
        running: dict[str, asyncio.Task[None]] = {}
        failure: StageFailed | None = None
        try:
            while len(done) < len(spec.stages) and failure is None and self._abort is None:
                for name in ready_stages(after, done, started):
                    started.add(name)
                    running[name] = asyncio.create_task(self._stage(by_name[name]))
                await workflow.wait_condition(
                    lambda: any(t.done() for t in running.values()) or self._abort is not None
                )
                for name, task in list(running.items()):
                    if not task.done():
                        continue
                    del running[name]
                    error = task.exception()
                    if isinstance(error, StageFailed):
                        failure = failure or error
                    elif error is not None:
                        raise error
                    else:
                        done.add(name)
        finally:
            stopped = list(running.values())
            _stop(stopped)
        # Their own last words (stage status) before any rollback writes its own.
        await workflow.wait_condition(lambda: all(t.done() for t in stopped))
        for name in set(by_name) - started:
            self._stage_status(name, phase="Skipped", message="not started")
        return failure

    async def _stage(self, stage: Stage) -> None:
        self._started_stages.append(stage.name)
        self._stage_status(
            stage.name, phase="Progressing", started_at=iso_time(workflow.now()), message=None
        )
        self._tell("StageStarted", f"stage {stage.name}: shipping {len(stage.rollouts)} Rollout(s)")
        self._announce("taskrun.started", stage=stage.name)
        members = [
            asyncio.create_task(self._ship_member(stage, index, change))
            for index, change in enumerate(stage.rollouts)
        ]
        try:
            await workflow.wait_condition(
                lambda: (
                    all(t.done() for t in members)
                    or any(t.done() and t.exception() is not None for t in members)
                )
            )
            for task in members:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        except StageFailed as failed:
            self._stage_status(stage.name, phase="Failed", message=failed.message)
            self._announce("taskrun.finished", stage=stage.name, errors=failed.message)
            raise
        except asyncio.CancelledError:
            self._stage_status(stage.name, phase="Failed", message="stopped")
            raise
        finally:
            _stop(members)
        await self._gate(stage)
        self._stage_status(stage.name, phase="Completed", finished_at=iso_time(workflow.now()))
        self._tell("StageCompleted", f"stage {stage.name} completed")
        self._announce("taskrun.finished", stage=stage.name)

    async def _gate(self, stage: Stage) -> None:
        gate = stage.gate
        if gate.type == "Soak" and gate.duration is not None:
            seconds = parse_duration(gate.duration)
            ends = workflow.now() + timedelta(seconds=seconds)
            self._stage_status(
                stage.name,
                phase="Soaking",
                gate_ends_at=iso_time(ends),
                message=f"soaking for {gate.duration}",
            )
            await workflow.sleep(timedelta(seconds=seconds))
        elif gate.type == "Approval":
            self._stage_status(
                stage.name,
                phase="WaitingForApproval",
                message=f"waiting for approval: kulta release approve {self._start.name} "
                f"{stage.name}",
            )
            self._tell("WaitingForApproval", f"stage {stage.name} waits for approval")
            await workflow.wait_condition(lambda: stage.name in self._approved)
            self._stage_status(stage.name, message="approved")
            self._tell("StageApproved", f"stage {stage.name} approved")

    async def _ship_member(self, stage: Stage, index: int, change: RolloutChange) -> None:
        member = self._member(stage, change)
        try:
            before = await self._effects.read_member(member)
            template = self._changed(stage, change, before)
            applied = Applied(stage.name, member, before, before.revision, template)
            self._applied.append(applied)  # before the write: a crash mid-write is undone too
            result = await self._effects.apply_member(
                ApplyTemplateInput(member=member, expected=before, template=template),
                "set the new template of",
            )
        except ActionFailed as failed:
            self._member_status(stage.name, index, state="Failed", message=failed.message)
            raise StageFailed(stage.name, failed.reason, failed.message) from None
        applied.revision = result.revision
        self._member_status(
            stage.name,
            index,
            state="Progressing" if result.changed else "Unchanged",
            revision=result.revision,
            previous_revision=before.revision,
        )
        await self._until_shipped(stage, index, applied)

    def _changed(
        self, stage: Stage, change: RolloutChange, before: MemberTemplate
    ) -> dict[str, object]:
        if change.images is not None:
            template, missing = with_images(before.template, change.images)
            if missing:
                raise StageFailed(
                    stage.name,
                    "InvalidChange",
                    f"Rollout {change.name}: no container named {', '.join(missing)}",
                )
            return template
        patched = merge_patch(before.template, change.template or {})
        return patched if isinstance(patched, dict) else {}

    async def _until_shipped(self, stage: Stage, index: int, applied: Applied) -> None:
        """Follows the Rollout until its own workflow finished the Release's revision."""
        last: MemberObservation | None = None
        while True:
            seen = await self._follow(applied.member, last)
            last = seen
            self._observed(stage.name, index, seen)
            match verdict(seen, applied.revision):
                case "completed":
                    self._member_status(stage.name, index, state="Completed", message=None)
                    return
                case "failed":
                    message = f"Rollout {applied.member.name}: {seen.message or 'Failed'}"
                    self._member_status(stage.name, index, state="Failed", message=message)
                    raise StageFailed(stage.name, "RolloutFailed", message)
                case "edited":
                    await self._hold_for_edit(stage, index, applied, seen)

    async def _hold_for_edit(
        self, stage: Stage, index: int, applied: Applied, seen: MemberObservation
    ) -> None:
        """A person changed the template of a Rollout this Release owns: the Release holds
        until resumed (then it follows the person's template) or aborted."""
        key = f"{stage.name}/{applied.member.name}"
        message = (
            f"Rollout {applied.member.name} was edited by hand (template revision "
            f"{seen.template_revision}, the Release set {applied.revision}) while this Release "
            f"owns it: kulta release resume {self._start.name} to follow the edit, or abort"
        )
        self._member_status(stage.name, index, message=message)
        self._held.add(key)
        self._set(phase="Paused", reason="EditedByHand", message=message)
        self._tell("EditedByHand", message, warn=True)
        resumes = self._resumes
        await workflow.wait_condition(lambda: self._resumes > resumes)
        self._held.discard(key)
        applied.revision = seen.template_revision or applied.revision
        self._member_status(stage.name, index, revision=applied.revision, message=None)
        self._set(phase="Progressing", reason="Resumed", message="following the edited template")
        self._stage_status(stage.name)  # the message of what ships now

    async def _follow(self, member: MemberRef, last: MemberObservation | None) -> MemberObservation:
        return await self._effects.follow_member(
            FollowInput(member=member, last=last, max_wait_seconds=options.FOLLOW_SECONDS)
        )

    # -- rollback ---------------------------------------------------------------------------
    def _newest_first(self, applied: list[Applied]) -> list[Applied]:
        """The last stage started first; within a stage (whose Rollouts changed at once), in
        reverse of the order the stage lists them."""
        return sorted(
            applied,
            key=lambda a: (self._started_stages.index(a.stage), self._index_of(a)),
            reverse=True,
        )

    async def _roll_back(self, newest_first: list[Applied]) -> list[str]:
        """Gives each Rollout its previous template, one at a time, newest change first, and
        waits until it is stable on it; returns what could not be rolled back."""
        problems = []
        for applied in newest_first:
            index = self._index_of(applied)
            self._stage_status(applied.stage, phase="RollingBack")
            self._member_status(applied.stage, index, state="Reverting", message=None)
            try:
                result = await self._effects.apply_member(
                    ApplyTemplateInput(
                        member=applied.member,
                        expected=MemberTemplate(
                            template=applied.template, revision=applied.revision
                        ),
                        template=applied.before.template,
                    ),
                    "give the previous template back to",
                )
                problem = await self._until_back(applied, index, result.revision)
            except ActionFailed as failed:
                problem = failed.message
            if problem is None:
                self._member_status(applied.stage, index, state="Reverted")
                continue
            problems.append(f"Rollout {applied.member.name}: {problem}")
            self._member_status(applied.stage, index, state="Failed", message=problem)
        for stage in {a.stage for a in newest_first}:
            self._stage_status(stage, phase="RolledBack")
        return problems

    async def _until_back(self, applied: Applied, index: int, revision: str) -> str | None:
        """Until the Rollout is stable on its previous revision; its pauses are promoted
        through (the revision was stable before: the rollback does not wait for a person)."""
        last: MemberObservation | None = None
        promoted: set[str] = set()
        while True:
            seen = await self._follow(applied.member, last)
            last = seen
            self._observed(applied.stage, index, seen)
            outcome = verdict(seen, revision)
            if outcome == "completed":
                return None
            if outcome == "failed":
                return f"its previous revision failed too: {seen.message}"
            if outcome == "edited":
                return f"edited by hand during the rollback (revision {seen.template_revision})"
            moment = f"{seen.workflow_id}/{seen.step}"
            if (
                seen.paused
                and seen.running_revision == revision
                and not seen.promote_pending
                and moment not in promoted
            ):
                promoted.add(moment)
                await self._effects.promote_member(
                    PromoteMemberInput(member=applied.member, reason="rollback of a Release")
                )

    def _index_of(self, applied: Applied) -> int:
        stage = next(s for s in self._spec.stages if s.name == applied.stage)
        return next(i for i, c in enumerate(stage.rollouts) if c.name == applied.member.name)

    # -- status -----------------------------------------------------------------------------
    def _set(self, **fields: object) -> None:
        self._status = self._status.model_copy(update=fields)
        self._dirty = True

    def _stage_status(self, name: str, **fields: object) -> None:
        stages = [s.model_copy(update=fields) if s.name == name else s for s in self._status.stages]
        self._set(stages=stages)
        if self._status.phase in ("Progressing", "Paused"):
            phase: ReleasePhase = release_phase(self._status.stages, held=bool(self._held))
            self._set(phase=phase)
            if not self._held:
                self._set(reason="Shipping", message=shipping_message(self._status.stages))

    def _member_status(self, stage: str, index: int, **fields: object) -> None:
        for s in self._status.stages:
            if s.name == stage:
                rollouts = list(s.rollouts)
                rollouts[index] = rollouts[index].model_copy(update=fields)
                self._stage_status(stage, rollouts=rollouts)
                return

    def _observed(self, stage: str, index: int, seen: MemberObservation) -> None:
        self._member_status(
            stage,
            index,
            phase=seen.phase,
            step=seen.step,
            step_count=seen.step_count,
            weight=seen.weight,
            workflow_id=seen.workflow_id,
        )

    def _tell(self, reason: str, message: str, *, warn: bool = False) -> None:
        """A Kubernetes Event on the Release, written with the next status."""
        self._event_count += 1
        self._events.append(
            EventSpec(
                type="Warning" if warn else "Normal",
                reason=reason,
                message=message,
                transition_id=f"{workflow.info().workflow_id}/{self._event_count}",
                time=iso_time(workflow.now()),
            )
        )
        self._dirty = True

    def _announce(
        self, kind: ReleaseEventKind, *, stage: str | None = None, errors: str | None = None
    ) -> None:
        """A CDEvent; `.finished` ones succeed unless `errors` says why not."""
        self._event_count += 1
        start = self._start
        handle = self._effects.announce_release(
            ReleaseAnnouncement(
                kind=kind,
                transition_id=f"{workflow.info().workflow_id}/{self._event_count}",
                timestamp=iso_time(workflow.now()),
                release=RolloutRef(namespace=start.namespace, name=start.name, uid=start.uid),
                workflow_id=workflow.info().workflow_id,
                stage=stage,
                outcome=("failure" if errors else "success") if kind.endswith("finished") else None,
                errors=errors,
            )
        )
        self._sending.append(handle)

    async def _publish_changes(self) -> None:
        """Writes the status whenever it changed, one write at a time (each write is the
        whole status, so writes in order leave the latest); ends once closing."""
        while True:
            await workflow.wait_condition(lambda: self._dirty or self._closing)
            if not self._dirty:
                return
            await self._publish()

    async def _publish(self) -> None:
        """The status, with each pending Event (one write per Event; at least one write)."""
        self._dirty = False
        events: list[EventSpec | None] = [*self._events] or [None]
        self._events = []
        ref = RolloutRef(
            namespace=self._start.namespace, name=self._start.name, uid=self._start.uid
        )
        for event in events:
            await self._effects.publish_release_status(
                PublishReleaseStatusInput(release=ref, status=self._status, event=event),
                f"status {self._status.phase}" + (f": {event.reason}" if event else ""),
            )

    async def _finish(
        self, result: str, phase: ReleasePhase, reason: str, message: str, *, warn: bool = False
    ) -> ReleaseOutcome:
        self._closing = True  # the publisher's write in flight lands first, then this one
        if self._publisher is not None:
            await self._publisher
            self._publisher = None
        self._set(phase=phase, reason=reason, message=message, finished_at=iso_time(workflow.now()))
        self._tell(reason, message, warn=warn)
        if self._sending:  # a Release refused before it started was never announced
            self._announce("pipelinerun.finished", errors=None if phase == "Completed" else message)
        await self._publish()
        # Sends still retrying, before the run closes (Temporal would abandon them); their
        # outcome never changes the Release's.
        await asyncio.gather(*self._sending, return_exceptions=True)
        return ReleaseOutcome(result=result, reason=reason)

    # -- TroubleReporter (workflows/effects.py) ---------------------------------------------
    def deadline_seconds(self) -> int:
        return NEVER_GIVE_UP_SECONDS

    async def retrying(self, action: str, detail: str) -> None:
        self._set(conditions=[_degraded("True", "ActionRetrying", f"{action}: {detail}")])
        self._tell("ActionRetrying", f"{action} keeps failing: {detail}", warn=True)

    async def recovered(self, action: str) -> None:
        self._set(conditions=[_degraded("False", "Recovered", f"{action} works again")])


def _stop(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancels the tasks without waiting for them: a `finally` must not await, since a
    workflow evicted from the worker's cache is closed (GeneratorExit) through it."""
    for task in tasks:
        task.cancel()
        # Their cancellation (or failure, already handled) is expected: retrieved here.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _degraded(status: str, reason: str, message: str) -> Condition:
    return Condition(
        type="Degraded",
        status=status,
        reason=reason,
        message=message,
        last_transition_time=iso_time(workflow.now()),
    )
