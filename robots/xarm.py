"""UFACTORY xArm (xArm 5/6/7, Lite 6) with the xArm Gripper, through UFACTORY's own SDK
(`xarm-python-sdk`, extra `erarm[xarm]`).

erarm works in metres and radians with the tool pointing down; the controller takes millimetres
and degrees (roll, pitch, yaw about fixed x, y, z), where pointing down is roll = 180°. Before the
first motion the driver writes the workspace limits into the controller's own safety features (a
TCP boundary fence and a reduced-mode speed cap, plus a collision sensitivity), so they hold even
if erarm dies mid-run. Every controller error, warning and lost connection becomes a one-line
`RobotError`, and a stop is the SDK's emergency stop.
"""

from __future__ import annotations

import contextlib
import io
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from erarm.robots.base import (
    GripperReport,
    MoveReport,
    RobotState,
    ToolPose,
    Workcell,
    WorkspaceLimits,
)
from erarm.robots.errors import ConfigError, RobotError
from erarm.robots.targets import MarkerSpec

# What the SDK's return codes mean (xarm/x3/code.py APIState; doc/api/xarm_api_code.md).
API_CODES = {
    -9: "the arm was stopped", -8: "out of range", -7: "a joint angle limit",
    -6: "a Cartesian position limit", -2: "the arm is not ready (not enabled)",
    -1: "not connected", 1: "the controller has an error", 2: "the controller has a warning",
    3: "the controller did not answer in time", 8: "the command could not be sent",
    9: "the arm is not ready to move (stopped, or an error not cleared)",
    100: "the motion did not finish in time", 102: "the gripper has a fault",
    103: "the gripper is not enabled",
}
GRIPPER_OPEN_PULSES = 850  # the xArm Gripper: 0 closed ... 850 fully open


class XArmOptions(BaseModel):
    """What `--robot xarm --robot-opt key=value` (or [robot.options] in a config) accepts."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="the controller's IP address")
    speed_mm_s: float = Field(100.0, gt=0, le=1000, description="Cartesian speed of every move "
                                                                "(capped by the limits)")
    acceleration_mm_s2: float = Field(1000.0, gt=0, le=50000, description="and its acceleration")
    tcp_offset_mm: tuple[float, float, float] = Field(
        (0.0, 0.0, 172.0), description="fingertip centre from the flange (the xArm Gripper's: "
                                       "172 mm along z)")
    table_z_mm: float = Field(0.0, description="height of the table top in the arm's own base "
                                               "frame (negative on a pedestal)")
    origin_mm: tuple[float, float, float] = Field(
        (300.0, 0.0, 250.0), description="where returnToOrigin takes the tool, clear of the "
                                         "camera's view")
    gripper_speed: int = Field(3000, ge=1, le=5000, description="gripper speed, r/min")
    gripper_stroke_mm: float = Field(85.0, gt=0, description="finger opening at 850 pulses")
    holding_mm: float = Field(5.0, ge=0, description="a closed gripper stopped wider than this "
                                                     "holds something")
    collision_sensitivity: int = Field(3, ge=0, le=5, description="the controller's collision "
                                                                  "detection, 0 (off) to 5")
    fence: bool = Field(True, description="write the limits into the controller's safety "
                                          "boundary and reduced-mode speed cap")
    move_timeout_s: float = Field(30.0, gt=0, description="longest a single motion may take")
    limits: WorkspaceLimits = Field(default_factory=WorkspaceLimits,
                                    description="the envelope every motion must stay in (m)")
    marker: MarkerSpec | None = Field(None, description="an ArUco marker fixed to the tool, for "
                                                        "hand-eye and plane calibration")


def _quietly() -> contextlib.AbstractContextManager:
    """The SDK prints its version on stdout when first imported; stdout carries erarm's results."""
    return contextlib.redirect_stdout(io.StringIO())


def _sdk_api_class() -> type:
    try:
        with _quietly():
            from xarm.wrapper import XArmAPI
    except ImportError:
        raise ConfigError("the xarm robot needs UFACTORY's SDK: pip install 'erarm[xarm]'") \
            from None
    return XArmAPI


def _controller_error(code: int) -> str:
    try:
        with _quietly():
            from xarm.core.config.x_code import ControllerError
        return ControllerError(code).title["en"]
    except Exception:  # an SDK without the table, or a code it does not know
        return "see the xArm manual"


def _wrap_degrees(angle: float) -> float:
    """An angle in (-180, 180]: pointing down reads roll = 180, as in UFACTORY's examples."""
    return 180.0 - (180.0 - angle) % 360.0


