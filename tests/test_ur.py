"""The UR driver against a recording fake of ur_rtde: the pose maths, the exact calls, units and
limits it sends, how it fails, and every call of every test bound to ur_rtde's own signatures.

ur_rtde is a pybind11 extension, which `inspect.signature` cannot read; its docstrings carry
each overload's signature ("moveL(self: ..., pose: list[float], speed: float = 0.25, ...) ->
bool"), and `bind` holds each recorded call to them: names, arity, defaults, positional-only
unnamed parameters, argument types and the type of what the fake answered."""

import inspect
import math
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from importlib.metadata import EntryPoint

import numpy as np
import pytest
from rtde_control import AsyncOperationStatus, RTDEControlInterface
from rtde_io import RTDEIOInterface
from rtde_receive import RTDEReceiveInterface

from erarm.robots import ur as ur_module
from erarm.robots.base import ToolPose, WorkspaceLimits
from erarm.robots.errors import ConfigError, RobotError
from erarm.robots.ur import (
    UROptions,
    URRobot,
    open_ur_workcell,
    probe_rtde,
    rotation_matrix,
    rotation_vector,
)
from tests.fake_ur import RAISED, Call, FakeUR, RecordingGripper

REQUIRED = {"host": "10.0.0.7", "tcp_offset_mm": (0.0, 0.0, 150.0), "payload_kg": 1.2,
            "payload_cog_mm": (0.0, 0.0, 60.0)}
REAL = {cls.__name__: cls for cls in (RTDEControlInterface, RTDEReceiveInterface,
                                      RTDEIOInterface, AsyncOperationStatus)}


# -- ur_rtde's signatures, from its docstrings --------------------------------------------------
def _split(params: str) -> list[str]:
    """The parameters of a signature: top-level commas only (list[list[float]] and
    <Flags.FLAG_UPLOAD_SCRIPT: 1> keep theirs)."""
    parts, depth, current = [], 0, ""
    for char in params:
        depth += (char in "[(<") - (char in "])>")
        if char == "," and depth == 0:
            parts, current = [*parts, current], ""
        else:
            current += char
    return [p.strip() for p in [*parts, current] if p.strip()]


def _parameter(text: str) -> inspect.Parameter:
    """"speed: float = 0.25" as a parameter; pybind11's unnamed ones (arg0, ...) and self take
    no keyword."""
    name, _, rest = text.partition(":")
    annotation, equals, default = rest.partition(" = ")
    name = name.strip()
    kind = inspect.Parameter.POSITIONAL_ONLY if name == "self" or re.fullmatch(r"arg\d+", name) \
        else inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Parameter(name, kind, annotation=annotation.strip(),
                             default=default if equals else inspect.Parameter.empty)


def signatures(cls: type, name: str) -> list[tuple[inspect.Signature, str]]:
    """Every overload of ur_rtde's `cls.name`, with the type it returns."""
    method = getattr(cls, name, None)
    assert method is not None, f"ur_rtde's {cls.__name__} has no {name}"
    pattern = re.compile(rf"^\s*(?:\d+\.\s+)?{re.escape(name)}\((.*)\)\s*->\s*(\S.*?)\s*$", re.M)
    found = [(inspect.Signature([_parameter(p) for p in _split(match[1])]), match[2])
             for match in pattern.finditer(method.__doc__ or "")]
    assert found, f"no signature in the docstring of {cls.__name__}.{name}"
    return found


def fits(value: object, annotation: str) -> bool:
    """Whether pybind11 takes (or gives) `value` as `annotation`; stricter than pybind11, which
    converts an int to a bool: a driver should not rely on that."""
    inner = re.fullmatch(r"[Ll]ist\[(.*)\]", annotation)
    if inner:
        return isinstance(value, list | tuple) and all(fits(v, inner[1]) for v in value)
    if annotation in ("float", "int"):
        allowed = (int, float) if annotation == "float" else (int,)
        return isinstance(value, allowed) and not isinstance(value, bool)
    simple = {"bool": bool, "str": str, "None": type(None)}
    if annotation in simple:
        return isinstance(value, simple[annotation])
    return type(value).__name__ == annotation.rsplit(".", 1)[-1]  # a class: the fake's is named so


