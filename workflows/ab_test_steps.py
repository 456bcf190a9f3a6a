"""A/B testing: variant A is the stable revision, variant B the new one, reached by requests that
match `variantBMatch` through kulta's own route rule. The experiment is measured on a durable
timer until it is concluded (by hand, by significance once minDuration has passed, or by
maxDuration with no winner); promotion then applies the result."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        ExperimentMeasurement,
        ExperimentMetric,
        MeasureExperimentInput,
        Variant,
    )
    from workflows.durations import parse_duration
    from workflows.machinery import RollbackRequired, RolloutMachinery, iso_time
    from workflows.messages import RolloutOutcome
    from workflows.model import ABTestingStrategy, ExperimentMetricStatus, ExperimentStatus
    from workflows.strategies import ab_test

DEFAULT_INTERVAL = 60
DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_SAMPLES = 100
# Measurements per run before continue-as-new: keeps a week-long experiment's history small.
MEASUREMENTS_PER_RUN = 200
EXPERIMENT_STEP, CONCLUDED_STEP = 0, 1


class ABTestSteps(RolloutMachinery):
    async def _run_ab_test(self) -> RolloutOutcome:
        spec = self._current_spec
        ab = spec.strategy.ab_testing
        assert ab is not None
        stable = self._status.stable_revision
        assert stable is not None
        rev = self._input.revision
        started = self._input.experiment_started or iso_time(workflow.now())
        self._status = self._status.model_copy(
            update={
                "canary_revision": rev,
                "step_count": 2,
                "current_step_index": EXPERIMENT_STEP,
                "experiment": self._status.experiment
                or ExperimentStatus(
                    started_at=started, measurements=self._input.experiment_measurements
                ),
            }
        )
        if self._input.experiment_started is None:
            await self._transition(
                "Progressing", "RolloutStarted", f"starting experiment for revision {rev}"
            )
        await self._ensure_targets(
            [ab.variant_a_service, ab.variant_b_service], ab.traffic_routing, split=False
        )
        await self._ensure_rs(0)
        self._canary_touched = True
        try:
            # Every setup step is idempotent, so a continued run simply repeats them.
            await self._scale_own_and_wait(spec, spec.replicas)
            await self._select(ab.variant_b_service, rev)
            await self._select(ab.variant_a_service, stable)
            await self._set_rule(ab, present=True)
            if self._input.experiment_started is None:
                await self._transition("Experimenting", "ExperimentStarted", _describe_match(ab))
            winner, reason = await self._experiment(ab, started)
            await self._conclude(winner, reason)
            await self._await_promotion_of_result()
        except RollbackRequired as rollback:
            await self._undo_ab_test(ab)
            return await self._failed_after_rollback(rollback)
        return await self._apply_result(ab, winner)

    async def _experiment(self, ab: ABTestingStrategy, started: str) -> tuple[str | None, str]:
        """Measures until concluded; returns (winner, why)."""
        analysis = ab.analysis
        interval = (
            parse_duration(analysis.interval)
            if analysis and analysis.interval
            else DEFAULT_INTERVAL
        )
        min_duration = (
            parse_duration(analysis.min_duration) if analysis and analysis.min_duration else 0
        )
        max_duration = parse_duration(ab.max_duration) if ab.max_duration else None
        start = datetime.fromisoformat(started.replace("Z", "+00:00"))
        for _ in range(MEASUREMENTS_PER_RUN):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._conclude_requested or self._abort is not None,
                    timeout=timedelta(seconds=interval),
                    timeout_summary=f"measure every {interval}s",
                )
            if self._abort is not None:
                raise RollbackRequired("Aborted", self._abort.reason)
            measurement = await self._measure(ab, started)
            elapsed = (workflow.now() - start).total_seconds()
            if self._conclude_requested:
                return measurement.winner, "concluded by request"
            if max_duration is not None and elapsed >= max_duration:
                return None, f"maxDuration {ab.max_duration} reached without a significant winner"
            if elapsed >= min_duration and measurement.winner is not None:
                return measurement.winner, "statistically significant"
        await self._announcer.settle()
        workflow.continue_as_new(
            self._input.model_copy(
                update={
                    "experiment_started": started,
                    "experiment_measurements": self._measurements_so_far(),
                    "transitions": self._seq,
                }
            )
        )

    def _measurements_so_far(self) -> int:
        return self._status.experiment.measurements if self._status.experiment else 0

    async def _measure(self, ab: ABTestingStrategy, started: str) -> ExperimentMeasurement:
        analysis = ab.analysis
        metrics = [
            ExperimentMetric(
                name=m.name,
                query=m.query,
                trials_query=m.trials_query,
                direction=m.direction or "lower",
            )
            for m in (analysis.metrics if analysis else [])
        ]
        stable = self._status.stable_revision
        assert stable is not None
        measurement = await self._activity(
            "measure_experiment",
            MeasureExperimentInput(
                namespace=self._input.namespace,
                rollout=self._input.name,
                metrics=metrics,
                variant_a=Variant(service=ab.variant_a_service, revision=stable),
                variant_b=Variant(service=ab.variant_b_service, revision=self._input.revision),
                since=started,
                confidence_level=(analysis.confidence_level if analysis else None)
                or DEFAULT_CONFIDENCE,
                min_samples=(analysis.min_sample_size if analysis else None) or DEFAULT_MIN_SAMPLES,
            ),
            ExperimentMeasurement,
            summary="measure both variants",
        )
        current = self._status.experiment
        assert current is not None
        verdicts = [
            ExperimentMetricStatus.model_validate(v.model_dump()) for v in measurement.verdicts
        ]
        self._status = self._status.model_copy(
            update={
                "experiment": current.model_copy(
                    update={
                        "measured_at": iso_time(workflow.now()),
                        "measurements": current.measurements + 1,
                        "samples_a": max(
                            (v.samples_a for v in verdicts), default=current.samples_a
                        ),
                        "samples_b": max(
                            (v.samples_b for v in verdicts), default=current.samples_b
                        ),
                        "metrics": verdicts or current.metrics,
                        "winner": measurement.winner,
                    }
                )
            }
        )
        return measurement

    async def _conclude(self, winner: str | None, reason: str) -> None:
        # Promotions count from the moment Concluded is published (a person may react at once).
        self._promotions = 0
        self._in_pause = True
        current = self._status.experiment
        assert current is not None
        self._status = self._status.model_copy(
            update={
                "current_step_index": CONCLUDED_STEP,
                "experiment": current.model_copy(
                    update={"concluded": True, "winner": winner, "reason": reason}
                ),
            }
        )
        outcome = f"variant {winner} won" if winner else "no winner"
        await self._transition(
            "Concluded",
            "ExperimentConcluded",
            f"{outcome} ({reason}); waiting for promotion to apply it",
            decision=("conclude", f"{outcome}: {reason}"),
        )

    async def _await_promotion_of_result(self) -> None:
        await workflow.wait_condition(
            self._promoted_or_interrupted,
            timeout_summary="wait for promotion",
        )
        self._in_pause = False
        if self._abort is not None:
            raise RollbackRequired("Aborted", self._abort.reason)

    async def _apply_result(self, ab: ABTestingStrategy, winner: str | None) -> RolloutOutcome:
        """B won: it takes all traffic and becomes stable. Otherwise B goes and A stays."""
        await self._set_rule(ab, present=False)
        if winner == "B":
            await self._select(ab.variant_a_service, self._input.revision)
            await self._mark_stable(2, "won the experiment")
            await self._scale_down_others()
            return RolloutOutcome(result="completed", phase="Completed")
        await self._undo_ab_test(ab)
        kept = "variant A won" if winner == "A" else "no winner"
        await self._transition(
            "Failed",
            "ExperimentLost",
            f"{kept}: revision {self._input.revision} was not rolled out; the stable revision "
            "keeps all traffic",
            event_type="Warning",
            decision=("keep-stable", kept),
        )
        return await self._wait_for_retry()

    async def _undo_ab_test(self, ab: ABTestingStrategy) -> None:
        """Traffic first (kulta's rule off the route), then variant B's pods."""
        await self._set_rule(ab, present=False)
        await self._scale(self._own_replicaset, 0)

    async def _set_rule(self, ab: ABTestingStrategy, *, present: bool) -> None:
        route = self._route(ab.traffic_routing)
        assert route is not None  # the model requires a route for A/B
        rule = ab_test.variant_rule(self._input.namespace, route[0], route[1], self._input.name, ab)
        outcome = await self._activity(
            "set_experiment_rule",
            rule.model_copy(update={"present": present}),
            str,
            summary=f"{'add' if present else 'remove'} rule {rule.rule_name}",
        )
        if outcome == "missing":
            raise RollbackRequired(
                "HTTPRouteNotFound", f"HTTPRoute {route[0]}/{route[1]} does not exist"
            )


def _describe_match(ab: ABTestingStrategy) -> str:
    match = ab.variant_b_match
    if match.header is not None:
        what = f"header {match.header.name}: {match.header.value}"
    else:
        assert match.cookie is not None
        what = f"cookie {match.cookie.name}={match.cookie.value}"
    return f"experiment running: requests with {what} go to variant B"
