"""The simulator's fixed tabletop camera, described as data (ravens-style) and rendered by PyBullet.

The pose is built in the OpenCV camera convention (x right, y down, z forward) and PyBullet's
OpenGL view matrix is derived from it, so the calibration it reports is exact by construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pybullet as pb
from pydantic import BaseModel

from erarm.robots.base import CameraCalibration, Frame
from erarm.robots.errors import RobotError
from erarm.sim.transforms import rodrigues


class CameraSetup(BaseModel):
    """An oblique camera across the table from the robot, looking down at about 45 degrees."""

    eye: tuple[float, float, float] = (0.90, 0.0, 0.62)
    target: tuple[float, float, float] = (0.43, 0.0, 0.0)
    fov_y_deg: float = 48.0
    width: int = 640
    height: int = 480
    near_m: float = 0.05
    far_m: float = 3.0
    # a bumped camera: moved by this much and turned about its own centre (base-frame axes)
    offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    light_direction: tuple[float, float, float] = (0.4, 0.3, 1.0)
    ambient: float = 0.55
    diffuse: float = 0.5
    pose: list[list[float]] | None = None  # 4x4 camera-to-base: where eye and target give none

    @classmethod
    def like(cls, real: CameraCalibration) -> CameraSetup:
        """A camera where a calibrated one is, of its size and vertical field of view (a twin's
        camera: it sees the twin as the real one would)."""
        fov = math.degrees(2 * math.atan(real.height / 2 / real.fy))
        return cls(width=real.width, height=real.height, fov_y_deg=fov,
                   pose=real.camera_to_base)


def camera_to_base(setup: CameraSetup) -> np.ndarray:
    """4x4 pose of the camera (OpenCV axes) in the robot base frame."""
    if setup.pose is not None:
        return np.asarray(setup.pose, float)
    eye, target = np.asarray(setup.eye, float), np.asarray(setup.target, float)
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    bump = rodrigues(*np.radians(setup.rotation_deg))
    pose[:3, :3] = bump @ np.column_stack([right, down, forward])
    pose[:3, 3] = eye + np.asarray(setup.offset_m)
    return pose


def calibration(setup: CameraSetup) -> CameraCalibration:
    focal = setup.height / 2 / math.tan(math.radians(setup.fov_y_deg) / 2)
    return CameraCalibration(
        width=setup.width, height=setup.height, fx=focal, fy=focal,
        # PyBullet's TinyRenderer puts pixel centres on whole viewport coordinates and flips the
        # rows, which puts the principal point here (measured: ChArUco corners land within
        # 0.02 px of their projections)
        cx=setup.width / 2, cy=setup.height / 2 - 1,
        camera_to_base=camera_to_base(setup).tolist(), method="simulator")


def _view_matrix(setup: CameraSetup) -> list[float]:
    opencv_to_opengl = np.diag([1.0, -1.0, -1.0, 1.0])
    view = np.linalg.inv(camera_to_base(setup) @ opencv_to_opengl)
    return view.T.flatten().tolist()  # PyBullet wants column-major


def _projection_matrix(setup: CameraSetup) -> list[float]:
    return pb.computeProjectionMatrixFOV(setup.fov_y_deg, setup.width / setup.height,
                                         setup.near_m, setup.far_m)


def render(client: int, setup: CameraSetup, renderer: int = pb.ER_TINY_RENDERER,
           shadows: bool = True) -> Frame:
    """RGB and metric depth along the optical axis, as a real RGB-D camera would give;
    without `shadows` in about half the time (a film of the run, not what the agent sees)."""
    return render_with_mask(client, setup, renderer, mask=False, shadows=shadows)[0]


def render_with_mask(client: int, setup: CameraSetup, renderer: int = pb.ER_TINY_RENDERER,
                     mask: bool = True, shadows: bool = True) -> tuple[Frame, np.ndarray | None]:
    """The frame, and with `mask` the segmentation mask (the body id seen at each pixel, -1 for
    none) for the ground truth an emulator answers from."""
    _, _, rgba, depth_buffer, segmentation = pb.getCameraImage(
        setup.width, setup.height, _view_matrix(setup), _projection_matrix(setup),
        renderer=renderer, shadow=int(shadows), lightDirection=list(setup.light_direction),
        lightAmbientCoeff=setup.ambient, lightDiffuseCoeff=setup.diffuse, lightSpecularCoeff=0.05,
        flags=0 if mask else pb.ER_NO_SEGMENTATION_MASK, physicsClientId=client)
    rgb = np.reshape(np.asarray(rgba, dtype=np.uint8), (setup.height, setup.width, 4))[:, :, :3]
    buffer = np.reshape(np.asarray(depth_buffer, dtype=np.float32), (setup.height, setup.width))
    near, far = setup.near_m, setup.far_m
    depth = (far * near / (far - (far - near) * buffer)).astype(np.float32)
    frame = Frame(rgb=np.ascontiguousarray(rgb), depth_m=depth, calibration=calibration(setup))
    if not mask:
        return frame, None
    return frame, np.reshape(np.asarray(segmentation, dtype=np.int64),
                             (setup.height, setup.width))


class SimCamera:
    """The `Camera` of a simulated workcell."""

    name = "sim"

    def __init__(self, client: int, setup: CameraSetup, renderer: int = pb.ER_TINY_RENDERER,
                 on_close: Callable[[], None] | None = None,
                 on_capture: Callable[[Frame, np.ndarray], None] | None = None):
        self._client = client
        self._on_capture = on_capture  # sees each frame with its segmentation mask
        self.setup = setup
        self._renderer = renderer
        self._on_close = on_close  # a camera that owns its world closes it

    def capture(self) -> Frame:
        if not pb.isConnected(self._client):  # its workcell was closed
            raise RobotError("the simulated camera is closed: open the workcell again")
        if self._on_capture is None:
            return render(self._client, self.setup, self._renderer)
        frame, mask = render_with_mask(self._client, self.setup, self._renderer)
        self._on_capture(frame, mask)
        return frame

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
