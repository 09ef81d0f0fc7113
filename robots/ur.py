"""Universal Robots arms (the e-Series UR3e to UR30, and CB3 from software 3.3) through SDU
Robotics' `ur_rtde` (PyPI `ur-rtde`, extra `erarm[ur]`).

erarm works in metres and radians with the tool pointing down, and so does the controller: a tool
pose is [x, y, z, rx, ry, rz], metres in the base frame and the orientation as a rotation vector
(axis times angle). Pointing down with a yaw ψ is a half turn about (cos ψ/2, sin ψ/2, 0).

The UR keeps its safety limits (planes, speed, force) in a password-protected configuration that
RTDE cannot write, so unlike the xArm driver this one cannot fence the controller: it checks the
envelope before every motion and asks the controller whether the pose lies within its own limits;
set the safety planes on the teach pendant to match. Motions run asynchronously while the driver
waits in Python, so Ctrl-C lands mid-motion and `stop()` can brake it (a blocking `moveL` holds
the main thread inside C++ until the motion ends). Protective and emergency stops and a lost
connection become one-line `RobotError`s.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

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

GRIPPER_GROUP = "erarm.ur_grippers"  # entry points of gripper plugins, for `gripper=NAME`
# RTDE's digital outputs: the setter of each bank and where its pins sit in the bits read back
OUTPUTS = {"standard": ("setStandardDigitalOut", 0),
           "configurable": ("setConfigurableDigitalOut", 8), "tool": ("setToolDigitalOut", 16)}
POLL_S = 0.01  # how often a motion in progress is checked
CONNECT_TIMEOUT_S = 5.0  # for the controller's RTDE port to answer
RTDE_PORT, RTDE_REQUEST_PROTOCOL_VERSION = 30004, 86  # the RTDE guide: port, package type 'V'
# The controller's modes (RTDE guide: robot_mode, safety_mode), for the errors that name them
ROBOT_MODES = {-1: "no controller", 0: "disconnected", 1: "confirm safety", 2: "booting",
               3: "power off", 4: "power on", 5: "idle", 6: "backdrive", 8: "updating firmware"}
SAFETY_MODES = {4: "recovery", 5: "safeguard stop", 8: "violation", 9: "fault",
                10: "validate joint id", 11: "undefined", 12: "automatic mode safeguard stop",
                13: "three-position enabling stop"}
NORMAL, REDUCED, PROTECTIVE_STOP = 1, 2, 3
EMERGENCY_STOPS = (6, 7)  # system and robot emergency stop
RUNNING = 7


class UROptions(BaseModel):
    """What `--robot ur --robot-opt key=value` (or [robot.options] in a config) accepts."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, description="the controller's IP address (remote control "
                                                "enabled on an e-Series)")
    # ur_rtde refuses a tool speed over 3 m/s and an acceleration over 150 m/s²
    speed_mm_s: float = Field(100.0, gt=0, le=3000, description="Cartesian speed of every move "
                                                                "(capped by the limits)")
    acceleration_mm_s2: float = Field(1200.0, gt=0, le=150000, description="and its acceleration")
    tcp_offset_mm: tuple[float, float, float] = Field(
        description="fingertip centre from the flange, set as the controller's TCP on connect "
                    "(the gripper's length along z)")
    payload_kg: float = Field(ge=0, le=30, allow_inf_nan=False,
                              description="mass of the gripper and whatever is fixed to the "
                                          "flange, set on connect")
    payload_cog_mm: tuple[float, float, float] = Field(
        description="that payload's centre of gravity from the flange")
    table_z_mm: float = Field(0.0, description="height of the table top in the arm's own base "
                                               "frame (negative on a pedestal)")
    origin_mm: tuple[float, float, float] = Field(
        (300.0, 0.0, 250.0), description="where returnToOrigin takes the tool, clear of the "
                                         "camera's view")
    gripper: str = Field("io", description="io (a gripper on a digital output: the io "
                                           "options), or a plugin: an entry point in "
                                           f"{GRIPPER_GROUP} or module:factory")
    gripper_options: dict[str, Any] = Field(default_factory=dict,
                                            description="keyword options for a gripper plugin")
    gripper_output: Literal["standard", "configurable", "tool"] = Field(
        "standard", description="io: the bank of the output that drives the gripper")
    gripper_pin: int = Field(0, ge=0, le=7, description="io: its number (0-7; 0-1 on the tool)")
    gripper_close_level: bool = Field(True, description="io: the output's level that closes the "
                                                        "gripper (false: closed when off)")
    gripper_holding_input: int | None = Field(
        None, ge=0, le=17, description="io: a digital input that is on while the gripper holds "
                                       "something (0-7 standard, 8-15 configurable, 16-17 tool); "
                                       "without one a closed gripper is taken to hold")
    gripper_stroke_mm: float = Field(85.0, gt=0, description="io: finger opening when open")
    gripper_settle_s: float = Field(0.5, ge=0, description="io: how long the fingers take to "
                                                           "open or close")
    move_timeout_s: float = Field(30.0, gt=0, description="longest a single motion may take")
    limits: WorkspaceLimits = Field(default_factory=WorkspaceLimits,
                                    description="the envelope every motion must stay in (m)")
    marker: MarkerSpec | None = Field(None, description="an ArUco marker fixed to the tool, for "
                                                        "hand-eye and plane calibration")

    @field_validator("tcp_offset_mm", "payload_cog_mm")
    @classmethod
    def _millimetres_from_the_flange(cls, offset: tuple[float, float, float]
                                     ) -> tuple[float, float, float]:
        """What the controller's collision detection will believe: finite, within half a
        metre of the flange, and not metres typed as millimetres."""
        size = max(abs(v) for v in offset) if all(math.isfinite(v) for v in offset) else None
        if size is None:
            raise ValueError("each of x, y, z must be a number of millimetres")
        if size > 500:
            raise ValueError(f"{size:g} mm from the flange is beyond any gripper's reach: give "
                             "millimetres")
        if 0 < size < 1:
            raise ValueError("under a millimetre from the flange: these look like metres; "
                             "give millimetres (e.g. 0,0,174)")
        return offset

    @field_validator("gripper_pin")
    @classmethod
    def _on_the_flange(cls, pin: int, info: ValidationInfo) -> int:
        if info.data.get("gripper_output") == "tool" and pin > 1:
            raise ValueError("the tool flange has digital outputs 0 and 1 only")
        return pin


