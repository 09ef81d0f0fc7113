"""Plans become metric actions only if every step fits the workspace; heights come from depth."""

import math

import pytest

from agent.errors import PlanRejected
from agent.schemas import Move, Plan, ReturnToOrigin, SetGripperState
from agent.surface import SurfaceMap
from agent.validate import GraspPolicy, validate_plan
from robots.base import WorkspaceLimits
from tests.conftest import raycast_frame, synthetic_calibration

LIMITS = WorkspaceLimits()
BLOCK = (0.42, 0.05, 0.02, 0.04)  # a 4 cm block at (420, 50) mm
FLOOR = (0.50, -0.15, 0.045, 0.008)  # a bowl's floor, 8 mm up, at (500, -150) mm


@pytest.fixture(scope="module")
def surface():
    frame = raycast_frame(synthetic_calibration(eye=(0.95, 0.0, 0.7), target=(0.45, 0.0, 0.0)),
                          [BLOCK, FLOOR])
    return SurfaceMap(frame, LIMITS)


def pick_and_place(end_home: bool = True) -> Plan:
    calls = [Move(x=420, y=50, high=True), SetGripperState(opened=True),
             Move(x=420, y=50, high=False), SetGripperState(opened=False),
             Move(x=420, y=50, high=True), Move(x=500, y=-150, high=True),
             Move(x=500, y=-150, high=False), SetGripperState(opened=True),
             Move(x=500, y=-150, high=True)]
    return Plan(calls=[*calls, ReturnToOrigin()] if end_home else calls)


def test_heights_come_from_the_surface_and_what_is_held(surface):
    policy = GraspPolicy()
    plan = validate_plan(pick_and_place(), surface, LIMITS, gripper_open=False, policy=policy)
    poses = {a.step: a.pose for a in plan.actions if a.pose}
    assert poses[1].z == pytest.approx(LIMITS.travel_z)
    grasp_z = 0.04 - policy.grasp_depth_m
    assert poses[3].z == pytest.approx(grasp_z, abs=1e-3)  # fingertips around the block's top
    held_below = grasp_z  # the block rests on the table
    release_z = 0.008 + held_below + policy.release_clearance_m
    assert poses[7].z == pytest.approx(release_z, abs=1e-3)  # above the floor, not into it
    assert plan.transfers[0].grasp_mm == pytest.approx((420, 50))
    assert plan.transfers[0].release_mm == pytest.approx((500, -150))
    assert plan.warnings == []


def test_a_plan_without_return_gets_one_with_a_warning(surface):
    plan = validate_plan(pick_and_place(end_home=False), surface, LIMITS, gripper_open=True)
    assert plan.actions[-1].call == {"function": "returnToOrigin", "args": []}
    assert plan.actions[-1].added
    assert "did not end with returnToOrigin" in plan.warnings[0]


@pytest.mark.parametrize(("move", "message"), [
    (Move(x=900, y=0, high=True), "outside the workspace"),
    (Move(x=400, y=-600, high=False), "outside the workspace"),
    (Move(x=690, y=390, high=True), "beyond the arm's reach"),
])
def test_any_bad_step_rejects_the_whole_plan(surface, move, message):
    calls = [*pick_and_place().calls[:4], move, ReturnToOrigin()]
    with pytest.raises(PlanRejected, match=f"step 5: .*{message}"):
        validate_plan(Plan(calls=calls), surface, LIMITS, gripper_open=True)


def test_step_limit_and_empty_plans(surface):
    with pytest.raises(PlanRejected, match="no steps"):
        validate_plan(Plan(calls=[]), surface, LIMITS, gripper_open=True)
    many = Plan(calls=[Move(x=400, y=0, high=True)] * (LIMITS.max_steps + 1))
    with pytest.raises(PlanRejected, match=f"the limit is {LIMITS.max_steps}"):
        validate_plan(many, surface, LIMITS, gripper_open=True)


def test_grasp_yaw_follows_a_turned_block():
    turned = SurfaceMap(_turned_block_frame(math.radians(30)), LIMITS)
    plan = validate_plan(Plan(calls=[Move(x=420, y=50, high=True)]), turned, LIMITS,
                         gripper_open=True)
    yaw = plan.actions[0].pose.yaw
    error = (math.degrees(yaw) - 30 + 45) % 90 - 45  # a square face is symmetric every 90 deg
    assert abs(error) < 4


def _turned_block_frame(yaw: float):
    """A frame whose depth shows a 4 cm square top turned by `yaw`, from many small squares."""
    calibration = synthetic_calibration(eye=(0.95, 0.0, 0.7), target=(0.45, 0.0, 0.0))
    cells = []
    for i in range(-9, 10):
        for j in range(-9, 10):
            u, v = i * 0.002, j * 0.002
            cells.append((0.42 + u * math.cos(yaw) - v * math.sin(yaw),
                          0.05 + u * math.sin(yaw) + v * math.cos(yaw), 0.0012, 0.04))
    return raycast_frame(calibration, cells)
