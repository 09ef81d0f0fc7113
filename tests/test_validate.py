"""Plans become metric actions only if every step fits the workspace; heights come from depth."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erarm.agent.errors import PlanRejected
from erarm.agent.schemas import Move, Plan, ReturnToOrigin, SetGripperState
from erarm.agent.surface import SurfaceMap
from erarm.agent.validate import (
    GraspPolicy,
    HeldObject,
    Landmark,
    StepValidator,
    check_pose,
    validate_plan,
)
from erarm.robots.base import EnvelopeBreach, ToolPose, WorkspaceLimits
from tests.conftest import raycast_frame, synthetic_calibration

LIMITS = WorkspaceLimits()
HOME = ToolPose(x=0.27, y=0.0, z=0.33)
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
    assert plan.actions[-1].call == ReturnToOrigin()
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


EDGES_M = [LIMITS.x_min, LIMITS.x_max, LIMITS.y_min, LIMITS.y_max, LIMITS.z_min, LIMITS.z_max,
           0.5, 0.49]  # on the box's faces; (0.5, 0.49) is 0.07 mm beyond the reach
coordinates_m = (st.floats(min_value=-1.0, max_value=1.0) | st.sampled_from(EDGES_M)
                 | st.sampled_from([math.nan, math.inf, -math.inf]))
poses = st.builds(ToolPose, x=coordinates_m, y=coordinates_m, z=coordinates_m,
                  yaw=st.floats(min_value=-4, max_value=4) | st.just(math.nan))


@settings(max_examples=300, deadline=None)
@given(poses)
def test_the_validator_and_the_drivers_refuse_the_same_poses(pose):
    """A replayed or planned pose is refused by the validator exactly when a driver's own
    envelope check (`WorkspaceLimits.problem`) would refuse it, in the same words."""
    refusal = LIMITS.problem(pose)
    try:
        check_pose("recorded command 1", pose, LIMITS, reachable=None)
    except PlanRejected as err:
        assert refusal is not None and str(err).endswith(refusal)
    else:
        assert refusal is None


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-1000, max_value=1000), st.floats(min_value=-1000, max_value=1000),
       st.booleans())
def test_a_move_is_refused_for_its_spot_alone_or_accepted_by_every_driver(surface, x_mm, y_mm,
                                                                          high):
    """The validator checks a move's (x, y) before it knows the height; what it accepts, a
    driver's envelope accepts too."""
    spot = LIMITS.check_spot(x_mm / 1000, y_mm / 1000)
    try:
        plan = validate_plan(Plan(calls=[Move(x=x_mm, y=y_mm, high=True),
                                         Move(x=x_mm, y=y_mm, high=high)]), surface, LIMITS,
                             gripper_open=False)
    except PlanRejected as err:
        assert spot is not None and str(err).endswith(spot.message)
        assert spot.breach in (EnvelopeBreach.outside_xy, EnvelopeBreach.beyond_reach)
    else:
        assert spot is None
        assert all(LIMITS.problem(a.pose) is None for a in plan.actions if a.pose)


def test_each_envelope_breach_is_named():
    assert LIMITS.check(ToolPose(x=0.4, y=0.0, z=math.inf)).breach is EnvelopeBreach.not_finite
    assert LIMITS.check(ToolPose(x=0.1, y=0.0, z=0.1)).breach is EnvelopeBreach.outside_xy
    assert LIMITS.check(ToolPose(x=0.6, y=0.4, z=0.1)).breach is EnvelopeBreach.beyond_reach
    assert LIMITS.check(ToolPose(x=0.4, y=0.0, z=0.5)).breach is EnvelopeBreach.outside_z
    assert LIMITS.check(ToolPose(x=0.4, y=0.0, z=0.1)) is None
    assert LIMITS.check_spot(0.4, math.nan).breach is EnvelopeBreach.not_finite


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