class RtdeLink(NamedTuple):
    """One connection to a UR: its host and ur_rtde's three interfaces to it."""

    host: str
    control: Any  # rtde_control.RTDEControlInterface
    receive: Any  # rtde_receive.RTDEReceiveInterface
    io: Any  # rtde_io.RTDEIOInterface


@dataclass(frozen=True)
class GripperReading:
    """What a gripper reports of itself."""

    opened: bool
    opening_m: float  # distance between the finger pads
    holding: bool  # see GripperReport.holding


class URGripper(Protocol):
    """A gripper plugin (a Robotiq through its URCap's socket, say). `gripper=` names its
    factory, called once connected as `factory(link, **gripper_options)` with the `RtdeLink`;
    open and close block until the fingers have stopped, and raise `RobotError` when they
    cannot."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def state(self) -> GripperReading: ...


class IOGripper:
    """`gripper=io`: a gripper switched by one digital output (a pneumatic valve, or an electric
    gripper's open/close input). It measures nothing: open reads as the full stroke, closed as
    zero, and it holds something when its sensor input says so."""

    def __init__(self, link: RtdeLink, settings: UROptions):
        self.link, self.settings = link, settings
        setter, offset = OUTPUTS[settings.gripper_output]
        self._set, self._bit = getattr(link.io, setter), offset + settings.gripper_pin

    def _switch(self, opened: bool) -> None:
        settings = self.settings
        level = settings.gripper_close_level != opened
        where = f"{settings.gripper_output} digital output {settings.gripper_pin}"
        if not self._set(settings.gripper_pin, level):
            raise RobotError(f"the UR did not switch its {where} {'on' if level else 'off'}")
        time.sleep(settings.gripper_settle_s)
        if self.link.receive.getDigitalOutState(self._bit) != level:
            raise RobotError(f"the UR's {where} still reads {'off' if level else 'on'} "
                             f"{settings.gripper_settle_s:g} s after it was switched")

    def open(self) -> None:
        self._switch(True)

    def close(self) -> None:
        self._switch(False)

    def state(self) -> GripperReading:
        """The output as the controller reads it back, so it is right after a reconnect too."""
        settings, receive = self.settings, self.link.receive
        opened = receive.getDigitalOutState(self._bit) != settings.gripper_close_level
        sensor = settings.gripper_holding_input
        return GripperReading(
            opened=opened, opening_m=settings.gripper_stroke_mm / 1000 if opened else 0.0,
            holding=receive.getDigitalInState(sensor) if sensor is not None else not opened)


def _gripper_factory(settings: UROptions) -> Callable[[RtdeLink], URGripper]:
    """How to make the gripper `gripper=` names once connected; a plugin that cannot be found or
    loaded is a one-line `ConfigError` before anything connects."""
    spec = settings.gripper
    if spec == "io":
        return lambda link: IOGripper(link, settings)
    point = EntryPoint(name=spec, value=spec, group=GRIPPER_GROUP) if ":" in spec else \
        next(iter(entry_points(group=GRIPPER_GROUP, name=spec)), None)
    if point is None:
        raise ConfigError(f"ur robot option gripper: no gripper plugin {spec!r} (io, an entry "
                          f"point in {GRIPPER_GROUP}, or module:factory)")
    try:
        factory = point.load()
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"ur robot option gripper: cannot load {spec}: {err}") from None

    def make(link: RtdeLink) -> URGripper:
        try:
            return factory(link, **settings.gripper_options)
        except TypeError as err:  # an option the plugin does not take
            raise ConfigError(f"ur robot option gripper_options: {err}") from None

    return make


def _rtde_classes() -> tuple[Callable[[str], Any], Callable[[str], Any], Callable[[str], Any]]:
    """ur_rtde's control, receive and I/O interfaces, imported only when a UR is opened."""
    try:
        from rtde_control import RTDEControlInterface
        from rtde_io import RTDEIOInterface
        from rtde_receive import RTDEReceiveInterface
    except ImportError:
        raise ConfigError("the ur robot needs ur_rtde: pip install 'erarm[ur]'") from None
    return RTDEControlInterface, RTDEReceiveInterface, RTDEIOInterface


def probe_rtde(host: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Ask the controller's RTDE port for its protocol version (the RTDE guide's first
    message) before ur_rtde connects: its constructors block in C++, holding Python, with no
    timeout, so a peer that accepts and never answers would hang erarm for good."""
    request = struct.pack(">HBH", 5, RTDE_REQUEST_PROTOCOL_VERSION, 2)
    try:
        with socket.create_connection((host, RTDE_PORT), timeout=timeout_s) as link:
            link.sendall(request)
            reply = link.recv(3)
    except TimeoutError:
        raise RobotError(f"cannot connect to the UR at {host}: no RTDE answer within "
                         f"{timeout_s:g} s (is it a UR controller, with remote control on?)"
                         ) from None
    except OSError as err:
        raise RobotError(f"cannot connect to the UR at {host}: {err.strerror or err} "
                         f"(port {RTDE_PORT}, RTDE)") from None
    if len(reply) < 3 or reply[2] != RTDE_REQUEST_PROTOCOL_VERSION:
        raise RobotError(f"cannot connect to the UR at {host}: what answers on port "
                         f"{RTDE_PORT} does not speak RTDE")


@contextlib.contextmanager
def _native_stderr_quiet() -> Iterator[None]:
    """The C++ library's own lines kept off the terminal, where erarm's one line says it all
    (ERARM_DEBUG=1 lets them through)."""
    if os.environ.get("ERARM_DEBUG"):
        yield
        return
    saved, sink = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(sink)


def rotation_vector(rotation: np.ndarray) -> np.ndarray:
    """Axis times angle (rad) of a rotation matrix. Well conditioned near a half turn, where a
    down-pointing tool always is and the textbook formula divides by sin(angle) ≈ 0 (OpenCV's
    Rodrigues rounds such a rotation to an exact half turn, an error as large as the tilt)."""
    skew = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0],
                     rotation[1, 0] - rotation[0, 1]])  # 2 sin(angle) times the axis
    twice_sin = float(np.linalg.norm(skew))
    angle = math.atan2(twice_sin, float(np.trace(rotation)) - 1.0)
    if angle < math.pi / 2:
        return skew * (0.5 if twice_sin == 0 else angle / twice_sin)
    outer = (rotation + rotation.T) / 2 - math.cos(angle) * np.eye(3)  # (1 - cos) axis axisᵀ
    column = outer[:, int(np.argmax(np.diag(outer)))]
    axis = column / np.linalg.norm(column)
    return angle * (-axis if axis @ skew < 0 else axis)


def rotation_matrix(vector: list[float] | np.ndarray) -> np.ndarray:
    """The rotation a rotation vector stands for (Rodrigues' formula)."""
    angle = float(np.linalg.norm(vector))
    if angle == 0.0:
        return np.eye(3)
    x, y, z = np.asarray(vector, dtype=float) / angle
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)


def _stop_reason(receive: Any) -> tuple[str, str] | None:
    """What keeps the arm from moving and what the operator does about it, or None."""
    mode = receive.getSafetyMode()
    if receive.isEmergencyStopped() or mode in EMERGENCY_STOPS:
        return ("UR emergency stop", "release the emergency stop button, then power the arm on "
                                     "and release its brakes on the teach pendant")
    if receive.isProtectiveStopped() or mode == PROTECTIVE_STOP:
        return "UR protective stop", "unlock it on the teach pendant"
    if mode not in (NORMAL, REDUCED):
        return f"UR safety mode {SAFETY_MODES.get(mode, mode)}", "see the teach pendant"
    robot_mode = receive.getRobotMode()
    if robot_mode != RUNNING:
        return (f"UR not running (robot mode {ROBOT_MODES.get(robot_mode, robot_mode)})",
                "power it on and release the brakes on the teach pendant")
    return None


class URRobot:
    """The `Robot` contract on a UR. `rtde` holds the constructors of ur_rtde's control, receive
    and I/O interfaces (tests pass recording fakes); by default they are ur_rtde's own."""

    name = "ur"
    physical = True

    def __init__(self, settings: UROptions,
                 rtde: tuple[Callable[[str], Any], ...] | None = None):
        self.settings = settings
        self.limits, self.marker = settings.limits, settings.marker
        self._rtde = rtde or _rtde_classes()
        self._probe = rtde is None  # the real library: ask the port first (`probe_rtde`)
        self._make_gripper = _gripper_factory(settings)
        self._link: RtdeLink | None = None
        self.gripper: URGripper | None = None

    # -- connection ----------------------------------------------------------------------------
    def connect(self) -> None:
        if self._link is not None:
            return
        host = self.settings.host
        control_class, receive_class, io_class = self._rtde
        opened: list[Any] = []
        try:  # receive first: it only reads; control uploads the script that moves the arm
            if self._probe:
                probe_rtde(host)
            with _native_stderr_quiet():  # ur_rtde prints its own line before raising
                for make in (receive_class, control_class, io_class):
                    opened.append(make(host))
        except RuntimeError as err:  # what ur_rtde raises for anything that goes wrong
            for interface in opened:
                interface.disconnect()
            raise RobotError(f"cannot connect to the UR at {host}: {err}") from None
        receive, control, io = opened
        self._link = RtdeLink(host=host, control=control, receive=receive, io=io)
        try:
            self._prepare(self._link)
        except BaseException:
            self.close()
            raise

    def _prepare(self, link: RtdeLink) -> None:
        """Ready to move, then the tool centre and payload (the controller's collision detection
        weighs the payload), then the gripper."""
        settings = self.settings
        self._check(link, "connecting")
        self._command(link, "setting the tool centre", link.control.setTcp,
                      [v / 1000 for v in settings.tcp_offset_mm] + [0.0, 0.0, 0.0])
        self._command(link, "setting the payload", link.control.setPayload,
                      settings.payload_kg, [v / 1000 for v in settings.payload_cog_mm])
        self.gripper = self._make_gripper(link)

    def close(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        if link.control.isConnected():
            link.control.stopScript()  # the pendant shows the program ended, not left running
        for interface in (link.control, link.receive, link.io):
            interface.disconnect()

    # -- errors --------------------------------------------------------------------------------
    @staticmethod
    def _connected(link: RtdeLink) -> bool:
        return all(i.isConnected() for i in (link.control, link.receive, link.io))

    def _fault(self, link: RtdeLink, action: str) -> str | None:
        """A lost connection or a safety stop, in words, or None."""
        if not self._connected(link):
            return f"lost the connection to the UR at {link.host} while {action}"
        reason = _stop_reason(link.receive)
        return f"{reason[0]} while {action}: {reason[1]}" if reason else None

    def _check(self, link: RtdeLink, action: str) -> None:
        fault = self._fault(link, action)
        if fault:
            raise RobotError(fault)

    def _explain(self, link: RtdeLink, action: str, err: Exception | None = None) -> str:
        """Why a command failed: the link, a safety stop, the control script, or ur_rtde's
        words."""
        fault = self._fault(link, action)
        if fault:
            return fault
        if not link.control.isProgramRunning():
            return (f"the UR's control script stopped while {action} (the teach pendant's log "
                    "says why)")
        return f"UR {action} failed: {err or 'the controller refused it'}"

    def _call(self, link: RtdeLink, action: str, method: Callable, *args: Any) -> Any:
        """A command; ur_rtde raises RuntimeError when the link fails under it."""
        try:
            return method(*args)
        except RuntimeError as err:
            raise RobotError(self._explain(link, action, err)) from None

    def _command(self, link: RtdeLink, action: str, method: Callable, *args: Any) -> None:
        """A command that answers whether the controller carried it out."""
        if self._call(link, action, method, *args) is False:
            raise RobotError(self._explain(link, action))

    def _require(self) -> RtdeLink:
        link = self._link
        if link is None:
            raise RobotError("the UR is not connected")
        if not self._connected(link):
            raise RobotError(f"lost the connection to the UR at {link.host}")
        return link

    def _ready(self, action: str) -> RtdeLink:
        """Connected, in no stop, and the control script running: `stop()` ends it, and so does
        the controller at a protective stop, which the operator may since have cleared."""
        link = self._require()
        self._check(link, action)
        if not link.control.isProgramRunning():
            self._command(link, action, link.control.reuploadScript)
        return link

    # -- poses ---------------------------------------------------------------------------------
    def _to_controller(self, pose: ToolPose) -> list[float]:
        """[x, y, z] m in the arm's base frame and the rotation vector of the tool's
        orientation."""
        return [pose.x, pose.y, pose.z + self.settings.table_z_mm / 1000,
                *(float(v) for v in rotation_vector(pose.rotation()))]

    def _from_controller(self, values: list[float]) -> ToolPose:
        x, y, z = (float(v) for v in values[:3])
        return ToolPose.from_rotation(x, y, z - self.settings.table_z_mm / 1000,
                                      rotation_matrix(values[3:6]))

    def _tool(self, link: RtdeLink) -> ToolPose:
        return self._from_controller(link.receive.getActualTCPPose())

    def _await_motion(self, link: RtdeLink, before: Any, action: str) -> None:
        """Until the asynchronous motion has ended: its status differs from the one before it
        started and no longer runs. Each look checks the link and the safety state after the
        status, so a stop that ended the motion is never taken for its end."""
        deadline = time.monotonic() + self.settings.move_timeout_s
        while True:
            status = link.control.getAsyncOperationProgressEx()
            self._check(link, action)
            if not status.isAsyncOperationRunning() and not status.equals(before):
                if not link.control.isProgramRunning():
                    raise RobotError(self._explain(link, action))
                return
            if time.monotonic() > deadline:
                self._call(link, action, link.control.stopL)
                raise RobotError(f"UR {action} took longer than "
                                 f"{self.settings.move_timeout_s:g} s; the arm was stopped")
            time.sleep(POLL_S)

    # -- Robot contract ------------------------------------------------------------------------
    def reachable(self, pose: ToolPose) -> str | None:
        problem = self.limits.problem(pose)
        if problem:
            return problem
        link = self._ready("checking a pose")
        if not self._call(link, "checking a pose", link.control.isPoseWithinSafetyLimits,
                          self._to_controller(pose)):
            return "the UR cannot reach it within its safety limits (planes, tool orientation)"
        return None

    def move_to(self, pose: ToolPose) -> MoveReport:
        problem = self.limits.problem(pose)
        if problem:
            raise RobotError(f"refusing to move the tool: {problem}")
        target = self._to_controller(pose)
        action = f"moving to ({target[0] * 1000:.0f}, {target[1] * 1000:.0f}, " \
                 f"{target[2] * 1000:.0f}) mm"
        link = self._ready(action)
        speed_m_s = min(self.settings.speed_mm_s / 1000, self.limits.max_speed_m_s)
        started = time.monotonic()
        before = link.control.getAsyncOperationProgressEx()
        self._command(link, action, link.control.moveL, target, speed_m_s,
                      self.settings.acceleration_mm_s2 / 1000, True)  # True: asynchronous
        self._await_motion(link, before, action)
        reached = self._tool(link)
        return MoveReport(target=pose, reached=reached,
                          position_error_m=math.dist(pose.position(), reached.position()),
                          duration_s=time.monotonic() - started)

    def set_gripper(self, opened: bool) -> GripperReport:
        link = self._require()
        action = "opening the gripper" if opened else "closing the gripper"
        self._check(link, action)
        started = time.monotonic()
        self._call(link, action, self.gripper.open if opened else self.gripper.close)
        reading = self.gripper.state()
        return GripperReport(opened=opened, opening_m=reading.opening_m,
                             holding=reading.holding, duration_s=time.monotonic() - started)

    def return_to_origin(self) -> MoveReport:
        x, y, z = (v / 1000 for v in self.settings.origin_mm)
        return self.move_to(ToolPose(x=x, y=y, z=z))

    def stop(self) -> None:
        """Ctrl-C's path: stopL brakes the motion in progress (at ur_rtde's 10 m/s²), then
        stopScript ends the control script so nothing queued runs on; the next motion uploads
        it again."""
        link = self._link
        if link is None or not link.control.isConnected():
            return
        self._call(link, "stopping", link.control.stopL)
        self._call(link, "stopping", link.control.stopScript)

    def state(self) -> RobotState:
        link = self._require()
        reading = self.gripper.state()
        return RobotState(joint_positions_rad=[float(q) for q in link.receive.getActualQ()],
                          tool=self._tool(link), gripper_open=reading.opened,
                          gripper_opening_m=reading.opening_m, holding=reading.holding)


def open_ur_workcell(**options: object) -> Workcell:
    """A Universal Robots arm with its gripper; the camera comes from --camera."""
    from erarm.robots.registry import check_options

    settings = check_options(UROptions, options, "ur robot")
    return Workcell(robot=URRobot(settings), camera=None)


open_ur_workcell.options = UROptions
