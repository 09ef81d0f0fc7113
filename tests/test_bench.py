"""`erarm bench`: the statistics, reproducible episodes, and the command's files and exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from erarm.agent.bench import (
    EpisodeResult,
    EpisodeSpec,
    Verdict,
    episodes_needed,
    failure_kind,
    run_episode,
    summarise,
    wilson,
)
from erarm.sim.driver import scenarios
from tests.conftest import TEST_KEY
from tests.fake_gemini import text_reply

ERARM = str(Path(sys.executable).with_name("erarm"))


def erarm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "ERARM_DEBUG")}
    return subprocess.run([ERARM, *args], capture_output=True, text=True,
                          env={**environment, **(env or {})}, timeout=300, check=False)


@pytest.mark.parametrize(("successes", "n", "low", "high"), [
    (0, 10, 0.0, 0.2775),  # published values of the Wilson score interval
    (10, 10, 0.7225, 1.0),
    (50, 100, 0.4038, 0.5962),
    (196, 200, 0.9497, 0.9922),
])
def test_wilson_interval(successes, n, low, high):
    assert wilson(successes, n) == pytest.approx((low, high), abs=5e-4)


def test_failure_reasons_fold_numbers_and_colours():
    assert failure_kind("the red block is 41 mm off the blue block's centre") == \
        failure_kind("the pink block is 7.5 mm off the cyan block's centre") == \
        "the <colour> block is N mm off the <colour> block's centre"


def test_summary_counts_rates_and_failures():
    results = [EpisodeResult(task="sort", seed=s, success=s % 4 != 0, attempts=2, sim_s=10.0,
                             wall_s=1.0, failure=None if s % 4 else f"gave up after {s} rounds")
               for s in range(8)]
    summary = summarise("sort", 0.95, results)
    assert (summary.episodes, summary.successes, summary.success_rate) == (8, 6, 0.75)
    assert summary.failures == {"gave up after N rounds": 2}
    assert summary.failed_seeds == [0, 4] and summary.met is False
    assert summary.ci95 == wilson(6, 8)


def test_an_episode_is_reproducible_from_its_seed():
    first = run_episode(EpisodeSpec(task="stack-two", seed=3))
    again = run_episode(EpisodeSpec(task="stack-two", seed=3))
    other = run_episode(EpisodeSpec(task="stack-two", seed=4))
    same = {"wall_s"}
    assert first.success and "block" in first.instruction
    assert first.model_dump(exclude=same) == again.model_dump(exclude=same)
    assert other.model_dump(exclude=same) != first.model_dump(exclude=same)


def test_bench_runs_every_scenario_and_writes_its_report(tmp_path):
    done = erarm("bench", "--episodes", "1", "--seed", "5", "--workers", "2", "--out",
                 str(tmp_path), "--json", "--min-success", "0")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == json.loads((tmp_path / "bench.json").read_text())
    assert [t["task"] for t in report["tasks"]] == list(scenarios(offline=True))
    for task in report["tasks"]:
        assert {"task", "episodes", "success_rate", "ci95", "failures"} <= set(task)
        assert task["episodes"] == 1 and task["success_rate"] == 1.0, task
        assert task["mean_attempts"] >= 1 and task["mean_sim_s"] > 0
    chart = cv2.imread(str(tmp_path / "bench.png"))
    assert chart is not None and chart.shape[0] > 6 * 40


def test_bench_table_and_flight_records(tmp_path):
    done = erarm("bench", "--task", "pick-into-bowl", "--episodes", "1", "--seed", "1",
                 "--workers", "1", "--record", "--out", str(tmp_path))
    assert done.returncode == 1, done.stderr  # 1/1 does not show a 98% target is met
    assert "pick-into-bowl" in done.stdout and "1/1 100%" in done.stdout
    assert ("pick-into-bowl: too few episodes to tell: 1/1 reaches the 98% target, but the 95% "
            "interval starts at 21%; showing it takes at least 189 episodes") in done.stdout
    assert "episodes per minute" in done.stdout
    assert done.stderr.splitlines() == ["· 1/1 episodes; last: pick-into-bowl seed 1: ok"]
    record = tmp_path / "episodes" / "pick-into-bowl-1" / "record"
    assert (record / "robot.jsonl").is_file() and (record / "run.mp4").is_file()


def test_bench_exits_1_when_a_task_misses_its_target(fake_gemini, tmp_path):
    fake_gemini.responder = lambda request: text_reply("I cannot see the table, sorry.")
    done = erarm("bench", "--task", "pick-into-bowl", "--episodes", "2", "--workers", "2",
                 "--brain", "gemini", "--base-url", fake_gemini.url, "--out", str(tmp_path),
                 "--json", env={"GEMINI_API_KEY": TEST_KEY})
    assert done.returncode == 1, done.stderr
    (task,) = json.loads(done.stdout)["tasks"]
    assert task["success_rate"] == 0.0 and task["met"] is False
    assert sum(task["failures"].values()) == 2
    assert len(fake_gemini.requests) >= 2  # both worker processes asked the loopback server
    assert TEST_KEY not in done.stdout + done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "juggle"], "erarm: error: unknown task 'juggle' (known: pick-into-bowl, "),
    (["--episodes", "0"], "erarm: error: Invalid value for '--episodes'"),
    (["--brain", "gemini"], "erarm: error: the Gemini brain needs an API key"),
])
def test_bench_usage_errors_are_one_line(tmp_path, args, message):
    done = erarm("bench", *args, "--out", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().startswith(message) and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("successes", "n", "target", "expected"), [
    (2, 2, 0.95, Verdict.too_few),  # 100%, but two episodes cannot show 95%
    (72, 72, 0.95, Verdict.too_few),
    (73, 73, 0.95, Verdict.met),  # the Wilson lower bound of 73/73 is 95.0%
    (190, 200, 0.95, Verdict.met),
    (1, 2, 0.95, Verdict.not_met),
    (3, 3, 1.0, Verdict.met),
    (0, 0, 0.5, Verdict.not_met),
])
def test_a_target_is_met_only_with_enough_episodes(successes, n, target, expected):
    results = [EpisodeResult(task="t", seed=i, success=i < successes) for i in range(n)]
    summary = summarise("t", target, results)
    assert summary.verdict is expected and summary.met is (expected is Verdict.met)
    if target < 1:
        needed = episodes_needed(target)
        assert wilson(needed, needed)[0] >= target > wilson(needed - 1, needed - 1)[0]


def test_bench_defaults_to_a_new_folder_under_runs_and_never_overwrites(tmp_path):
    for _ in range(2):
        done = subprocess.run([ERARM, "bench", "--task", "pick-into-bowl", "--episodes", "1",
                               "--workers", "1", "--json"], capture_output=True, text=True,
                              cwd=tmp_path, timeout=300, check=False,
                              env={k: v for k, v in os.environ.items()
                                   if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")})
        assert done.returncode == 1, done.stderr  # one episode is too few to tell
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all("-bench" in f.name for f in folders)
    assert all((f / "bench.json").is_file() for f in folders)
    assert not (tmp_path / "bench").exists()
    again = erarm("bench", "--episodes", "1", "--out", str(folders[0]))
    assert again.returncode == 2
    assert "holds another run (bench.json)" in again.stderr
