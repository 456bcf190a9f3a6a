"""Leader election over a `coordination.k8s.io/v1` Lease, so one watcher replica acts at a time.

The rules are client-go's: a candidate takes the Lease when it is free or when its record has
not changed for `lease_duration` as measured on the candidate's own monotonic clock (never by
comparing another machine's timestamps, so clock skew cannot shorten a lease); the leader
renews every `retry_period` and gives up once it could not renew for `renew_deadline`; a leader
that stops cleanly empties `holderIdentity`, so a standby takes over without waiting.
Every write carries the resourceVersion it read: two candidates never both win.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from activities.adapters.kube import KubeClient
from activities.errors import AlreadyExists, Conflict, KultaError, NotFound
from activities.naming import LEASES

log = logging.getLogger(__name__)


class LostLeadership(Exception):
    """The Lease could not be renewed within the renew deadline (or someone else holds it)."""


@dataclass(frozen=True)
class LeaseTiming:
    duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.retry_period < self.renew_deadline < self.duration:
            raise ValueError("lease timing needs retry period < renew deadline < lease duration")


def _micro_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        timing: LeaseTiming | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._path = LEASES.path(namespace)
        self._name_path = LEASES.path(namespace, name)
        self._name = name
        self.identity = identity
        self.timing = timing or LeaseTiming()
        self._clock = clock
        # The holder and renewTime last seen, and when (our clock) they were first seen.
        self._observed: tuple[str, str] | None = None
        self._observed_at = 0.0

    async def acquire(self) -> None:
        """Returns once this candidate holds the Lease."""
        announced = False
        while not await self._try_quietly():
            if not announced and self._observed is not None:
                log.info("standing by: lease %s is held by %s", self._name, self._observed[0])
                announced = True
            await asyncio.sleep(self.timing.retry_period)
        log.info("became leader: lease %s held by %s", self._name, self.identity)

    async def hold(self) -> None:
        """Renews until it cannot; raises LostLeadership then (it never returns otherwise)."""
        last_renewal = self._clock()
        while True:
            await asyncio.sleep(self.timing.retry_period)
            if await self._try_quietly():
                last_renewal = self._clock()
            elif self._clock() - last_renewal >= self.timing.renew_deadline:
                raise LostLeadership(
                    f"lease {self._name} not renewed for {self.timing.renew_deadline:g}s"
                )

    async def release(self) -> None:
        """Empties the holder if it is still us, so a standby need not wait for expiry."""
        try:
            lease = await self._kube.get(self._name_path)
            spec = lease.get("spec", {})
            if spec.get("holderIdentity") != self.identity:
                return
            now = _micro_time(datetime.now(UTC))
            lease["spec"] = {
                **spec,
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": now,
            }
            await self._kube.replace(self._name_path, lease)
            log.info("released lease %s", self._name)
        except KultaError as err:  # the lease then expires on its own
            log.warning("could not release lease %s: %s", self._name, err)

    async def _try_quietly(self) -> bool:
        """An API error (the server restarting, a timeout) is one failed attempt, no more."""
        try:
            return await self.try_acquire_or_renew()
        except KultaError as err:
            log.warning("lease %s: %s", self._name, err)
            return False

    async def try_acquire_or_renew(self) -> bool:
        now = datetime.now(UTC)
        try:
            lease = await self._kube.get(self._name_path)
        except NotFound:
            return await self._create(now)
        spec: dict[str, Any] = lease.get("spec", {})
        holder = spec.get("holderIdentity") or ""
        record = (holder, str(spec.get("renewTime", "")))
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        duration = float(spec.get("leaseDurationSeconds") or self.timing.duration)
        held_by_other = holder not in ("", self.identity)
        if held_by_other and self._clock() - self._observed_at < duration:
            return False
        lease["spec"] = {
            **spec,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": round(self.timing.duration),
            "renewTime": _micro_time(now),
        }
        if holder != self.identity:
            lease["spec"]["acquireTime"] = _micro_time(now)
            lease["spec"]["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        try:
            updated = await self._kube.replace(self._name_path, lease)
        except Conflict:  # someone else wrote first; look again next period
            return False
        new_spec = updated.get("spec", {})
        self._observed = (self.identity, str(new_spec.get("renewTime", "")))
        self._observed_at = self._clock()
        return True

    async def _create(self, now: datetime) -> bool:
        body: dict[str, Any] = {
            "apiVersion": LEASES.api_version,
            "kind": "Lease",
            "metadata": {"name": self._name},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": round(self.timing.duration),
                "acquireTime": _micro_time(now),
                "renewTime": _micro_time(now),
                "leaseTransitions": 0,
            },
        }
        try:
            await self._kube.create(self._path, body)
        except AlreadyExists:
            return False
        self._observed = (self.identity, body["spec"]["renewTime"])
        self._observed_at = self._clock()
        return True
