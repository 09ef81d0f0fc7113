"""The flight record in rerun: a run, a converted record, a bench and a live session, each
saved as an .rrd file and read back with rerun's own query API (a catalog server on loopback)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

rr = pytest.importorskip("rerun", reason="rerun-sdk is in the dev extra")

from erarm.agent.brains.local import LocalBrain  # noqa: E402
from erarm.agent.recording.rerun_view import RerunOptions  # noqa: E402
from erarm.agent.run import RunOptions, run_task  # noqa: E402
from tests.rrd import Rrd  # noqa: E402

TASK = "pick the blue block into the orange bowl"
ERARM = [str(Path(sys.executable).with_name("erarm"))]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, sim_cell_module):
    """One run saved as an .rrd while it ran, its flight record, and its result."""
    folder = tmp_path_factory.mktemp("rerun") / "run"
    save = folder.parent / "live.rrd"
    cell = sim_cell_module(TASK, seed=3)
    result = run_task(TASK, LocalBrain(), cell, folder,
                      options=RunOptions(rerun=RerunOptions(save=save)))
    assert result.exit_code == 0 and result.success, result.error
    rrd = Rrd(save)
    yield rrd, folder, result
    rrd.close()


def _records(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / "record" / name).read_text().splitlines()]


def test_the_camera_and_what_the_brain_saw_in_it(recorded):
    rrd, folder, _ = recorded
    looks = _records(folder, "looks.jsonl")
    assert len(looks) >= 2  # the first look and the check after the task
    images = rrd.rows("/world/camera/image")
    assert len(images) == len(looks)
    assert [round(r["t"], 3) for r in images] == [look["t"] for look in looks]
    depth = rrd.rows("/world/camera/depth")
    assert len(depth) == len(looks) and depth[0]["DepthImage:meter"] == [1000.0]
    calibration = json.loads((folder / "calibration.json").read_text())
    assert rrd.static("/world/camera", "Pinhole:resolution") == [
        [calibration["width"], calibration["height"]]]
    assert np.allclose(rrd.static("/world/camera", "Transform3D:translation")[0],
                       np.array(calibration["camera_to_base"])[:3, 3], atol=1e-6)
    # the points on the image, in pixels, with the brain's labels
    first, points = looks[0], rrd.rows("/world/camera/image/points")[0]
    assert points["Points2D:labels"] == [p["label"] for p in first["points"]]
    y, x = first["points"][0]["point"]
    assert np.allclose(points["Points2D:positions"][0],
                       [x * first["width"] / 1000, y * first["height"] / 1000], atol=0.01)
    boxes = rrd.rows("/world/camera/image/boxes")[0]
    assert boxes["Boxes2D:labels"] == [b["label"] for b in first["boxes"]]
    assert "blue block" in boxes["Boxes2D:labels"]


def test_objects_plan_and_poses_in_the_robot_frame(recorded):
    rrd, folder, result = recorded
    objects = rrd.rows("/world/objects")[0]
    assert objects["Points3D:labels"] == [o.label for o in result.objects]
    assert np.allclose(objects["Points3D:positions"],
                       [[v / 1000 for v in o.position_mm] for o in result.objects], atol=1e-4)
    targets = [[a.target.x_mm / 1000, a.target.y_mm / 1000, a.target.z_mm / 1000]
               for a in result.actions if a.target is not None]
    plan = rrd.rows("/world/plan/targets")[-1]
    assert np.allclose(plan["Points3D:positions"], targets, atol=1e-4)
    commands = _records(folder, "robot.jsonl")
    reached = [c["reached"] for c in commands if "reached" in c]
    path = rrd.rows("/world/tool/path")[-1]["LineStrips3D:strips"][0]
    assert np.allclose(path, [[r[k] for k in "xyz"] for r in reached], atol=1e-5)
    commanded = rrd.rows("/world/tool/commanded")
    assert len(commanded) == sum(c["command"] == "move_to" for c in commands)
    # the gripper: opened, closed on the block (holding), opened over the bowl
    holding = [r["Scalars:scalars"][0] for r in rrd.rows("/gripper/holding")]
    opening = [r["Scalars:scalars"][0] for r in rrd.rows("/gripper/opening_mm")]
    assert holding == [0.0, 1.0, 0.0] and opening[0] > opening[1] > 10


def test_the_log_the_plan_and_the_verdict(recorded):
    rrd, folder, result = recorded
    log = [r["TextLog:text"][0] for r in rrd.rows("/log")]
    timeline = [e["event"] for e in _records(folder, "timeline.jsonl")]
    assert log[:len(timeline)] == timeline
    plan = rrd.rows("/plan")[0]["TextDocument:text"][0]
    assert "| 1 | move(" in plan and "returnToOrigin()" in plan
    verdict = rrd.rows("/verdict")[-1]["TextDocument:text"][0]
    assert "success: True" in verdict and result.ground_truth.reason in verdict


def test_replay_converts_a_flight_record_to_the_same_recording(recorded, tmp_path):
    rrd, folder, _ = recorded
    # the run kept its flight record because it was viewed: convert it afterwards
    save = tmp_path / "converted.rrd"
    done = subprocess.run([*ERARM, "replay", str(folder), "--rerun-save", str(save)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "records; wrote" in done.stdout
    converted = Rrd(save)
    try:
        assert converted.columns == rrd.columns
        for entity in ("/world/objects", "/world/tool/path", "/gripper/holding", "/log",
                       "/world/camera/image/points"):
            assert converted.rows(entity) == rrd.rows(entity), entity
    finally:
        converted.close()


@pytest.mark.parametrize("args, words", [
    (["run", TASK, "--rerun-save", "out.txt"], "ending in .rrd"),
    (["run", TASK, "--rerun-save", "fifo.rrd"], "is not a regular file"),
    (["run", TASK, "--rerun-save", "folder.rrd"], "is a folder"),
    (["run", TASK, "--rerun-save", "afile/x.rrd"], "cannot make"),
    (["run", TASK, "--rerun"], "no display"),
    (["bench", "--episodes", "1", "--rerun"], "give --record too"),
    (["replay", "nowhere", "--rerun-save", "x.rrd"], "does not exist"),
])
def test_bad_rerun_options_fail_in_one_line_before_anything_moves(tmp_path, args, words):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    os.mkfifo(tmp_path / "fifo.rrd")
    (tmp_path / "folder.rrd").mkdir()
    (tmp_path / "afile").write_text("a file, not a folder")
    done = subprocess.run([*ERARM, *args, "--out", str(tmp_path / "out")]
                          if args[0] != "replay" else [*ERARM, *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    if words == "no display":
        from erarm.agent.recording.rerun_view import _viewer_listening
        if _viewer_listening():
            pytest.skip("a rerun viewer is listening here: --rerun would stream to it")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage, words", [
    (lambda looks: looks[0].update(points=[{"point": ["a", None], "label": "x"}]), "damaged"),
    (lambda looks: looks[0].update(image="../../calibration.json"), "outside"),
    (lambda looks: looks[0].update(image="/etc/hostname"), "outside"),
    (lambda looks: looks[0].update(image="frames/none.png"), "missing"),
])
def test_a_damaged_or_crafted_record_converts_to_nothing_in_one_line(recorded, tmp_path, damage,
                                                                     words):
    _, folder, _ = recorded
    copy = tmp_path / "run"
    shutil.copytree(folder, copy)
    looks = _records(copy, "looks.jsonl")
    damage(looks)
    (copy / "record" / "looks.jsonl").write_text("".join(json.dumps(x) + "\n" for x in looks))
    done = subprocess.run([*ERARM, "replay", str(copy), "--rerun-save", str(tmp_path / "x.rrd")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in done.stderr


def test_a_bench_keeps_each_episodes_record_as_a_recording(tmp_path):
    out = tmp_path / "bench"
    done = subprocess.run([*ERARM, "bench", "--task", "pick-into-bowl", "--episodes", "2",
                           "--workers", "2", "--record", "--rerun", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 2 episodes cannot show the target
    for seed in (0, 1):
        episode = out / "episodes" / f"pick-into-bowl-{seed}"
        rrd = Rrd(episode / "record" / "run.rrd")
        try:
            looks = _records(episode, "looks.jsonl")
            assert len(rrd.rows("/world/camera/image")) == len(looks)
            assert "success: True" in rrd.rows("/verdict")[-1]["TextDocument:text"][0]
        finally:
            rrd.close()


def test_a_viewer_that_fails_mid_run_is_a_warning_and_the_run_goes_on(tmp_path, monkeypatch,
                                                                      sim_cell_module):
    """rerun raising as a severed viewer does (its sink's RuntimeError) on the twelfth record:
    the task is still done, the log says rerun stopped, the flight record is whole."""
    from erarm.agent.recording.rerun_view import RerunView

    shown = RerunView.add
    calls = []

    def severed(view, stream, record):
        calls.append(stream)
        if len(calls) == 12:
            raise RuntimeError("gRPC connection severed: Failed to send messages")
        shown(view, stream, record)

    monkeypatch.setattr(RerunView, "add", severed)
    lines: list[str] = []
    cell = sim_cell_module(TASK, seed=5)
    result = run_task(TASK, LocalBrain(), cell, tmp_path / "run", log=lines.append,
                      options=RunOptions(rerun=RerunOptions(save=tmp_path / "x.rrd")))
    assert result.exit_code == 0 and result.success, result.error
    assert len(calls) == 12  # nothing more was sent to it
    warned = [line for line in lines if line.startswith("warning: rerun stopped")]
    assert warned == ["warning: rerun stopped (gRPC connection severed: Failed to send "
                      "messages); the run goes on, its flight record is whole"]
    commands = _records(tmp_path / "run", "robot.jsonl")
    assert sum(c["command"] == "move_to" for c in commands) == sum(
        a.call.function == "move" for a in result.actions)
