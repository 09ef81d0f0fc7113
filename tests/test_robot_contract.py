"""The contract every robot driver must keep, run against each one erarm knows: the simulated
xArm6, the xArm driver wired to a recording fake of UFACTORY's SDK, the UR driver wired to a
recording fake of ur_rtde, and the sample third-party plugin installed through its entry points.

A new driver joins by adding a case to `robot`; if it passes, erarm can plan for it and run it.
"""

import math

import pytest

from erarm.robots.base import GripperReport, MoveReport, Robot, RobotState, ToolPose
from erarm.robots.errors import RobotError
from erarm.robots.registry import open_workcell
from erarm.robots.ur import UROptions, URRobot
from erarm.robots.xarm import XArmOptions, XArmRobot
from tests.fake_ur import FakeUR
from tests.fake_xarm import RecordingXArmAPI

INSIDE = ToolPose(x=0.42, y=0.08, z=0.15, yaw=0.4)
OUTSIDE = [ToolPose(x=0.9, y=0.0, z=0.2), ToolPose(x=0.4, y=0.0, z=-0.05),
           ToolPose(x=0.4, y=0.55, z=0.2), ToolPose(x=0.4, y=0.0, z=float("nan"))]


@pytest.fixture(params=["sim", "xarm", "ur", "toy"])
def robot(request, toy_plugin) -> Robot:
    """A connected robot of each driver, closed after the test."""
    if request.param == "xarm":
        fake = RecordingXArmAPI("10.0.0.9", do_not_open=True)
        arm = XArmRobot(XArmOptions(host="10.0.0.9"), api_factory=lambda host: fake)
        arm.fake = fake
        arm.connect()
        yield arm
        arm.close()
        return
    if request.param == "ur":
        fake = FakeUR()
        arm = URRobot(UROptions(host="10.0.0.7", tcp_offset_mm=(0, 0, 150), payload_kg=1.2,
                                payload_cog_mm=(0, 0, 60), gripper_settle_s=0),
                      rtde=fake.classes())
        arm.connect()
        yield arm
        arm.close()
        return
    cell = open_workcell(request.param)
    cell.robot.connect()
    yield cell.robot
    cell.close()


def test_it_is_a_robot_with_a_name_limits_and_a_state(robot):
    assert isinstance(robot, Robot) and robot.name and isinstance(robot.physical, bool)
    state = robot.state()
    assert isinstance(state, RobotState) and len(state.joint_positions_rad) >= 5
    assert all(math.isfinite(q) for q in state.joint_positions_rad)
    assert robot.limits.problem(state.tool) is None  # it starts inside its own envelope


def test_connect_twice_is_harmless(robot):
    robot.connect()
    assert robot.state().tool is not None


def test_it_moves_the_tool_where_it_is_told(robot):
    report = robot.move_to(INSIDE)
    assert isinstance(report, MoveReport) and report.duration_s >= 0
    assert report.position_error_m < 0.005
    assert math.dist(report.reached.position(), INSIDE.position()) == \
        pytest.approx(report.position_error_m, abs=1e-9)
    assert math.dist(robot.state().tool.position(), INSIDE.position()) < 0.005


@pytest.mark.parametrize("pose", OUTSIDE, ids=["far", "below-table", "wide", "nan"])
def test_it_refuses_poses_outside_its_limits_and_stays_put(robot, pose):
    before = robot.state().tool
    assert robot.reachable(pose) is not None
    with pytest.raises(RobotError):
        robot.move_to(pose)
    assert math.dist(robot.state().tool.position(), before.position()) < 1e-4


def test_reachable_says_yes_inside(robot):
    assert robot.reachable(INSIDE) is None


def test_the_gripper_closes_and_opens(robot):
    closed = robot.set_gripper(False)
    assert isinstance(closed, GripperReport) and closed.opened is False
    assert robot.state().gripper_open is False
    opened = robot.set_gripper(True)
    assert opened.opened is True and opened.opening_m > closed.opening_m
    assert robot.state().gripper_open is True


def test_it_returns_to_its_origin_inside_its_limits(robot):
    robot.move_to(INSIDE)
    home = robot.return_to_origin()
    assert home.position_error_m < 0.005
    assert robot.limits.problem(robot.state().tool) is None


def test_stop_is_safe_at_any_time(robot):
    robot.stop()
    robot.stop()
    assert robot.state() is not None


def test_a_closed_robot_refuses_to_move(robot):
    robot.close()
    with pytest.raises(RobotError):
        robot.move_to(INSIDE)