def bind(call: Call) -> None:
    """AssertionError unless the call binds to an overload of ur_rtde's method of that name,
    with arguments, and an answer from the fake, of the documented types."""
    problems = []
    for signature, returns in signatures(REAL[call.interface], call.name):
        try:
            bound = signature.bind(None, *call.args, **call.kwargs)
        except TypeError as err:
            problems.append(str(err))
            continue
        wrong = [f"{name}={value!r} is not {signature.parameters[name].annotation}"
                 for name, value in bound.arguments.items()
                 if name != "self" and not fits(value, signature.parameters[name].annotation)]
        if call.result is not RAISED and not fits(call.result, returns):
            wrong.append(f"the fake answered {call.result!r}, not {returns}")
        if not wrong:
            return
        problems += wrong
    raise AssertionError(f"{call.interface}.{call.name}(*{call.args!r}, **{call.kwargs!r}) "
                         f"does not match ur_rtde: {'; '.join(problems)}")


@pytest.fixture
def ur():
    """`ur(**options)`: a UR driver on a fresh fake, and the fake; after the test, every call
    any of them recorded is bound to ur_rtde."""
    fakes = []

    def make(**options) -> tuple[URRobot, FakeUR]:
        fake = FakeUR()
        fakes.append(fake)
        settings = UROptions(**{**REQUIRED, "gripper_settle_s": 0.0, **options})
        return URRobot(settings, rtde=fake.classes()), fake

    yield make
    for fake in fakes:
        for call in fake.calls:
            bind(call)


def connected(ur, **options) -> tuple[URRobot, FakeUR]:
    arm, fake = ur(**options)
    arm.connect()
    return arm, fake


# -- the pose maths ----------------------------------------------------------------------------
@pytest.mark.parametrize("yaw_deg", [0, 30, 90, -90, 135, 180, -179])
def test_pointing_down_with_a_yaw_is_a_half_turn_about_a_horizontal_axis(yaw_deg):
    """Rx(π) then the yaw about z: a half turn about (cos ψ/2, sin ψ/2, 0) (or its opposite,
    the same half turn)."""
    yaw = math.radians(yaw_deg)
    vector = rotation_vector(ToolPose(x=0.4, y=0.0, z=0.1, yaw=yaw).rotation())
    expected = math.pi * np.array([math.cos(yaw / 2), math.sin(yaw / 2), 0.0])
    assert np.allclose(vector, expected, atol=1e-12) or np.allclose(vector, -expected, atol=1e-12)
    assert rotation_vector(ToolPose(x=0, y=0, z=0).rotation()) == pytest.approx([math.pi, 0, 0])


@pytest.mark.parametrize("tilt", [0.0, 1e-9, 1e-6, 1e-4, 0.3, 1.2])
@pytest.mark.parametrize("yaw", [0.0, 0.7, -2.5, math.pi])
def test_rotation_vectors_round_trip_even_a_hair_from_a_half_turn(tilt, yaw):
    """The down-pointing tool lives next to a half turn, where the textbook logarithm divides by
    sin(angle) ≈ 0; it must stay exact there (OpenCV's Rodrigues is off by the whole tilt)."""
    for roll, pitch in ((tilt, 0.0), (0.0, -tilt), (tilt, tilt / 2)):
        rotation = ToolPose(x=0, y=0, z=0, yaw=yaw, roll=roll, pitch=pitch).rotation()
        vector = rotation_vector(rotation)
        assert np.linalg.norm(vector) <= math.pi + 1e-12
        assert np.abs(rotation_matrix(vector) - rotation).max() < 1e-12
    assert np.allclose(rotation_vector(np.eye(3)), 0.0)
    assert np.allclose(rotation_vector(rotation_matrix([0.0, 0.2, 0.0])), [0.0, 0.2, 0.0])


