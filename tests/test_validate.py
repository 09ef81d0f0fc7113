"""Plans become metric actions only if every step fits the workspace; heights come from depth."""

import math

import pytest

from agent.errors import PlanRejected
from agent.schemas import Move, Plan, ReturnToOrigin, SetGripperState
from agent.surface import SurfaceMap
from agent.validate import GraspPolicy, Landmark, validate_plan
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
    with pytest.raises(PlanRejected, match=rf"step 5 move\(.*\) .*{message}"):
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


def test_the_target_rule_refuses_grasps_at_nothing(surface):
    marks = [Landmark(label="blue block", x_mm=420, y_mm=50),
             Landmark(label="orange bowl", x_mm=510, y_mm=-140, radius_mm=60)]
    ok = validate_plan(pick_and_place(), surface, LIMITS, gripper_open=True, landmarks=marks)
    assert "at the blue block (0 mm)" in ok.actions[2].checks
    assert "at the orange bowl (14 mm)" in ok.actions[6].checks
    nothing = Plan(calls=[Move(x=330, y=-200, high=True), SetGripperState(opened=True),
                          Move(x=330, y=-200, high=False)])
    with pytest.raises(PlanRejected, match=r"step 3 move\(330, -200, false\) goes down to "
                                           r"nothing perceived \(nearest: the orange bowl"):
        validate_plan(nothing, surface, LIMITS, gripper_open=True, landmarks=marks)
    # the rule is optional
    validate_plan(nothing, surface, LIMITS, gripper_open=True, landmarks=None)


def test_setting_down_needs_free_table_or_a_perceived_object():
    """Holding the block, the plan may put it on bare table, but not on an unseen obstacle."""
    obstacle = (0.35, -0.20, 0.03, 0.05)  # something the brain did not report
    frame = raycast_frame(synthetic_calibration(eye=(0.95, 0.0, 0.7), target=(0.45, 0.0, 0.0)),
                          [BLOCK, obstacle])
    seen = SurfaceMap(frame, LIMITS)
    marks = [Landmark(label="blue block", x_mm=420, y_mm=50)]
    carry = [Move(x=420, y=50, high=True), SetGripperState(opened=True),
             Move(x=420, y=50, high=False), SetGripperState(opened=False),
             Move(x=420, y=50, high=True)]
    on_table = Plan(calls=[*carry, Move(x=500, y=150, high=True), Move(x=500, y=150, high=False)])
    checks = validate_plan(on_table, seen, LIMITS, gripper_open=False,
                           landmarks=marks).actions[6].checks
    assert "on free table" in checks
    on_obstacle = Plan(calls=[*carry, Move(x=350, y=-200, high=True),
                              Move(x=350, y=-200, high=False)])
    with pytest.raises(PlanRejected, match="neither a perceived object nor free table"):
        validate_plan(on_obstacle, seen, LIMITS, gripper_open=False, landmarks=marks)


def test_joint_limits_are_checked_for_every_pose(surface):
    asked = []

    def reachable(pose):
        asked.append(pose)
        return "the elbow would pass its limit" if pose.z < 0.05 else None

    with pytest.raises(PlanRejected, match=r"step 3 move\(420, 50, false\): the elbow would"):
        validate_plan(pick_and_place(), surface, LIMITS, gripper_open=True, reachable=reachable)
    assert {(p.x, p.y) for p in asked} == {(0.42, 0.05)}  # nothing after the refusal resolved