def _turned_block_frame(yaw: float, others=(), where=(0.42, 0.05), half=(0.02, 0.02),
                        top=0.04):
    """A frame whose depth shows a 4 cm block (or a top of `half` sizes, metres along and across
    it, `top` high) turned by `yaw` at `where`, and more such blocks as (x, y, yaw) in `others`
    (side faces ignored, as in `raycast_frame`)."""
    from erarm.agent.geometry import pixel_rays

    calibration = synthetic_calibration(eye=(0.95, 0.0, 0.7), target=(0.45, 0.0, 0.0))
    frame = raycast_frame(calibration)
    rows, cols = np.mgrid[0:calibration.height, 0:calibration.width]
    pixels = np.column_stack([cols.ravel(), rows.ravel()]).astype(float)
    origin, directions = pixel_rays(pixels, calibration)
    t = (top - origin[2]) / directions[:, 2]
    hit = origin + t[:, None] * directions
    inside = np.zeros(len(t), bool)
    for x, y, turn in [(*where, yaw), *others]:
        dx, dy = hit[:, 0] - x, hit[:, 1] - y
        u = dx * math.cos(turn) + dy * math.sin(turn)
        v = -dx * math.sin(turn) + dy * math.cos(turn)
        inside |= (np.abs(u) <= half[0]) & (np.abs(v) <= half[1])
    depth = (t * (directions @ calibration.pose()[:3, 2])).reshape(frame.depth_m.shape)
    frame.depth_m[:] = np.where(inside.reshape(depth.shape), depth, frame.depth_m)
    return frame


@pytest.mark.parametrize("turn_deg", [0, 35, -60, 90])
def test_an_elongated_top_is_taken_across_its_narrow_side(turn_deg):
    """A cereal box's top (95 x 35 mm) turned any way: the jaws close across its 35 mm."""
    box = SurfaceMap(_turned_block_frame(math.radians(turn_deg), half=(0.0475, 0.0175),
                                         top=0.12), LIMITS)
    plan = validate_plan(Plan(calls=[Move(x=420, y=50, high=True), Move(x=420, y=50, high=False),
                                     SetGripperState(opened=False)]), box, LIMITS,
                         gripper_open=True)
    yaw = plan.actions[1].pose.yaw
    closing = (math.sin(yaw), -math.cos(yaw))  # the jaws close along the tool's y axis
    narrow = (-math.sin(math.radians(turn_deg)), math.cos(math.radians(turn_deg)))
    assert abs(closing[0] * narrow[0] + closing[1] * narrow[1]) > math.cos(math.radians(5))
    assert any("narrow side" in check for check in plan.actions[1].checks)


def test_a_top_wider_than_the_gripper_is_refused_before_any_motion():
    tray = SurfaceMap(_turned_block_frame(0.3, half=(0.095, 0.07), top=0.02), LIMITS)
    with pytest.raises(PlanRejected, match="wider than the gripper takes"):
        validate_plan(Plan(calls=[Move(x=420, y=50, high=True), Move(x=420, y=50, high=False),
                                  SetGripperState(opened=False)]), tray, LIMITS,
                      gripper_open=True)


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


def _carry(grasp_mm, release_mm) -> Plan:
    (gx, gy), (rx, ry) = grasp_mm, release_mm
    return Plan(calls=[Move(x=gx, y=gy, high=True), SetGripperState(opened=True),
                       Move(x=gx, y=gy, high=False), SetGripperState(opened=False),
                       Move(x=gx, y=gy, high=True), Move(x=rx, y=ry, high=True),
                       Move(x=rx, y=ry, high=False), SetGripperState(opened=True),
                       Move(x=rx, y=ry, high=True), ReturnToOrigin()])


@pytest.mark.parametrize("landmarks", [True, False])
@pytest.mark.parametrize("release_mm", [(420, 50), (432, 58), (400, 40), (458, 50)])
def test_a_held_object_is_never_set_down_on_itself(surface, landmarks, release_mm):
    """The view of where the block was taken still shows it: setting it down "on the block" there
    would let go of it in mid-air, so the plan is refused before anything moves."""
    marks = [Landmark(label="blue block", x_mm=420, y_mm=50, radius_mm=25),
             Landmark(label="orange bowl", x_mm=500, y_mm=-150, radius_mm=60)]
    plan = _carry((420, 50), release_mm)
    what = "the blue block" if landmarks else "the held object"
    with pytest.raises(PlanRejected, match=rf"^step 7 move\({release_mm[0]}, {release_mm[1]}, "
                                           rf"false\) would set {what} down on itself: it was "
                                           r"picked up .* at step 4"):
        validate_plan(plan, surface, LIMITS, gripper_open=True,
                      landmarks=marks if landmarks else None)
    # the same carry to the bowl, or to free table a block's width away, is fine
    validate_plan(_carry((420, 50), (500, -150)), surface, LIMITS, gripper_open=True,
                  landmarks=marks if landmarks else None)
    validate_plan(_carry((420, 50), (420, 130)), surface, LIMITS, gripper_open=True)


