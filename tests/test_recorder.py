"""The flight recorder and `erarm replay`: what a recorded run keeps, and running it again."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.conftest import TEST_KEY, assert_key_absent
from tests.fake_gemini import model_like

ERARM = str(Path(sys.executable).with_name("erarm"))
TASK = "pick the blue block into the orange bowl"


def erarm(*args: str, key: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "ERARM_DEBUG")}
    if key:
        env["GEMINI_API_KEY"] = TEST_KEY
    return subprocess.run([ERARM, *args], capture_output=True, text=True, env=env, timeout=180,
                          check=False)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_recorded_gemini_run_keeps_everything_but_the_key(fake_gemini, tmp_path):
    fake_gemini.responder = model_like
    done = erarm("run", TASK, "--seed", "1", "--record", "--out", str(tmp_path), "--base-url",
                 fake_gemini.url, "--orchestration", "plan", key=True)
    assert done.returncode == 0, done.stderr
    record = tmp_path / "record"

    frames = sorted(p.name for p in (record / "frames").glob("*.png"))
    # two looks, each with its overlay and its depth, the looks recorded with what they saw
    assert len(frames) == 6 and len({name[:3] for name in frames}) == 6
    looks = lines(record / "looks.jsonl")
    assert [look["image"] for look in looks] == ["frames/000-seen.png", "frames/003-seen.png"]
    depth = cv2.imread(str(record / looks[0]["depth"]), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (looks[0]["height"], looks[0]["width"])
    assert 300 < np.median(depth[depth > 0]) < 3000  # millimetres to the table
    assert {o["label"] for o in looks[0]["objects"]} >= {"blue block", "orange bowl"}
    exchanges = lines(record / "exchanges.jsonl")
    kinds = [e["kind"] for e in exchanges]  # look, plan, look with the judgement beside it
    assert kinds[:2] == ["locate", "plan"] and sorted(kinds[2:]) == ["judge", "locate"]
    for exchange in exchanges:  # images by reference, each a frame that was kept
        assert exchange["images"] and all((record / i).is_file() for i in exchange["images"])
        (request,) = exchange["model_requests"]
        assert request["model"].startswith("gemini-robotics-er")
        assert request["reply"] == exchange["reply"] and request["image_bytes"][0] > 1000
    judged = next(e for e in exchanges if e["kind"] == "judge")
    assert len(judged["images"]) == 2  # the judge saw before and after

    plan = json.loads((record / "plans" / "round-01.json").read_text())
    assert plan["plan"][0]["function"] == "move"
    assert all("joint limits (IK)" in a["checks"] for a in plan["actions"] if a["target"])

    commands = lines(record / "robot.jsonl")
    moves = [c for c in commands if c["command"] == "move_to"]
    assert len(moves) == len([a for a in plan["actions"] if a["call"]["function"] == "move"])
    for move in moves:  # commanded and reached pose, side by side
        gap = math.dist(*([move[k][a] for a in "xyz"] for k in ("commanded", "reached")))
        assert gap * 1000 == pytest.approx(move["error_mm"]) and move["error_mm"] < 15
    assert [c["holding"] for c in commands if c["command"] == "set_gripper"] == [False, True,
                                                                                  False]
    timeline = lines(record / "timeline.jsonl")
    assert [e["t"] for e in timeline] == sorted(e["t"] for e in timeline)
    assert any(e["event"].startswith("step 4/10 setGripperState(false) holding") for e in timeline)

    # a film browsers play: H.264 in yuv420p, at least 640 x 480, its index before its data
    with av.open(str(record / "run.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) >= (640, 480) and stream.height >= 480
    data = (record / "run.mp4").read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    video = cv2.VideoCapture(str(record / "run.mp4"))
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = video.read()
    assert ok and first.ndim == 3 and first.shape[:2] == (480, 640) and frames > 50
    video.set(cv2.CAP_PROP_POS_FRAMES, frames // 2)
    ok, middle = video.read()
    assert ok and cv2.absdiff(first, middle).mean() > 1  # the arm moved in the film
    assert_key_absent(done.stdout, done.stderr, folder=tmp_path)


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "run"))


def test_replay_re_executes_the_run_and_ends_as_it_did(recorded_run):
    done = erarm("replay", str(recorded_run / "record"), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["task"] == TASK and report["recorded"]["success"] is True
    assert report["timeline"][0]["event"] == "looking at the table"
    replayed = report["replay"]
    assert replayed["reproduced"] and replayed["success"] is True
    assert len(replayed["commands"]) == report["commands"] == 10
    assert replayed["max_deviation_mm"] < 1.0  # the simulator is deterministic
    assert [c["holding"] for c in replayed["commands"] if c["holding"] is not None] == \
        [c["recorded_holding"] for c in replayed["commands"] if c["holding"] is not None]


def test_replay_prints_the_timeline_and_a_dry_run_moves_nothing(recorded_run):
    done = erarm("replay", str(recorded_run), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "step 10/10 returnToOrigin()" in done.stdout
    assert "recorded: ✓ success" in done.stdout
    assert "all 10 recorded commands pass the workspace and joint-limit checks" in done.stdout
    assert "replaying" not in done.stderr and "replayed:" not in done.stdout


def test_a_replay_that_ends_differently_exits_1(recorded_run, tmp_path):
    run = copy_of(recorded_run, tmp_path)
    result = json.loads((run / "result.json").read_text())
    result["ground_truth"]["success"] = False  # as if the recorded run had failed
    (run / "result.json").write_text(json.dumps(result))
    done = erarm("replay", str(run))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "erarm: error: the replay did not end as the recording did (recorded False, replayed "
        "True)")


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["commanded"].update(z=float("nan")), "recorded command 3: the pose has a "
                                                       "coordinate that is not a number"),
    (lambda c: c["commanded"].update(z=0.9), "recorded command 3: the tool would go to z = 900 mm"),
    (lambda c: c["commanded"].update(x=2.0), "recorded command 3 is outside the workspace"),
    (lambda c: c.update(command="fly"), "robot.jsonl line 3: command: Input should be"),
])
def test_a_damaged_record_is_refused_before_any_motion(recorded_run, tmp_path, change, message):
    run = copy_of(recorded_run, tmp_path)
    commands = lines(run / "record" / "robot.jsonl")
    change(commands[2])
    (run / "record" / "robot.jsonl").write_text("".join(json.dumps(c) + "\n" for c in commands))
    done = erarm("replay", str(run))
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1]
    assert "1/10" not in done.stderr  # not one command ran
    assert "Traceback" not in done.stderr


def test_replay_without_a_record_is_one_line(tmp_path):
    done = erarm("replay", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == (f"erarm: error: {tmp_path} holds no flight record (no record/ "
                                   "folder); record a run with --record")
    missing = erarm("replay", str(tmp_path / "nowhere"))
    assert (missing.returncode, missing.stderr) == (
        2, f"erarm: error: run folder {tmp_path / 'nowhere'} does not exist\n")


@pytest.mark.parametrize(("damage", "message"), [
    (lambda run: (run / "record" / "robot.jsonl").write_bytes(b'{"t": 0, "command": "st\xffop"}'),
     "robot.jsonl is not UTF-8 text (byte 0xff at offset 23)"),
    (lambda run: ((run / "result.json").unlink(), (run / "result.json").mkdir()),
     "result.json is a directory, not a file"),
    (lambda run: (run / "result.json").write_bytes(b"\xfe{}"), "result.json is not UTF-8 text"),
])
def test_unreadable_record_files_are_one_line(recorded_run, tmp_path, damage, message):
    run = copy_of(recorded_run, tmp_path)
    damage(run)
    done = erarm("replay", str(run), "--dry-run")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("erarm: error: ") and message in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_replay_gui_without_a_display_fails_before_printing(recorded_run):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    done = subprocess.run([ERARM, "replay", str(recorded_run), "--gui"], capture_output=True,
                          text=True, env=env, timeout=180, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("erarm: error: --gui needs a display")
    assert len(done.stderr.splitlines()) == 1


def test_a_run_folder_belongs_to_one_run(recorded_run, tmp_path):
    again = erarm("run", TASK, "--seed", "2", "--record", "--out", str(recorded_run))
    assert again.returncode == 2, again.stderr
    assert again.stderr == (f"erarm: error: run folder {recorded_run} holds another run "
                            "(result.json, plan.json, scene.json, camera.png, record): a run "
                            "folder belongs to one run, choose a new --out\n")
    assert len(lines(recorded_run / "record" / "robot.jsonl")) == 10  # nothing appended
    for out, message in [("README.md", "run folder README.md is a file, not a folder"),
                         ("/proc/x", "cannot create the run folder /proc/x")]:
        done = erarm("run", TASK, "--out", out)
        assert done.returncode == 2 and done.stderr.startswith(f"erarm: error: {message}")
        assert "looking" not in done.stderr and len(done.stderr.splitlines()) == 1
    no_display = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    failed = subprocess.run([ERARM, "run", TASK, "--gui", "--out", str(tmp_path / "gui")],
                            capture_output=True, text=True, env=no_display, timeout=180,
                            check=False)
    assert failed.returncode == 2 and "needs a display" in failed.stderr
    assert not (tmp_path / "gui").exists()  # a run that never started leaves no folder behind


def test_runs_at_once_cannot_share_a_folder(tmp_path):
    from erarm.agent.recording.run_folder import RunFolder
    from erarm.robots.errors import ConfigError

    first = RunFolder.claim(tmp_path / "run")
    with pytest.raises(ConfigError, match="holds another run"):
        RunFolder.claim(tmp_path / "run")  # the owner file alone marks it taken
    assert first.path == tmp_path / "run"
    assert RunFolder.claim_new(tmp_path / "run").path == tmp_path / "run-2"  # default folders


def test_a_second_run_is_refused_while_the_first_still_opens(toy_plugin, tmp_path):
    from tests.test_operator import ToyRun

    run = ToyRun(toy_plugin, tmp_path, "connect:1")
    run.wait_at("connect:1")  # the first run holds the folder, paused in connect
    rival = erarm("run", TASK, "--out", str(run.out))
    assert rival.returncode == 2
    assert "holds another run (.erarm-run)" in rival.stderr
    run.process.send_signal(signal.SIGINT)
    result, _ = run.finish()
    assert result["interrupted"] == "opening the workcell"


def test_execute_records_too_and_replays(recorded_run, tmp_path):
    done = erarm("execute", str(recorded_run / "plan.json"), "--seed", "2", "--record", "--out",
                 str(tmp_path / "exec"))
    assert done.returncode == 0, done.stderr
    assert len(lines(tmp_path / "exec" / "record" / "robot.jsonl")) == 10
    done = erarm("replay", str(tmp_path / "exec"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["replay"]["success"] is True
