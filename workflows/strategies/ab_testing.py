"""A/B testing: variant A is the stable revision, variant B the new one, reached by requests that
match `variantBMatch` through kulta's own route rule. The experiment is measured on a durable
timer until it is concluded (by hand, by significance once minDuration has passed, or by
maxDuration with no winner); promotion then applies the result."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        ExperimentMeasurement,
        ExperimentMetric,
        MeasureExperimentInput,
        Variant,
    )
    from activities.rollout_status import ExperimentStatus
    from workflows.durations import iso_time, parse_duration
    from workflows.messages import RolloutOutcome
    from workflows.model import ABTestingStrategy
    from workflows.run import RollbackRequired
    from workflows.strategies.ab_rule import variant_rule
    from workflows.strategies.base import Parts, StableLayout

DEFAULT_INTERVAL = 60
DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_SAMPLES = 100
# Measurements per run before continue-as-new: keeps a week-long experiment's history small.
MEASUREMENTS_PER_RUN = 200
EXPERIMENT_STEP, CONCLUDED_STEP = 0, 1


# Without metrics, an experiment compares error rates (lower is better), as the original kulta
# always did; without any metric it could never conclude.
DEFAULT_METRIC = ExperimentMetric(name="error-rate", direction="lower")


class ABTesting:
    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self._run = parts.run
        ab = parts.run.current_spec.strategy.ab_testing
        assert ab is not None
        self._initial = ab
        self._b_replicas = 0  # variant B's pods, following spec.replicas

    @property
    def _ab(self) -> ABTestingStrategy:
        """The latest settings: an edit applies from the next measurement (its Services,
        route and match are its frame, fixed while it runs: `workflows/edits.py`)."""
        return self._run.current_spec.strategy.ab_testing or self._initial

    def stable_layout(self) -> StableLayout:
        a = self._ab
        return StableLayout(
            services=[a.variant_a_service, a.variant_b_service],
            pins={a.variant_a_service: True, a.variant_b_service: True},
            routing=a.traffic_routing,
            split=False,
        )

    async def run(self) -> RolloutOutcome:
        parts, run, ab, workload = self._parts, self._run, self._ab, self._parts.workload
        spec = run.current_spec
        stable, rev = run.stable_revision, run.revision
        continued = run.start.experiment_started is not None
        started = run.start.experiment_started or iso_time(workflow.now())
        run.update(
            canary_revision=rev,
            step_count=2,
            current_step_index=EXPERIMENT_STEP,
            experiment=run.status.experiment
            or ExperimentStatus(started_at=started, measurements=run.start.experiment_measurements),
        )
        if not continued:
            await parts.transitions.transition(
                "Progressing", "RolloutStarted", f"starting experiment for revision {rev}"
            )
        await workload.ensure_targets(
            [ab.variant_a_service, ab.variant_b_service], ab.traffic_routing, split=False
        )
        await workload.create_own()
        try:
            # Every setup step is idempotent, so a continued run simply repeats them.
            await workload.scale_own_and_wait(spec, spec.replicas)
            self._b_replicas = spec.replicas
            await workload.select(ab.variant_b_service, rev)
            await workload.select(ab.variant_a_service, stable)
            await self._set_rule(present=True)
            if not continued:
                await parts.transitions.transition(
                    "Experimenting", "ExperimentStarted", _describe_match(ab)
                )
            winner, reason = await self._experiment(started)
            await self._conclude(winner, reason)
            await parts.inbox.wait_for_promotion()
        except RollbackRequired as rollback:
            await self.undo()
            return await parts.failed_after_rollback(rollback)
        return await self._apply_result(winner)

    async def _experiment(self, started: str) -> tuple[str | None, str]:
        """Measures until concluded; returns (winner, why). The durations are read at every
        measurement, so edited ones apply from the next."""
        inbox = self._parts.inbox
        start = datetime.fromisoformat(started.replace("Z", "+00:00"))
        for _ in range(MEASUREMENTS_PER_RUN):
            await self._wait_for_measurement()
            inbox.raise_if_aborted()
            measurement = await self._measure(started)
            elapsed = (workflow.now() - start).total_seconds()
            ab = self._ab
            analysis = ab.analysis
            min_duration = (
                parse_duration(analysis.min_duration) if analysis and analysis.min_duration else 0
            )
            max_duration = parse_duration(ab.max_duration) if ab.max_duration else None
            if inbox.conclude_requested:
                return measurement.winner, "concluded by request"
            if max_duration is not None and elapsed >= max_duration:
                return None, f"maxDuration {ab.max_duration} reached without a significant winner"
            if elapsed >= min_duration and measurement.winner is not None:
                return measurement.winner, "statistically significant"
        await self._parts.transitions.settle()
        run = self._run
        experiment = run.status.experiment
        workflow.continue_as_new(
            run.continued(
                experiment_started=started,
                experiment_measurements=experiment.measurements if experiment else 0,
            )
        )

    def _interval(self) -> int:
        analysis = self._ab.analysis
        return (
            parse_duration(analysis.interval)
            if analysis and analysis.interval
            else DEFAULT_INTERVAL
        )

    async def _wait_for_measurement(self) -> None:
        """One interval from now, or a conclude or an abort. An edit that arrives meanwhile is
        told at once (and variant B follows an edited replica count); the wait goes on to the
        end of the interval as edited. Both are idempotent, so they run before each wait too:
        an edit may have been taken just before it."""
        run, inbox = self._run, self._parts.inbox
        since = workflow.now()
        while True:
            await self._parts.holds.tell_edits()
            await self._follow_replicas()
            if run.spec_changed:
                continue  # another edit came during those writes
            interval = self._interval()
            left = max(0.0, interval - (workflow.now() - since).total_seconds())
            try:
                await workflow.wait_condition(
                    lambda: inbox.conclude_requested or inbox.aborted or run.spec_changed,
                    timeout=timedelta(seconds=left),
                    timeout_summary=f"measure every {interval}s",
                )
            except TimeoutError:
                return
            if inbox.conclude_requested or inbox.aborted:
                return

    async def _follow_replicas(self) -> None:
        spec = self._run.current_spec
        if spec.replicas != self._b_replicas:
            await self._parts.workload.scale_own_and_wait(spec, spec.replicas)
            self._b_replicas = spec.replicas

    async def _measure(self, started: str) -> ExperimentMeasurement:
        run, ab = self._run, self._ab
        analysis = ab.analysis
        metrics = [
            ExperimentMetric(
                name=m.name,
                query=m.query,
                trials_query=m.trials_query,
                direction=m.direction or "lower",
            )
            for m in (analysis.metrics if analysis else [])
        ] or [DEFAULT_METRIC]
        measurement = await self._parts.effects.measure_experiment(
            MeasureExperimentInput(
                namespace=run.namespace,
                rollout=run.name,
                metrics=metrics,
                variant_a=Variant(service=ab.variant_a_service, revision=run.stable_revision),
                variant_b=Variant(service=ab.variant_b_service, revision=run.revision),
                since=started,
                confidence_level=(analysis.confidence_level if analysis else None)
                or DEFAULT_CONFIDENCE,
                min_samples=(analysis.min_sample_size if analysis else None) or DEFAULT_MIN_SAMPLES,
            )
        )
        current = run.status.experiment
        assert current is not None
        verdicts = measurement.verdicts
        run.update(
            experiment=current.model_copy(
                update={
                    "measured_at": iso_time(workflow.now()),
                    "measurements": current.measurements + 1,
                    "samples_a": max((v.samples_a for v in verdicts), default=current.samples_a),
                    "samples_b": max((v.samples_b for v in verdicts), default=current.samples_b),
                    "metrics": verdicts or current.metrics,
                    "winner": measurement.winner,
                }
            )
        )
        return measurement

    async def _conclude(self, winner: str | None, reason: str) -> None:
        # Promotions count from the moment Concluded is published (a person may react at once).
        run = self._run
        self._parts.inbox.open_pause()
        current = run.status.experiment
        assert current is not None
        run.update(
            current_step_index=CONCLUDED_STEP,
            experiment=current.model_copy(
                update={"concluded": True, "winner": winner, "reason": reason}
            ),
        )
        outcome = f"variant {winner} won" if winner else "no winner"
        await self._parts.transitions.transition(
            "Concluded",
            "ExperimentConcluded",
            f"{outcome} ({reason}); waiting for promotion to apply it",
            decision=("conclude", f"{outcome}: {reason}"),
        )

    async def _apply_result(self, winner: str | None) -> RolloutOutcome:
        """B won: it takes all traffic and becomes stable. Otherwise B goes and A stays."""
        parts, run, ab = self._parts, self._run, self._ab
        await self._set_rule(present=False)
        if winner == "B":
            await parts.workload.select(ab.variant_a_service, run.revision)
            await parts.transitions.completed(2, "won the experiment")
            await parts.workload.scale_down_others()
            return RolloutOutcome(result="completed", phase="Completed")
        await self.undo()
        kept = "variant A won" if winner == "A" else "no winner"
        await parts.transitions.transition(
            "Failed",
            "ExperimentLost",
            f"{kept}: revision {run.revision} was not rolled out; the stable revision "
            "keeps all traffic",
            event_type="Warning",
            decision=("keep-stable", kept),
        )
        await parts.holds.wait_for_retry()

    async def undo(self) -> bool:
        """Traffic first (kulta's rule off the route), then variant B's pods."""
        await self._set_rule(present=False)
        await self._parts.workload.scale_own(0)
        return True

    async def _set_rule(self, *, present: bool) -> None:
        run, ab = self._run, self._ab
        route = run.route(ab.traffic_routing)
        assert route is not None  # the model requires a route for A/B
        rule = variant_rule(run.namespace, route[0], route[1], run.name, ab)
        outcome = await self._parts.effects.set_experiment_rule(
            rule.model_copy(update={"present": present})
        )
        if outcome == "missing":
            raise RollbackRequired(
                "HTTPRouteNotFound", f"HTTPRoute {route[0]}/{route[1]} does not exist"
            )
        await self._parts.workload.verify_rule_change(ab.traffic_routing, added=present)


def _describe_match(ab: ABTestingStrategy) -> str:
    match = ab.variant_b_match
    if match.header is not None:
        what = f"header {match.header.name}: {match.header.value}"
    else:
        assert match.cookie is not None
        what = f"cookie {match.cookie.name}={match.cookie.value}"
    return f"experiment running: requests with {what} go to variant B"
