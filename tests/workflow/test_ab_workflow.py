"""A/B experiments on the time-skipping server, real activities, and a recording fake metrics
provider (named as such: the Prometheus provider belongs to the analysis work).

The scenario's Services double as variant A (app-stable) and variant B (app-canary)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.contracts import Proportion, ProportionRequest
from activities.naming import replicaset_name
from tests.support.cdevents_receiver import CDEventReceiver
from tests.support.histories import replay_and_record
from tests.support.invariants import WriteRecorder
from tests.support.kube import Kube
from tests.support.scenario import Scenario
from tests.support.worker import running_worker
from workflows.messages import (
    SIGNAL_ABORT,
    SIGNAL_CONCLUDE,
    SIGNAL_PROMOTE,
    SIGNAL_UPDATE_SPEC,
    AbortRequest,
    PromoteRequest,
    SpecUpdate,
)

pytestmark = pytest.mark.cluster


@dataclass
class RecordingProvider:
    """Fake metrics provider: answers from `counts` by variant service, records each request."""

    counts: dict[str, Proportion | None] = field(default_factory=dict)
    requests: list[ProportionRequest] = field(default_factory=list)

    async def proportion(self, request: ProportionRequest) -> Proportion | None:
        self.requests.append(request)
        return self.counts.get(request.variant.service)


@dataclass
class Lab:
    sc: Scenario
    provider: RecordingProvider
    receiver: CDEventReceiver


@pytest.fixture
async def lab(time_env: WorkflowEnvironment, kube: Kube, namespace: str) -> AsyncIterator[Lab]:
    provider = RecordingProvider()
    receiver = CDEventReceiver()
    await receiver.start()
    async with running_worker(
        time_env.client, kube, proportions=provider, cdevents_url=receiver.url
    ) as worker:
        scenario = Scenario(kube, time_env.client, namespace, worker.task_queue, env=time_env)
        try:
            yield Lab(scenario, provider, receiver)
        finally:
            await scenario.close()
            await receiver.stop()


def ab_testing(**analysis: Any) -> dict[str, Any]:
    return {
        "abTesting": {
            "variantAService": "app-stable",
            "variantBService": "app-canary",
            "port": 8080,
            "maxDuration": analysis.pop("maxDuration", "24h"),
            "variantBMatch": {"header": {"name": "X-Variant", "value": "B"}},
            "trafficRouting": {"gatewayAPI": {"httpRoute": "app-route"}},
            "analysis": {
                "interval": "1m",
                "minDuration": "5m",
                "minSampleSize": 1000,
                "confidenceLevel": 0.95,
                "metrics": [{"name": "error-rate", "direction": "lower"}],
                **analysis,
            },
        }
    }


async def start_experiment(lab: Lab, **analysis: Any) -> tuple[str, str, Any]:
    sc = lab.sc
    await sc.create(replicas=3, strategy=ab_testing(**analysis))
    assert (await (await sc.start()).result()).result == "completed"
    v1 = await sc.revision()
    await sc.set_image("example/app:v2")
    v2 = await sc.revision()
    handle = await sc.start()
    await sc.wait_phase("Experimenting")
    return v1, v2, handle


async def test_without_metrics_the_error_rates_are_compared(lab: Lab) -> None:
    """The original kulta's A/B example lists no metrics; it always compared error rates."""
    lab.provider.counts = {
        "app-stable": Proportion(successes=500, trials=10000),
        "app-canary": Proportion(successes=200, trials=10000),
    }
    _, _, handle = await start_experiment(lab, metrics=[])
    await lab.sc.skip(300, handle)
    concluded = await lab.sc.wait_phase("Concluded", "variant B won")
    [metric] = concluded["status"]["experiment"]["metrics"]
    assert metric["name"] == "error-rate" and metric["significant"]
    assert {r.metric.name for r in lab.provider.requests} == {"error-rate"}