# -- what the driver sends ---------------------------------------------------------------------
def test_connecting_sets_the_tool_centre_and_payload_once_the_arm_is_ready(ur):
    arm, fake = connected(ur, tcp_offset_mm=(5.0, 0.0, 172.0), payload_kg=0.9,
                          payload_cog_mm=(0.0, 2.0, 55.0))
    names = fake.names()
    assert [c.interface for c in fake.called("__init__")] == [
        "RTDEReceiveInterface", "RTDEControlInterface", "RTDEIOInterface"]
    assert fake.called("__init__")[0].args == ("10.0.0.7",)
    assert names.index("getSafetyMode") < names.index("setTcp") < names.index("setPayload")
    assert fake.tcp == pytest.approx([0.005, 0.0, 0.172, 0.0, 0.0, 0.0])
    assert fake.payload[0] == 0.9 and fake.payload[1] == pytest.approx([0.0, 0.002, 0.055])
    assert arm.physical and arm.name == "ur"


def test_moves_are_sent_in_metres_with_a_rotation_vector_at_a_bounded_speed(ur):
    arm, fake = connected(ur, speed_mm_s=800, acceleration_mm_s2=2500, table_z_mm=-100,
                          limits=WorkspaceLimits(max_speed_m_s=0.25))
    report = arm.move_to(ToolPose(x=0.4, y=0.1, z=0.05, yaw=math.radians(30)))
    (move,) = fake.called("moveL")
    pose, speed, acceleration, asynchronous = move.args
    assert pose[:3] == pytest.approx([0.4, 0.1, -0.05])  # 50 mm above a table 100 mm below
    assert abs(np.dot(pose[3:], [math.cos(math.radians(15)), math.sin(math.radians(15)), 0])) \
        == pytest.approx(math.pi)
    assert speed == 0.25  # the limit wins over the faster option
    assert acceleration == 2.5 and asynchronous is True
    assert report.reached.z == pytest.approx(0.05) and report.position_error_m < 1e-9
    assert report.reached.yaw == pytest.approx(math.radians(30))


def test_a_speed_under_the_limit_is_sent_as_it_is(ur):
    arm, fake = connected(ur, speed_mm_s=120)
    arm.return_to_origin()
    assert fake.called("moveL")[0].args[1:3] == (0.12, 1.2)
    assert arm.state().tool.position() == pytest.approx([0.3, 0.0, 0.25])


def test_tilted_poses_read_back_as_sent_whichever_way_the_controller_writes_them(ur):
    arm, fake = connected(ur)
    arm.move_to(ToolPose(x=0.4, y=0.0, z=0.2, roll=math.radians(20), pitch=math.radians(-15)))
    tool = arm.state().tool
    assert math.degrees(tool.roll) == pytest.approx(20)
    assert math.degrees(tool.pitch) == pytest.approx(-15)
    vector = np.array(fake.pose[3:])  # the same orientation, the other way round the axis
    angle = np.linalg.norm(vector)
    fake.pose[3:] = list(-vector / angle * (2 * math.pi - angle))
    again = arm.state().tool
    assert (again.roll, again.pitch, again.yaw) == pytest.approx((tool.roll, tool.pitch,
                                                                  tool.yaw), abs=1e-12)


def test_reachable_asks_the_controller_about_its_reach_and_safety_limits(ur):
    arm, fake = connected(ur, table_z_mm=20,
                          limits=WorkspaceLimits(x_max=1.0, max_reach_m=1.0))
    assert arm.reachable(ToolPose(x=0.5, y=0.0, z=0.1)) is None
    assert fake.called("isPoseWithinSafetyLimits")[0].args[0][:3] == pytest.approx([0.5, 0, 0.12])
    assert arm.reachable(ToolPose(x=0.95, y=0.0, z=0.1)) == (
        "the UR cannot reach it within its safety limits (planes, tool orientation)")
    assert arm.reachable(ToolPose(x=0.4, y=0.0, z=-0.05)).startswith("the tool would go to")
    assert len(fake.called("isPoseWithinSafetyLimits")) == 2  # the envelope answered the last


# -- the gripper -------------------------------------------------------------------------------
@pytest.mark.parametrize(("output", "pin", "close_level", "setter", "bit"), [
    ("standard", 0, True, "setStandardDigitalOut", 0),
    ("configurable", 5, True, "setConfigurableDigitalOut", 13),
    ("tool", 1, False, "setToolDigitalOut", 17)])
