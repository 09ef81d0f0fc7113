"""Shared test helpers: synthetic cameras, ray-cast depth frames, and simulated workcells."""

from __future__ import annotations

import fcntl
import math
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from erarm.robots.base import CameraCalibration, Frame, Workcell
from erarm.robots.registry import open_workcell


def look_at(eye: tuple[float, float, float], target: tuple[float, float, float]) -> np.ndarray:
    """Camera-to-base pose (OpenCV axes) of a camera at `eye` looking at `target`."""
    eye_v, target_v = np.asarray(eye, float), np.asarray(target, float)
    forward = (target_v - eye_v) / np.linalg.norm(target_v - eye_v)
    right = np.cross(forward, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([right, np.cross(forward, right), forward])
    pose[:3, 3] = eye_v
    return pose


def synthetic_calibration(eye=(0.9, 0.1, 0.6), target=(0.4, 0.0, 0.0), width=640, height=480,
                          fov_y_deg=50.0, distortion=(0.0, 0.0, 0.0, 0.0, 0.0)
                          ) -> CameraCalibration:
    focal = height / 2 / math.tan(math.radians(fov_y_deg) / 2)
    return CameraCalibration(width=width, height=height, fx=focal, fy=focal * 1.01,
                             cx=width / 2 - 0.5 + 3, cy=height / 2 - 0.5 - 2,
                             distortion=list(distortion),
                             camera_to_base=look_at(eye, target).tolist())


def raycast_frame(calibration: CameraCalibration,
                  boxes: list[tuple[float, float, float, float]] = ()) -> Frame:
    """A depth frame of a flat table (z = 0) with axis-aligned raised tops: (x, y, half, top).
    Side faces are ignored: each ray hits the first top it crosses, else the table."""
    from erarm.agent.geometry import pixel_rays

    rows, cols = np.mgrid[0:calibration.height, 0:calibration.width]
    pixels = np.column_stack([cols.ravel(), rows.ravel()]).astype(float)
    origin, directions = pixel_rays(pixels, calibration)
    forward = calibration.pose()[:3, 2]
    t_best = (0.0 - origin[2]) / directions[:, 2]
    for x, y, half, top in boxes:
        t = (top - origin[2]) / directions[:, 2]
        hit = origin + t[:, None] * directions
        inside = (np.abs(hit[:, 0] - x) <= half) & (np.abs(hit[:, 1] - y) <= half) & (t > 0)
        t_best = np.where(inside & (t < t_best), t, t_best)
    depth = (t_best * (directions @ forward)).reshape(calibration.height, calibration.width)
    rgb = np.full((calibration.height, calibration.width, 3), 200, np.uint8)
    return Frame(rgb=rgb, calibration=calibration, depth_m=depth.astype(np.float32))


def _sim_cells() -> Iterator:
    """Open simulated workcells staged for a task: `make(task, seed)`; all closed after."""
    opened: list[Workcell] = []

    def make(task: str = "pick the blue block into the orange bowl", seed: int = 0,
             **options) -> Workcell:
        cell = open_workcell("sim", task=task, seed=seed, **options)
        cell.robot.connect()
        opened.append(cell)
        return cell

    yield make
    for cell in opened:
        cell.close()


@pytest.fixture
def sim_cell() -> Iterator:
    """Simulated workcells for one test (`_sim_cells`)."""
    yield from _sim_cells()


@pytest.fixture(scope="module")
def sim_cell_module() -> Iterator:
    """Simulated workcells shared by a module's tests (`_sim_cells`)."""
    yield from _sim_cells()


RECORDED_TASK = "pick the blue block into the orange bowl"


@pytest.fixture(scope="session")
def recorded_run(tmp_path_factory) -> Path:
    """One run of the local brain in the simulator with its flight record (seed 2: ten recorded
    commands), shared by the recorder, replay and tracking tests; they copy it before changing
    anything in it."""
    from erarm.agent.api import run_task

    folder = tmp_path_factory.mktemp("recorded") / "run"
    cell = open_workcell("sim", task=RECORDED_TASK, seed=2)
    cell.robot.connect()
    try:
        result = run_task(RECORDED_TASK, cell, brain="local", out=folder, record=True)
    finally:
        cell.close()
    assert result.success is True, result.error
    return folder


@contextmanager
def one_at_a_time(name: str) -> Iterator[None]:
    """Across the suite's worker processes, one holder at a time of what the machine has one of
    (Ray's local instance, the source tree's build/ folder): an exclusive file lock."""
    with open(Path(tempfile.gettempdir()) / f"erarm-tests-{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class FaultyGripper:
    """The simulated arm, except that its gripper ignores the first `misses` commands to close
    (it stays open): a worn actuator, or a grasp knocked off by a bump."""

    def __init__(self, inner, misses: int = 1):
        self.inner, self.misses, self.to_miss = inner, misses, misses

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def set_gripper(self, opened: bool):
        if not opened and self.misses > 0:
            self.misses -= 1
            return self.inner.set_gripper(True)
        return self.inner.set_gripper(opened)

    @property
    def missed(self) -> bool:
        """Whether it has ignored a command to close yet."""
        return self.misses < self.to_miss


TEST_KEY = "test-key-0123456789-not-a-real-key"


def assert_key_absent(*texts: str, folder: Path | None = None) -> None:
    """The test key in no letter case in any of the texts, nor in any file under `folder`."""
    key = TEST_KEY.lower()
    for text in texts:
        assert key not in text.lower()
    for path in (folder.rglob("*") if folder else []):
        if path.is_file():
            assert key.encode() not in path.read_bytes().lower(), path


@pytest.fixture
def fake_gemini() -> Iterator:
    """A Gemini-compatible server on 127.0.0.1, closed after the test."""
    from tests.fake_gemini import FakeGemini

    server = FakeGemini()
    yield server
    server.close()


@pytest.fixture
def gemini(fake_gemini):
    """`gemini(sleep=..., **settings)`: a real GeminiBrain (real SDK) pointed at the fake server,
    with fast retries so failure tests stay quick."""
    from erarm.agent.brains.gemini import GeminiBrain
    from erarm.agent.config import GeminiSettings

    def make(sleep=time.sleep, **settings) -> GeminiBrain:
        options = {"base_url": fake_gemini.url, "backoff_s": 0.01, "timeout_s": 5.0, **settings}
        return GeminiBrain(TEST_KEY, GeminiSettings(**options), sleep=sleep)

    return make


@pytest.fixture(scope="session")
def toy_plugin(tmp_path_factory) -> Path:
    """The sample plugin in tests/plugins/erarm_toy, installed by pip (offline, from a copy of
    its source) into a folder that is put on sys.path: a folder to add to PYTHONPATH for the
    `erarm` command."""
    import importlib
    import shutil
    import subprocess
    import sys

    source = shutil.copytree(Path(__file__).parent / "plugins" / "erarm_toy",
                             tmp_path_factory.mktemp("toy-source") / "erarm_toy")
    target = tmp_path_factory.mktemp("toy-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--no-build-isolation", "--target", str(target), str(source)],
                   check=True, capture_output=True, timeout=300)
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    return target