@pytest.mark.parametrize("landmarks", [True, False])
def test_letting_go_in_mid_air_is_refused(surface, landmarks):
    marks = [Landmark(label="blue block", x_mm=420, y_mm=50),
             Landmark(label="orange bowl", x_mm=500, y_mm=-150, radius_mm=60)]
    calls = list(_carry((420, 50), (500, -150)).calls)
    high_release = Plan(calls=[*calls[:6], SetGripperState(opened=True), ReturnToOrigin()])
    with pytest.raises(PlanRejected, match=r"^step 7 setGripperState\(true\) would drop the "
                                           r"held object from 1\d\d mm above what is under it"):
        validate_plan(high_release, surface, LIMITS, gripper_open=True,
                      landmarks=marks if landmarks else None)
    # opening an empty hand up high is no drop
    validate_plan(Plan(calls=[Move(x=500, y=-150, high=True), SetGripperState(opened=True)]),
                  surface, LIMITS, gripper_open=False)


def _yaw_deg(action) -> float:
    return math.degrees(action.pose.yaw)


def _turn_deg(a: float, b: float) -> float:
    """The wrist's turn from a to b degrees, for a gripper that looks the same after a half turn."""
    return abs((b - a + 90) % 180 - 90)


def test_vertical_moves_keep_the_yaw_and_turns_stay_within_45_degrees():
    """Take a block turned -40 degrees and stack it on one turned 40 degrees: the wrist turns only
    where the tool moves sideways, and never by more than 45 degrees (a square top is the same
    every quarter turn), also when lifting off the tower with open fingers around its top."""
    frame = _turned_block_frame(math.radians(-40), others=[(0.50, -0.15, math.radians(40))])
    tower = SurfaceMap(frame, LIMITS)
    plan = validate_plan(_carry((420, 50), (500, -150)), tower, LIMITS, gripper_open=True,
                         start_yaw=math.radians(-40))
    moves = [a for a in plan.actions if a.pose is not None]
    for before, after in itertools.pairwise(moves):
        if (before.pose.x, before.pose.y) == (after.pose.x, after.pose.y):
            assert _yaw_deg(after) == pytest.approx(_yaw_deg(before)), after.call
        assert _turn_deg(_yaw_deg(before), _yaw_deg(after)) <= 45 + 1e-6, after.call
    grasp, place = (a for a in plan.actions if a.step in (3, 7))
    assert (_yaw_deg(grasp) + 40 + 45) % 90 - 45 == pytest.approx(0, abs=4)
    assert (_yaw_deg(place) - 40 + 45) % 90 - 45 == pytest.approx(0, abs=4)


def test_a_grasp_turns_a_quarter_only_to_keep_the_fingers_off_a_neighbour():
    """A neighbour where the nearest grasp's finger would land turns the grasp by a quarter; the
    lift that follows keeps that yaw."""
    yaw = math.radians(30)
    jaw = (math.sin(yaw), -math.cos(yaw))  # the jaws close along the tool's y axis
    neighbour = (0.42 + 0.062 * jaw[0], 0.05 + 0.062 * jaw[1], 0.015, 0.04)
    calibration = synthetic_calibration(eye=(0.95, 0.0, 0.7), target=(0.45, 0.0, 0.0))
    block = _turned_block_frame(yaw)
    crowded = raycast_frame(calibration, [neighbour])
    crowded.depth_m[:] = np.minimum(crowded.depth_m, block.depth_m)  # both in one view
    surface = SurfaceMap(crowded, LIMITS)
    plan = validate_plan(_carry((420, 50), (420, 160)), surface, LIMITS, gripper_open=True,
                         start_yaw=yaw)
    yaws = {a.step: _yaw_deg(a) for a in plan.actions if a.pose is not None}
    assert _turn_deg(30, yaws[1]) == pytest.approx(90, abs=4)
    assert yaws[1] == yaws[3] == yaws[5]
    quiet = validate_plan(_carry((420, 50), (420, 160)), SurfaceMap(block, LIMITS), LIMITS,
                          gripper_open=True, start_yaw=yaw)
    assert _turn_deg(30, _yaw_deg(quiet.actions[0])) == pytest.approx(0, abs=4)


