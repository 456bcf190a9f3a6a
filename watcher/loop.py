"""The watcher's loop: every observed Rollout through `decide`, each action applied in order."""

from __future__ import annotations

import logging

from activities.errors import KultaError
from watcher.census import Census
from watcher.dispatch import decide
from watcher.runner import Runner
from watcher.source import RolloutSource

log = logging.getLogger("kulta.watcher")


async def watch_forever(
    runner: Runner, source: RolloutSource, census: Census | None = None
) -> None:
    async for observed in source.observe():
        if census is not None:
            census.observe(observed.rollout, deleted=observed.deleted)
        try:
            actions = decide(observed.rollout, deleted=observed.deleted)
        except (KeyError, ValueError) as err:
            log.warning("skipping malformed Rollout: %s", err)
            continue
        for action in actions:
            try:
                await runner.apply(action)
            except (KultaError, OSError) as err:
                # The next event (or relist) for this Rollout tries again.
                log.warning("action %s failed: %s", type(action).__name__, err)
