"""Episodes per minute: `erarm bench` on this machine's process pool against Ray tasks on a local
Ray instance of the same number of CPUs, the same seeded episodes each way (the Ray figure
includes starting the instance, as `erarm bench --ray` does). Usage:

    python scripts/bench_ray.py --episodes 20 --workers 2 [--json]
"""

from __future__ import annotations

import argparse
import json
import time

from erarm.agent.bench import RayOptions, bench

TASKS = {"pick-into-bowl": 0.0, "sort": 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="per task")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {}
    for runner, ray in (("processes", None), ("ray", RayOptions(local_cpus=args.workers))):
        started = time.perf_counter()
        report = bench(TASKS, args.episodes, 0, args.workers, ray=ray)
        wall = time.perf_counter() - started
        figures[runner] = {"episodes": report.episodes, "wall_s": round(wall, 1),
                           "episodes_per_minute": round(report.episodes / wall * 60, 1),
                           "successes": sum(t.successes for t in report.tasks)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for runner, figure in figures.items():
        print(f"{runner:10s} {figure['episodes']} episodes in {figure['wall_s']} s: "
              f"{figure['episodes_per_minute']} episodes per minute "
              f"({figure['successes']} succeeded)")


if __name__ == "__main__":
    main()
