"""The watcher delivers a spec update once per generation: a deferred edit leaves
observedGeneration behind, and each status write (a watch event) asks for the signal again."""

from __future__ import annotations

from typing import Any, cast

from temporalio.client import Client

from activities.adapters.kube import KubeClient
from watcher.dispatch import Signal
from watcher.runner import Remembered, Runner
from workflows.messages import SIGNAL_RESUME, SIGNAL_UPDATE_SPEC, SpecUpdate


class RecordingHandle:
    def __init__(self, sent: list[tuple[str, str]], workflow_id: str) -> None:
        self._sent, self._id = sent, workflow_id

    async def signal(self, name: str, *args: Any) -> None:
        self._sent.append((self._id, name))


class RecordingClient:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def get_workflow_handle(self, workflow_id: str) -> RecordingHandle:
        return RecordingHandle(self.sent, workflow_id)


async def test_a_spec_update_is_signalled_once_per_generation() -> None:
    client = RecordingClient()
    runner = Runner(cast(Client, client), cast(KubeClient, None), "q")
    for generation in (2, 2, 2, 3, 3):
        update = SpecUpdate(generation=generation, spec={})
        await runner.apply(Signal("wf", SIGNAL_UPDATE_SPEC, update))
    await runner.apply(Signal("wf", SIGNAL_RESUME))
    await runner.apply(Signal("wf", SIGNAL_RESUME))  # steering is never deduplicated here
    assert client.sent == [("wf", SIGNAL_UPDATE_SPEC)] * 2 + [("wf", SIGNAL_RESUME)] * 2


def test_remembered_forgets_the_oldest_first() -> None:
    seen = Remembered(limit=2)
    for key in (("a", 1), ("b", 1), ("c", 1)):
        seen.add(key)
    assert ("a", 1) not in seen and ("b", 1) in seen and ("c", 1) in seen