async def test_significant_winner_b_takes_all_traffic_on_promotion(lab: Lab) -> None:
    sc = lab.sc
    lab.provider.counts = {
        "app-stable": Proportion(successes=500, trials=10000),
        "app-canary": Proportion(successes=200, trials=10000),
    }
    v1, v2, handle = await start_experiment(lab)
    route = await sc.route()
    # A copy of the user's rule for variant A (its path match and filter) with the header added.
    user_rule = route["spec"]["rules"][2]
    assert route["spec"]["rules"][0] == {
        "name": "kulta-ab-app",
        "matches": [
            {
                "headers": [{"type": "Exact", "name": "X-Variant", "value": "B"}],
                "path": {"type": "PathPrefix", "value": "/"},
            }
        ],
        "filters": user_rule["filters"],
        "backendRefs": [
            {"group": "", "kind": "Service", "name": "app-canary", "port": 8080, "weight": 1}
        ],
    }
    assert len(route["spec"]["rules"]) == 3  # the user's two rules are still there
    assert await sc.selector("app-canary") == {"app": "app", "pod-template-hash": v2}
    assert await sc.selector("app-stable") == {"app": "app", "pod-template-hash": v1}
    assert (await sc.replicaset(v2))["status"]["availableReplicas"] == 3

    await sc.skip(300, handle)  # minDuration: significance alone does not conclude earlier
    concluded = await sc.wait_phase("Concluded", "variant B won")
    experiment = concluded["status"]["experiment"]
    assert experiment["winner"] == "B" and experiment["concluded"]
    assert experiment["reason"] == "statistically significant"
    assert experiment["measurements"] >= 5
    [metric] = experiment["metrics"]
    assert metric["name"] == "error-rate" and metric["significant"]
    assert metric["rateA"] == 0.05 and metric["rateB"] == 0.02 and metric["samplesB"] == 10000
    assert metric["z"] < 0 and metric["pValue"] < 0.05
    asked = {(r.variant.service, r.variant.revision) for r in lab.provider.requests}
    assert asked == {("app-stable", v1), ("app-canary", v2)}

    await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
    done = await sc.wait_phase("Completed")
    assert done["status"]["stableRevision"] == v2
    subject = f"{sc.namespace}/{sc.name}"
    await lab.receiver.wait_for(
        subject, ["deployed", "published", "deployed", "published", "published"]
    )
    conclusion = lab.receiver.accepted(subject)[3].cdevent
    assert conclusion["customData"]["experiment"]["winner"] == "B"
    assert conclusion["customData"]["reason"] == "ExperimentConcluded"
    assert [r.get("name") for r in (await sc.route())["spec"]["rules"]] == [None, None]
    assert await sc.selector("app-stable") == {"app": "app", "pod-template-hash": v2}
    await sc.wait_rs_replicas(v1, 0)


async def test_no_data_runs_to_max_duration_without_a_winner(lab: Lab) -> None:
    sc = lab.sc
    v1, v2, handle = await start_experiment(lab, maxDuration="10m")
    await sc.skip(600, handle)
    concluded = await sc.wait_phase("Concluded", "no winner")
    assert "maxDuration 10m reached" in concluded["status"]["message"]
    await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
    lost = await sc.wait_phase("Failed", "was not rolled out")
    assert lost["status"]["stableRevision"] == v1
    assert len((await sc.route())["spec"]["rules"]) == 2
    assert (await sc.replicaset(v2))["spec"]["replicas"] == 0
    assert await sc.selector("app-stable") == {"app": "app", "pod-template-hash": v1}


async def test_edits_mid_experiment_apply_from_the_next_measurement(lab: Lab) -> None:
    sc = lab.sc
    _, v2, handle = await start_experiment(lab)  # maxDuration 24h
    rollout = await sc.patch_spec(replicas=2, strategy={"abTesting": {"maxDuration": "10m"}})
    generation = rollout["metadata"]["generation"]
    await handle.signal(SIGNAL_UPDATE_SPEC, SpecUpdate(generation=generation, spec=rollout["spec"]))
    await sc.wait_rs_replicas(v2, 2)  # variant B follows the replicas at once
    await sc.skip(600, handle)
    concluded = await sc.wait_phase("Concluded", "maxDuration 10m reached")
    assert concluded["status"]["observedGeneration"] == generation


async def test_concluding_by_hand_reports_the_current_leader(lab: Lab) -> None:
    sc = lab.sc
    lab.provider.counts = {
        "app-stable": Proportion(successes=1000, trials=10000),
        "app-canary": Proportion(successes=500, trials=10000),
    }
    _, v2, handle = await start_experiment(
        lab, minDuration="1h", metrics=[{"name": "conversion", "direction": "higher"}]
    )
    await handle.signal(SIGNAL_CONCLUDE)
    concluded = await sc.wait_phase("Concluded", "variant A won (concluded by request)")
    assert concluded["status"]["experiment"]["winner"] == "A"
    await handle.signal(SIGNAL_PROMOTE, PromoteRequest())
    await sc.wait_phase("Failed", "variant A won")
    assert (await sc.replicaset(v2))["spec"]["replicas"] == 0


