"""`--emulate`: the Gemini path, through erarm's real client, against the Robotics-ER emulator
that the simulator feeds. The flags that contradict it are refused in one line; a run and a
bench with it work offline, with no key."""

from __future__ import annotations

import json

import pytest

from tests.test_bad_input import TASK, assert_refused, erarm


@pytest.mark.parametrize(("flags", "words"), [
    (["--emulate", "--brain", "local"], "--brain local"),
    (["--emulate", "--base-url", "http://127.0.0.1:9"], "--base-url"),
    (["--emulate-opt", "pointing_sigma=20"], "needs --emulate"),
    (["--emulate", "--robot", "xarm"], "simulated robot"),
    (["--emulate", "--emulate-opt", "pointing_sigma=-3"], "pointing_sigma"),
    (["--emulate", "--emulate-opt", "no_such_setting=1"], "no_such_setting"),
    (["--emulate", "--emulate-opt", "pointing_sigma"], "KEY=VALUE"),
])
def test_flags_that_contradict_the_emulator_are_refused_in_one_line(flags, words, tmp_path):
    done = erarm("run", TASK, *flags, "--out", tmp_path / "run")
    assert_refused(done)
    assert words in done.stderr
    assert not (tmp_path / "run").exists()


def test_the_gemini_brain_without_a_key_is_still_refused_without_emulate(tmp_path):
    done = erarm("run", TASK, "--brain", "gemini", "--out", tmp_path / "run")
    assert_refused(done)
    assert "API key" in done.stderr


def test_a_run_against_the_emulator_needs_no_key_and_no_network(tmp_path):
    done = erarm("run", TASK, "--seed", "1", "--emulate", "--emulate-opt", "latency_median_s=0",
                 "--emulate-opt", "max_tokens_rate=0", "--orchestration", "plan", "--json",
                 "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["brain"] == "gemini" and result["success"] is True
    # look, plan, look with the judgement (no reply cut off, so none asked again)
    assert (result["model_calls"], result["model_round_trips"]) == (4, 3)
    assert result["model_verdict"]["done"] is True
    exchanges = (tmp_path / "run" / "result.json").read_text()
    assert "erarm-emulator-needs-no-key" not in exchanges + done.stdout + done.stderr


def test_a_bench_against_the_emulator_reports_like_the_local_one(tmp_path):
    done = erarm("bench", "--emulate", "--emulate-opt", "latency_median_s=0", "--task",
                 "pick-into-bowl", "--episodes", "2", "--workers", "2", "--min-success", "0.5",
                 "--json", "--out", tmp_path / "bench")
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    assert report["brain"] == "gemini" and report["episodes"] == 2
    assert (tmp_path / "bench" / "bench.png").is_file()
