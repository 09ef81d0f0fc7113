"""What the simulated arm's own kinematic model looks like through a calibration.

A private headless PyBullet client holds only the arm model (the xArm6 with erarm's gripper) and
nothing of the scene; posed at the arm's joint readings and rendered through a given calibration,
it gives the depth image that calibration predicts for the robot. A real driver can do the same
with its URDF: this uses only what a real robot knows about itself.
"""

from __future__ import annotations

import cv2
import numpy as np
import pybullet as pb

from erarm.robots.base import CameraCalibration
from erarm.sim.arm_model import ARM_JOINTS, FINGER_JOINTS, arm_urdf_path

NEAR_M, FAR_M = 0.05, 4.0
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])


def projection_matrix(calibration: CameraCalibration) -> list[float]:
    """PyBullet's (OpenGL, column-major) projection for pinhole intrinsics, with the principal
    point where the simulator's camera puts it (see erarm.sim.camera.calibration)."""
    w, h, n, f = calibration.width, calibration.height, NEAR_M, FAR_M
    projection = np.zeros((4, 4))
    projection[0, 0] = 2 * calibration.fx / w
    projection[1, 1] = 2 * calibration.fy / h
    projection[0, 2] = (w - 2 * calibration.cx) / w
    projection[1, 2] = 2 * (calibration.cy - h / 2 + 1) / h
    projection[2, 2] = -(f + n) / (f - n)
    projection[2, 3] = -2 * f * n / (f - n)
    projection[3, 2] = -1.0
    return projection.T.flatten().tolist()


class ArmSelfModel:
    """The arm's kinematic model alone, rendered into expected depth images."""

    def __init__(self) -> None:
        self._client = pb.connect(pb.DIRECT)
        self._arm = pb.loadURDF(str(arm_urdf_path()), useFixedBase=True,
                                physicsClientId=self._client)
        index = {pb.getJointInfo(self._arm, j, physicsClientId=self._client)[1].decode(): j
                 for j in range(pb.getNumJoints(self._arm, physicsClientId=self._client))}
        self._joints = [index[name] for name in (*ARM_JOINTS, *FINGER_JOINTS)]

    def expected_depth(self, calibration: CameraCalibration, joints_rad: list[float],
                       finger_gap_m: float) -> np.ndarray:
        """Depth along the optical axis (H x W metres, NaN where the robot is not) of the arm at
        these joint angles and finger opening, seen through `calibration`."""
        for joint, q in zip(self._joints, [*joints_rad, finger_gap_m / 2, finger_gap_m / 2],
                            strict=True):
            pb.resetJointState(self._arm, joint, q, physicsClientId=self._client)
        view = np.linalg.inv(calibration.pose() @ OPENCV_TO_OPENGL)
        _, _, _, buffer, mask = pb.getCameraImage(
            calibration.width, calibration.height, view.T.flatten().tolist(),
            projection_matrix(calibration), renderer=pb.ER_TINY_RENDERER, shadow=0,
            physicsClientId=self._client)
        shape = (calibration.height, calibration.width)
        buffer = np.reshape(np.asarray(buffer, dtype=np.float64), shape)
        depth = FAR_M * NEAR_M / (FAR_M - (FAR_M - NEAR_M) * buffer)
        depth[np.reshape(np.asarray(mask), shape) < 0] = np.nan
        return _distort(depth, calibration)

    def close(self) -> None:
        if pb.isConnected(self._client):
            pb.disconnect(self._client)


def _distort(depth: np.ndarray, calibration: CameraCalibration) -> np.ndarray:
    """Resample a pinhole render the way the calibration's lens distortion bends it."""
    if not any(calibration.distortion):
        return depth
    rows, cols = np.mgrid[0:calibration.height, 0:calibration.width]
    pixels = np.column_stack([cols.ravel(), rows.ravel()]).astype(np.float64).reshape(-1, 1, 2)
    k = calibration.intrinsic_matrix()
    ideal = cv2.undistortPoints(pixels, k, np.asarray(calibration.distortion), P=k)
    ideal = ideal.reshape(calibration.height, calibration.width, 2).astype(np.float32)
    return cv2.remap(depth.astype(np.float32), ideal[..., 0], ideal[..., 1], cv2.INTER_NEAREST,
                     borderValue=float("nan")).astype(np.float64)