class XArmRobot:
    """The `Robot` contract on an xArm. `api_factory(host)` makes the SDK object (tests pass a
    recording fake of `XArmAPI`); by default it is UFACTORY's `XArmAPI`."""

    name = "xarm"
    physical = True

    def __init__(self, settings: XArmOptions, api_factory: Callable[[str], Any] | None = None):
        self.settings = settings
        self.limits, self.marker = settings.limits, settings.marker
        self._api_factory = api_factory or (lambda host: _sdk_api_class()(
            host, is_radian=False, do_not_open=True))
        self._api: Any = None
        self._lost = threading.Event()
        self._gripper_open = True

    # -- connection ----------------------------------------------------------------------------
    def connect(self) -> None:
        if self._api is not None:
            return
        host = self.settings.host
        api = self._api_factory(host)
        api.register_connect_changed_callback(self._on_connection)
        try:
            api.connect()
        except Exception as err:  # the SDK raises a plain Exception when it cannot connect
            raise RobotError(f"cannot connect to the xArm at {host}: {err}") from None
        self._api = api
        self._lost.clear()
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    def _prepare(self) -> None:
        """Clear, fence, enable: the controller's own limits first, then motion."""
        api, settings, limits = self._api, self.settings, self.limits
        api.clean_warn()
        api.clean_error()
        self._check(api.motion_enable(enable=True), "enabling the motors")
        self._check(api.set_mode(0), "setting position mode")
        self._check(api.set_state(state=0), "setting the ready state")
        self._check(api.set_tcp_offset([*settings.tcp_offset_mm, 0.0, 0.0, 0.0]),
                    "setting the tool centre")
        if settings.fence:
            z0 = settings.table_z_mm
            self._check(api.set_reduced_tcp_boundary([
                limits.x_max * 1000, limits.x_min * 1000, limits.y_max * 1000,
                limits.y_min * 1000, limits.z_max * 1000 + z0, limits.z_min * 1000 + z0]),
                "setting the safety boundary")
            self._check(api.set_reduced_max_tcp_speed(limits.max_speed_m_s * 1000),
                        "setting the speed cap")
            self._check(api.set_reduced_mode(True), "turning on reduced mode")
            self._check(api.set_fence_mode(True), "turning on the safety boundary")
        self._check(api.set_collision_sensitivity(settings.collision_sensitivity),
                    "setting the collision sensitivity")
        self._check(api.set_gripper_enable(True), "enabling the gripper")
        self._check(api.set_gripper_mode(0), "setting the gripper's position mode")
        self._check(api.set_gripper_speed(settings.gripper_speed), "setting the gripper speed")
        self._check(api.set_state(state=0), "setting the ready state")

    def close(self) -> None:
        api, self._api = self._api, None
        if api is None:
            return
        api.release_connect_changed_callback(self._on_connection)
        api.disconnect()

    def _on_connection(self, report: dict) -> None:
        """Runs in the SDK's report thread: marks the link lost; the next command says so."""
        if not report.get("connected", True):
            self._lost.set()

    # -- errors --------------------------------------------------------------------------------
    def _explain(self, code: Any, action: str) -> str:
        if self._lost.is_set() or code == -1:
            return f"lost the connection to the xArm at {self.settings.host} while {action}"
        parts = [f"xArm {action} failed: {API_CODES.get(code, 'code')} ({code})"]
        api = self._api
        error = getattr(api, "error_code", 0) if api is not None else 0
        warn = getattr(api, "warn_code", 0) if api is not None else 0
        if error:
            parts.append(f"controller error {error}: {_controller_error(error)}")
        if warn:
            parts.append(f"warning {warn}")
        return "; ".join(parts)

    def _check(self, result: Any, action: str) -> None:
        code = result[0] if isinstance(result, list | tuple) else result  # set_fence_mode: [0]
        if code not in (0, None) or self._lost.is_set():
            raise RobotError(self._explain(code, action))

    def _require(self) -> Any:
        if self._api is None:
            raise RobotError("the xArm is not connected")
        if self._lost.is_set():
            raise RobotError(f"lost the connection to the xArm at {self.settings.host}")
        return self._api

    # -- poses ---------------------------------------------------------------------------------
    def _to_controller(self, pose: ToolPose) -> list[float]:
        """[x, y, z] mm in the arm's frame and roll, pitch, yaw in degrees: pointing down is
        roll 180° (erarm's down-pointing tool is a half turn about x)."""
        return [pose.x * 1000, pose.y * 1000, pose.z * 1000 + self.settings.table_z_mm,
                _wrap_degrees(math.degrees(pose.roll) + 180.0), math.degrees(pose.pitch),
                math.degrees(pose.yaw)]

    def _from_controller(self, values: list[float]) -> ToolPose:
        x, y, z, roll, pitch, yaw = (float(v) for v in values[:6])
        return ToolPose(x=x / 1000, y=y / 1000, z=(z - self.settings.table_z_mm) / 1000,
                        roll=math.radians(_wrap_degrees(roll - 180.0)),
                        pitch=math.radians(pitch), yaw=math.radians(yaw))

    def _tool(self) -> ToolPose:
        code, values = self._require().get_position(is_radian=False)
        if code != 0 or not isinstance(values, list | tuple):
            raise RobotError(self._explain(code, "reading the tool pose"))
        return self._from_controller(values)

    # -- Robot contract ------------------------------------------------------------------------
    def reachable(self, pose: ToolPose) -> str | None:
        problem = self.limits.problem(pose)
        if problem:
            return problem
        api = self._require()
        code, angles = api.get_inverse_kinematics(self._to_controller(pose),
                                                  input_is_radian=False, return_is_radian=False)
        if code != 0 or angles is None:
            return f"the xArm has no joint solution for this pose (code {code})"
        code, limited = api.is_joint_limit(list(angles)[:api.axis], is_radian=False)
        if code != 0 or limited:
            return "reaching it would exceed a joint limit"
        return None

    def move_to(self, pose: ToolPose) -> MoveReport:
        problem = self.limits.problem(pose)
        if problem:
            raise RobotError(f"refusing to move the tool: {problem}")
        api = self._require()
        speed = min(self.settings.speed_mm_s, self.limits.max_speed_m_s * 1000)
        x, y, z, roll, pitch, yaw = self._to_controller(pose)
        started = time.monotonic()
        self._check(api.set_position(x=x, y=y, z=z, roll=roll, pitch=pitch, yaw=yaw,
                                     speed=speed, mvacc=self.settings.acceleration_mm_s2,
                                     is_radian=False, wait=True,
                                     timeout=self.settings.move_timeout_s),
                    f"moving to ({x:.0f}, {y:.0f}, {z:.0f}) mm")
        reached = self._tool()
        return MoveReport(target=pose, reached=reached,
                          position_error_m=math.dist(pose.position(), reached.position()),
                          duration_s=time.monotonic() - started)

    def _gripper_mm(self) -> float:
        result = self._require().get_gripper_position()
        if not isinstance(result, list | tuple):  # the SDK returns a bare 102 on a gripper fault
            raise RobotError(self._explain(result, "reading the gripper"))
        code, pulses = result
        if code != 0 or pulses is None:
            raise RobotError(self._explain(code, "reading the gripper"))
        return float(pulses) / GRIPPER_OPEN_PULSES * self.settings.gripper_stroke_mm

    def _holding(self, opened: bool, opening_mm: float) -> bool:
        if opened:  # could not open fully: something is wedged between the fingers
            return opening_mm < self.settings.gripper_stroke_mm - self.settings.holding_mm
        return opening_mm > self.settings.holding_mm

    def set_gripper(self, opened: bool) -> GripperReport:
        api = self._require()
        started = time.monotonic()
        self._check(api.set_gripper_position(GRIPPER_OPEN_PULSES if opened else 0, wait=True,
                                             speed=self.settings.gripper_speed, timeout=10),
                    "opening the gripper" if opened else "closing the gripper")
        self._gripper_open = opened
        opening = self._gripper_mm()
        return GripperReport(opened=opened, opening_m=opening / 1000,
                             holding=self._holding(opened, opening),
                             duration_s=time.monotonic() - started)

    def return_to_origin(self) -> MoveReport:
        x, y, z = (v / 1000 for v in self.settings.origin_mm)
        return self.move_to(ToolPose(x=x, y=y, z=z))

    def stop(self) -> None:
        """The SDK's emergency stop: the controller stops at once and drops queued motion."""
        if self._api is not None and not self._lost.is_set():
            self._api.emergency_stop()

    def state(self) -> RobotState:
        api = self._require()
        code, angles = api.get_servo_angle(is_radian=True)
        if code != 0:
            raise RobotError(self._explain(code, "reading the joints"))
        opening = self._gripper_mm()
        return RobotState(joint_positions_rad=[float(a) for a in list(angles)[:api.axis]],
                          tool=self._tool(), gripper_open=self._gripper_open,
                          gripper_opening_m=opening / 1000,
                          holding=self._holding(self._gripper_open, opening))


def open_xarm_workcell(**options: object) -> Workcell:
    """A UFACTORY xArm with its gripper; the camera comes from --camera."""
    from erarm.robots.registry import check_options

    settings = check_options(XArmOptions, options, "xarm robot")
    return Workcell(robot=XArmRobot(settings), camera=None)


open_xarm_workcell.options = XArmOptions