def test_execute_refuses_a_plan_that_stacks_a_block_on_itself_before_any_motion(tmp_path):
    """A hand-written plan through `erarm execute`: pick the red block, set it down on the red
    block. The camera's view there still shows the block, so it would be let go of in mid-air."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    erarm = str(Path(sys.executable).with_name("erarm"))
    task = "pick the red block into the purple bowl"
    looked = subprocess.run([erarm, "run", task, "--seed", "3", "--dry-run", "--json", "--out",
                             str(tmp_path / "look")], capture_output=True, text=True, timeout=300)
    assert looked.returncode == 0, looked.stderr
    red = next(o for o in json.loads(looked.stdout)["objects"] if o["label"] == "red block")
    x, y = (round(v) for v in red["position_mm"][:2])
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([c.call() for c in _carry((x, y), (x, y)).calls]))
    for strict in ("--strict-targets", "--no-strict-targets"):
        done = subprocess.run([erarm, "execute", str(plan), "--task", task, "--seed", "3",
                               strict, "--out", str(tmp_path / strict)], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 2, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"erarm: error: step 7 move({x}, {y}, false) would set the "), last
        assert "down on itself: it was picked up there at step 4" in last
        result = json.loads((tmp_path / strict / "result.json").read_text())
        assert result["steps_executed"] == 0


@pytest.mark.parametrize("rim_m, release_z_m", [(0.03, 0.036), (0.06, 0.056)])
def test_a_release_beside_a_wall_keeps_the_opening_fingers_above_it(rim_m, release_z_m):
    """Let go of a block off a bowl's centre and the opening fingers come down on the bowl's wall:
    the release rises until they clear it, but never further than the largest drop allowed."""
    x, y = FLOOR[:2]
    walls = [(x + dx, y + dy, 0.008, rim_m) for dx, dy in
             ((0.047, 0), (-0.047, 0), (0, 0.047), (0, -0.047))]
    calibration = synthetic_calibration(eye=(0.95, 0.0, 0.7), target=(0.45, 0.0, 0.0))
    bowl = SurfaceMap(raycast_frame(calibration, [BLOCK, FLOOR, *walls]), LIMITS)
    policy = GraspPolicy()
    plan = validate_plan(pick_and_place(), bowl, LIMITS, gripper_open=False, policy=policy)
    release = next(a for a in plan.actions if a.step == 7)
    assert release.pose.z == pytest.approx(release_z_m, abs=1.5e-3)
    assert "clear of the ground" in release.why
    held_below = 0.04 - policy.grasp_depth_m
    drop = release.pose.z - held_below - FLOOR[3]
    assert drop <= policy.max_drop_m + 1e-6
    plain = validate_plan(pick_and_place(), surface=SurfaceMap(
        raycast_frame(calibration, [BLOCK, FLOOR]), LIMITS), limits=LIMITS, gripper_open=False)
    assert next(a for a in plain.actions if a.step == 7).pose.z < release.pose.z


def test_an_empty_hand_does_not_reach_for_what_the_plan_set_down_before_a_look(surface):
    """The camera has not seen the block in the bowl yet: open fingers sent down there would come
    down on it (its height unknown to the view) and wedge it, so the call is refused until a look
    shows it."""
    marks = [Landmark(label="blue block", x_mm=420, y_mm=50, radius_mm=25),
             Landmark(label="orange bowl", x_mm=500, y_mm=-150, radius_mm=60)]
    validator = StepValidator(surface, LIMITS, gripper_open=False, landmarks=marks)
    for call in pick_and_place(end_home=False).calls:
        validator.check(call)
    again = Move(x=500, y=-150, high=False)
    with pytest.raises(PlanRejected, match=r"^step 10 move\(500, -150, false\) reaches down to "
                                           r"the blue block that step 8 set down there, which "
                                           r"the camera has not seen yet; look again first$"):
        validator.check(again)
    validator.seen_again(surface, marks, HOME)
    validator.check(Move(x=500, y=-150, high=True))
    assert validator.check(again).pose.z < 0.03  # a new look: it may go down there again


def test_a_second_object_let_go_over_the_first_is_set_down_on_top_of_it():
    """Two blocks into one bowl in one plan: the second is let go of above the first, where the
    validator knows it stands, rather than at the bowl's floor the camera saw."""
    second = (0.42, 0.15, 0.02, 0.04)
    frame = raycast_frame(synthetic_calibration(eye=(0.95, 0.0, 0.7), target=(0.45, 0.0, 0.0)),
                          [BLOCK, second, FLOOR])
    both = SurfaceMap(frame, LIMITS)
    plan = validate_plan(Plan(calls=[*pick_and_place(end_home=False).calls,
                                     *_carry((420, 150), (500, -150)).calls]),
                         both, LIMITS, gripper_open=False)
    first, then = (a.pose.z for a in plan.actions if a.step in (7, 16))
    assert then - first == pytest.approx(0.04, abs=2e-3)
    assert [round(t.expected_top_mm) for t in plan.transfers] == [48, 88]


