"""Verify: look again, and judge from perception whether a plan did what it meant.

What a plan meant comes from the plan itself: each transfer picks an object up at one spot and
lets go over another, where the object's top should come to rest at a height the validator
worked out from the surface there. So the object found at the grasp spot should now be seen near
the release spot, at about that height: in a bowl, on a block, or on the table. This works for
any brain's plan, with no knowledge of the task's wording.

An object can also come back with the arm: open fingers caught in a bowl's rim lift bowl and
block together, and no gripper sensor notices. Depth shows it: something hangs under the open
gripper where it waits at home, in the air where no tabletop object can be.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np
from pydantic import BaseModel

from erarm.agent.geometry import point_cloud
from erarm.agent.results import Outcome, Stop
from erarm.agent.schemas import SceneObject
from erarm.agent.surface import MAX_OBJECT_HEIGHT_M
from erarm.agent.validate import Action, GraspPolicy, HeldObject, Transfer
from erarm.robots.base import CameraCalibration, Frame, RobotState, ToolPose, WorkspaceLimits

GRASP_MATCH_MM = 30.0  # the object a plan grasps is the one within this of the grasp spot
RELEASE_MATCH_MM = 90.0  # what it is let go over is the nearest object within this
LANDED_MM = 35.0  # an object this close to where it was let go landed there
COVERED_MM = 50.0  # the same, for an object something was stacked on: seen only by its sides
TOO_LOW_MM = 30.0  # seen lower than this below its expected top: it fell (a block is ~40 mm)
TOO_HIGH_MM = 20.0
DISTURBED_MM = 40.0  # an object seen this far from where it was has been moved (looks agree to ~5)
HANGING_REACH_M = 0.07  # something this close to the gripper's axis hangs from it (~68 mm bowls)
HANGING_BELOW_M = 0.15  # ... from the fingertips down this far
FINGERTIP_CLEARANCE_M = 0.005  # the fingers' own tips, just below their reported height
HANGING_MIN_POINTS = 50  # depth points of it, more than stray pixels (~5 cm^2 seen)
HELD_REACH_M = 0.05  # what the closed fingers hold lies this close to the tool's axis


class Goal(BaseModel):
    item: str
    container: str  # what it was let go over, for the reader
    spot_mm: tuple[float, float]
    expected_top_mm: float
    container_mm: tuple[float, float] | None = None  # where the container was seen, before


class Verification(BaseModel):
    verified: bool
    reason: str
    goals: list[Goal]


def _nearest(objects: list[SceneObject], x_mm: float, y_mm: float, within: float,
             exclude: str | None = None) -> SceneObject | None:
    candidates = [(math.hypot(o.position_mm[0] - x_mm, o.position_mm[1] - y_mm), o)
                  for o in objects if o.label != exclude]
    candidates = [c for c in candidates if c[0] <= within]
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


def goals_of(transfers: list[Transfer], objects: list[SceneObject]) -> list[Goal]:
    """Which perceived object each transfer carries, over what, and where it should rest."""
    goals = []
    for transfer in transfers:
        item = _nearest(objects, *transfer.grasp_mm, GRASP_MATCH_MM)
        if item is None:
            continue
        under = _nearest(objects, *transfer.release_mm, RELEASE_MATCH_MM, exclude=item.label)
        goals.append(Goal(item=item.label, container=under.label if under else "table",
                          spot_mm=transfer.release_mm,
                          expected_top_mm=transfer.expected_top_mm,
                          container_mm=under.position_mm[:2] if under else None))
    return goals


def taken_up(actions: list[Action], objects: list[SceneObject]) -> set[str]:
    """The objects at the spots where the actions close the gripper down low: meant to move,
    whether or not they are let go of again."""
    spots, pose = [], None
    for action in actions:
        if action.pose is not None:
            pose = None if action.lifts else action.pose
        elif action.opened is False and pose is not None:
            spots.append((pose.x * 1000, pose.y * 1000))
    return {o.label for o in objects for spot in spots
            if math.dist(o.position_mm[:2], spot) <= GRASP_MATCH_MM}


def _seen_near(objects: list[SceneObject], label: str, spot_mm: Sequence[float]
               ) -> tuple[SceneObject, float] | None:
    """The object seen under `label` nearest to `spot_mm`, and how far from it (mm)."""
    found = [(o, math.dist(o.position_mm[:2], spot_mm[:2])) for o in objects if o.label == label]
    return min(found, key=lambda pair: pair[1], default=None)


def disturbed(before: list[SceneObject], after: list[SceneObject], moved: Collection[str]
              ) -> str | None:
    """Why an object the run was not meant to move is seen elsewhere now (knocked, dragged,
    carried off), or None. An object not seen now is not taken for moved: a look may miss one."""
    for old in before:
        if old.label in moved:
            continue
        now = _seen_near(after, old.label, old.position_mm)
        if now is not None and now[1] > DISTURBED_MM:
            return (f"the {old.label} moved {now[1]:.0f} mm, though nothing was meant to move "
                    "it (knocked or dragged)")
    return None


def check_goals(goals: list[Goal], after: list[SceneObject],
                before: list[SceneObject] | None = None) -> Verification:
    """Each goal's object must be seen where it was let go, at about the height planned, on a
    container still where it was; and, given what was seen `before`, nothing else may have
    moved."""
    if not goals:
        return Verification(verified=False, reason="the plan moves no perceived object",
                            goals=goals)
    seen = {o.label: o for o in after}
    covered = {g.container for g in goals}
    reasons = []
    for goal in goals:
        item = seen.get(goal.item)
        if item is None:
            return Verification(verified=False, reason=f"the {goal.item} is no longer seen",
                                goals=goals)
        off = math.hypot(item.position_mm[0] - goal.spot_mm[0],
                         item.position_mm[1] - goal.spot_mm[1])
        rise = item.position_mm[2] - goal.expected_top_mm
        reason = _container_moved(goal, item, after)
        if reason is None and off > (COVERED_MM if goal.item in covered else LANDED_MM):
            reason = (f"the {goal.item} is {off:.0f} mm from where it was let go over the "
                      f"{goal.container}")
        if reason is None and (rise < -TOO_LOW_MM or rise > TOO_HIGH_MM):
            reason = (f"the {goal.item} is {abs(rise):.0f} mm {'below' if rise < 0 else 'above'}"
                      f" where it should rest on the {goal.container}")
        if reason is not None:
            return Verification(verified=False, reason=reason, goals=goals)
        reasons.append(f"the {goal.item} is on the {goal.container} ({off:.0f} mm from where it "
                       "was let go)")
    knocked = disturbed(before or [], after, {g.item for g in goals})
    if knocked is not None:
        return Verification(verified=False, reason=knocked, goals=goals)
    return Verification(verified=True, reason="; ".join(reasons), goals=goals)


def _container_moved(goal: Goal, item: SceneObject, after: list[SceneObject]) -> str | None:
    """Why what the object was let go over is not where it was when the plan was checked. Not
    seen at all, it may be hidden under the object set on it, if that is where it was."""
    if goal.container_mm is None:
        return None
    container = _seen_near(after, goal.container, goal.container_mm)
    if container is None:
        hidden = math.dist(item.position_mm[:2], goal.container_mm) <= COVERED_MM
        return None if hidden else (f"the {goal.container} the {goal.item} was let go over is "
                                    "no longer seen")
    if container[1] > DISTURBED_MM:
        return (f"the {goal.container} the {goal.item} was let go over moved "
                f"{container[1]:.0f} mm (knocked or dragged)")
    return None


def hanging_under(frame: Frame, tool: ToolPose, reach_m: float = HANGING_REACH_M) -> np.ndarray:
    """Depth points under the fingers, within `reach_m` of the tool's axis and above where any
    tabletop object reaches: what hangs from the gripper (an empty one has none)."""
    if frame.depth_m is None or frame.calibration is None:
        return np.empty((0, 3))
    points = point_cloud(frame).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]
    under = ((np.hypot(points[:, 0] - tool.x, points[:, 1] - tool.y) <= reach_m)
             & (points[:, 2] >= _hanging_floor(frame, tool))
             & (points[:, 2] <= tool.z - FINGERTIP_CLEARANCE_M))
    return points[under]


def _hanging_floor(frame: Frame, tool: ToolPose) -> float:
    """How low under the fingers something can hang and still be told from the tabletop."""
    return max(tool.z - HANGING_BELOW_M, frame.calibration.table_z + MAX_OBJECT_HEIGHT_M)


def sees_under(tool: ToolPose, calibration: CameraCalibration | None) -> bool:
    """Whether the camera sees the whole span under the fingers where `carried_up` looks."""
    if calibration is None or calibration.camera_to_base is None:
        return False
    span = np.array([[tool.x, tool.y, tool.z], [tool.x, tool.y, tool.z - HANGING_BELOW_M]])
    ahead = (np.linalg.inv(calibration.pose()) @ np.column_stack([span, np.ones(2)]).T)[2]
    pixels = calibration.project(span)
    inside = ((pixels[:, 0] >= 0) & (pixels[:, 0] < calibration.width)
              & (pixels[:, 1] >= 0) & (pixels[:, 1] < calibration.height))
    return bool(np.all(ahead > 0) and np.all(inside))


def hang_check_pose(limits: WorkspaceLimits, calibration: CameraCalibration | None
                    ) -> ToolPose | None:
    """Where the open gripper shows the camera what hangs from it, when home is out of view (as
    it is for the simulator's camera): above the middle of the workspace, high enough that all
    of `HANGING_BELOW_M` under the fingers is above every tabletop object; None when the camera
    would not see that either."""
    z = min(limits.table_z + MAX_OBJECT_HEIGHT_M + HANGING_BELOW_M, limits.z_max)
    pose = ToolPose(x=(limits.x_min + limits.x_max) / 2, y=(limits.y_min + limits.y_max) / 2,
                    z=z)
    return pose if sees_under(pose, calibration) else None


def measure_held(frame: Frame, state: RobotState, policy: GraspPolicy | None = None
                 ) -> HeldObject | None:
    """What the gripper holds, as the camera sees it hang under the fingers (the arm at home,
    above the table's objects), or as unmeasured when it cannot be seen; None when empty."""
    if not state.holding:
        return None
    policy = policy or GraspPolicy()
    hanging = hanging_under(frame, state.tool, HELD_REACH_M)
    if len(hanging) < HANGING_MIN_POINTS:
        return HeldObject.unseen(state.gripper_opening_m, policy)
    below = state.tool.z - float(np.percentile(hanging[:, 2], 2))
    across = float(np.percentile(np.hypot(hanging[:, 0] - state.tool.x,
                                          hanging[:, 1] - state.tool.y), 95))
    return HeldObject(below_m=below, height_m=below + policy.grasp_depth_m,
                      radius_m=max(policy.held_radius_m, across))


def carried_up(frame: Frame, state: RobotState, objects: list[SceneObject]) -> Stop | None:
    """Whether what was let go came up with the open gripper: depth points under the open
    fingers, above where any tabletop object reaches. The perceived objects seen there are named
    (the camera sees them, but off the table)."""
    if not state.gripper_open:
        return None
    tool = state.tool
    under = hanging_under(frame, tool)
    if len(under) < HANGING_MIN_POINTS:
        return None
    lowest = _hanging_floor(frame, tool)
    names = [o.label for o in objects
             if math.hypot(o.position_mm[0] / 1000 - tool.x, o.position_mm[1] / 1000 - tool.y)
             <= HANGING_REACH_M and o.position_mm[2] / 1000 >= lowest]
    what = "the " + " and the ".join(names) if names else "something"
    return Stop(outcome=Outcome.carried,
                detail=f"carried off: {what} came up with the open gripper (depth shows "
                       f"{len(under)} points hanging under the fingers)")