def test_the_gripper_on_a_digital_output(ur, output, pin, close_level, setter, bit):
    arm, fake = connected(ur, gripper_output=output, gripper_pin=pin,
                          gripper_close_level=close_level, gripper_stroke_mm=50)
    closed = arm.set_gripper(False)
    assert fake.called(setter)[-1].args == (pin, close_level)
    assert bool(fake.digital_out >> bit & 1) is close_level  # read back at that bit
    assert (closed.opened, closed.opening_m, closed.holding) == (False, 0.0, True)
    assert arm.state().gripper_open is False
    opened = arm.set_gripper(True)
    assert fake.called(setter)[-1].args == (pin, not close_level)
    assert (opened.opened, opened.opening_m, opened.holding) == (True, 0.05, False)
    assert arm.state().gripper_open is True


def test_a_holding_sensor_tells_a_grasp_from_a_miss(ur):
    arm, fake = connected(ur, gripper_holding_input=3)
    assert not arm.set_gripper(False).holding  # closed on nothing
    arm.set_gripper(True)
    fake.digital_in |= 1 << 3  # a part between the fingers
    assert arm.set_gripper(False).holding and arm.state().holding
    assert fake.called("getDigitalInState")[-1].args == (3,)


def test_an_output_that_does_not_switch_is_one_line(ur):
    arm, fake = connected(ur)
    fake.refuse.add("setStandardDigitalOut")
    with pytest.raises(RobotError, match=r"^the UR did not switch its standard digital output 0 "
                                         r"on$"):
        arm.set_gripper(False)
    fake.refuse.clear()
    fake.stuck_bits.add(0)
    with pytest.raises(RobotError, match=r"^the UR's standard digital output 0 still reads off 0 s "
                                         r"after it was switched$"):
        arm.set_gripper(False)


def test_a_gripper_plugin_named_by_its_import_path(ur):
    arm, fake = connected(ur, gripper="tests.fake_ur:RecordingGripper",
                          gripper_options={"object_mm": 30})
    gripper = arm.gripper
    assert isinstance(gripper, RecordingGripper) and gripper.link.host == "10.0.0.7"
    assert gripper.link.io.hostname == "10.0.0.7"
    closed = arm.set_gripper(False)
    assert closed.holding and closed.opening_m == pytest.approx(0.03)
    assert not arm.set_gripper(True).holding and arm.state().gripper_opening_m == 0.05
    assert gripper.commands == ["close", "open"]
    gripper.jammed = True
    with pytest.raises(RobotError, match=r"^the gripper is jammed$"):  # the plugin's own words
        arm.set_gripper(True)
    assert not fake.called("setStandardDigitalOut")


def test_a_gripper_plugin_named_by_its_entry_point(ur, monkeypatch):
    point = EntryPoint(name="recording", value="tests.fake_ur:RecordingGripper",
                       group="erarm.ur_grippers")
    monkeypatch.setattr(ur_module, "entry_points", lambda group, name: [point]
                        if (group, name) == ("erarm.ur_grippers", "recording") else [])
    arm, _ = connected(ur, gripper="recording")
    assert isinstance(arm.gripper, RecordingGripper)


@pytest.mark.parametrize(("gripper", "options", "message"), [
    ("robotiq", {}, "ur robot option gripper: no gripper plugin 'robotiq' (io, an entry point in "
                    "erarm.ur_grippers, or module:factory)"),
    ("no_such_module:Gripper", {}, "ur robot option gripper: cannot load no_such_module:Gripper: "
                                   "No module named 'no_such_module'"),
    ("tests.fake_ur:NoSuchGripper", {}, "ur robot option gripper: cannot load "
                                        "tests.fake_ur:NoSuchGripper: module 'tests.fake_ur' has "
                                        "no attribute 'NoSuchGripper'"),
    ("tests.fake_ur:RecordingGripper", {"colour": "red"},
     "ur robot option gripper_options: RecordingGripper.__init__() got an unexpected keyword "
     "argument 'colour'")])
