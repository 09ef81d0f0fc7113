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

import numpy as np
from pydantic import BaseModel

from erarm.agent.geometry import point_cloud
from erarm.agent.results import Outcome, Stop
from erarm.agent.schemas import SceneObject
from erarm.agent.surface import MAX_OBJECT_HEIGHT_M
from erarm.agent.validate import Transfer
from erarm.robots.base import Frame, RobotState

GRASP_MATCH_MM = 30.0  # the object a plan grasps is the one within this of the grasp spot
RELEASE_MATCH_MM = 90.0  # what it is let go over is the nearest object within this
LANDED_MM = 35.0  # an object this close to where it was let go landed there
COVERED_MM = 50.0  # the same, for an object something was stacked on: seen only by its sides
TOO_LOW_MM = 30.0  # seen lower than this below its expected top: it fell (a block is ~40 mm)
TOO_HIGH_MM = 20.0
HANGING_REACH_M = 0.07  # something this close to the gripper's axis hangs from it (~68 mm bowls)
HANGING_BELOW_M = 0.15  # ... from the fingertips down this far
FINGERTIP_CLEARANCE_M = 0.005  # the fingers' own tips, just below their reported height
HANGING_MIN_POINTS = 50  # depth points of it, more than stray pixels (~5 cm^2 seen)


class Goal(BaseModel):
    item: str
    container: str  # what it was let go over, for the reader
    spot_mm: tuple[float, float]
    expected_top_mm: float


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
                          expected_top_mm=transfer.expected_top_mm))
    return goals


def check_goals(goals: list[Goal], after: list[SceneObject]) -> Verification:
    """Each goal's object must be seen where it was let go, at about the height planned."""
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
        if off > (COVERED_MM if goal.item in covered else LANDED_MM):
            reason = (f"the {goal.item} is {off:.0f} mm from where it was let go over the "
                      f"{goal.container}")
        elif rise < -TOO_LOW_MM or rise > TOO_HIGH_MM:
            reason = (f"the {goal.item} is {abs(rise):.0f} mm {'below' if rise < 0 else 'above'}"
                      f" where it should rest on the {goal.container}")
        else:
            reasons.append(f"the {goal.item} is on the {goal.container} ({off:.0f} mm from "
                           "where it was let go)")
            continue
        return Verification(verified=False, reason=reason, goals=goals)
    return Verification(verified=True, reason="; ".join(reasons), goals=goals)


def carried_up(frame: Frame, state: RobotState, objects: list[SceneObject]) -> Stop | None:
    """Whether what was let go came up with the open gripper: depth points under the open
    fingers, above where any tabletop object reaches. The perceived objects seen there are named
    (the camera sees them, but off the table)."""
    if frame.depth_m is None or frame.calibration is None or not state.gripper_open:
        return None
    tool = state.tool
    points = point_cloud(frame).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]
    lowest = max(tool.z - HANGING_BELOW_M, frame.calibration.table_z + MAX_OBJECT_HEIGHT_M)
    under = ((np.hypot(points[:, 0] - tool.x, points[:, 1] - tool.y) <= HANGING_REACH_M)
             & (points[:, 2] >= lowest) & (points[:, 2] <= tool.z - FINGERTIP_CLEARANCE_M))
    if under.sum() < HANGING_MIN_POINTS:
        return None
    names = [o.label for o in objects
             if math.hypot(o.position_mm[0] / 1000 - tool.x, o.position_mm[1] / 1000 - tool.y)
             <= HANGING_REACH_M and o.position_mm[2] / 1000 >= lowest]
    what = "the " + " and the ".join(names) if names else "something"
    return Stop(outcome=Outcome.carried,
                detail=f"carried off: {what} came up with the open gripper (depth shows "
                       f"{int(under.sum())} points hanging under the fingers)")
