"""The contract between erarm's agent and the things that move and see.

Units: metres and radians in the robot base frame (x forward, y left, z up, origin at the base,
z = 0 on the table top). Drivers implement `Robot` and `Camera` structurally: they need not
import this module, only match it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from erarm.robots.errors import ConfigError


class ToolPose(BaseModel):
    """Where the tool centre point (between the fingertips) should be. The tool points straight
    down unless tilted: its orientation is Rz(yaw) Ry(pitch) Rx(roll) applied to pointing down."""

    model_config = ConfigDict(frozen=True)

    x: float
    y: float
    z: float
    yaw: float = 0.0  # radians about the base z axis
    roll: float = 0.0  # tilt about the base x axis, radians (0: pointing down)
    pitch: float = 0.0  # tilt about the base y axis, radians

    def position(self) -> np.ndarray:
        return np.array([self.x, self.y, self.z])

    def rotation(self) -> np.ndarray:
        """3x3 orientation of the tool frame (z out of the flange) in the base frame."""
        cy, sy = np.cos(self.yaw), np.sin(self.yaw)
        cp, sp = np.cos(self.pitch), np.sin(self.pitch)
        cr, sr = np.cos(self.roll), np.sin(self.roll)
        rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
        ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
        rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
        return rz @ ry @ rx @ np.diag([1.0, -1.0, -1.0])  # the last factor: pointing down

    @classmethod
    def from_rotation(cls, x: float, y: float, z: float, rotation: np.ndarray) -> ToolPose:
        """The pose at (x, y, z) whose `rotation()` is this 3x3 matrix: pointing down undone,
        then the Z-Y-X angles read off."""
        tilt = np.asarray(rotation) @ np.diag([1.0, -1.0, -1.0])
        return cls(x=x, y=y, z=z, yaw=math.atan2(tilt[1, 0], tilt[0, 0]),
                   pitch=-math.asin(max(-1.0, min(1.0, tilt[2, 0]))),
                   roll=math.atan2(tilt[2, 1], tilt[2, 2]))

    def matrix(self) -> np.ndarray:
        """4x4 pose of the tool frame in the base frame."""
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = self.rotation(), self.position()
        return pose


class MoveReport(BaseModel):
    """What a motion achieved: the pose reached once the arm settled, and how long it took."""

    target: ToolPose
    reached: ToolPose
    position_error_m: float
    duration_s: float  # robot time: simulated seconds in the simulator, wall time on hardware


class GripperReport(BaseModel):
    opened: bool
    opening_m: float  # distance between the finger pads
    holding: bool  # closed on something, or (opened) unable to open: something is stuck
    duration_s: float


class RobotState(BaseModel):
    joint_positions_rad: list[float]
    tool: ToolPose
    gripper_open: bool  # the last gripper command
    gripper_opening_m: float
    holding: bool = False  # see GripperReport.holding


class EnvelopeBreach(StrEnum):
    """Which part of the envelope a tool pose or a spot leaves."""

    not_finite = "not finite"
    outside_xy = "outside x-y"
    beyond_reach = "beyond reach"
    outside_z = "outside z"


class EnvelopeProblem(BaseModel):
    """Why a pose or spot lies outside the envelope: which limit, and in words (a phrase that
    reads after "refusing to move the tool: ")."""

    model_config = ConfigDict(frozen=True)

    breach: EnvelopeBreach
    message: str


class WorkspaceLimits(BaseModel):
    """The envelope a plan must stay inside; checked before the first motion."""

    x_min: float = 0.15
    x_max: float = 0.70
    y_min: float = -0.40
    y_max: float = 0.40
    z_min: float = 0.0  # lowest the tool centre may go (the table top is table_z)
    z_max: float = 0.45
    table_z: float = 0.0
    max_reach_m: float = 0.70  # horizontal distance from the base axis
    travel_z: float = 0.20  # height of `high` moves
    max_steps: int = 64  # longest plan accepted
    max_speed_m_s: float = 0.5  # Cartesian speed cap of the tool

    @model_validator(mode="after")
    def _a_box(self) -> WorkspaceLimits:
        """An envelope that can hold a pose: finite, each lower bound below its upper one."""
        values = self.model_dump()
        if not all(math.isfinite(v) for v in values.values()):
            raise ValueError("every limit must be a number (metres)")
        for axis in "xyz":
            if values[f"{axis}_min"] >= values[f"{axis}_max"]:
                raise ValueError(f"{axis}_min must be below {axis}_max")
        if self.max_reach_m <= 0 or self.max_speed_m_s <= 0 or self.max_steps < 1:
            raise ValueError("max_reach_m, max_speed_m_s and max_steps must be positive")
        return self

    def reach_m(self, x: float, y: float) -> float:
        """How far (x, y) metres lies from the base axis, horizontally."""
        return math.hypot(x, y)

    def check_spot(self, x: float, y: float) -> EnvelopeProblem | None:
        """Why a spot (x, y) metres on the table lies outside this envelope, or None: the part
        of the check that needs no height."""
        if not (math.isfinite(x) and math.isfinite(y)):
            return EnvelopeProblem(breach=EnvelopeBreach.not_finite,
                                   message="the pose has a coordinate that is not a number")
        if not (self.x_min <= x <= self.x_max and self.y_min <= y <= self.y_max):
            return EnvelopeProblem(breach=EnvelopeBreach.outside_xy,
                                   message=f"outside the workspace (x {_mm(self.x_min, self.x_max)}"
                                           f", y {_mm(self.y_min, self.y_max)} mm)")
        if self.reach_m(x, y) > self.max_reach_m:
            return EnvelopeProblem(breach=EnvelopeBreach.beyond_reach,
                                   message=f"beyond the arm's reach of "
                                           f"{self.max_reach_m * 1000:.0f} mm")
        return None

    def check(self, pose: ToolPose) -> EnvelopeProblem | None:
        """Why a tool pose lies outside this envelope, or None: finite, (x, y) in the workspace
        box and within reach, z between z_min and z_max."""
        if not all(math.isfinite(v) for v in pose.model_dump().values()):
            return EnvelopeProblem(breach=EnvelopeBreach.not_finite,
                                   message="the pose has a coordinate that is not a number")
        spot = self.check_spot(pose.x, pose.y)
        if spot is not None:
            return spot
        if not self.z_min <= pose.z <= self.z_max:
            return EnvelopeProblem(breach=EnvelopeBreach.outside_z,
                                   message=f"the tool would go to z = {pose.z * 1000:.0f} mm, "
                                           f"outside {_mm(self.z_min, self.z_max)} mm")
        return None

    def problem(self, pose: ToolPose) -> str | None:
        """`check` in words, or None. Drivers refuse such a move themselves, whoever asks for
        it."""
        found = self.check(pose)
        return found.message if found else None


def _mm(low_m: float, high_m: float) -> str:
    """A range in metres as whole millimetres, "150..700"."""
    return f"{low_m * 1000:.0f}..{high_m * 1000:.0f}"


ROTATION_TOLERANCE = 1e-3  # how far from orthonormal a stored rotation may be (rounding)


class CameraCalibration(BaseModel):
    """A camera's calibration file: pinhole intrinsics (OpenCV convention: x right, y down, pixel
    centres at integers), lens distortion, the camera's pose in the robot base frame, the table
    plane, and how, when and how well it was made. A key it does not know is refused: a
    misspelt one would otherwise be silently ignored (`distorsion`: no distortion at all)."""

    model_config = ConfigDict(extra="forbid")

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: list[float] = Field(default_factory=lambda: [0.0] * 5)
    camera_to_base: list[list[float]] | None = None  # 4x4, metres; None: intrinsics only
    table_z: float = 0.0  # the table plane, z = table_z in the base frame
    method: str = "unknown"  # simulator, charuco-intrinsics, charuco-board, hand-eye, plane
    created: str | None = None  # ISO 8601
    errors: dict[str, float] = Field(default_factory=dict)  # e.g. rms_px, translation_error_mm
    plane_homography: list[list[float]] | None = None  # pixel -> (x, y) mm on plane_z
    plane_z: float | None = None  # metres: the plane the homography maps onto

    @model_validator(mode="after")
    def _physically_possible(self) -> CameraCalibration:
        """Refuse a camera no lens can be: mirrored, non-finite, of no size, or posed by a
        matrix that is not a rigid motion."""
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"the image size {self.width}x{self.height} must be positive")
        numbers = [self.fx, self.fy, self.cx, self.cy, self.table_z, *self.distortion]
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError("the intrinsics, distortion and table_z must be finite numbers")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"fx = {self.fx:g} and fy = {self.fy:g} must be positive (a "
                             "negative focal length is a mirrored image)")
        if self.camera_to_base is not None:
            pose = np.asarray(self.camera_to_base, dtype=float)
            if pose.shape != (4, 4) or not np.isfinite(pose).all():
                raise ValueError("camera_to_base must be a 4x4 matrix of finite numbers")
            rotation = pose[:3, :3]
            if (not np.allclose(pose[3], [0, 0, 0, 1], atol=1e-9)
                    or not np.allclose(rotation.T @ rotation, np.eye(3), atol=ROTATION_TOLERANCE)
                    or np.linalg.det(rotation) < 0):
                raise ValueError("camera_to_base is not a rigid motion (its rotation must be "
                                 "orthonormal with determinant +1, its last row 0 0 0 1)")
        if self.plane_homography is not None:
            homography = np.asarray(self.plane_homography, dtype=float)
            if homography.shape != (3, 3) or not np.isfinite(homography).all():
                raise ValueError("plane_homography must be a 3x3 matrix of finite numbers")
        return self

    def intrinsic_matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=float)

    def project(self, points_m: np.ndarray) -> np.ndarray:
        """Pixels (N x 2) where base-frame points (N x 3, metres) are seen, lens distortion
        included."""
        import cv2  # OpenCV's own projection; loaded only when something is projected

        points = np.asarray(points_m, dtype=np.float64).reshape(-1, 3)
        world_to_camera = np.linalg.inv(self.pose())
        rvec, _ = cv2.Rodrigues(world_to_camera[:3, :3])
        pixels, _ = cv2.projectPoints(points, rvec, world_to_camera[:3, 3],
                                      self.intrinsic_matrix(),
                                      np.asarray(self.distortion, dtype=np.float64))
        return pixels.reshape(-1, 2)

    def pose(self) -> np.ndarray:
        if self.camera_to_base is None:
            raise ConfigError(f"this calibration ({self.method}) has no camera pose; make one "
                              "with erarm calibrate extrinsics or erarm calibrate plane")
        return np.asarray(self.camera_to_base, dtype=float)


def load_calibration(path: str | Path) -> CameraCalibration:
    """A calibration file, or a one-line error saying what is wrong with it."""
    from erarm.robots.files import read_input_text

    text = read_input_text(path, "calibration file")
    try:
        return CameraCalibration.model_validate_json(text)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            known = difflib.get_close_matches(where, CameraCalibration.model_fields, n=1)
            raise ConfigError(f"calibration file {path}: unknown key {where!r}"
                              + (f" (did you mean {known[0]!r}?)" if known else "")) from None
        raise ConfigError(f"calibration file {path}: {where + ': ' if where else ''}"
                          f"{first['msg']}") from None


@dataclass(frozen=True)
class Frame:
    """One camera capture: RGB (H x W x 3, uint8), optional metric depth along the optical axis
    (H x W, float32 metres) and the calibration that maps its pixels to the base frame (None
    for a bare image, which supports only image-space answers)."""

    rgb: np.ndarray
    calibration: CameraCalibration | None = None
    depth_m: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.rgb.shape[1], self.rgb.shape[0]


@runtime_checkable
class Robot(Protocol):
    """A 6-DoF arm with a parallel gripper.

    Every method blocks until the motion has finished and the arm has settled. Motion methods raise
    `RobotError` when the arm cannot comply; after that the caller calls `stop()`. A driver raises
    `MotionBlocked` (a `RobotError`) when the arm stopped short against something and can still
    move: the closed loop then backs off, looks again and replans. The simulator does; the xArm,
    which stays stopped after a collision error until someone clears it, does not.
    """

    name: str
    limits: WorkspaceLimits
    physical: bool  # a real arm: erarm asks the operator before moving it

    def connect(self) -> None: ...
    def close(self) -> None: ...
    def move_to(self, pose: ToolPose) -> MoveReport: ...
    def set_gripper(self, opened: bool) -> GripperReport: ...
    def return_to_origin(self) -> MoveReport: ...
    def stop(self) -> None: ...
    def state(self) -> RobotState: ...

    def reachable(self, pose: ToolPose) -> str | None:
        """None when the arm can put its tool at `pose` within its joint limits, else why not.
        Asked for every step of a plan before the first motion; never moves the arm."""
        ...


@runtime_checkable
class SeesItself(Protocol):
    """Optional for a `Robot`: its own kinematic model (links and gripper at the current joint
    readings), rendered through a calibration into the depth image that calibration predicts
    for the robot. The calibration check compares it with what the camera sees, which catches
    errors the table plane cannot show (shifts along the table, turns about the vertical).
    A robot that has it must be in the camera's view when the check runs (at home)."""

    def expected_depth(self, calibration: CameraCalibration) -> np.ndarray | None:
        """H x W metres along the optical axis, NaN where the robot should not be seen; None
        when the robot cannot render itself."""
        ...


