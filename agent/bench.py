"""Benchmarks: many seeded episodes of the simulator's scenarios, in parallel processes, or as
Ray tasks on a cluster (`ray=`) when one machine is not enough.

Each episode opens a simulated workcell staged for a scenario and seed (so it is reproducible from
the seed), lets the brain do the scenario's instruction in the closed loop, and keeps the
ground-truth verdict. A report gives, per task, the success rate with a 95% Wilson interval,
attempts, simulated and wall time, and the reasons episodes failed.
"""

from __future__ import annotations

import math
import multiprocessing
import re
import shutil
import signal
import socket
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, computed_field

from erarm.agent import interrupts
from erarm.agent.brains.base import Brain
from erarm.robots.errors import ConfigError, ErarmError


class EpisodeSpec(BaseModel):
    task: str  # a scenario name
    seed: int
    brain: str = "local"
    brain_options: dict = {}  # for the Gemini brain: model, base_url, config ...
    record_dir: str | None = None
    emulator: str | None = None  # a Robotics-ER emulator's URL: the model, fed the sim's truth
    orchestration: str = "auto"  # plan, tools, or as the model's docs do it
    rehearse: bool = False  # with tools: in a twin of the perceived scene first
    rerun: bool = False  # the flight record as a rerun recording too (record/run.rrd)


class EpisodeResult(BaseModel):
    task: str
    seed: int
    instruction: str = ""
    success: bool = False
    attempts: int = 0
    steps: int = 0
    sim_s: float = 0.0
    wall_s: float = 0.0
    model_round_trips: int = 0  # questions to the brain in sequence (asked together: one)
    verified: bool = False  # erarm's own verdict (its checks and the model's judgement)
    refused_calls: int | None = None  # a step-by-step model's calls refused; None: a plan
    collisions_caught: int | None = None  # motions that met something in a rehearsal's twin
    failure: str | None = None


class Verdict(StrEnum):
    met = "met"
    not_met = "not met"
    too_few = "too few episodes"  # the rate reaches the target, but so few could be luck


class TaskSummary(BaseModel):
    task: str
    target: float
    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    mean_attempts: float
    mean_sim_s: float
    mean_wall_s: float
    mean_round_trips: float = 0.0  # model round trips in sequence per episode
    mean_refused_calls: float | None = None  # per episode, when the model called functions
    collisions_caught: int | None = None  # over all episodes, when rehearsed in a twin
    failures: dict[str, int]  # reason (numbers and colours folded) -> episodes
    failed_seeds: list[int]
    verified: int = 0  # episodes erarm itself called done
    false_verified: int = 0  # of those, episodes the referee says failed: must be 0
    verdict: Verdict
    episodes_needed: int  # the fewest at which even a perfect score shows the target is met
    met: bool  # verdict is met


class BenchReport(BaseModel):
    brain: str
    seed: int
    workers: int
    runner: str = "processes"  # processes (this machine's pool), or ray (and its address)
    episodes: int
    wall_s: float
    episodes_per_minute: float
    all_met: bool  # every target met, and no failed episode called done
    tasks: list[TaskSummary]

    @computed_field
    @property
    def false_verified(self) -> int:
        """Episodes erarm called done that the referee says failed, over every task: 0."""
        return sum(t.false_verified for t in self.tasks)


def percentile(values: list[float], q: float) -> float:
    """The value at fraction `q` of the sorted values (nearest rank), for latency reports."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (sound near 0% and 100%)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


_COLOURS = re.compile(r"\b(red|orange|yellow|green|cyan|blue|purple|pink)\b")


def failure_kind(reason: str) -> str:
    """A failure reason with its numbers and colours folded, so like failures count together."""
    folded = _COLOURS.sub("<colour>", reason)
    return re.sub(r"-?\d+(\.\d+)?", "N", folded)[:160]


def run_episode(spec: EpisodeSpec, wrap: Callable[[Brain], Brain] | None = None
                ) -> EpisodeResult:
    """One episode, in whatever process calls it; `wrap` dresses the brain (a benchmark script's
    noise, say)."""
    from erarm.agent.brains import EMULATOR_KEY, build_brain
    from erarm.agent.config import Orchestration
    from erarm.agent.recording.rerun_view import RerunOptions
    from erarm.agent.recording.run_folder import RECORD
    from erarm.agent.results import CallOutcome
    from erarm.agent.run import RunOptions, run_task
    from erarm.robots.registry import open_workcell

    started = time.perf_counter()
    result = EpisodeResult(task=spec.task, seed=spec.seed)
    brain_options, cell_options = dict(spec.brain_options), {}
    if spec.emulator:  # one session of the shared emulator per episode
        session = f"{spec.emulator}/s/{spec.task}-{spec.seed}"
        brain_options.update(base_url=session, api_key=EMULATOR_KEY)
        cell_options["emulator"] = session
    try:
        brain = build_brain(spec.brain, **brain_options)
        if wrap is not None:
            brain = wrap(brain)
        with open_workcell("sim", scenario=spec.task, seed=spec.seed, **cell_options) as cell:
            result.instruction = cell.instruction or ""
            with tempfile.TemporaryDirectory() as scratch:
                out = Path(spec.record_dir) if spec.record_dir else Path(scratch)
                run = run_task(result.instruction, brain, cell, out,
                               options=RunOptions(
                                   orchestration=Orchestration(spec.orchestration),
                                   rehearse=spec.rehearse, rerun=RerunOptions(
                                       save=out / RECORD / "run.rrd") if spec.rerun else None),
                               record=spec.record_dir is not None)
        result.success, result.verified = bool(run.success), run.verified
        result.attempts = len([a for a in run.attempts if a.outcome != "done"])
        result.steps, result.sim_s = run.steps_executed, run.timings.simulated_s
        result.model_round_trips = run.model_round_trips
        if run.orchestration is Orchestration.tools:
            result.refused_calls = sum(c.outcome is CallOutcome.refused for c in run.tool_calls)
        if run.rehearsal is not None:
            result.refused_calls += run.rehearsal.refused
            result.collisions_caught = run.rehearsal.collisions
        if not run.success:
            result.failure = run.error or (run.ground_truth.reason if run.ground_truth else
                                           "no verdict")
    except ErarmError as err:
        result.failure = str(err)
    result.wall_s = time.perf_counter() - started
    return result


def _worker_signals() -> None:
    """Workers leave interrupts to the parent, which ends them all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def episodes_needed(target: float, z: float = 1.96) -> int:
    """The fewest episodes whose perfect score puts the Wilson lower bound at `target`: with
    fewer, a run of successes does not show the target is met. n successes of n have the lower
    bound n / (n + z^2). A target of 100% needs every episode to succeed, however few."""
    if target >= 1:
        return 1
    return max(1, math.ceil(target * z * z / (1 - target) - 1e-9))


