"""A sample third-party erarm plugin: a kinematic toy arm that goes wherever it is told at once
(and logs what it was told), and a synthetic camera looking straight down at an empty table.

Everything a real driver package needs is here: option models, the `Robot` and `Camera`
contracts from `erarm.robots.base`, `RobotError` for refusals, and two entry points in
pyproject.toml.

For erarm's own tests it can also stop at a chosen moment: ERARM_TOY_PAUSE names calls such as
"move_to:2,stop:1" (the second move, the first stop); at each the toy logs a "pause" record and
waits, for a signal or until the file named by ERARM_TOY_RELEASE exists, then logs "resume".
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from erarm.robots.base import (
    CameraCalibration,
    Frame,
    GripperReport,
    MoveReport,
    RobotState,
    ToolPose,
    Workcell,
    WorkspaceLimits,
)
from erarm.robots.errors import RobotError

ORIGIN = ToolPose(x=0.3, y=0.0, z=0.25)


class ToyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    log: Path | None = Field(None, description="append every command here, as JSON lines")
    physical: bool = Field(False, description="pretend to be a real arm (erarm then asks first)")


def _log(log: Path | None, **record: object) -> None:
    if log is not None:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


_calls: Counter[str] = Counter()


def _maybe_pause(log: Path | None, call: str) -> None:
    """The test hook: wait here if ERARM_TOY_PAUSE names this call."""
    _calls[call] += 1
    where = f"{call}:{_calls[call]}"
    if where not in os.environ.get("ERARM_TOY_PAUSE", "").split(","):
        return
    _log(log, command="pause", at=where)
    release = os.environ.get("ERARM_TOY_RELEASE")
    while not (release and Path(release).exists()):
        time.sleep(0.01)
    _log(log, command="resume", at=where)


class ToyArm:
    name = "toy"

    def __init__(self, settings: ToyOptions):
        self.settings, self.physical = settings, settings.physical
        self.limits = WorkspaceLimits()
        self.tool, self.gripper_open, self.connected = ORIGIN, True, False

    def _log(self, **record: object) -> None:
        _log(self.settings.log, **record)

    def _require(self) -> None:
        if not self.connected:
            raise RobotError("the toy arm is not connected")

    def connect(self) -> None:
        _maybe_pause(self.settings.log, "connect")
        self.connected = True

    def close(self) -> None:
        self.connected = False

    def reachable(self, pose: ToolPose) -> str | None:
        return self.limits.problem(pose)

    def move_to(self, pose: ToolPose) -> MoveReport:
        self._require()
        problem = self.limits.problem(pose)
        if problem:
            raise RobotError(f"the toy arm refuses: {problem}")
        _maybe_pause(self.settings.log, "move_to")
        self._log(command="move_to", x=pose.x, y=pose.y, z=pose.z, yaw=pose.yaw)
        self.tool = pose
        return MoveReport(target=pose, reached=pose, position_error_m=0.0, duration_s=0.0)

    def set_gripper(self, opened: bool) -> GripperReport:
        self._require()
        self._log(command="set_gripper", opened=opened)
        self.gripper_open = opened
        return GripperReport(opened=opened, opening_m=0.08 if opened else 0.0, holding=False,
                             duration_s=0.0)

    def return_to_origin(self) -> MoveReport:
        return self.move_to(ORIGIN)

    def stop(self) -> None:
        self._log(command="stop")
        _maybe_pause(self.settings.log, "stop")
        self._log(command="stopped")

    def state(self) -> RobotState:
        self._require()
        joints = [math.atan2(self.tool.y, self.tool.x), self.tool.z, 0.0, 0.0, 0.0, self.tool.yaw]
        return RobotState(joint_positions_rad=joints, tool=self.tool,
                          gripper_open=self.gripper_open,
                          gripper_opening_m=0.08 if self.gripper_open else 0.0)


class ToyCamera:
    """640 x 480, 1 m above (0.4, 0) looking straight down at a bare grey table."""

    name = "toy"

    def __init__(self, log: Path | None = None):
        self.log = log
        pose = np.eye(4)
        pose[:3, :3] = [[0, -1, 0], [-1, 0, 0], [0, 0, -1]]  # columns: camera x, y, z in base
        pose[:3, 3] = [0.4, 0.0, 1.0]
        self.calibration = CameraCalibration(width=640, height=480, fx=500.0, fy=500.0,
                                             cx=320.0, cy=240.0, camera_to_base=pose.tolist(),
                                             method="toy")

    def capture(self) -> Frame:
        _maybe_pause(self.log, "capture")
        rgb = np.full((480, 640, 3), (200, 198, 190), np.uint8)
        depth = np.full((480, 640), 1.0, np.float32)
        return Frame(rgb=rgb, calibration=self.calibration, depth_m=depth)

    def close(self) -> None:
        pass


class ToyVideo:
    """Films nothing (it is there for the pause hook)."""

    def __init__(self, log: Path | None):
        self.log = log

    def start(self, path: str) -> None:
        _maybe_pause(self.log, "video_start")

    def stop(self) -> None:
        _maybe_pause(self.log, "video_stop")


def open_toy_workcell(**options: object) -> Workcell:
    """A kinematic toy arm over an empty table, for trying erarm's plugin mechanism."""
    settings = ToyOptions(**options)
    return Workcell(robot=ToyArm(settings), camera=ToyCamera(settings.log),
                    video=ToyVideo(settings.log))


def open_toy_camera(**options: object) -> ToyCamera:
    """A synthetic camera straight over an empty table."""
    return ToyCamera()


open_toy_workcell.options = ToyOptions