@runtime_checkable
class Camera(Protocol):
    """Gives frames: RGB, depth when it has it, and the calibration that maps its pixels into
    the robot's base frame."""

    name: str

    def capture(self) -> Frame: ...
    def close(self) -> None: ...


class GroundTruth(BaseModel):
    """A simulator's verdict on a task, for scoring only: the agent never sees it."""

    success: bool | None  # None: the simulator has no check for this task
    reason: str
    objects: list[dict] = Field(default_factory=list)  # label and position_mm of each object
    objects_at_start: list[dict] = Field(default_factory=list)  # the same before the run


@runtime_checkable
class Referee(Protocol):
    """Only simulators have one: judges a task from ground truth."""

    def judge(self) -> GroundTruth: ...

    def true_calibration(self) -> CameraCalibration:
        """The camera as it really is, to score a calibration against."""
        ...


@runtime_checkable
class Stage(Protocol):
    """What a person does for a calibration, done by the simulator: holding the board up in
    front of the camera, or laying it on the table. Physical cells have none; erarm asks the
    operator instead."""

    def hold_board(self, view: int) -> None:
        """Show the board at the view-th of a series of varied, tilted poses."""
        ...

    def lay_board(self, x: float, y: float, yaw: float) -> None:
        """Lay the board flat on the table: its centre at (x, y) m, turned by yaw radians."""
        ...

    def clear_board(self) -> None: ...


@runtime_checkable
class Video(Protocol):
    """Films a run (the simulator renders its camera as it steps)."""

    def start(self, path: str) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Workcell:
    """A robot, the camera that watches it and, in simulation, a referee; closes them together."""

    robot: Robot
    camera: Camera | None  # None: the robot has none of its own; one comes from --camera
    referee: Referee | None = None
    stage: Stage | None = None
    on_close: list[Callable[[], None]] = field(default_factory=list)
    records: dict[str, dict] = field(default_factory=dict)  # files for every run folder
    instruction: str | None = None  # a benchmark scenario's task, as an operator would type it
    video: Video | None = None
    # what a simulated twin of this cell is opened with besides the scene (`erarm.robots.twin`)
    twin_options: dict[str, object] = field(default_factory=dict)

    def __enter__(self) -> Workcell:
        self.robot.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.robot.close()
        if self.camera is not None:
            self.camera.close()
        for callback in self.on_close:
            callback()
        self.on_close.clear()