def verdict(successes: int, n: int, target: float) -> Verdict:
    if n == 0 or successes / n < target:
        return Verdict.not_met
    return Verdict.met if n >= episodes_needed(target) else Verdict.too_few


def summarise(task: str, target: float, results: list[EpisodeResult]) -> TaskSummary:
    successes = sum(r.success for r in results)
    n = len(results)
    judged = verdict(successes, n, target)
    failures = Counter(failure_kind(r.failure) for r in results if not r.success and r.failure)
    return TaskSummary(
        task=task, target=target, episodes=n, successes=successes,
        success_rate=successes / n if n else 0.0, ci95=wilson(successes, n),
        mean_attempts=statistics.fmean(r.attempts for r in results) if n else 0.0,
        mean_sim_s=statistics.fmean(r.sim_s for r in results) if n else 0.0,
        mean_wall_s=statistics.fmean(r.wall_s for r in results) if n else 0.0,
        mean_round_trips=statistics.fmean(r.model_round_trips for r in results) if n else 0.0,
        mean_refused_calls=statistics.fmean(refused) if (refused := [
            r.refused_calls for r in results if r.refused_calls is not None]) else None,
        collisions_caught=sum(caught) if (caught := [
            r.collisions_caught for r in results if r.collisions_caught is not None]) else None,
        failures=dict(failures.most_common()),
        failed_seeds=sorted(r.seed for r in results if not r.success), verdict=judged,
        verified=sum(r.verified for r in results),
        false_verified=sum(r.verified and not r.success for r in results),
        episodes_needed=episodes_needed(target), met=judged is Verdict.met)


def bench(tasks: dict[str, float], episodes: int, seed: int, workers: int, brain: str = "local",
          brain_options: dict | None = None, record: Path | None = None,
          on_done: Callable[[EpisodeResult], None] = lambda _: None,
          emulator: str | None = None, orchestration: str = "auto",
          rehearse: bool = False, rerun: bool = False,
          ray: RayOptions | None = None) -> BenchReport:
    """Run `episodes` seeded episodes of each task (name -> target success rate); with
    `emulator` (a Robotics-ER emulator's URL), the Gemini brain plays against it, every worker
    sharing its requests-per-minute budget. `rerun` (with `record`) keeps each episode's
    flight record as a rerun recording too; `ray` runs the episodes as Ray tasks."""
    specs = [EpisodeSpec(task=task, seed=seed + i, brain=brain, brain_options=brain_options or {},
                         record_dir=str(record / f"{task}-{seed + i}") if record else None,
                         emulator=emulator, orchestration=orchestration, rehearse=rehearse,
                         rerun=rerun and record is not None)
             for task in tasks for i in range(episodes)]
    started = time.perf_counter()
    results: list[EpisodeResult] = []
    if ray is not None:
        results = on_ray(specs, ray, on_done)
    elif workers <= 1:
        for spec in specs:
            results.append(run_episode(spec))
            on_done(results[-1])
    else:  # leaving the pool early (Ctrl-C, SIGTERM) terminates the workers at once
        with multiprocessing.Pool(workers, initializer=_worker_signals) as pool:
            for result in pool.imap_unordered(run_episode, specs):
                results.append(result)
                on_done(result)
    wall = time.perf_counter() - started
    summaries = [summarise(task, target, [r for r in results if r.task == task])
                 for task, target in tasks.items()]
    runner = "processes" if ray is None else (
        f"ray {ray.address}" if ray.address else f"ray a local instance of {ray.local_cpus} CPUs")
    return BenchReport(brain=brain, seed=seed, workers=workers, runner=runner,
                       episodes=len(specs),
                       wall_s=wall, episodes_per_minute=len(specs) / wall * 60,
                       all_met=all(s.met and not s.false_verified for s in summaries),
                       tasks=summaries)


