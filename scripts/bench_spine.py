"""Measure the spine: `erarm run` on many seeded pick-into-bowl scenes, one process per run.

Reports the success rate (simulator ground truth), perception's verified rate, the wall time of
a whole `erarm run` process (start to exit) and the error of perceived block centres against
ground truth. Usage:

    python scripts/bench_spine.py --seeds 50 [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASIC_COLOURS = ["red", "green", "blue", "yellow", "orange", "purple"]


def task_for(seed: int) -> str:
    block, bowl = random.Random(seed).sample(BASIC_COLOURS, 2)
    return f"pick the {block} block into the {bowl} bowl"


def run_once(seed: int, out_root: Path, erarm: str) -> dict:
    task = task_for(seed)
    started = time.perf_counter()
    done = subprocess.run([erarm, "run", task, "--seed", str(seed), "--brain", "local", "--json",
                           "--out", str(out_root / str(seed))],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        result = {"error": done.stderr.strip().splitlines()[-1:] or ["no output"]}
    return {"seed": seed, "task": task, "exit_code": done.returncode, "wall_s": wall,
            "result": result}


def block_errors_mm(result: dict) -> list[float]:
    """Horizontal distance between each perceived block and its true starting position."""
    truth = {o["label"]: o["position_mm"] for o in
             (result.get("ground_truth") or {}).get("objects_at_start", [])}
    errors = []
    for seen in result.get("objects", []):
        true = truth.get(seen["label"])
        if seen["label"].endswith("block") and true:
            errors.append(math.hypot(seen["position_mm"][0] - true[0],
                                     seen["position_mm"][1] - true[1]))
    return errors


def summarise(runs: list[dict]) -> dict:
    successes = [bool(r["result"].get("success")) for r in runs]
    verified = [bool(r["result"].get("verified")) for r in runs]
    walls = sorted(r["wall_s"] for r in runs)
    errors = [e for r in runs for e in block_errors_mm(r["result"])]
    return {
        "runs": len(runs),
        "success_rate": sum(successes) / len(runs),
        "verified_rate": sum(verified) / len(runs),
        "wall_s_median": statistics.median(walls),
        "wall_s_p90": walls[min(len(walls) - 1, int(0.9 * len(walls)))],
        "block_error_mm_median": statistics.median(errors) if errors else None,
        "block_error_mm_max": max(errors) if errors else None,
        "failures": [{"seed": r["seed"], "task": r["task"],
                      "reason": r["result"].get("error")
                      or (r["result"].get("ground_truth") or {}).get("reason")}
                     for r, ok in zip(runs, successes, strict=True) if not ok],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    erarm = str(Path(sys.executable).with_name("erarm"))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            runs.append(run_once(seed, Path(tmp), erarm))
            mark = "ok" if runs[-1]["result"].get("success") else "FAIL"
            print(f"seed {seed:3d} {mark:4s} {runs[-1]['wall_s']:.2f} s  {runs[-1]['task']}",
                  file=sys.stderr)
    summary = summarise(runs)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"runs: {summary['runs']}")
    print(f"success rate (ground truth): {summary['success_rate']:.0%}")
    print(f"verified by perception:      {summary['verified_rate']:.0%}")
    print(f"wall time per `erarm run`:   median {summary['wall_s_median']:.2f} s, "
          f"p90 {summary['wall_s_p90']:.2f} s")
    print(f"block centre error:          median {summary['block_error_mm_median']:.1f} mm, "
          f"max {summary['block_error_mm_max']:.1f} mm")
    for failure in summary["failures"]:
        print(f"  failed seed {failure['seed']}: {failure['task']}: {failure['reason']}")


if __name__ == "__main__":
    main()
