"""A recording stand-in for ur_rtde's `RTDEControlInterface`, `RTDEReceiveInterface` and
`RTDEIOInterface` (and the `AsyncOperationStatus` the control interface answers with), for tests
without an arm.

They share one `FakeUR`: a tool pose (metres, rotation vector), joint positions, the digital
inputs and outputs, the safety and robot modes, the control script and one connection. Each has
ur_rtde's method names, parameters (unnamed pybind11 parameters are positional only) and return
conventions: commands answer False when the control script is not running or the arm is
stopped, and raise RuntimeError once the connection has gone, while reads go on answering with
the last values received. The fake can be told to make a protective or an emergency stop, or to
drop the connection, now or during the next motion, and it records every call (and what it
answered) so tests can check exactly what a driver sent and bind it to ur_rtde's signatures.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from erarm.robots.errors import RobotError
from erarm.robots.ur import GripperReading, RtdeLink

HOME = [0.3, 0.0, 0.25, math.pi, 0.0, 0.0]  # pointing down, yaw 0
RAISED = object()  # the result of a call that raised
# ur_rtde's checks on moveL (rtde_control_interface.h: UR_TOOL_VELOCITY_MAX, ..._ACCELERATION_MAX)
TOOL_SPEED_MAX_M_S, TOOL_ACCELERATION_MAX_M_S2 = 3.0, 150.0


@dataclass
class Call:
    interface: str  # the real class: RTDEControlInterface, RTDEReceiveInterface, ...
    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    result: Any = RAISED


def _recorded(method: Callable) -> Callable:
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        entry = Call(self.REAL, method.__name__, args, kwargs)
        self.arm.calls.append(entry)
        entry.result = method(self, *args, **kwargs)
        return entry.result

    return call


class FakeUR:
    """The arm and its controller, as the three interfaces see it."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.pose = list(HOME)
        self.digital_out = 0  # bits: 0-7 standard, 8-15 configurable, 16-17 tool
        self.digital_in = 0
        self.safety_mode, self.robot_mode = 1, 7  # normal, running
        self.program_running = False  # the control script, uploaded by the control interface
        self.link_up = True
        self.tcp: list[float] | None = None
        self.payload: tuple[float, list[float]] | None = None
        self.refuse_connection = False
        self.refuse: set[str] = set()  # commands that answer False
        self.raise_on: dict[str, str] = {}  # commands that raise ur_rtde's RuntimeError, and why
        self.stuck_bits: set[int] = set()  # outputs that take a command and keep their level
        self.polls_per_move: int | None = 2  # status reads until a motion ends; None: never
        self.during_next_move: Callable[[], None] | None = None  # at the motion's first poll
        # the asynchronous operation: running, and how often its status changed
        self.op_running, self.op_changes = False, 0
        self._target: list[float] | None = None
        self._polls_left: int | None = None

    def classes(self) -> tuple[Callable[..., Any], ...]:
        """Constructors for `URRobot(rtde=...)`, in its order: control, receive, I/O."""
        def constructor(cls: type) -> Callable[..., Any]:
            def make(*args, **kwargs):
                self.calls.append(Call(cls.REAL, "__init__", args, kwargs, None))
                return cls(self, *args, **kwargs)
            return make

        return (constructor(FakeRTDEControlInterface), constructor(FakeRTDEReceiveInterface),
                constructor(FakeRTDEIOInterface))

    def called(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    # -- what happens to the arm ---------------------------------------------------------------
    def joints(self) -> list[float]:
        """A plausible posture for the tool pose, six joints."""
        x, y, z = self.pose[:3]
        return [math.atan2(y, x), -1.6 + z, 1.6 - z, -1.57, -1.57, 0.1]

    def _end_motion(self, reached: bool) -> None:
        if not self.op_running:
            return
        start, target = self.pose, self._target
        self.pose = list(target) if reached else \
            [(s + t) / 2 for s, t in zip(start[:3], target[:3], strict=True)] + start[3:]
        self.op_running, self.op_changes = False, self.op_changes + 1

    def protective_stop(self) -> None:
        """As when the arm meets something: it stops short and the control script ends."""
        self._end_motion(reached=False)
        self.safety_mode, self.program_running = 3, False

    def emergency_stop(self) -> None:
        """The red button: the arm stops, the brakes engage."""
        self._end_motion(reached=False)
        self.safety_mode, self.robot_mode, self.program_running = 7, 5, False

    def clear_stop(self) -> None:
        """What the operator does on the pendant; the control script stays ended."""
        self.safety_mode, self.robot_mode = 1, 7

    def drop_connection(self) -> None:
        """The cable out: the arm goes on with what it was doing, nothing more reaches it."""
        self.link_up = False

    def stopped(self) -> bool:
        return self.safety_mode != 1 or self.robot_mode != 7


class AsyncOperationStatus:
    """ur_rtde's status word of an asynchronous operation."""

    REAL = "AsyncOperationStatus"

    def __init__(self, arm: FakeUR, running: bool, changes: int):
        self.arm, self._running, self._changes = arm, running, changes

    @_recorded
    def isAsyncOperationRunning(self):
        return self._running

    @_recorded
    def equals(self, other):
        return (self._running, self._changes) == (other._running, other._changes)


class _Interface:
    def __init__(self, arm: FakeUR, hostname: str):
        if arm.refuse_connection:
            raise RuntimeError(f"Error: Could not connect to: {hostname} at 30004, verify the IP")
        self.arm, self.hostname, self.open = arm, hostname, True

    def _send(self, name: str) -> bool:
        """Whether a command gets through: raises as ur_rtde does once the link is gone."""
        if not (self.arm.link_up and self.open):
            raise RuntimeError("RTDEControlInterface: Robot is disconnected, reconnecting... "
                               "connect: Connection refused")
        if name in self.arm.raise_on:
            raise RuntimeError(self.arm.raise_on[name])
        return name not in self.arm.refuse

    @_recorded
    def isConnected(self):
        return self.arm.link_up and self.open

    @_recorded
    def disconnect(self):
        self.open = False


class FakeRTDEControlInterface(_Interface):
    REAL = "RTDEControlInterface"

    def __init__(self, arm: FakeUR, hostname, frequency=-1.0, flags=1, ur_cap_port=50002,
                 rt_priority=0):
        super().__init__(arm, hostname)
        arm.program_running = True  # the constructor uploads the control script

    def _command(self, name: str) -> bool:
        """As ur_rtde's sendCommand: False when the script is not running or the arm stopped."""
        return self._send(name) and self.arm.program_running and not self.arm.stopped()

    @_recorded
    def setTcp(self, tcp_offset, /):
        if not self._command("setTcp"):
            return False
        self.arm.tcp = list(tcp_offset)
        return True

    @_recorded
    def setPayload(self, mass, cog, /):
        if not self._command("setPayload"):
            return False
        self.arm.payload = (mass, list(cog))
        return True

    @_recorded
    def isPoseWithinSafetyLimits(self, pose, /):
        x, y, z = pose[:3]
        return self._command("isPoseWithinSafetyLimits") and math.hypot(x, y) <= 0.85 and \
            -0.1 <= z <= 0.9  # a UR5e's reach

    @_recorded
    def moveL(self, pose, speed=0.25, acceleration=1.2, asynchronous=False):
        if not 0 <= speed <= TOOL_SPEED_MAX_M_S:
            raise ValueError(f"Value {speed} is not within the range [0, 3]")  # range_error
        if not 0 <= acceleration <= TOOL_ACCELERATION_MAX_M_S2:
            raise ValueError(f"Value {acceleration} is not within the range [0, 150]")
        arm = self.arm
        if not self._command("moveL"):
            return False
        arm._target, arm.op_running, arm.op_changes = list(pose), True, arm.op_changes + 1
        arm._polls_left = arm.polls_per_move
        if not asynchronous:
            arm._end_motion(reached=True)
        return True

    @_recorded
    def getAsyncOperationProgressEx(self):
        arm = self.arm
        if arm.op_running and arm.link_up:
            hook, arm.during_next_move = arm.during_next_move, None
            if hook:
                hook()
            if arm.op_running and arm._polls_left is not None:
                arm._polls_left -= 1
                if arm._polls_left <= 0:
                    arm._end_motion(reached=True)
        return AsyncOperationStatus(arm, arm.op_running, arm.op_changes)

    @_recorded
    def isProgramRunning(self):
        return self.arm.program_running

    @_recorded
    def reuploadScript(self):
        if not self._send("reuploadScript") or self.arm.stopped():
            return False
        self.arm.program_running = True
        return True

    @_recorded
    def stopL(self, a=10.0, asynchronous=False):
        self._send("stopL")
        self.arm._end_motion(reached=False)

    @_recorded
    def stopScript(self):
        self._send("stopScript")
        self.arm._end_motion(reached=False)
        self.arm.program_running = False


class FakeRTDEReceiveInterface(_Interface):
    REAL = "RTDEReceiveInterface"

    def __init__(self, arm: FakeUR, hostname, frequency=-1.0, variables=(), verbose=False,
                 use_upper_range_registers=False, rt_priority=0):
        super().__init__(arm, hostname)

    @_recorded
    def getActualTCPPose(self):
        return [float(v) for v in self.arm.pose]

    @_recorded
    def getActualQ(self):
        return self.arm.joints()

    @_recorded
    def getSafetyMode(self):
        return self.arm.safety_mode

    @_recorded
    def isProtectiveStopped(self):
        return self.arm.safety_mode == 3

    @_recorded
    def isEmergencyStopped(self):
        return self.arm.safety_mode in (6, 7)

    @_recorded
    def getRobotMode(self):
        return self.arm.robot_mode

    @_recorded
    def getDigitalOutState(self, output_id, /):
        return bool(self.arm.digital_out >> output_id & 1)

    @_recorded
    def getDigitalInState(self, input_id, /):
        return bool(self.arm.digital_in >> input_id & 1)


class FakeRTDEIOInterface(_Interface):
    REAL = "RTDEIOInterface"

    def __init__(self, arm: FakeUR, hostname, verbose=False, use_upper_range_registers=False):
        super().__init__(arm, hostname)

    def _output(self, name: str, bit: int, level: bool) -> bool:
        if not self._send(name):
            return False
        if bit in self.arm.stuck_bits:
            return True
        self.arm.digital_out = self.arm.digital_out | 1 << bit if level else \
            self.arm.digital_out & ~(1 << bit)
        return True

    @_recorded
    def setStandardDigitalOut(self, output_id, signal_level, /):
        return self._output("setStandardDigitalOut", output_id, signal_level)

    @_recorded
    def setConfigurableDigitalOut(self, output_id, signal_level, /):
        return self._output("setConfigurableDigitalOut", 8 + output_id, signal_level)

    @_recorded
    def setToolDigitalOut(self, output_id, signal_level, /):
        return self._output("setToolDigitalOut", 16 + output_id, signal_level)


class RecordingGripper:
    """A gripper plugin as a third party would write one, named by
    `gripper=tests.fake_ur:RecordingGripper`: it measures its own width (an object between the
    fingers stops them at its size), can jam, and records what it was told."""

    def __init__(self, link: RtdeLink, stroke_mm: float = 50.0, object_mm: float | None = None):
        self.link, self.stroke_mm, self.object_mm = link, stroke_mm, object_mm
        self.commands: list[str] = []
        self.opened, self.width_mm = True, stroke_mm
        self.jammed = False

    def open(self) -> None:
        self.commands.append("open")
        if self.jammed:
            raise RobotError("the gripper is jammed")
        self.opened, self.width_mm = True, self.stroke_mm

    def close(self) -> None:
        self.commands.append("close")
        self.opened, self.width_mm = False, self.object_mm or 0.0

    def state(self) -> GripperReading:
        return GripperReading(opened=self.opened, opening_m=self.width_mm / 1000,
                              holding=not self.opened and self.width_mm > 0)
