"""Verify: look again after the plan ran, and judge from perception whether it did what it meant.

What the plan meant comes from the plan itself: each transfer picks an object up at one spot and
lets go at another, so the object found at the grasp spot should now lie in whatever was at the
release spot. This works for any brain's plan, with no knowledge of the task's wording.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from agent.locate import footprint_radius_mm
from agent.schemas import SceneObject
from agent.validate import Transfer
from robots.base import CameraCalibration

GRASP_MATCH_MM = 30.0  # the object a plan grasps is the one within this of the grasp spot
RELEASE_MATCH_MM = 90.0


class Goal(BaseModel):
    item: str
    container: str


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
    """Which perceived object each transfer carries, and into which perceived object."""
    goals = []
    for transfer in transfers:
        item = _nearest(objects, *transfer.grasp_mm, GRASP_MATCH_MM)
        if item is None:
            continue
        container = _nearest(objects, *transfer.release_mm, RELEASE_MATCH_MM, exclude=item.label)
        if container is not None:
            goals.append(Goal(item=item.label, container=container.label))
    return goals


def check_goals(goals: list[Goal], after: list[SceneObject],
                calibration: CameraCalibration) -> Verification:
    """Each goal's item must be seen inside its container's box and footprint."""
    if not goals:
        return Verification(verified=False, reason="the plan moves no perceived object into "
                            "another", goals=goals)
    seen = {o.label: o for o in after}
    reasons = []
    for goal in goals:
        item, container = seen.get(goal.item), seen.get(goal.container)
        if item is None or container is None:
            missing = goal.item if item is None else goal.container
            return Verification(verified=False, reason=f"the {missing} is no longer seen",
                                goals=goals)
        ymin, xmin, ymax, xmax = container.box_2d or (0, 0, 0, 0)
        in_box = ymin <= item.point[0] <= ymax and xmin <= item.point[1] <= xmax
        offset = math.hypot(item.position_mm[0] - container.position_mm[0],
                            item.position_mm[1] - container.position_mm[1])
        radius = footprint_radius_mm(container, calibration)
        if not in_box or offset > radius:
            return Verification(verified=False, reason=(
                f"the {goal.item} is {offset:.0f} mm from the {goal.container}'s centre, "
                f"outside it (radius {radius:.0f} mm)"), goals=goals)
        reasons.append(f"the {goal.item} is in the {goal.container} ({offset:.0f} mm from its "
                       "centre)")
    return Verification(verified=True, reason="; ".join(reasons), goals=goals)