def test_a_gripper_plugin_that_cannot_be_had_is_one_line(ur, gripper, options, message):
    with pytest.raises(ConfigError) as caught:
        connected(ur, gripper=gripper, gripper_options=options)
    assert str(caught.value) == message


# -- stops and failures ------------------------------------------------------------------------
def test_a_protective_stop_mid_motion_is_one_line_until_someone_clears_it(ur):
    arm, fake = connected(ur)
    fake.during_next_move = fake.protective_stop  # the arm met something on its way
    with pytest.raises(RobotError) as caught:
        arm.move_to(ToolPose(x=0.4, y=0.0, z=0.1))
    assert str(caught.value) == ("UR protective stop while moving to (400, 0, 100) mm: unlock it "
                                 "on the teach pendant")
    with pytest.raises(RobotError, match=r"^UR protective stop while checking a pose"):
        arm.reachable(ToolPose(x=0.4, y=0.0, z=0.2))
    with pytest.raises(RobotError, match=r"^UR protective stop while closing the gripper"):
        arm.set_gripper(False)
    arm.stop()
    assert arm.state().tool.z == pytest.approx(0.175)  # it stopped halfway down
    fake.clear_stop()  # the operator unlocks it: the next motion uploads the script again
    assert arm.move_to(ToolPose(x=0.4, y=0.0, z=0.1)).position_error_m < 1e-9
    assert fake.called("reuploadScript")[-1].result is True


def test_an_emergency_stop_is_one_line_and_the_arm_can_still_be_read(ur):
    arm, fake = connected(ur)
    arm.move_to(ToolPose(x=0.4, y=0.0, z=0.1))
    fake.emergency_stop()
    with pytest.raises(RobotError) as caught:
        arm.move_to(ToolPose(x=0.4, y=0.0, z=0.2))
    assert str(caught.value) == ("UR emergency stop while moving to (400, 0, 200) mm: release "
                                 "the emergency stop button, then power the arm on and release "
                                 "its brakes on the teach pendant")
    assert len(fake.called("moveL")) == 1  # refused before anything was sent
    assert arm.state().tool.z == pytest.approx(0.1)


@pytest.mark.parametrize(("stop", "message"), [
    (FakeUR.protective_stop, "UR protective stop while connecting: unlock it on the teach "
                             "pendant"),
    (lambda fake: setattr(fake, "robot_mode", 5), "UR not running (robot mode idle) while "
                                                  "connecting: power it on and release the "
                                                  "brakes on the teach pendant"),
    (lambda fake: setattr(fake, "safety_mode", 5), "UR safety mode safeguard stop while "
                                                   "connecting: see the teach pendant")])
def test_connecting_to_an_arm_that_cannot_move_says_why_and_lets_go(ur, stop, message):
    arm, fake = ur()
    stop(fake)
    with pytest.raises(RobotError) as caught:
        arm.connect()
    assert str(caught.value) == message
    assert len(fake.called("disconnect")) == 3 and not fake.called("setTcp")
    with pytest.raises(RobotError, match=r"^the UR is not connected$"):
        arm.state()


def test_a_lost_connection_stops_the_run(ur):
    arm, fake = connected(ur)
    fake.during_next_move = fake.drop_connection
    with pytest.raises(RobotError) as caught:
        arm.move_to(ToolPose(x=0.4, y=0.1, z=0.2))
    assert str(caught.value) == "lost the connection to the UR at 10.0.0.7 while moving to " \
                                "(400, 100, 200) mm"
    with pytest.raises(RobotError, match=r"^lost the connection to the UR at 10\.0\.0\.7$"):
        arm.state()
    arm.stop()  # harmless with no link
    assert not fake.called("stopL")
    arm.close()


