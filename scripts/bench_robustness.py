"""Success against pointing error, the local and the Gemini path side by side.

For each pointing error (sigma on the 0-1000 grid), runs seeded episodes of a scenario twice:
with the local brain, its points pushed off by that much Gaussian noise, and with the Gemini
brain (erarm's real client and prompts, through google-genai) against the Robotics-ER emulator
set to that pointing sigma, with the emulator's other errors at their defaults. Writes a chart
and a JSON report. Usage:

    python scripts/bench_robustness.py --episodes 200 --sigmas 0,10,20,35 \
        [--task pick-into-bowl] [--workers 2] [--out docs/robustness.png] \
        [--latency-s 0] [--latency-spread 0.35]

With `--brains gemini --sigmas 20 --latency-s 1.5 --workers 1` it measures the wall time of a
run when every model call takes 1.5 s.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import multiprocessing
import random
import statistics
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from erarm.agent.bench import EpisodeResult, EpisodeSpec, failure_kind, run_episode, wilson
from erarm.agent.overlay import save_png
from erarm.agent.parse import read_points
from erarm.sim.emulator import Emulator, EmulatorSettings


class NoisyPoints:
    """A brain whose points are pushed off by Gaussian noise of `sigma` on the 0-1000 grid, as a
    model's would be; everything else is the inner brain's."""

    def __init__(self, inner, sigma: float, seed: int):
        self.inner, self.sigma = inner, sigma
        self.name, self.capabilities = inner.name, inner.capabilities
        self._rng = random.Random(f"noisy-points/{seed}")

    def point(self, frame, queries=None, limit=10):
        reply = self.inner.point(frame, queries, limit)
        pushed = [{"point": [round(min(1000, max(0, p.y + self._rng.gauss(0, self.sigma)))),
                             round(min(1000, max(0, p.x + self._rng.gauss(0, self.sigma))))],
                   "label": p.label} for p in read_points(reply).items]
        return json.dumps(pushed)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _play(job: tuple[EpisodeSpec, float | None]) -> tuple[float, EpisodeResult]:
    spec, sigma = job
    wrap = (functools.partial(NoisyPoints, sigma=sigma, seed=spec.seed)
            if spec.brain == "local" else None)
    return sigma, run_episode(spec, wrap)


def measure(task: str, sigmas: list[float], episodes: int, workers: int, latency_s: float,
            brains: list[str], seed: int = 0, latency_spread: float = 0.35,
            orchestration: str = "auto") -> dict:
    rows = []
    for sigma in sigmas:
        for brain in brains:
            started = time.perf_counter()
            settings = EmulatorSettings(pointing_sigma=sigma, latency_median_s=latency_s,
                                        latency_spread=latency_spread)
            with Emulator(settings) as emulator:
                specs = [EpisodeSpec(task=task, seed=seed + i, brain=brain,
                                     emulator=emulator.url if brain == "gemini" else None,
                                     orchestration=orchestration if brain == "gemini"
                                     else "auto")
                         for i in range(episodes)]
                with multiprocessing.Pool(workers) as pool:
                    results = [r for _, r in pool.imap_unordered(
                        _play, [(spec, sigma) for spec in specs])]
            successes = sum(r.success for r in results)
            failures = Counter(failure_kind(r.failure) for r in results if r.failure)
            rows.append({
                "brain": brain, "sigma": sigma, "episodes": episodes, "successes": successes,
                "rate": successes / episodes, "ci95": wilson(successes, episodes),
                "mean_round_trips": statistics.fmean(r.model_round_trips for r in results),
                "mean_wall_s": statistics.fmean(r.wall_s for r in results),
                "median_wall_s": statistics.median(r.wall_s for r in results),
                "failures": dict(failures.most_common(5)),
                "failed_seeds": sorted(r.seed for r in results if not r.success),
                "seconds": time.perf_counter() - started})
            print(f"{brain:6s} sigma {sigma:4g}: {successes}/{episodes}  "
                  f"round trips {rows[-1]['mean_round_trips']:.2f}  "
                  f"wall median {rows[-1]['median_wall_s']:.1f} s  "
                  f"{dict(failures.most_common(2))}", flush=True)
    return {"task": task, "latency_s": latency_s, "latency_spread": latency_spread,
            "rows": rows}


def chart(report: dict, width: int = 640, height: int = 400) -> np.ndarray:
    """Success rate against pointing sigma, one line per path, with 95% intervals (RGB)."""
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 70, width - 30, 50, height - 60
    sigmas = sorted({r["sigma"] for r in report["rows"]})
    span = max(sigmas) or 1
    font = cv2.FONT_HERSHEY_SIMPLEX

    def at(sigma: float, rate: float) -> tuple[int, int]:
        return (round(left + sigma / span * (right - left)),
                round(bottom - rate * (bottom - top)))

    cv2.putText(image, f"{report['task']}: success against pointing error", (10, 24), font,
                0.6, (20, 20, 20), 1, cv2.LINE_AA)
    for rate in (0.0, 0.5, 0.9, 1.0):
        y = at(0, rate)[1]
        cv2.line(image, (left, y), (right, y), (225, 225, 225), 1)
        cv2.putText(image, f"{rate:.0%}", (15, y + 5), font, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    for sigma in sigmas:
        x = at(sigma, 0)[0]
        cv2.putText(image, f"{sigma:g}", (x - 8, bottom + 20), font, 0.45, (90, 90, 90), 1,
                    cv2.LINE_AA)
    cv2.putText(image, "pointing sigma (0-1000 grid)", (left + 140, bottom + 45), font, 0.5,
                (60, 60, 60), 1, cv2.LINE_AA)
    for index, (brain, colour) in enumerate((("local", (70, 110, 200)),
                                             ("gemini", (220, 120, 40)))):
        rows = sorted((r for r in report["rows"] if r["brain"] == brain),
                      key=lambda r: r["sigma"])
        points = [at(r["sigma"], r["rate"]) for r in rows]
        for a, b in itertools.pairwise(points):
            cv2.line(image, a, b, colour, 2, cv2.LINE_AA)
        for row, point in zip(rows, points, strict=True):
            low, high = (at(row["sigma"], v)[1] for v in row["ci95"])
            cv2.line(image, (point[0], low), (point[0], high), colour, 1)
            cv2.circle(image, point, 4, colour, -1, cv2.LINE_AA)
        cv2.putText(image, f"{brain} path", (right - 130, top + 20 + 20 * index), font, 0.5,
                    colour, 1, cv2.LINE_AA)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pick-into-bowl")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--sigmas", default="0,10,20,35")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-s", type=float, default=0.0,
                        help="the emulator's median latency per call (0: as fast as it can)")
    parser.add_argument("--latency-spread", type=float, default=0.35,
                        help="sigma of the latency's logarithm (0: every call takes the median)")
    parser.add_argument("--brains", default="local,gemini")
    parser.add_argument("--orchestration", default="auto", choices=("auto", "plan", "tools"),
                        help="how the Gemini brain orchestrates (auto: as ER 2's docs, tools)")
    parser.add_argument("--out", type=Path, default=Path("docs/robustness.png"))
    args = parser.parse_args()
    report = measure(args.task, [float(s) for s in args.sigmas.split(",")], args.episodes,
                     args.workers, args.latency_s, args.brains.split(","),
                     latency_spread=args.latency_spread, orchestration=args.orchestration)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_png(args.out, chart(report))
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
