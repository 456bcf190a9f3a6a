"""What verified traffic costs: the same 10-step canary (a weight and a 1 s pause per step) run
with its route's Gateway served by a real Envoy Gateway, and with a Gateway no controller serves
(kulta then finds no report and does not wait). The difference in time per step is what waiting
for the Gateway's verdict costs; the worker's own histogram gives the time from its first look
at the route's status to the verdict, per route change.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from activities.naming import revision_of
from bench.report import Row
from bench.stack import Stack
from tests.support import builders
from tests.support.gateways import EnvoyGateway, gateway_binary

STEPS = 10


def _verified() -> tuple[float, float]:
    """(count, sum) of `kulta_route_verification_seconds{outcome="verified"}`, this process."""
    name, labels = "kulta_route_verification_seconds", {"outcome": "verified"}
    count = REGISTRY.get_sample_value(f"{name}_count", labels) or 0.0
    return count, REGISTRY.get_sample_value(f"{name}_sum", labels) or 0.0


async def _canary_seconds(stack: Stack, name: str, parent: str) -> float:
    """From the image change to Completed, for one 10-step canary whose route's parent is the
    Gateway `parent`."""
    weights = [round(100 * (i + 1) / (STEPS + 1)) for i in range(STEPS)]
    steps: list[dict[str, Any]] = [{"setWeight": w, "pause": {"duration": "1s"}} for w in weights]
    steps.append({"setWeight": 100})
    await stack.app(name, replicas=4, steps=steps, scale_down_delay=0)
    await stack.wait_phase(name, "Completed")
    await stack.kube.patch(
        "HTTPRoute", stack.namespace, f"{name}-route", {"spec": {"parentRefs": [{"name": parent}]}}
    )
    began = time.monotonic()
    await stack.set_image(name, "example/app:v2")
    v2 = revision_of(builders.pod_template(name, "example/app:v2"))
    await stack.wait_phase(name, "Completed", f"revision {v2} is stable", timeout=300)
    return time.monotonic() - began


async def run(stack: Stack, runs: int = 3) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="kulta-bench-eg-") as logs:
        gateway = EnvoyGateway(stack.kube, gateway_binary(), Path(logs))
        try:
            await gateway.start()
            served = gateway.gateway("served")
            await stack.kube.apply(stack.namespace, served)
            for extra in ("admin", "mirror-sink"):
                service = builders.service(extra, extra)
                if extra == "admin":
                    service["spec"]["ports"] = [{"port": 9000, "targetPort": 9000}]
                await stack.kube.apply(stack.namespace, service)
            with_gateway, without, per_change = [], [], []
            for n in range(runs):
                before = _verified()
                with_gateway.append(await _canary_seconds(stack, f"verified-{n}", "served"))
                after = _verified()
                changes = after[0] - before[0]
                per_change.append((after[1] - before[1]) / changes if changes else float("nan"))
                without.append(await _canary_seconds(stack, f"unserved-{n}", "nobody-serves"))
                print(
                    f"  run {n + 1}/{runs}: with a Gateway {with_gateway[-1]:.1f} s, without "
                    f"{without[-1]:.1f} s, {changes:.0f} changes verified in "
                    f"{per_change[-1] * 1000:.0f} ms each",
                    flush=True,
                )
        finally:
            await gateway.close()
    label = f"10-step canary, median of {runs}"
    step_cost = (statistics.median(with_gateway) - statistics.median(without)) / (STEPS + 1)
    return [
        Row(
            "traffic",
            f"image change -> Completed, Envoy Gateway verifying ({label})",
            f"{statistics.median(with_gateway):.1f} s",
        ),
        Row(
            "traffic",
            "the same, no Gateway reporting on the route",
            f"{statistics.median(without):.1f} s",
        ),
        Row(
            "traffic",
            "added per route change by waiting for the verdict",
            f"{step_cost * 1000:.0f} ms",
        ),
        Row(
            "traffic",
            "route change -> Gateway verdict (worker's histogram, mean per run)",
            f"{statistics.median(per_change) * 1000:.0f} ms",
        ),
    ]
