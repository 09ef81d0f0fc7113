"""`erarm bench --ray`: the episodes as Ray tasks on a local Ray instance, the same report,
progress and seeds as the process pool, a Gemini brain through them, and Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import one_at_a_time
from tests.test_bench import ERARM, erarm

pytest.importorskip("ray", reason="Ray is in the dev extra")


@pytest.fixture(autouse=True)
def _alone():
    """One Ray instance on the machine at a time, whichever worker runs these."""
    with one_at_a_time("ray"):
        yield

SAME = ("task", "episodes", "successes", "failed_seeds", "mean_attempts", "mean_sim_s",
        "mean_round_trips", "failures")


def _tasks(report: dict) -> list[dict]:
    return [{k: t[k] for k in SAME} for t in report["tasks"]]


def test_ray_tasks_give_the_pools_report_seed_for_seed(tmp_path):
    args = ["bench", "--task", "stack-two", "--episodes", "2", "--seed", "4", "--workers", "2",
            "--min-success", "0", "--json"]
    on_ray = erarm(*args, "--ray", "--out", str(tmp_path / "ray"))
    assert on_ray.returncode == 0, on_ray.stderr
    ray_report = json.loads(on_ray.stdout)
    assert ray_report["runner"] == "ray a local instance of 2 CPUs"
    assert ray_report["episodes"] == 2 and (tmp_path / "ray" / "bench.png").is_file()
    progress = [line for line in on_ray.stderr.splitlines() if "episodes; last:" in line]
    assert len(progress) == 2 and progress[-1].startswith("· 2/2 episodes")
    pooled = erarm(*args, "--out", str(tmp_path / "pool"))
    assert pooled.returncode == 0, pooled.stderr
    pool_report = json.loads(pooled.stdout)
    assert pool_report["runner"] == "processes"
    assert _tasks(ray_report) == _tasks(pool_report)


def test_the_gemini_brain_plays_the_emulator_from_ray_tasks(tmp_path):
    done = erarm("bench", "--task", "pick-into-bowl", "--episodes", "2", "--workers", "2",
                 "--ray", "--emulate", "--emulate-opt", "latency_median_s=0", "--min-success",
                 "0", "--json", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["brain"] == "gemini" and report["tasks"][0]["successes"] == 2
    assert report["tasks"][0]["mean_round_trips"] >= 2  # the model was asked, through Ray


def _ray_sessions() -> set[str]:
    """Ray's session folders on this machine: its default place and erarm's own scratch."""
    temp = Path(tempfile.gettempdir())
    return {str(p) for p in [*temp.glob("ray/session_2*"), *temp.glob("erarm-ray-*")]}


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_cancels_the_ray_tasks_and_writes_no_report(tmp_path, sent):
    """Ctrl-C or SIGTERM mid-bench: exit 130 in one line (no crash in Ray's native code), the
    Ray instance it started gone, and no session folder left behind."""
    sessions = _ray_sessions()
    out = tmp_path / "bench"
    process = subprocess.Popen([ERARM, "bench", "--task", "pick-into-bowl", "--episodes", "30",
                                "--workers", "2", "--ray", "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if "episodes; last:" in line:
            break
    process.send_signal(sent)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130, "".join(lines) + rest
    assert "erarm: interrupted after" in rest and "of 30 episodes; no report written" in rest
    assert "Traceback" not in rest and "SIG" not in rest and "***" not in rest
    assert not (out / "bench.json").exists()
    left = subprocess.run(["pgrep", "-f", "raylet"], capture_output=True, text=True)
    assert left.stdout.strip() == ""  # the Ray instance it started is gone
    assert _ray_sessions() <= sessions  # and its session folder with it


@pytest.mark.parametrize(("args", "message"), [
    (["--ray-address", "127.0.0.1:1"], "erarm: error: no Ray cluster answers at 127.0.0.1:1"),
    (["--ray-address", "nowhere"], "erarm: error: --ray-address takes HOST:PORT"),
])
def test_a_bad_ray_address_is_one_line_before_anything_runs(tmp_path, args, message):
    done = erarm("bench", "--task", "pick-into-bowl", "--episodes", "1", *args, "--out",
                 str(tmp_path / "out"))
    assert done.returncode == 2 and done.stderr.strip().startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
