"""`/healthz` follows the process's liveness callable (the watcher's: its loop still hears from
the API server), `/readyz` its readiness."""

from __future__ import annotations

import httpx

from kulta.health import HealthServer


async def test_healthz_fails_once_the_process_says_it_is_stalled() -> None:
    alive = [True]
    health = HealthServer(0, ready=lambda: True, host="127.0.0.1", alive=lambda: alive[0])
    await health.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{health.port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            alive[0] = False
            stalled = await http.get("/healthz")
            assert stalled.status_code == 503 and stalled.text == "stalled\n"
            assert (await http.get("/readyz")).status_code == 200
    finally:
        await health.stop()
