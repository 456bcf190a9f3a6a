"""The watcher's loop: every observed Rollout through `decide`, each action applied in order.

An action that fails (Temporal unreachable or refusing, the API server erroring) never ends the
loop: that Rollout's latest observed state is decided again after a backoff (0.5 s doubling to
30 s) while every other Rollout goes on, and a newer event for it is tried at once. Deciding
again is safe because every action is idempotent (starts converge on one run, a consumed
annotation is gone from the newer state).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from temporalio.exceptions import TemporalError

from activities.errors import KultaError
from watcher.census import Census
from watcher.dispatch import decide
from watcher.runner import Runner, RunnerAction
from watcher.source import Observed, key_of

log = logging.getLogger("kulta.watcher")

# What an action may raise without ending the loop: Temporal's (RPCError among them) and the
# API server's errors.
ACTION_ERRORS = (KultaError, OSError, TemporalError)
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0


@dataclass
class _Failing:
    observed: Observed
    attempts: int
    due: float


class Retries:
    """Rollouts whose last actions failed: the state to decide again, and when."""

    def __init__(self) -> None:
        self._failing: dict[tuple[str, str], _Failing] = {}

    def failed(self, key: tuple[str, str], observed: Observed) -> float:
        """Records a failure; returns the backoff before the next try."""
        attempts = self._failing[key].attempts + 1 if key in self._failing else 1
        backoff: float = min(FIRST_BACKOFF * 2.0 ** (attempts - 1), MAX_BACKOFF)
        self._failing[key] = _Failing(observed, attempts, time.monotonic() + backoff)
        return backoff

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failing.pop(key, None)

    def due(self) -> list[Observed]:
        now = time.monotonic()
        return [f.observed for f in self._failing.values() if f.due <= now]

    def next_due(self) -> float | None:
        """Seconds until the next retry is due (None: nothing is failing)."""
        if not self._failing:
            return None
        return max(0.0, min(f.due for f in self._failing.values()) - time.monotonic())


class Source(Protocol):
    def observe(self) -> AsyncIterator[Observed]: ...


# What one observed object (and whether it was deleted) calls for: `decide` for Rollouts.
Decider = Callable[[dict[str, Any], bool], Sequence[RunnerAction]]


def decide_rollout(rollout: dict[str, Any], deleted: bool) -> Sequence[RunnerAction]:
    return decide(rollout, deleted=deleted)


async def handle(
    runner: Runner, observed: Observed, retries: Retries, decider: Decider = decide_rollout
) -> None:
    """Decides and applies one observed state; a failed action is retried later."""
    key = key_of(observed.rollout)
    try:
        actions = decider(observed.rollout, observed.deleted)
    except (KeyError, ValueError) as err:
        log.warning("skipping malformed Rollout: %s", err)
        return
    for action in actions:
        try:
            await runner.apply(action)
        except ACTION_ERRORS as err:
            backoff = retries.failed(key, observed)
            log.warning(
                "%s/%s: %s failed (%s); trying again in %.1fs",
                *key,
                type(action).__name__,
                err,
                backoff,
            )
            return
    retries.succeeded(key)


async def watch_forever(
    runner: Runner,
    source: Source,
    census: Census | None = None,
    decider: Decider = decide_rollout,
) -> None:
    retries = Retries()
    events = source.observe().__aiter__()
    next_event: asyncio.Task[Observed] | None = None
    try:
        while True:
            if next_event is None:
                next_event = asyncio.ensure_future(events.__anext__())
            wait = retries.next_due()
            done, _ = await asyncio.wait({next_event}, timeout=wait)
            if next_event in done:
                observed = next_event.result()  # StopAsyncIteration: the source ended
                next_event = None
                if census is not None:
                    census.observe(observed.rollout, deleted=observed.deleted)
                await handle(runner, observed, retries, decider)
            for observed in retries.due():
                await handle(runner, observed, retries, decider)
    finally:
        if next_event is not None:
            next_event.cancel()
        await events.aclose()  # type: ignore[attr-defined]
