"""Timeouts and retry policies for activities, in one place."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from activities.contracts import CDEVENT_SEND_ATTEMPTS

# Which errors are retried is decided by the error classes themselves (`non_retryable` in
# activities/errors.py, applied by the worker's MapErrors interceptor), not listed here.
RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=20),
)
# The first round of retries of an action, after which the failure is reported (Degraded)
# while the retries go on in slower rounds, up to the progress deadline (workflows/effects.py).
RETRY_BEFORE_REPORT = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=8,
)
RETRY_WHILE_DEGRADED = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=3,
)
# Kubernetes writes are quick; a write that takes longer than this is retried.
KUBE_TIMEOUT = timedelta(seconds=30)
# Traffic writes during a rollback are retried for a bounded time; after that the rollback is
# reported as incomplete and nothing is scaled down (DESIGN §2.4).
ROLLBACK_ROUTE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=12,
)
# CDEvent sends: the activity counts its own attempts against the same budget and drops the
# event (counted, logged) on the last one instead of failing.
ANNOUNCE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=CDEVENT_SEND_ATTEMPTS,
)
ANNOUNCE_TIMEOUT = timedelta(seconds=15)
HEARTBEAT = timedelta(seconds=30)
# How long the Gateways may take to accept a route change (`gatewayAPI.statusTimeout`), and
# the heartbeat of the activity that waits for them (it polls at least every second).
ROUTE_STATUS_TIMEOUT = timedelta(seconds=30)
VERIFY_HEARTBEAT = timedelta(seconds=10)
CLAIM_TIMEOUT = timedelta(minutes=30)
# How long a rollout blocked on a missing Service or route waits before checking again.
RECHECK_INITIAL = timedelta(seconds=10)
RECHECK_MAX = timedelta(minutes=5)
MAX_DECISIONS = 20
# An activity for another cluster's worker that no worker took within this long (that
# cluster's worker is down or unreachable) times out, and is retried and reported.
REMOTE_PICKUP = timedelta(seconds=60)
# How long one follow of a Rollout by its Release waits for a change before it returns.
FOLLOW_SECONDS = 60.0
