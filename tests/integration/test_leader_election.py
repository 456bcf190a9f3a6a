"""Leader election of the watcher over a real Lease on the local API server: the elector's rules
first, then two real `kulta-watcher` processes (as the kulta-watcher ServiceAccount) where one
acts, the other takes over within the lease duration when the first is SIGKILLed, and a SIGTERM
releases the Lease at once and exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.errors import NotFound
from activities.naming import LEASES, revision_of, workflow_id
from tests.support import builders
from tests.support.exporter import free_port
from tests.support.kube import (
    KULTA_NAMESPACE,
    Kube,
    service_account_credentials,
    write_token_kubeconfig,
)
from tests.support.processes import KultaProcess
from watcher.leader import LeaderElector, LeaseTiming

pytestmark = [pytest.mark.cluster, pytest.mark.devserver]

FAST = LeaseTiming(duration=3, renew_deadline=2, retry_period=0.25)


def _electors(kube: Kube, namespace: str, count: int) -> list[LeaderElector]:
    name = f"lease-{uuid.uuid4().hex[:6]}"
    return [
        LeaderElector(kube.client, namespace, name, f"candidate-{n}", FAST) for n in range(count)
    ]


async def _holder(kube: Kube, namespace: str, name: str) -> str:
    try:
        lease = await kube.client.get(LEASES.path(namespace, name))
    except NotFound:
        return ""
    return str(lease["spec"].get("holderIdentity") or "")


async def test_one_candidate_wins_a_race_for_a_new_lease(kube: Kube, namespace: str) -> None:
    electors = _electors(kube, namespace, 5)
    results = await asyncio.gather(*(e.try_acquire_or_renew() for e in electors))
    assert sum(results) == 1
    winner = electors[results.index(True)]
    # Another round: the winner renews, nobody else takes it.
    again = await asyncio.gather(*(e.try_acquire_or_renew() for e in electors))
    assert [e.identity for e, won in zip(electors, again, strict=True) if won] == [winner.identity]


async def test_a_silent_leader_is_replaced_only_after_the_lease_duration(
    kube: Kube, namespace: str
) -> None:
    first, second = _electors(kube, namespace, 2)
    await first.acquire()
    started = time.monotonic()
    await asyncio.wait_for(second.acquire(), FAST.duration * 3)
    waited = time.monotonic() - started
    assert waited >= FAST.duration, f"took over after {waited:.2f}s, before the lease expired"
    lease = await kube.client.get(LEASES.path(namespace, first._name))
    assert lease["spec"]["holderIdentity"] == second.identity
    assert lease["spec"]["leaseTransitions"] == 1
    # The old leader notices on its next renewal: it is no longer the holder.
    assert not await first.try_acquire_or_renew()


async def test_a_released_lease_is_taken_at_once(kube: Kube, namespace: str) -> None:
    first, second = _electors(kube, namespace, 2)
    await first.acquire()
    assert not await second.try_acquire_or_renew()
    await first.release()
    started = time.monotonic()
    await second.acquire()
    assert time.monotonic() - started < FAST.duration


async def test_a_leader_that_cannot_renew_gives_up(kube: Kube, namespace: str) -> None:
    (leader,) = _electors(kube, namespace, 1)
    await leader.acquire()
    holding = asyncio.create_task(leader.hold())
    await asyncio.sleep(FAST.retry_period * 2)
    assert not holding.done()
    await kube.client.delete(LEASES.path(namespace, leader._name))
    # Deleted: the next renewal re-creates it (a free lease), so the leader keeps it.
    await asyncio.sleep(FAST.retry_period * 3)
    assert await _holder(kube, namespace, leader._name) == leader.identity
    # Taken by someone else: renewals fail, and after the renew deadline hold() raises.
    path = LEASES.path(namespace, leader._name)
    lease = await kube.client.get(path)
    lease["spec"]["holderIdentity"] = "usurper"
    await kube.client.replace(path, lease)
    with pytest.raises(Exception, match="not renewed"):
        await asyncio.wait_for(holding, FAST.renew_deadline * 4)


# ---- two real watcher processes ----------------------------------------------------------


@pytest.fixture
async def watcher_env(
    kube: Kube, dev_env: WorkflowEnvironment, namespace: str, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    await _reset_lease(kube)
    credentials = await service_account_credentials(kube.client, "kulta-watcher")
    kubeconfig = write_token_kubeconfig(credentials, tmp_path / "watcher.kubeconfig")
    yield {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "KUBECONFIG": str(kubeconfig),
        "KULTA_TASK_QUEUE": f"tq-{uuid.uuid4().hex[:8]}",
        "KULTA_WATCH_NAMESPACE": namespace,
        "KULTA_LEADER_ELECTION": "true",
        "POD_NAMESPACE": KULTA_NAMESPACE,
        "KULTA_LEASE_DURATION_SECONDS": str(int(FAST.duration)),
        "KULTA_LEASE_RENEW_DEADLINE_SECONDS": str(int(FAST.renew_deadline)),
        "KULTA_LEASE_RETRY_PERIOD_SECONDS": str(FAST.retry_period),
    }
    await _reset_lease(kube)


async def _reset_lease(kube: Kube) -> None:
    with contextlib.suppress(NotFound):
        await kube.client.delete(LEASES.path(KULTA_NAMESPACE, "kulta-watcher"))


def _watcher(env: dict[str, str], name: str, tmp: Path) -> KultaProcess:
    return KultaProcess(
        "kulta-watcher",
        {**env, "POD_NAME": name, "KULTA_HTTP_PORT": str(free_port())},
        tmp / f"{name}.log",
    )


async def _eventually(check: Callable[[], Any], timeout: float, what: str) -> float:
    """Seconds until `check()` is truthy (awaiting it when it is a coroutine)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout}s")