def test_what_the_controller_refuses_or_ur_rtde_raises_is_one_line(ur):
    arm, fake = ur()
    fake.refuse.add("setTcp")
    with pytest.raises(RobotError, match=r"^UR setting the tool centre failed: the controller "
                                         r"refused it$"):
        arm.connect()
    arm, fake = ur()
    fake.raise_on["setPayload"] = "unable to get state data for specified key: runtime_state"
    with pytest.raises(RobotError, match=r"^UR setting the payload failed: unable to get state "
                                         r"data for specified key: runtime_state$"):
        arm.connect()
    assert fake.called("stopScript") and len(fake.called("disconnect")) == 3
    arm, fake = connected(ur)
    fake.during_next_move = lambda: setattr(fake, "program_running", False)  # a script error
    with pytest.raises(RobotError, match=r"^the UR's control script stopped while moving to "
                                         r"\(400, 0, 150\) mm \(the teach pendant's log says "
                                         r"why\)$"):
        arm.move_to(ToolPose(x=0.4, y=0.0, z=0.15))


def test_no_arm_at_the_address_is_one_line_with_the_real_ur_rtde():
    """The real driver, pointed at a loopback port where nothing listens: its RTDE probe
    says so before ur_rtde is asked (whose constructors block without a timeout)."""
    arm = URRobot(UROptions(**{**REQUIRED, "host": "127.0.0.1"}))
    with pytest.raises(RobotError) as caught:
        arm.connect()
    assert str(caught.value) == ("cannot connect to the UR at 127.0.0.1: Connection refused "
                                 "(port 30004, RTDE)")


def _peer(answer: bytes | None) -> tuple[socket.socket, list[bytes]]:
    """A loopback listener on port 30004 of 127.0.0.3 that answers the first message with
    `answer` (None: never answers), and what it was sent."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.3", 30004))
    server.listen()
    got: list[bytes] = []

    def serve() -> None:
        link, _ = server.accept()
        got.append(link.recv(16))
        if answer is not None:
            link.sendall(answer)
        time.sleep(1.5)
        link.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, got


@pytest.mark.parametrize(("answer", "words"), [
    (None, "no RTDE answer within 0.5 s"),
    (b"HTTP/1.1 400\r\n", "does not speak RTDE"),
])
def test_a_peer_that_is_no_ur_is_one_line_in_seconds(answer, words):
    server, got = _peer(answer)
    try:
        started = time.monotonic()
        with pytest.raises(RobotError) as caught:
            probe_rtde("127.0.0.3", timeout_s=0.5)
        assert words in str(caught.value) and time.monotonic() - started < 1.5
        assert got == [struct.pack(">HBH", 5, 86, 2)]  # the RTDE guide's version request
    finally:
        server.close()


def test_an_rtde_answer_passes_the_probe():
    server, _ = _peer(struct.pack(">HBB", 4, 86, 1))  # "version 2 accepted"
    try:
        probe_rtde("127.0.0.3", timeout_s=2)
    finally:
        server.close()


def test_stop_brakes_the_motion_then_ends_the_script(ur):
    """Ctrl-C lands while the driver waits on an asynchronous moveL; stop() then brakes it."""
    arm, fake = connected(ur)

    def interrupt():
        raise KeyboardInterrupt

    fake.during_next_move = interrupt
    with pytest.raises(KeyboardInterrupt):
        arm.move_to(ToolPose(x=0.4, y=0.0, z=0.1))
    sent = len(fake.calls)
    arm.stop()
    assert [c.name for c in fake.calls[sent:] if c.name.startswith("stop")] == [
        "stopL", "stopScript"]
    assert not fake.op_running and fake.pose[2] == pytest.approx(0.175)  # braked halfway
    assert arm.move_to(ToolPose(x=0.4, y=0.0, z=0.1)).position_error_m < 1e-9  # re-uploaded


def test_a_motion_that_never_ends_is_stopped(ur):
    arm, fake = connected(ur, move_timeout_s=0.05)
    fake.polls_per_move = None
    with pytest.raises(RobotError, match=r"^UR moving to \(400, 0, 100\) mm took longer than "
                                         r"0\.05 s; the arm was stopped$"):
        arm.move_to(ToolPose(x=0.4, y=0.0, z=0.1))
    assert fake.called("stopL") and not fake.op_running


# -- options and the package -------------------------------------------------------------------
@pytest.mark.parametrize(("options", "message"), [
    ({"tcp_offset_mm": None}, "ur robot option tcp_offset_mm: Input should be a valid tuple"),
    ({"speed_mm_s": 4000}, "ur robot option speed_mm_s: Input should be less than or equal to "
                           "3000"),
    ({"acceleration_mm_s2": 0}, "ur robot option acceleration_mm_s2: Input should be greater "
                                "than 0"),
    ({"gripper_output": "tool", "gripper_pin": 3},
     "ur robot option gripper_pin: Value error, the tool flange has digital outputs 0 and 1 "
     "only"),
    ({"colour": "red"}, "ur robot option colour: Extra inputs are not permitted")])
def test_bad_options_are_one_line_config_errors(options, message):
    with pytest.raises(ConfigError) as caught:
        open_ur_workcell(**{**REQUIRED, **options})
    assert str(caught.value) == message


def test_the_payload_has_no_default():
    """The controller's collision detection weighs it: the operator says what is on the flange."""
    missing = {k: v for k, v in REQUIRED.items() if k != "payload_kg"}
    with pytest.raises(ConfigError, match=r"^ur robot option payload_kg: Field required$"):
        open_ur_workcell(**missing)


