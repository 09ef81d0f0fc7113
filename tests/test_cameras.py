"""The contract every camera driver must keep, run against the simulator's camera, an OpenCV
camera reading a video file, a RealSense fed by a stand-in for Intel's SDK, and the sample
plugin's camera; then the OpenCV camera in a whole (dry) run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import tests.fake_realsense as fake_rs
from erarm.robots.base import Camera, Frame
from erarm.robots.errors import ConfigError, RobotError
from erarm.robots.realsense import RealSenseCamera, RealSenseOptions
from erarm.robots.registry import open_camera

ERARM = str(Path(sys.executable).with_name("erarm"))
TASK = "pick the blue block into the orange bowl"
FRAMES = 4


@pytest.fixture(scope="module")
def sim_view() -> Frame:
    camera = open_camera("sim", task=TASK, seed=1)
    frame = camera.capture()
    camera.close()
    return frame


@pytest.fixture(scope="module")
def footage(sim_view, tmp_path_factory) -> tuple[Path, Path]:
    """A short video of the simulated table and the calibration of the camera that filmed it."""
    folder = tmp_path_factory.mktemp("footage")
    video, calibration = folder / "table.avi", folder / "calibration.json"
    width, height = sim_view.size
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    for _ in range(FRAMES):
        writer.write(cv2.cvtColor(sim_view.rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    calibration.write_text(sim_view.calibration.model_dump_json())
    return video, calibration


@pytest.fixture(params=["sim", "opencv-file", "realsense", "toy"])
def camera(request, footage, sim_view, toy_plugin) -> Camera:
    if request.param == "opencv-file":
        video, calibration = footage
        made = open_camera("opencv", source=str(video), calibration=calibration)
    elif request.param == "realsense":
        depth_units = np.round(sim_view.depth_m / fake_rs.DEPTH_SCALE).astype(np.uint16)
        fake_rs.pipeline.recording = [(cv2.cvtColor(sim_view.rgb, cv2.COLOR_RGB2BGR),
                                       depth_units)]
        made = RealSenseCamera(RealSenseOptions(), sdk=fake_rs)
    else:
        made = open_camera(request.param, **({"task": TASK, "seed": 1}
                                             if request.param == "sim" else {}))
    yield made
    made.close()


def test_it_is_a_camera_that_gives_rgb_frames(camera):
    assert isinstance(camera, Camera) and camera.name
    frame = camera.capture()
    assert isinstance(frame, Frame)
    assert frame.rgb.dtype == np.uint8 and frame.rgb.ndim == 3 and frame.rgb.shape[2] == 3


def test_its_calibration_and_depth_fit_its_frames(camera):
    frame = camera.capture()
    if frame.calibration is not None:
        assert (frame.calibration.width, frame.calibration.height) == frame.size
    if frame.depth_m is not None:
        assert frame.depth_m.shape == frame.rgb.shape[:2]
        valid = frame.depth_m[np.isfinite(frame.depth_m) & (frame.depth_m > 0)]
        assert valid.size > 0.5 * frame.depth_m.size and valid.max() < 10  # metres


def test_frames_keep_their_size(camera):
    assert camera.capture().size == camera.capture().size


def test_close_twice_is_harmless(camera):
    camera.close()
    camera.close()


def test_the_realsense_frame_is_the_recorded_one_in_rgb_and_metres(sim_view):
    depth_units = np.round(sim_view.depth_m / fake_rs.DEPTH_SCALE).astype(np.uint16)
    fake_rs.pipeline.recording = [(cv2.cvtColor(sim_view.rgb, cv2.COLOR_RGB2BGR), depth_units)]
    camera = RealSenseCamera(RealSenseOptions(warmup_frames=3), sdk=fake_rs)
    frame = camera.capture()
    assert np.array_equal(frame.rgb, sim_view.rgb)  # BGR turned back into RGB
    assert np.abs(frame.depth_m - sim_view.depth_m).max() <= 0.0005 + 1e-6  # 1 mm units
    assert frame.calibration.fx == 500.0 and frame.calibration.method == "realsense-factory"
    assert camera._pipeline.served == 4  # three dropped while the exposure settles
    camera.close()


def test_no_realsense_camera_is_a_config_error():
    fake_rs.pipeline.recording = []
    with pytest.raises(ConfigError, match="cannot start the RealSense camera: No device"):
        RealSenseCamera(RealSenseOptions(), sdk=fake_rs)


def test_a_video_file_runs_out_clearly(footage):
    video, calibration = footage
    camera = open_camera("opencv", source=str(video), calibration=calibration)
    for _ in range(FRAMES):
        camera.capture()
    with pytest.raises(RobotError, match="the video file has no more frames"):
        camera.capture()
    camera.close()


@pytest.mark.parametrize(("options", "message"), [
    ({"source": "missing.mp4"}, "camera source 'missing.mp4': no such video file"),
    ({"source": 0, "calibration": "missing.json"}, "calibration file not found: missing.json"),
    ({"source": 0, "lens": "wide"}, "opencv camera option lens: Extra inputs are not permitted"),
])
def test_bad_camera_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        open_camera("opencv", **options)


def test_a_run_sees_through_an_opencv_camera(footage, tmp_path):
    """The whole pipeline on frames from a video file (no depth: the table plane instead)."""
    video, calibration = footage
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    done = subprocess.run([ERARM, "run", TASK, "--seed", "1", "--camera", "opencv",
                           "--camera-opt", f"source={video}", "--camera-opt",
                           f"calibration={calibration}", "--dry-run", "--json", "--out",
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    seen = {o["label"]: o["position_mm"] for o in result["objects"]}
    assert {"blue block", "orange bowl"} <= set(seen)
    grasp = next(a for a in result["actions"] if a["why"].startswith("grasp"))
    truth = json.loads((tmp_path / "scene.json").read_text())["objects"]
    blue = next(o for o in truth if o["colour"] == "blue" and o["kind"] == "block")
    # no depth: the block's top is taken for table, so its point slides along the camera ray
    assert np.hypot(grasp["target"]["x_mm"] - blue["x_mm"],
                    grasp["target"]["y_mm"] - blue["y_mm"]) < 40
