"""A recording stand-in for UFACTORY's `xarm.wrapper.XArmAPI`, for tests without an arm.

It has the SDK's method names, parameters, units (mm, degrees, gripper pulses 0-850) and return
conventions (int codes, 0 for success; `(code, value)` pairs for reads; `set_fence_mode` returning
a list; `emergency_stop` returning None), keeps a tool pose and a gripper, behaves like the
controller where a driver must cope (its fence, errors that need clearing, a stopped state, a
dropped connection), and records every call so tests can check exactly what a driver sent.
"""

from __future__ import annotations

import math
from typing import Any

HOME = [300.0, 0.0, 250.0, 180.0, 0.0, 0.0]


class RecordingXArmAPI:
    axis = 6

    def __init__(self, port=None, is_radian=False, do_not_open=False, **kwargs):
        self.calls: list[tuple[str, tuple, dict]] = []
        self.port, self.default_is_radian = port, is_radian
        self.connected = False
        self.error_code = self.warn_code = 0
        self.state, self.mode = 2, 0  # 2: ready (sleeping)
        self.position = list(HOME)
        self.gripper = 850
        self.object_pulses: int | None = None  # an object between the fingers stops them here
        self.boundary: list[int] | None = None
        self.fence_on = self.reduced_on = False
        self.max_tcp_speed: float | None = None
        self.collision_sensitivity: int | None = None
        self.refuse_connection = False
        self.fail_next_move: int | None = None  # a controller error code for the next motion
        self.moves_before_link_drops: int | None = None
        self._connect_callbacks: list = []
        if not do_not_open:
            self.connect()

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    def called(self, name: str) -> list[tuple[tuple, dict]]:
        return [(args, kwargs) for n, args, kwargs in self.calls if n == name]

    def _notify(self, connected: bool) -> None:
        for callback in self._connect_callbacks:
            callback({"connected": connected, "reported": connected})

    # -- connection --------------------------------------------------------------------------
    def connect(self, port=None, baudrate=None, timeout=None, axis=None, **kwargs):
        self._record("connect", port=port)
        if self.refuse_connection:
            raise Exception(f"can not connect to port/ip {self.port}")
        self.connected = True
        self._notify(True)

    def disconnect(self):
        self._record("disconnect")
        self.connected = False
        self._notify(False)

    def register_connect_changed_callback(self, callback=None):
        self._record("register_connect_changed_callback", callback)
        self._connect_callbacks.append(callback)
        return True

    def release_connect_changed_callback(self, callback=None):
        self._record("release_connect_changed_callback", callback)
        self._connect_callbacks = [c for c in self._connect_callbacks
                                   if callback is not None and c != callback]
        return True

    # -- state -------------------------------------------------------------------------------
    def clean_error(self):
        self._record("clean_error")
        self.error_code = 0
        return 0

    def clean_warn(self):
        self._record("clean_warn")
        self.warn_code = 0
        return 0

    def motion_enable(self, enable=True, servo_id=None):
        self._record("motion_enable", enable=enable, servo_id=servo_id)
        return 0 if self.connected else -1

    def set_mode(self, mode=0, detection_param=0):
        self._record("set_mode", mode)
        self.mode = mode
        return 0

    def set_state(self, state=0):
        self._record("set_state", state=state)
        if state == 0 and not self.error_code:
            self.state = 2
        elif state in (3, 4):
            self.state = state
        return 0

    def emergency_stop(self):
        self._record("emergency_stop")
        self.state = 4

    # -- configuration -----------------------------------------------------------------------
    def set_tcp_offset(self, offset, is_radian=None, wait=True, **kwargs):
        self._record("set_tcp_offset", offset)
        return 0

    def set_reduced_tcp_boundary(self, boundary):
        self._record("set_reduced_tcp_boundary", boundary)
        values = [int(v) for v in boundary[:6]]
        for i in (0, 2, 4):  # max before min, as the SDK fixes them
            if values[i] < values[i + 1]:
                values[i], values[i + 1] = values[i + 1], values[i]
        self.boundary = values
        return 0

    def set_reduced_max_tcp_speed(self, speed):
        self._record("set_reduced_max_tcp_speed", speed)
        self.max_tcp_speed = speed
        return 0

    def set_reduced_mode(self, on):
        self._record("set_reduced_mode", on)
        self.reduced_on = bool(on)
        return 0

    def set_fence_mode(self, on):
        self._record("set_fence_mode", on)
        self.fence_on = bool(on)
        return [0]  # the SDK returns the raw reply list here

    def set_collision_sensitivity(self, value, wait=True):
        self._record("set_collision_sensitivity", value)
        assert isinstance(value, int) and 0 <= value <= 5  # as the SDK asserts
        self.collision_sensitivity = value
        self.set_state(0)
        return 0

    # -- motion ------------------------------------------------------------------------------
    def _outside_fence(self, x: float, y: float, z: float) -> bool:
        if not (self.fence_on and self.boundary):
            return False
        x_max, x_min, y_max, y_min, z_max, z_min = self.boundary
        return not (x_min <= x <= x_max and y_min <= y <= y_max and z_min <= z <= z_max)

    def set_position(self, x=None, y=None, z=None, roll=None, pitch=None, yaw=None, radius=None,
                     speed=None, mvacc=None, mvtime=None, relative=False, is_radian=None,
                     wait=False, timeout=None, **kwargs):
        self._record("set_position", x=x, y=y, z=z, roll=roll, pitch=pitch, yaw=yaw,
                     speed=speed, mvacc=mvacc, is_radian=is_radian, wait=wait, timeout=timeout)
        if not self.connected:
            return -1
        if self.error_code:
            return 1
        if self.state >= 4:
            return 9
        target = [v if v is not None else old
                  for v, old in zip((x, y, z, roll, pitch, yaw), self.position, strict=True)]
        if self.moves_before_link_drops is not None:
            if self.moves_before_link_drops == 0:
                self.connected = False
                self._notify(False)
                return -1
            self.moves_before_link_drops -= 1
        if self.fail_next_move is not None:
            self.error_code, self.fail_next_move, self.state = self.fail_next_move, None, 4
            return 1
        if self._outside_fence(*target[:3]):
            self.error_code, self.state = 35, 4  # Safety Boundary Limit
            return 1
        self.position = [float(v) for v in target]
        return 0

    def get_position(self, is_radian=None):
        self._record("get_position", is_radian=is_radian)
        if not self.connected:
            return -1, "xArm is not connect"
        return 0, list(self.position)

    def get_servo_angle(self, servo_id=None, is_radian=None, is_real=False):
        self._record("get_servo_angle", is_radian=is_radian)
        x, y, z = self.position[:3]
        angles = [math.atan2(y, x), -0.4 + z / 1000, -0.9, 0.0, 1.3,
                  math.radians(self.position[5]), 0.0]  # a plausible posture, 7 values as the SDK
        if not is_radian:
            angles = [math.degrees(a) for a in angles]
        return (0, angles) if self.connected else (-1, angles)

    def get_inverse_kinematics(self, pose, input_is_radian=None, return_is_radian=None,
                               limited=True, ref_angles=None):
        self._record("get_inverse_kinematics", pose, input_is_radian=input_is_radian,
                     return_is_radian=return_is_radian)
        if math.hypot(pose[0], pose[1]) > 690 or pose[2] > 690:
            return 40, None  # no IK solution
        return 0, [math.degrees(math.atan2(pose[1], pose[0])), 0.0, 0.0, 0.0, 90.0, 0.0]

    def is_joint_limit(self, joint, is_radian=None):
        self._record("is_joint_limit", joint, is_radian=is_radian)
        return 0, False

    # -- gripper -----------------------------------------------------------------------------
    def set_gripper_enable(self, enable, **kwargs):
        self._record("set_gripper_enable", enable)
        return 0

    def set_gripper_mode(self, mode, **kwargs):
        self._record("set_gripper_mode", mode)
        return 0

    def set_gripper_speed(self, speed, **kwargs):
        self._record("set_gripper_speed", speed)
        return 0

    def set_gripper_position(self, pos, wait=False, speed=None, auto_enable=False,
                             timeout=None, **kwargs):
        self._record("set_gripper_position", pos, wait=wait, speed=speed, timeout=timeout)
        if not self.connected:
            return -1
        blocked = self.object_pulses
        self.gripper = max(pos, blocked) if blocked is not None and pos < blocked else pos
        return 0

    def get_gripper_position(self, **kwargs):
        self._record("get_gripper_position")
        return (0, self.gripper) if self.connected else (-1, None)
