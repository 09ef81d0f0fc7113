"""Validate: turn a parsed plan into metric robot actions, or refuse all of it.

Every call is resolved against what the camera saw before anything moves: `move(x, y, high)`
becomes a tool pose whose height comes from the perceived surface at (x, y) and from what the
gripper holds at that point of the plan. A plan with any step outside the workspace is rejected
whole, so a robot never starts a motion it cannot finish.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from agent.errors import PlanRejected
from agent.schemas import Move, Plan, ReturnToOrigin, SetGripperState
from agent.surface import SurfaceMap
from robots.base import ToolPose, WorkspaceLimits


class GraspPolicy(BaseModel):
    """How `high` and `low` become heights (metres, tool centre point = fingertips)."""

    grasp_depth_m: float = 0.022  # fingertips this far below an object's top when grasping
    table_clearance_m: float = 0.006  # fingertips never closer to the table than this
    release_clearance_m: float = 0.012  # gap left under a held object when setting it down
    travel_margin_m: float = 0.05  # a high move clears what is under it by at least this
    object_min_height_m: float = 0.01  # closing on less than this is closing on nothing


class Action(BaseModel):
    """One resolved step: a tool pose, a gripper command, or the return home."""

    step: int
    call: dict  # the plan's call, as {"function": ..., "args": [...]}
    pose: ToolPose | None = None
    opened: bool | None = None
    why: str = ""  # how the target was derived, for dry runs and logs
    added: bool = False  # appended by erarm rather than asked for


class Transfer(BaseModel):
    """An object the plan picks up at one spot and lets go of at another (millimetres)."""

    grasp_mm: tuple[float, float]
    release_mm: tuple[float, float]


class ValidatedPlan(BaseModel):
    actions: list[Action]
    transfers: list[Transfer]
    warnings: list[str]


def _mm(low: float, high: float) -> str:
    return f"{low * 1000:.0f}..{high * 1000:.0f}"


def _check_spot(step: int, x: float, y: float, limits: WorkspaceLimits) -> None:
    where = f"step {step}: ({x * 1000:.0f}, {y * 1000:.0f}) mm"
    if not (limits.x_min <= x <= limits.x_max and limits.y_min <= y <= limits.y_max):
        raise PlanRejected(f"{where} is outside the workspace (x {_mm(limits.x_min, limits.x_max)}"
                           f", y {_mm(limits.y_min, limits.y_max)} mm)")
    if math.hypot(x, y) > limits.max_reach_m:
        raise PlanRejected(f"{where} is beyond the arm's reach of "
                           f"{limits.max_reach_m * 1000:.0f} mm")


def validate_plan(plan: Plan, surface: SurfaceMap, limits: WorkspaceLimits, gripper_open: bool,
                  start_yaw: float = 0.0, policy: GraspPolicy | None = None) -> ValidatedPlan:
    """Resolve every call to a metric action and check it; raise `PlanRejected` on the first
    failure, so a plan either validates completely or moves nothing."""
    policy = policy or GraspPolicy()
    if not plan.calls:
        raise PlanRejected("the plan has no steps")
    if len(plan.calls) > limits.max_steps:
        raise PlanRejected(f"the plan has {len(plan.calls)} steps; the limit is {limits.max_steps}")
    calls = list(plan.calls)
    warnings = []
    if not isinstance(calls[-1], ReturnToOrigin):
        calls.append(ReturnToOrigin())
        warnings.append("the plan did not end with returnToOrigin; erarm added it")

    actions: list[Action] = []
    transfers: list[Transfer] = []
    yaw = start_yaw
    held_below: float | None = None  # how far a held object hangs below the fingertips
    grasp_xy: tuple[float, float] | None = None
    low_at: tuple[float, float] | None = None  # where the tool is down at interacting height
    for step, call in enumerate(calls, 1):
        added = step > len(plan.calls)
        if isinstance(call, Move):
            x, y = call.x / 1000, call.y / 1000
            _check_spot(step, x, y, limits)
            top = surface.surface_z(x, y)
            yaw = surface.top_face_yaw(x, y) if surface.top_face_yaw(x, y) is not None else yaw
            if call.high:
                z = max(limits.travel_z, top + (held_below or 0.0) + policy.travel_margin_m)
                why = "travel height"
                low_at = None
            elif held_below is not None:
                z = top + held_below + policy.release_clearance_m
                why = f"set down: held object {policy.release_clearance_m * 1000:.0f} mm above " \
                      f"the surface at {top * 1000:.0f} mm"
                low_at = (x, y)
            elif gripper_open:
                z = max(top - policy.grasp_depth_m, limits.table_z + policy.table_clearance_m)
                why = f"grasp: fingertips at {z * 1000:.0f} mm around a top at {top * 1000:.0f} mm"
                low_at = (x, y)
            else:
                z = top + policy.table_clearance_m
                why = f"touch: closed fingertips just above the surface at {top * 1000:.0f} mm"
                low_at = (x, y)
            if not limits.z_min <= z <= limits.z_max:
                raise PlanRejected(f"step {step}: the tool would go to z = {z * 1000:.0f} mm, "
                                   f"outside {_mm(limits.z_min, limits.z_max)} mm")
            pose = ToolPose(x=x, y=y, z=z, yaw=yaw)
            actions.append(Action(step=step, call=call.call(), pose=pose, why=why, added=added))
        elif isinstance(call, SetGripperState):
            if call.opened and held_below is not None and grasp_xy is not None:
                here = low_at or (actions[-1].pose.x, actions[-1].pose.y)
                transfers.append(Transfer(grasp_mm=(grasp_xy[0] * 1000, grasp_xy[1] * 1000),
                                          release_mm=(here[0] * 1000, here[1] * 1000)))
            if call.opened:
                held_below, grasp_xy = None, None
            elif gripper_open and low_at is not None:
                x, y = low_at
                support = surface.support_z(x, y)
                if surface.surface_z(x, y) - support >= policy.object_min_height_m:
                    held_below = actions[-1].pose.z - support
                    grasp_xy = (x, y)
            gripper_open = call.opened
            actions.append(Action(step=step, call=call.call(), opened=call.opened,
                                  why="open" if call.opened else "close", added=added))
        else:
            low_at = None
            actions.append(Action(step=step, call=call.call(), why="home", added=added))
    return ValidatedPlan(actions=actions, transfers=transfers, warnings=warnings)
