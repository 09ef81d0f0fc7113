"""Measure the open-world task families (household objects, tasks phrased as people say them)
on the Gemini path: erarm's real client against the Robotics-ER emulator with its default error
model, the default orchestration; per family the referee's success rate with its 95% interval,
how many runs erarm verified itself, and how many it called verified that failed (target: 0).

Usage:

    python scripts/bench_open_world.py --episodes 200 [--out docs/reports/open-world.json]

The chart of the same figures goes beside the report (open-world.png).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from reporting import save_verdict_report

from erarm.agent.bench import bench, chart
from erarm.agent.overlay import save_png
from erarm.sim.emulator import Emulator, EmulatorSettings
from erarm.sim.tasks import SCENARIOS

FAMILIES = ["into-container", "on-plate", "household-beside", "out-of-container", "group-into",
            "clear-table", "sort-by-category", "stack-household"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("docs/reports/open-world.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    settings = EmulatorSettings(latency_median_s=0)  # the default error model, answers at once
    with Emulator(settings) as emulator:
        report = bench({family: SCENARIOS[family].target for family in FAMILIES},
                       args.episodes, 0, args.workers, "gemini", {}, emulator=emulator.url)
    rows = [{"task": t.task, "episodes": t.episodes, "succeeded": t.successes,
             "success_rate": t.success_rate, "ci95": t.ci95, "target": t.target,
             "verified": t.verified, "failed_but_verified": t.false_verified,
             "mean_round_trips": t.mean_round_trips, "failures": t.failures,
             "failed_seeds": t.failed_seeds} for t in report.tasks]
    for row in rows:
        print(f"{row['task']:17} {row['succeeded']:3}/{row['episodes']} succeeded "
              f"({row['ci95'][0]:.0%}-{row['ci95'][1]:.0%}), {row['verified']:3} verified, "
              f"{row['failed_but_verified']} failed but verified", flush=True)
    save_png(args.out.with_suffix(".png"), chart(report))  # beside the blocks' chart
    save_verdict_report(started, rows, args.out, emulator=settings.model_dump(
        include={"pointing_sigma", "box_jitter", "confusion_rate", "miss_rate", "misread_rate",
                 "judge_error_rate"}))


if __name__ == "__main__":
    main()