def test_the_workcell_opens_without_connecting():
    cell = open_ur_workcell(**REQUIRED, gripper_pin=2)
    assert isinstance(cell.robot, URRobot) and cell.camera is None
    assert cell.robot.settings.gripper_pin == 2 and open_ur_workcell.options is UROptions


def test_without_ur_rtde_opening_a_ur_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rtde_control", None)  # import rtde_control now fails
    with pytest.raises(ConfigError) as caught:
        open_ur_workcell(**REQUIRED)
    assert str(caught.value) == "the ur robot needs ur_rtde: pip install 'erarm[ur]'"


def test_the_driver_module_loads_without_ur_rtde():
    """`erarm robots` lists every driver by loading it: ur_rtde is imported only to open one."""
    blocked = "import sys; sys.modules.update(dict.fromkeys(['rtde_control', 'rtde_receive', " \
              "'rtde_io'])); import erarm.robots.ur"
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


# -- the fake against ur_rtde ------------------------------------------------------------------
def test_the_driver_uses_the_calls_that_matter(ur):
    """What the fixture binds after each test covers everything the driver sends."""
    arm, fake = connected(ur, gripper_holding_input=1)
    arm.reachable(ToolPose(x=0.4, y=0.0, z=0.1))
    arm.move_to(ToolPose(x=0.4, y=0.0, z=0.1))
    arm.set_gripper(False)
    arm.state()
    arm.stop()
    arm.return_to_origin()
    arm.close()
    assert {"__init__", "setTcp", "setPayload", "isPoseWithinSafetyLimits", "moveL",
            "getAsyncOperationProgressEx", "isAsyncOperationRunning", "equals", "stopL",
            "stopScript", "reuploadScript", "setStandardDigitalOut", "getDigitalOutState",
            "getDigitalInState", "getActualQ", "getActualTCPPose", "getSafetyMode",
            "isProtectiveStopped", "isEmergencyStopped", "getRobotMode", "isConnected",
            "isProgramRunning", "disconnect"} <= set(fake.names())


@pytest.mark.parametrize("call", [
    Call("RTDEControlInterface", "moveL", ([0.3] * 6,), {"velocity": 0.1}),  # no such keyword
    Call("RTDEControlInterface", "moveL", ([0.3] * 6, 0.1, 1.2, True, 0.0)),  # one too many
    Call("RTDEControlInterface", "setTcp", (), {"arg0": [0.0] * 6}),  # unnamed: positional only
    Call("RTDEControlInterface", "stopL", (1,), {"asynchronous": 0}),  # an int for a bool
    Call("RTDEIOInterface", "setStandardDigitalOut", (0.0, True)),  # a float for an int
    Call("RTDEReceiveInterface", "getActualToolPose", ()),  # no such method
    Call("RTDEReceiveInterface", "getActualQ", (), {}, (0.1, "a")),  # the fake answers wrongly
    Call("AsyncOperationStatus", "equals", (3,))])  # not a status
def test_the_binding_refuses_what_ur_rtde_would(call):
    with pytest.raises(AssertionError):
        bind(call)
