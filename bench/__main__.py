"""`make bench`: every benchmark on the local stack, a table of medians and p95s, and JSON.

    .venv/bin/python -m bench [--only promote,rollback,abort,steps,release,traffic,scale,
                               experiment,peer]
                              [--rollouts 1000] [--workers 1] [--experiment-days 7]
                              [--peer-rollouts 300]
                              [--json bench-results.json]

Each scenario starts what it needs (the control plane must be buildable; scripts/cluster up is
run for it). Figures are measured in this run, on this machine; nothing here is asserted in the
test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
from pathlib import Path

from bench import (
    abort_latency,
    long_experiment,
    peer,
    promote_latency,
    release_cost,
    rollback_latency,
    route_verification,
    scale,
    step_cost,
)
from bench.report import Row, as_json, render
from bench.stack import local_stack

SCENARIOS = (
    "promote",
    "rollback",
    "abort",
    "steps",
    "release",
    "traffic",
    "scale",
    "experiment",
    "peer",
)


async def main(args: argparse.Namespace) -> list[Row]:
    only = set(args.only.split(",")) if args.only else set(SCENARIOS)
    rows: list[Row] = []
    if only & {"promote", "steps", "abort", "release", "traffic"}:
        async with local_stack() as stack:
            if "promote" in only:
                print("promote latency ...", flush=True)
                rows += await promote_latency.run(stack)
            if "abort" in only:
                print("abort during a pod wait ...", flush=True)
                rows += await abort_latency.run(stack)
            if "steps" in only:
                print("step cost ...", flush=True)
                rows += await step_cost.run(stack)
            if "release" in only:
                print("a Release of 20 Rollouts in 3 stages ...", flush=True)
                rows += await release_cost.run(stack)
            if "traffic" in only:
                print("verified traffic: a canary with and without a Gateway's verdict ...")
                rows += await route_verification.run(stack)
    if "rollback" in only:
        print("rollback latency ...", flush=True)
        rows += await rollback_latency.run(runs=args.rollback_runs)
    if "scale" in only:
        print(f"scale ({args.rollouts} rollouts) ...", flush=True)
        rows += await scale.run(args.rollouts, args.workers)
    if "experiment" in only:
        print(f"long experiment ({args.experiment_days:g} days) ...", flush=True)
        rows += await long_experiment.run(args.experiment_days)
    if "peer" in only:
        print(
            f"kulta and Argo Rollouts side by side ({args.peer_rollouts} rollouts) ...", flush=True
        )
        rows += await peer.run(args.peer_rollouts)
    return rows


def machine() -> str:
    cpus = os.cpu_count() or 0
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split()[1])
        memory = f", {total_kb / 1024 / 1024:.0f} GiB"
    return f"{platform.machine()}, {cpus} cores{memory}, Python {platform.python_version()}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (scale)")
    parser.add_argument("--rollback-runs", type=int, default=7)
    parser.add_argument("--experiment-days", type=float, default=7)
    parser.add_argument(
        "--peer-rollouts", type=int, default=300, help="rollouts per system (peer scale)"
    )
    parser.add_argument("--json", default="bench-results.json")
    args = parser.parse_args()
    rows = asyncio.run(main(args))
    print(f"\nkulta benchmarks on {machine()}\n")
    print(render(rows))
    Path(args.json).write_text(json.dumps({"machine": machine(), "rows": as_json(rows)}, indent=2))
    print(f"\nwritten to {args.json}")