def test_a_look_between_lets_an_empty_hand_reach_for_what_was_set_down(surface):
    """A rehearsed plan looks where the model looked in the twin, and that look checks what was
    let go: after it, reaching down to the block in the bowl is a grasp of its top."""
    marks = [Landmark(label="blue block", x_mm=420, y_mm=50, radius_mm=25),
             Landmark(label="orange bowl", x_mm=500, y_mm=-150, radius_mm=60)]
    plan = Plan(calls=[*pick_and_place(end_home=False).calls, ReturnToOrigin(),
                       Move(x=500, y=-150, high=True), Move(x=500, y=-150, high=False)])
    with pytest.raises(PlanRejected, match=r"step 12 .* has not seen yet"):
        validate_plan(plan, surface, LIMITS, gripper_open=False, landmarks=marks)
    validated = validate_plan(plan, surface, LIMITS, gripper_open=False, landmarks=marks,
                              looks_after={10})
    reach = next(a for a in validated.actions if a.step == 12)
    block_top = 0.008 + 0.04  # on the bowl's floor
    assert reach.pose.z == pytest.approx(block_top - GraspPolicy().grasp_depth_m, abs=2e-3)


def test_a_top_too_narrow_to_carry_what_is_held_is_refused_before_any_motion():
    """Stacking: the 40 mm block on a post 16 mm across would topple off; on a top 70 mm
    across it stands."""
    post, pedestal = (0.50, -0.15, 0.008, 0.06), (0.36, -0.15, 0.035, 0.03)
    surface = SurfaceMap(raycast_frame(synthetic_calibration(
        eye=(0.95, 0.0, 0.7), target=(0.45, 0.0, 0.0)), [BLOCK, post, pedestal]), LIMITS)

    def onto(x: int, y: int) -> Plan:
        return Plan(calls=[Move(x=420, y=50, high=True), SetGripperState(opened=True),
                           Move(x=420, y=50, high=False), SetGripperState(opened=False),
                           Move(x=420, y=50, high=True), Move(x=x, y=y, high=True),
                           Move(x=x, y=y, high=False), SetGripperState(opened=True)])

    with pytest.raises(PlanRejected, match=r"step 8 .* on a top 1\d mm across, too narrow to "
                                           r"carry it \(at least \d\d mm\): it would topple"):
        validate_plan(onto(500, -150), surface, LIMITS, gripper_open=False)
    stacked = validate_plan(onto(360, -150), surface, LIMITS, gripper_open=False)
    assert stacked.transfers[0].release_mm == pytest.approx((360, -150))


def test_a_set_down_goes_to_a_container_that_spreads_under_it():
    """The bottle already on the plate is nearer than the plate's middle, but the spot beside
    it is on the plate: a perceived object, not nothing."""
    plate = SurfaceMap(_turned_block_frame(0.0, where=(0.5, -0.1), half=(0.12, 0.12),
                                           top=0.012), LIMITS)
    marks = [Landmark(label="plate", x_mm=500, y_mm=-100, radius_mm=70),
             Landmark(label="water bottle", x_mm=515, y_mm=-100, radius_mm=25)]
    plan = validate_plan(Plan(calls=[Move(x=560, y=-100, high=True),
                                     Move(x=560, y=-100, high=False),
                                     SetGripperState(opened=True)]), plate, LIMITS,
                         gripper_open=False, landmarks=marks,
                         held=HeldObject(below_m=0.03, height_m=0.05))
    assert "at the plate (60 mm)" in plan.actions[1].checks
    with pytest.raises(PlanRejected, match=r"neither a perceived object nor free table "
                                           r"\(nearest: the water bottle, 95 mm away\)"):
        validate_plan(Plan(calls=[Move(x=610, y=-100, high=True),
                                  Move(x=610, y=-100, high=False)]), plate, LIMITS,
                      gripper_open=False, landmarks=marks,
                      held=HeldObject(below_m=0.03, height_m=0.05))