async def test_abort_removes_the_rule_before_variant_b_scales_down(lab: Lab) -> None:
    sc = lab.sc
    _, v2, handle = await start_experiment(lab)
    async with WriteRecorder(sc.kube, sc.namespace).running() as recorder:
        await handle.signal(SIGNAL_ABORT, AbortRequest(reason="experiment hurts users"))
        await sc.wait_phase("Failed", "experiment hurts users")
        await sc.wait_rs_replicas(v2, 0)
    rule_gone = recorder.first("HTTPRoute", "app-route", lambda r: len(r["spec"]["rules"]) == 2)
    scaled = recorder.first(
        "ReplicaSet", replicaset_name("app", v2), lambda rs: rs["spec"]["replicas"] == 0
    )
    assert rule_gone.resource_version < scaled.resource_version


async def test_long_experiment_continues_as_new_with_bounded_history(lab: Lab) -> None:
    sc = lab.sc
    _, _, handle = await start_experiment(lab, interval="10s", maxDuration="1h")
    first_run = (await handle.describe()).run_id
    await sc.skip(3600, handle)  # 360 measurements, more than one run's share
    concluded = await sc.wait_phase("Concluded", "maxDuration 1h reached", timeout=120)
    assert (
        concluded["status"]["experiment"]["startedAt"]
        <= concluded["status"]["experiment"]["measuredAt"]
    )
    assert (await handle.describe()).run_id != first_run  # continued as new at least once
    assert concluded["status"]["experiment"]["measurements"] >= 355  # counted across runs
    history = await handle.fetch_history()
    assert len(history.events) < 3000  # one run: at most MEASUREMENTS_PER_RUN rounds
    await replay_and_record(sc.client, handle, "ab-continued-as-new", run_id=first_run)


async def test_a_deferred_match_edit_outlives_continue_as_new(lab: Lab) -> None:
    sc = lab.sc
    _, _, handle = await start_experiment(lab, interval="10s", maxDuration="1h")
    first_run = (await handle.describe()).run_id
    other = {"header": {"name": "X-Other", "value": "B"}}
    rollout = await sc.patch_spec(strategy={"abTesting": {"variantBMatch": other}})
    generation = rollout["metadata"]["generation"]
    await handle.signal(SIGNAL_UPDATE_SPEC, SpecUpdate(generation=generation, spec=rollout["spec"]))
    await sc.skip(2500, handle)  # 250 measurements: more than one run's share
    assert (await handle.describe()).run_id != first_run
    status = (await sc.rollout())["status"]
    assert status.get("phase") == "Experimenting", status
    assert status["observedGeneration"] < generation  # the edit is still due
    applied = next(c for c in status["conditions"] if c["type"] == "SpecApplied")
    assert applied["reason"] == "EditDeferred" and "variantBMatch" in applied["message"]
    rules = (await sc.route())["spec"]["rules"]
    headers = [
        h["name"] for rule in rules for m in rule.get("matches", []) for h in m.get("headers", [])
    ]
    assert "X-Variant" in headers and "X-Other" not in headers  # the experiment's own match


async def test_new_revision_mid_experiment_supersedes_it(lab: Lab) -> None:
    sc = lab.sc
    v1, v2, h2 = await start_experiment(lab)
    async with WriteRecorder(sc.kube, sc.namespace).running() as recorder:
        await sc.set_image("example/app:v3")
        v3 = await sc.revision()
        h3 = await sc.start()
        await sc.kube.wait_for(
            "Rollout",
            sc.namespace,
            sc.name,
            lambda r: (
                r["status"].get("canaryRevision") == v3 and r["status"]["phase"] == "Experimenting"
            ),
            what="experimenting on v3",
        )
    assert (await h2.describe()).status.name == "CANCELED"
    # v2 cleaned up (its rule off the route, then its pods) before v3 created anything.
    v2_down = recorder.first(
        "ReplicaSet", replicaset_name("app", v2), lambda rs: rs["spec"]["replicas"] == 0
    )
    v3_created = recorder.first("ReplicaSet", replicaset_name("app", v3), lambda rs: True)
    assert v2_down.resource_version < v3_created.resource_version
    rules = [r.get("name") for r in (await sc.route())["spec"]["rules"]]
    assert rules == ["kulta-ab-app", None, None]  # one kulta rule: v3's
    assert (await sc.rollout())["status"]["stableRevision"] == v1
    await h3.signal(SIGNAL_ABORT, AbortRequest())