async def _rollout_started(client: Client, kube: Kube, namespace: str, name: str) -> bool:
    rollout = await kube.get("Rollout", namespace, name)
    revision = revision_of(rollout["spec"]["template"])
    wid = workflow_id(namespace, name, rollout["metadata"]["uid"], revision)
    try:
        await client.get_workflow_handle(wid).describe()
    except RPCError:
        return False
    return True


async def test_one_watcher_acts_and_the_other_takes_over(
    kube: Kube,
    dev_env: WorkflowEnvironment,
    namespace: str,
    watcher_env: dict[str, str],
    tmp_path: Path,
) -> None:
    first = _watcher(watcher_env, "watcher-a", tmp_path)
    await _eventually(
        lambda: _holder(kube, KULTA_NAMESPACE, "kulta-watcher"), 30, "a leader elected"
    )
    assert await _holder(kube, KULTA_NAMESPACE, "kulta-watcher") == "watcher-a"
    second = _watcher(watcher_env, "watcher-b", tmp_path)
    try:
        await _eventually(lambda: "standing by" in second.output(), 30, "watcher-b standing by")
        await kube.apply(namespace, builders.rollout("one", steps=[{"setWeight": 50}]))
        await _eventually(
            lambda: _rollout_started(dev_env.client, kube, namespace, "one"), 30, "one started"
        )
        assert "workflow" not in second.output(), "the standby acted"

        first.kill()
        killed = time.monotonic()
        await _eventually(
            lambda: _holder_is(kube, "watcher-b"), FAST.duration * 4, "watcher-b leading"
        )
        took_over = time.monotonic() - killed
        assert took_over <= FAST.duration + 2 * FAST.retry_period + 1.0, took_over
        await kube.apply(namespace, builders.rollout("two", steps=[{"setWeight": 50}]))
        await _eventually(
            lambda: _rollout_started(dev_env.client, kube, namespace, "two"), 30, "two started"
        )

        # SIGTERM: the Lease is released at once and the process exits 0.
        assert second.stop() == 0, second.output()
        assert await _holder(kube, KULTA_NAMESPACE, "kulta-watcher") == ""
        assert "released lease" in second.output()
    finally:
        first.stop()
        second.stop()


async def _holder_is(kube: Kube, identity: str) -> bool:
    return await _holder(kube, KULTA_NAMESPACE, "kulta-watcher") == identity