RAY_POLL_S = 0.25  # how long one wait for Ray may hold back a signal


class RayOptions(BaseModel):
    """Where the episodes run as Ray tasks: a cluster's address (`ray://host:10001`, or `auto`
    for the one this machine belongs to), or None for a Ray instance started here with
    `local_cpus` workers."""

    address: str | None = None
    local_cpus: int = 1


def check_ray(options: RayOptions) -> Any:
    """Ray itself, once it is known to be installed and the cluster's address to answer: a bad
    address fails at once, not after Ray's minutes of retries."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'erarm[ray]'") from None
    if options.address and options.address != "auto":
        _check_reachable(options.address)
    return ray


def _check_reachable(address: str) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address takes HOST:PORT, ray://HOST:PORT or auto, got "
                          f"{address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as err:
        raise ConfigError(f"no Ray cluster answers at {address}: {err.strerror or err}") from None


def on_ray(specs: list[EpisodeSpec], options: RayOptions,
           on_done: Callable[[EpisodeResult], None]) -> list[EpisodeResult]:
    """Each episode a Ray task of one CPU, results taken as they finish; Ctrl-C or SIGTERM
    cancels what has not finished and ends the Ray instance this started (a cluster's own stays
    up), its session folder with it. Signals stay erarm's (`ray.init` would take SIGTERM for a
    bare exit) and land only between Ray's calls, never inside its native code."""
    ray = check_ray(options)
    started_here = not ray.is_initialized()
    scratch = tempfile.mkdtemp(prefix="erarm-ray-") if started_here and not options.address \
        else None
    if started_here:
        ours = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            with interrupts.deferred():
                ray.init(address=options.address, log_to_driver=False, logging_level="error",
                         configure_logging=False,
                         **({} if options.address else {"num_cpus": options.local_cpus,
                                                        "include_dashboard": False,
                                                        "_temp_dir": scratch}))
        except (ConnectionError, RuntimeError, ValueError) as err:
            _remove(scratch)
            raise ConfigError(f"could not reach Ray at {options.address}: "
                              f"{str(err).splitlines()[0]}") from None
        finally:
            for number, handler in ours.items():
                signal.signal(number, handler)
    episode = ray.remote(num_cpus=1, max_retries=0)(run_episode)
    pending = [episode.remote(spec) for spec in specs]
    results: list[EpisodeResult] = []
    try:
        while pending:
            with interrupts.deferred():  # a signal is raised when the wait returns
                finished, pending = ray.wait(pending, num_returns=1, timeout=RAY_POLL_S)
                done = ray.get(finished)
            for result in done:
                results.append(result)
                on_done(result)
    except BaseException:
        with interrupts.deferred():
            for ref in pending:
                ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            with interrupts.deferred():
                ray.shutdown()
                _remove(scratch)
    return results


def _remove(folder: str | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def rate_text(task: TaskSummary) -> str:
    """A success rate as people read it: whole percent, but 199/200 is 99.5%, never 100%."""
    rate = task.success_rate
    return f"{rate:.0%}" if task.successes in (0, task.episodes) else f"{rate:.1%}"


def chart(report: BenchReport, width: int = 720, row: int = 46) -> np.ndarray:
    """A bar chart of success rates with their 95% intervals and targets (RGB)."""
    height = 40 + row * len(report.tasks) + 30
    image = np.full((height, width, 3), 255, np.uint8)
    left, right = 190, width - 70
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, f"success rate ({report.brain} brain, {report.episodes} episodes)",
                (10, 24), font, 0.55, (20, 20, 20), 1, cv2.LINE_AA)

    def x_of(rate: float) -> int:
        return round(left + rate * (right - left))

    for i, task in enumerate(report.tasks):
        top = 40 + i * row
        colour = (60, 170, 80) if task.met else (220, 70, 60)
        cv2.rectangle(image, (left, top + 8), (x_of(task.success_rate), top + row - 10), colour, -1)
        low, high = task.ci95
        middle = top + row // 2 - 1
        cv2.line(image, (x_of(low), middle), (x_of(high), middle), (30, 30, 30), 2)
        cv2.line(image, (x_of(task.target), top + 4), (x_of(task.target), top + row - 6),
                 (30, 30, 30), 1)
        cv2.putText(image, task.task, (10, middle + 5), font, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
        cv2.putText(image, rate_text(task), (right + 8, middle + 5), font, 0.5,
                    (20, 20, 20), 1, cv2.LINE_AA)
    for rate in (0.0, 0.5, 1.0):
        cv2.putText(image, f"{rate:.0%}", (x_of(rate) - 12, height - 10), font, 0.45,
                    (90, 90, 90), 1, cv2.LINE_AA)
    return image
