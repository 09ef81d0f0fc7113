"""Measure whether erarm's verdict can call a failed run done: the task suite against the
Robotics-ER emulator with a large pointing error and a judgement that says "done" whatever it
sees (as a model's judgement sometimes does), with both orchestrations; for each family, how
many episodes succeeded (the simulator's referee), how many erarm called verified, and how many
of those the referee says failed (the target: 0).

Usage:

    python scripts/bench_verdict.py --episodes 30 [--sigma 35] [--out docs/reports/verdict.json]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from reporting import save_verdict_report

from erarm.agent.bench import bench
from erarm.sim.emulator import Emulator, EmulatorSettings

FAMILIES = ["pick-into-bowl", "put-all", "sort", "stack-two", "tower-three", "place-beside",
            "into-container", "on-plate", "household-beside", "out-of-container", "group-into",
            "clear-table", "sort-by-category", "stack-household"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--sigma", type=float, default=35.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("docs/reports/verdict.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    settings = EmulatorSettings(pointing_sigma=args.sigma, judge_always_done=True,
                                latency_median_s=0)
    for orchestration in ("tools", "plan"):
        with Emulator(settings) as emulator:
            report = bench({family: 0.0 for family in FAMILIES}, args.episodes, 0,
                           args.workers, "gemini", {}, emulator=emulator.url,
                           orchestration=orchestration)
        for task in report.tasks:
            rows.append({"orchestration": orchestration, "task": task.task,
                         "episodes": task.episodes, "succeeded": task.successes,
                         "verified": task.verified, "failed_but_verified": task.false_verified})
            print(f"{orchestration:6} {task.task:15} {task.successes:3}/{task.episodes} "
                  f"succeeded, {task.verified:3} verified, {task.false_verified} failed but "
                  "verified", flush=True)
    save_verdict_report(started, rows, args.out,
                        emulator={"pointing_sigma": args.sigma, "judge_always_done": True})


if __name__ == "__main__":
    main()
