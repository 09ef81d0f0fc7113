"""Validate: turn a parsed plan into metric robot actions, or refuse all of it.

Every call is resolved against what the camera saw before anything moves: `move(x, y, high)`
becomes a tool pose whose height comes from the perceived surface at (x, y) and from what the
gripper holds at that point of the plan. Each pose must lie in the workspace, within reach and
within the arm's joint limits, and (by default) a move down must go to something perceived: an
empty hand only to a perceived object, a full one to an object or to visibly free table. A held
object is let go of only just above what it is set down on, and never over the spot it was picked
up from (the camera's view there, from before the pick, still shows it). What the plan has set down
stands where it was let go until the next look: a held object goes down on top of it, an empty
hand does not reach down to it (the camera has not seen it there). One failed check rejects
the whole plan, so a robot never starts a motion it cannot finish.

The tool travels between spots only at a safe height: a move down goes straight down above its
target (never sideways at grasp height, never diagonally from somewhere else), a move between two
spots clears everything the camera sees under its path, and the way home starts above what is
under the tool. An empty, open hand goes down only to something it could close on: a container's
inside is a place, never a grasp, and open fingers that would press into something (a bowl's wall)
are refused. Checking starts from the arm as it is (its pose, its gripper, and what it already
holds), so a plan, a call or a request that follows another can never let go in mid-air.

The wrist turns only where it must: a move straight up or down keeps the yaw, and a square top
(a block's, grasped or set down on) is taken at the one of its four equivalent yaws nearest the
current one, so no grasp or place turns the wrist by more than 45 degrees.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Collection
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel, Field

from erarm.agent.errors import PlanRejected
from erarm.agent.schemas import (
    Call,
    Move,
    Plan,
    RecordedCall,
    ReturnToOrigin,
    SetGripperState,
    describe,
)
from erarm.agent.surface import HEIGHT_READ_RADIUS_M, MAX_OBJECT_HEIGHT_M, SurfaceMap
from erarm.robots.base import EnvelopeBreach, EnvelopeProblem, ToolPose, WorkspaceLimits

Reachable = Callable[[ToolPose], str | None]

SQUARE_SYMMETRY_RAD = math.pi / 2  # a square top looks the same every quarter turn
SAME_SPOT_M = 0.001  # a move whose (x, y) is within this of the last one is straight up or down
PATH_SAMPLE_M = 0.01  # a lateral path is checked for clearance this often along its length
CARRY_SHARE = 0.5  # a top carries an object set on it that is at most twice as wide


def nearest_equivalent_yaw(yaw: float, current: float, period: float) -> float:
    """The yaw equivalent to `yaw` under a symmetry of `period` radians nearest to `current`."""
    return current + (yaw - current + period / 2) % period - period / 2


class GraspPolicy(BaseModel):
    """How `high` and `low` become heights (metres, tool centre point = fingertips)."""

    grasp_depth_m: float = 0.022  # fingertips this far below an object's top when grasping
    table_clearance_m: float = 0.006  # fingertips never closer to the table than this
    release_clearance_m: float = 0.006  # gap left under a held object when setting it down
    travel_margin_m: float = 0.05  # a high move clears what is under it by at least this
    finger_spread_m: float = 0.047  # centre to each finger when the jaws are open
    max_grasp_width_m: float = 0.075  # the widest top the open jaws close across
    object_min_height_m: float = 0.01  # closing on less than this is closing on nothing
    near_mm: float = 40.0  # a move down within this of a perceived object goes to that object
    held_radius_m: float = 0.03  # a held object covers at least this around where it was taken
    max_drop_m: float = 0.03  # a held object is let go of at most this above what is under it
    clearance_gain_m: float = 0.005  # turn the wrist a quarter for fingers this much lower
    path_clearance_m: float = 0.02  # a lateral move clears what is under its path by this
    finger_press_m: float = 0.004  # open fingertips may come this close to the ground under them
    unknown_hang_m: float = 0.12  # how far an object held from before hangs, until it is seen


class HeldObject(BaseModel):
    """What the gripper holds as a check begins (metres): how far it hangs below the fingertips,
    its height, and how far it reaches around the tool axis. `measured` is False when the arm
    already held it and nothing has seen how far it hangs: then it is carried high enough for
    the worst case, and not let go of, since no drop height can be worked out."""

    below_m: float
    height_m: float
    radius_m: float = 0.03
    measured: bool = True

    @classmethod
    def unseen(cls, opening_m: float, policy: GraspPolicy | None = None) -> HeldObject:
        """An object the arm holds that no look has measured: it may hang as far as any."""
        policy = policy or GraspPolicy()
        return cls(below_m=policy.unknown_hang_m, height_m=policy.unknown_hang_m,
                   radius_m=max(policy.held_radius_m, opening_m / 2), measured=False)


class Landmark(BaseModel):
    """A perceived object as the target rule sees it: where it is and how far it extends."""

    label: str
    x_mm: float
    y_mm: float
    radius_mm: float = 0.0


class Action(BaseModel):
    """One resolved step: a tool pose, a gripper command, or the return home."""

    step: int
    call: RecordedCall | None = None  # the plan's call; None for a robot command replayed
    command: str = ""  # such a robot command, as it reads: move_to(412, 87, 35, 0)
    pose: ToolPose | None = None
    opened: bool | None = None
    why: str = ""  # how the target was derived, for dry runs and logs
    checks: list[str] = []  # the checks this step passed
    added: bool = False  # appended by erarm rather than asked for
    held_after: HeldObject | None = Field(None, exclude=True)  # what the gripper holds once
    # this step has run, by the checks: where the next call or plan starts from

    @property
    def label(self) -> str:
        """How the step reads in logs and errors."""
        return describe(self.call) if self.call is not None else self.command

    @property
    def lifts(self) -> bool:
        """A move to travel height."""
        return isinstance(self.call, Move) and self.call.high

    @property
    def goes_home(self) -> bool:
        return isinstance(self.call, ReturnToOrigin)


class Transfer(BaseModel):
    """An object the plan picks up at one spot and lets go of at another (millimetres), and
    where its top should end up: on the surface it is let go over, plus its own height."""

    grasp_mm: tuple[float, float]
    release_mm: tuple[float, float]
    expected_top_mm: float
    released_at: int = 0  # the step that lets go


class SetDown(NamedTuple):
    """An object the plan let go of since the last look: the camera has not seen it there."""

    x: float
    y: float
    radius: float  # metres around (x, y) it covers
    top_z: float  # where its top should rest, metres
    label: str
    step: int
    looked_at: bool = False  # a look will have checked it before the later calls run


class ValidatedPlan(BaseModel):
    actions: list[Action]
    transfers: list[Transfer]
    warnings: list[str]


def _refuse(where: str, problem: EnvelopeProblem) -> PlanRejected:
    """The envelope's problem as the validator's sentence about `where`."""
    joiner = " is " if problem.breach in (EnvelopeBreach.outside_xy,
                                          EnvelopeBreach.beyond_reach) else ": "
    return PlanRejected(f"{where}{joiner}{problem.message}")


def _spot_passed(x: float, y: float, limits: WorkspaceLimits) -> list[str]:
    return ["in workspace",
            f"reach {limits.reach_m(x, y) * 1000:.0f}/{limits.max_reach_m * 1000:.0f} mm"]


def _check_spot(where: str, x: float, y: float, limits: WorkspaceLimits) -> list[str]:
    problem = limits.check_spot(x, y)
    if problem:
        raise _refuse(where, problem)
    return _spot_passed(x, y, limits)


def _check_joints(where: str, pose: ToolPose, reachable: Reachable | None) -> list[str]:
    if reachable is None:
        return []
    found = reachable(pose)
    if found:
        raise PlanRejected(f"{where}: {found}")
    return ["joint limits (IK)"]


def _check_height_and_joints(where: str, pose: ToolPose, limits: WorkspaceLimits,
                             reachable: Reachable | None) -> list[str]:
    problem = limits.check(pose)
    if problem:
        raise _refuse(where, problem)
    return _check_joints(where, pose, reachable)


def check_pose(where: str, pose: ToolPose, limits: WorkspaceLimits,
               reachable: Reachable | None) -> list[str]:
    """A tool pose inside the envelope and the arm's joint limits (the checks passed), or
    PlanRejected."""
    problem = limits.check(pose)  # once: finite, then the spot, then the height
    if problem:
        raise _refuse(where, problem)
    return _spot_passed(pose.x, pose.y, limits) + _check_joints(where, pose, reachable)


def _nearest(landmarks: list[Landmark], x_mm: float, y_mm: float) -> tuple[Landmark, float] | None:
    scored = [(mark, math.hypot(mark.x_mm - x_mm, mark.y_mm - y_mm)) for mark in landmarks]
    return min(scored, key=lambda pair: pair[1], default=None)


def _goes_to(landmarks: list[Landmark], x_mm: float, y_mm: float, policy: GraspPolicy
             ) -> tuple[Landmark, float] | None:
    """The nearest perceived object a move down at (x, y) mm goes to: one whose middle is near
    or that spreads under it (a pan's floor beside the bottle already standing in it)."""
    return _nearest([m for m in landmarks
                     if math.hypot(m.x_mm - x_mm, m.y_mm - y_mm) <= max(policy.near_mm,
                                                                           m.radius_mm)],
                    x_mm, y_mm)


def _landmark_at(landmarks: list[Landmark] | None, x: float, y: float,
                 policy: GraspPolicy) -> Landmark | None:
    """The perceived object a move down at (x, y) m goes to, if any."""
    found = _goes_to(landmarks or [], x * 1000, y * 1000, policy)
    return found[0] if found else None


def _check_target(where: str, x: float, y: float, holding: bool, landmarks: list[Landmark],
                  surface: SurfaceMap, policy: GraspPolicy) -> str:
    """Refuse a move down that goes to nothing perceived."""
    found = _goes_to(landmarks, x * 1000, y * 1000, policy)
    if found:
        return f"at the {found[0].label} ({found[1]:.0f} mm)"
    nearest = _nearest(landmarks, x * 1000, y * 1000)
    if holding and surface.is_free(x, y):
        return "on free table"
    closest = f" (nearest: the {nearest[0].label}, {nearest[1]:.0f} mm away)" if nearest else ""
    if holding:
        raise PlanRejected(f"{where} would set the held object down where the camera sees "
                           f"neither a perceived object nor free table{closest}")
    raise PlanRejected(f"{where} goes down to nothing perceived{closest}; a plan may only "
                       "reach down to perceived objects")


class _Resolver:
    """Walks the plan once, tracking what the gripper holds, and resolves each call."""

    def __init__(self, surface: SurfaceMap, limits: WorkspaceLimits, gripper_open: bool,
                 yaw: float, policy: GraspPolicy, landmarks: list[Landmark] | None,
                 reachable: Reachable | None, start: ToolPose | None = None,
                 held: HeldObject | None = None):
        self.surface, self.limits, self.policy = surface, limits, policy
        self.landmarks, self.reachable = landmarks, reachable
        self.gripper_open, self.yaw = gripper_open, yaw
        self.held_below: float | None = None  # how far a held object hangs below the fingertips
        self.held_height: float = 0.0  # the held object's height, metres
        self.held_square = False  # the held object has a square top (else: round, any yaw)
        self.held_long = True  # the held object is elongated (or unknown): its yaw stays
        self.held_radius: float = 0.0  # how far the held object covered around grasp_xy, metres
        self.held_measured = True  # False: held from before, how far it hangs is unknown
        self.held_mark: Landmark | None = None  # the perceived object it was taken from
        self.grasp_xy: tuple[float, float] | None = None
        self.taken: np.ndarray | None = None  # the held object's points in the stale view
        self.grasp_step = 0
        self.low_at: tuple[float, float] | None = None  # where the tool is down, if it is
        self.last_xy: tuple[float, float] | None = None  # None: at home
        self.last_z: float | None = None
        if start is not None:
            self.start_at(start)
        if held is not None:
            self.held_below, self.held_height = held.below_m, held.height_m
            self.held_radius, self.held_measured = held.radius_m, held.measured
        self.transfers: list[Transfer] = []
        self.set_down: list[SetDown] = []

    def start_at(self, pose: ToolPose) -> None:
        """Checking goes on from the tool where it is (home, or wherever a stop left it)."""
        self.yaw = pose.yaw
        self.last_xy, self.last_z = (pose.x, pose.y), pose.z
        self.low_at = None

    def held(self) -> HeldObject | None:
        """What the gripper holds by the calls so far, as the next check would start from."""
        if self.held_below is None:
            return None
        return HeldObject(below_m=self.held_below, height_m=self.held_height,
                          radius_m=max(self.held_radius, self.policy.held_radius_m),
                          measured=self.held_measured)

    def _clearance_below(self, x: float, y: float, z: float) -> float:
        """How far the lowest point of the tool (open fingers, or what it holds) at (x, y, z)
        stays above the highest thing the camera sees under and around it, metres."""
        hang = self.held_below or 0.0
        reach = self.policy.finger_spread_m + HEIGHT_READ_RADIUS_M
        if self.held_below is not None:
            reach = max(reach, self.held_radius + HEIGHT_READ_RADIUS_M)
        under = max(self.surface.top_z(x, y, reach, self.taken),
                    self._placed_top(x, y, reach))
        return z - hang - under

    def _placed_top(self, x: float, y: float, reach: float) -> float:
        """The highest top of what the plan set down within `reach` of (x, y), or -inf."""
        return max((s.top_z for s in self.set_down
                    if math.dist((s.x, s.y), (x, y)) <= s.radius + reach), default=-math.inf)

    def _path_floor(self, x: float, y: float) -> float:
        """The lowest height to arrive at (x, y) at so that the straight path there from where
        the tool is clears what lies under it (a tall held bottle over a tall neighbour); no
        higher than a travel move's reach allows (`_check_path` refuses what still collides)."""
        x0, y0 = self.last_xy
        z0, margin = self.last_z, self.policy.path_clearance_m
        samples = max(2, math.ceil(math.dist((x0, y0), (x, y)) / PATH_SAMPLE_M) + 1)
        floor = -math.inf
        for k in range(1, samples):
            s = k / (samples - 1)
            px, py = x0 + s * (x - x0), y0 + s * (y - y0)
            needed = z0 - self._clearance_below(px, py, z0) + margin + 1e-4  # the tool's z
            floor = max(floor, z0 + (needed - z0) / s)
        return min(floor, self.limits.travel_z + MAX_OBJECT_HEIGHT_M)

    def _check_path(self, where: str, x: float, y: float, z: float) -> str:
        """A lateral move from where the tool is to (x, y, z) must clear what lies under its
        whole path; a path that starts down at a spot is refused with the way up."""
        x0, y0 = self.last_xy
        z0 = self.last_z
        hang = self.held_below or 0.0
        if min(z0, z) - hang >= self.limits.table_z + MAX_OBJECT_HEIGHT_M:
            return "path above anything on the table"
        margin = self.policy.path_clearance_m
        samples = max(2, math.ceil(math.dist((x0, y0), (x, y)) / PATH_SAMPLE_M) + 1)
        for k in range(samples):
            s = k / (samples - 1)
            px, py, pz = x0 + s * (x - x0), y0 + s * (y - y0), z0 + s * (z - z0)
            clearance = self._clearance_below(px, py, pz)
            if clearance >= margin:
                continue
            if k == 0:
                raise PlanRejected(
                    f"{where} would leave ({x0 * 1000:.0f}, {y0 * 1000:.0f}) mm sideways with the "
                    f"tool down at {z0 * 1000:.0f} mm and sweep what stands there; lift straight "
                    f"up first: move({x0 * 1000:.0f}, {y0 * 1000:.0f}, true)")
            raise PlanRejected(
                f"{where} would pass {max(clearance, 0.0) * 1000:.0f} mm above what stands at "
                f"({px * 1000:.0f}, {py * 1000:.0f}) mm on the way (at least "
                f"{margin * 1000:.0f} mm is needed); travel between spots with high true")
        return f"path clear by {margin * 1000:.0f} mm"

    def down_low(self) -> bool:
        """Whether the tool is too low where it is to set off sideways (home follows the joints,
        not a line, so it starts above what is under the tool)."""
        return self.last_xy is not None and self._clearance_below(
            *self.last_xy, self.last_z) < self.policy.path_clearance_m

    def check_home(self, where: str) -> None:
        """The way home starts above what is under the tool."""
        if self.down_low():
            x, y = self.last_xy
            raise PlanRejected(f"{where} would set off with the tool down at "
                               f"{self.last_z * 1000:.0f} mm and sweep what stands there; lift "
                               f"straight up first: move({x * 1000:.0f}, {y * 1000:.0f}, true)")

    def _set_down_at(self, x: float, y: float) -> SetDown | None:
        """The object the plan set down since the last look that covers (x, y), if any."""
        return max((s for s in self.set_down
                    if math.dist((s.x, s.y), (x, y)) <= s.radius + HEIGHT_READ_RADIUS_M),
                   key=lambda s: s.top_z, default=None)

    def _top(self, x: float, y: float) -> float:
        """The surface's height at (x, y), metres, or the top of what the plan set down there."""
        placed = self._set_down_at(x, y)
        return max(self.surface.surface_z(x, y, without=self.taken),
                   placed.top_z if placed else -math.inf)

    def _grasp_yaw(self, x: float, y: float, face_yaw: float) -> float:
        """A square top can be taken two ways: the one nearest the wrist's yaw now, or a
        quarter turn on when its open fingers come down on clearly lower ground, clear of a
        neighbour."""
        near = nearest_equivalent_yaw(face_yaw, self.yaw, SQUARE_SYMMETRY_RAD)
        turned = near + math.copysign(math.pi / 2, self.yaw - near)
        if (self._under_open_fingers(x, y, turned)
                < self._under_open_fingers(x, y, near) - self.policy.clearance_gain_m):
            return turned
        return near

    def _under_open_fingers(self, x: float, y: float, yaw: float) -> float:
        """Height of the highest ground under either open finger with the tool at (x, y, yaw)."""
        dx, dy = math.sin(yaw), -math.cos(yaw)  # the jaws close along the tool's y axis
        spread = self.policy.finger_spread_m
        return max(self.surface.surface_z(x + side * spread * dx, y + side * spread * dy,
                                          radius=0.01) for side in (-1, 1))

    def _travel_z(self, pose: ToolPose, lowest: float) -> float:
        """The travel height, or a lower one (still clearing `lowest`) where the arm cannot
        point straight down that far out at full height."""
        z = max(self.limits.travel_z, lowest)
        while self.reachable is not None and self.reachable(pose.model_copy(update={"z": z})):
            if z - 0.02 < lowest:
                break
            z -= 0.02
        return z

    def move(self, step: int, call: Move) -> Action:
        x, y = call.x / 1000, call.y / 1000
        where = f"step {step} {describe(call.call())}"
        checks = _check_spot(where, x, y, self.limits)
        top = self._top(x, y)
        policy, held = self.policy, self.held_below
        placed = self._set_down_at(x, y)
        if held is None and not call.high and placed is not None and not placed.looked_at:
            raise PlanRejected(
                f"{where} reaches down to the {placed.label} that step {placed.step} set down "
                "there, which the camera has not seen yet; look again first")
        straight = self.last_xy is not None and math.dist(self.last_xy, (x, y)) <= SAME_SPOT_M
        if not call.high and not straight:
            came_from = ("from home" if self.last_xy is None else
                         f"from ({self.last_xy[0] * 1000:.0f}, {self.last_xy[1] * 1000:.0f}) mm")
            raise PlanRejected(
                f"{where} would reach it at grasp height {came_from}, sweeping what lies "
                f"between; a move down goes straight down: move({call.x:g}, {call.y:g}, true) "
                "first")
        if not straight:  # up and down keep the yaw: the fingers may be around something
            self.yaw = self._yaw_over(x, y)
        if held is not None and not call.high:
            self._check_not_over_itself(where, x, y)
        if call.high:
            lowest = top + (held or 0.0) + policy.travel_margin_m
            if self.last_xy is not None and not straight:
                lowest = max(lowest, self._path_floor(x, y))
            z = self._travel_z(ToolPose(x=x, y=y, z=0.0, yaw=self.yaw), lowest)
            why = "travel height"
        else:
            if self.landmarks is not None:
                checks.append(_check_target(where, x, y, held is not None, self.landmarks,
                                            self.surface, policy))
            if held is not None:
                z, why = self._set_down_z(x, y, top, held)
            elif self.gripper_open:
                z = self._grasp_tip_z(x, y, top)
                checks += self._check_width(where, x, y)
                checks.append(self._check_grasp(where, x, y, z, top))
                why = f"grasp: fingertips at {z * 1000:.0f} mm around a top at {top * 1000:.0f} mm"
            else:
                z = top + policy.table_clearance_m
                why = f"touch: closed fingertips just above the surface at {top * 1000:.0f} mm"
        pose = ToolPose(x=x, y=y, z=z, yaw=self.yaw)
        checks += _check_height_and_joints(where, pose, self.limits, self.reachable)
        if self.last_xy is not None and not straight:
            checks.append(self._check_path(where, x, y, z))
        self.low_at = None if call.high else (x, y)
        self.last_xy, self.last_z = (x, y), z
        return Action(step=step, call=call, pose=pose, why=why, checks=checks)

    def _grasp_tip_z(self, x: float, y: float, top: float) -> float:
        """Where the fingertips close: below the top, or below the shoulder of a ridged top."""
        shoulder = self.surface.shoulder_z(x, y)
        grip = top if shoulder is None else min(top, shoulder)
        return max(grip - self.policy.grasp_depth_m,
                   self.limits.table_z + self.policy.table_clearance_m)

    def _check_grasp(self, where: str, x: float, y: float, tip_z: float, top: float) -> str:
        """An empty, open hand goes down only around something standing free: not into a
        container (its inside is lower than what surrounds it: a place, never a grasp), and not
        with a finger pressing into what stands beside (a bowl's wall, a neighbour)."""
        support = self.surface.support_z(x, y)
        if top - support <= -self.policy.object_min_height_m:
            raise PlanRejected(
                f"{where} would reach with open, empty fingers into a hollow {top * 1000:.0f} mm "
                f"high inside what stands around it at {support * 1000:.0f} mm (a container): "
                "going down into a container is a place, never a grasp")
        beside = self._under_open_fingers(x, y, self.yaw)
        if beside > tip_z + self.policy.finger_press_m:
            raise PlanRejected(
                f"{where} would drive an open finger into what stands beside the target "
                f"({beside * 1000:.0f} mm high, the fingertips going to {tip_z * 1000:.0f} mm): "
                "an empty hand goes down only around something standing free, and a "
                "container's inside is a place, never a grasp")
        return "fingers clear"

    def _check_width(self, where: str, x: float, y: float) -> list[str]:
        """An empty hand goes down only to something the jaws span: across its narrow side."""
        long_top = self.surface.long_top(x, y)
        if long_top is None:
            return []  # a square top: the jaws square on it
        if long_top.width_m > self.policy.max_grasp_width_m:
            raise PlanRejected(
                f"{where} would grasp a top {long_top.width_m * 1000:.0f} mm across its narrow "
                f"side, wider than the gripper takes ({self.policy.max_grasp_width_m * 1000:.0f}"
                " mm): it cannot be picked up from above")
        return [f"across its {long_top.width_m * 1000:.0f} mm narrow side"]

    def _set_down_z(self, x: float, y: float, top: float, held: float) -> tuple[float, str]:
        """Where to let go: the held object just above the surface, or higher, up to the
        largest drop allowed, where the opening fingers would otherwise strike what stands
        beside it (a bowl's wall when the object goes in off its centre) and wedge it."""
        policy = self.policy
        z = top + held + policy.release_clearance_m
        why = (f"set down: the held object {policy.release_clearance_m * 1000:.0f} mm "
               f"above the surface at {top * 1000:.0f} mm")
        beside = self._under_open_fingers(x, y, self.yaw) + policy.release_clearance_m
        if beside > z:
            z = min(beside, top + held + policy.max_drop_m)
            why = (f"set down: the held object {(z - held - top) * 1000:.0f} mm above the "
                   f"surface at {top * 1000:.0f} mm, the fingertips clear of the ground at "
                   f"{(beside - policy.release_clearance_m) * 1000:.0f} mm beside it")
        return z, why

    def _yaw_over(self, x: float, y: float) -> float:
        """The yaw to arrive over (x, y) with: square on a square top seen there (the grasp's
        choice when the hand is empty, aligned with a held square object), across the narrow
        side of an elongated top an empty hand goes to; holding something, unchanged or a
        quarter turn on where the fingers will open clear of a wall."""
        face_yaw = self.surface.top_face_yaw(x, y)
        if self.held_below is not None:
            if face_yaw is not None and self.held_square:
                return nearest_equivalent_yaw(face_yaw, self.yaw, SQUARE_SYMMETRY_RAD)
            return self._release_yaw(x, y)
        if face_yaw is None:
            long_top = self.surface.long_top(x, y)
            if long_top is not None:
                return nearest_equivalent_yaw(long_top.yaw, self.yaw, math.pi)
            return self.yaw
        return self._grasp_yaw(x, y, face_yaw)

    def _release_yaw(self, x: float, y: float) -> float:
        """A held object that is not elongated may be let go of with the wrist a quarter turn
        on (towards its middle), where the opening fingers come down clearly lower: beside a
        bin's wall rather than onto it."""
        if self.held_long:
            return self.yaw
        turned = self.yaw - math.copysign(math.pi / 2, self.yaw)
        if (self._under_open_fingers(x, y, turned)
                < self._under_open_fingers(x, y, self.yaw) - self.policy.clearance_gain_m):
            return turned
        return self.yaw

    def _check_not_over_itself(self, where: str, x: float, y: float) -> None:
        """Refuse to set a held object down where it was taken from: the camera's view there is
        from before the pick and still shows it, so it would be let go of in mid-air."""
        if self.grasp_xy is None:
            return
        distance = math.dist(self.grasp_xy, (x, y))
        mark = self.held_mark
        at_itself = mark is not None and _landmark_at(self.landmarks, x, y, self.policy) is mark
        if distance > self.held_radius + HEIGHT_READ_RADIUS_M and not at_itself:
            return
        what = f"the {mark.label}" if mark else "the held object"
        there = "there" if distance < 0.005 else f"{distance * 1000:.0f} mm from there"
        raise PlanRejected(f"{where} would set {what} down on itself: it was picked up {there} "
                           f"at step {self.grasp_step}, and the camera's view of that spot is "
                           "from before the pick")

    def _check_release(self, where: str) -> None:
        """Refuse to let go of a held object high above what is under it, or of one whose hang
        no look has measured."""
        if self.held_below is None:
            return
        if not self.held_measured:
            raise PlanRejected(
                f"{where} would let go of an object the gripper already held when checking "
                "began, whose size no look has measured, so no safe height to let go at can be "
                "worked out; return home and look (the camera measures what hangs from the "
                "gripper there), or take it from the gripper by hand")
        if self.last_xy is None or self.last_z is None:
            raise PlanRejected(f"{where} would let go of the held object at home, in mid-air; "
                               "set it down with a move whose high is false first")
        bottom = self.last_z - self.held_below
        drop = bottom - self._top(*self.last_xy)
        if drop > self.policy.max_drop_m + 1e-6:
            raise PlanRejected(f"{where} would drop the held object from {drop * 1000:.0f} mm "
                               "above what is under it; set it down with a move whose high is "
                               "false before opening the gripper")

    def _check_carried(self, where: str) -> None:
        """Refuse to stack a held object on a top too narrow to carry it (a can on a marker, a
        bottle on a lime): it would topple off. What this plan set down itself is not measured
        yet, so it is not judged."""
        if self.held_below is None or self.last_xy is None or self._set_down_at(*self.last_xy):
            return
        width = self.surface.top_face_width(*self.last_xy)
        needed = CARRY_SHARE * 2 * self.held_radius
        if width is not None and width < needed:
            raise PlanRejected(
                f"{where} would stack the held object ({2 * self.held_radius * 1000:.0f} mm "
                f"across) on a top {width * 1000:.0f} mm across, too narrow to carry it (at "
                f"least {needed * 1000:.0f} mm): it would topple; set it down on a wider top or "
                "on the table")

    def _check_opening(self, where: str) -> None:
        """Fingers that open down low must open into free air: opened inside a bowl they strike
        its wall, and the lift that follows hooks it."""
        if self.low_at is None or self.last_z is None or self.gripper_open:
            return
        beside = self._under_open_fingers(*self.low_at, self.yaw)
        if beside > self.last_z + self.policy.finger_press_m:
            raise PlanRejected(
                f"{where} would open the fingers into what stands beside them "
                f"({beside * 1000:.0f} mm high, the fingertips at {self.last_z * 1000:.0f} mm): "
                "opened there they strike it (a container's wall) and the next lift hooks it")

    def gripper(self, step: int, call: SetGripperState) -> Action:
        if call.opened:
            where = f"step {step} {describe(call.call())}"
            self._check_release(where)
            self._check_carried(where)
            self._check_opening(where)
            if self.held_below is not None and self.grasp_xy is not None:
                here = self.low_at or self.last_xy or self.grasp_xy
                resting = self._top(*here) + self.held_height
                label = self.held_mark.label if self.held_mark else "held object"
                self.set_down.append(SetDown(*here, self.held_radius, resting, label, step))
                self.transfers.append(Transfer(
                    grasp_mm=(self.grasp_xy[0] * 1000, self.grasp_xy[1] * 1000),
                    release_mm=(here[0] * 1000, here[1] * 1000), expected_top_mm=resting * 1000,
                    released_at=step))
            self.held_below, self.grasp_xy, self.held_mark, self.taken = None, None, None, None
        elif self.gripper_open and self.low_at is not None:
            x, y = self.low_at
            support, top = self.surface.support_z(x, y), self.surface.surface_z(x, y)
            if top - support >= self.policy.object_min_height_m:
                tip_z = self._grasp_tip_z(x, y, top)
                self.held_below, self.grasp_xy, self.grasp_step = tip_z - support, (x, y), step
                self.taken = self.surface.body_at(x, y)
                self.held_height = top - support
                self.held_square = self.surface.top_face_yaw(x, y) is not None
                self.held_long = self.surface.long_top(x, y) is not None
                self.held_mark = _landmark_at(self.landmarks, x, y, self.policy)
                self.held_radius = max(self.policy.held_radius_m, self.held_mark.radius_mm / 1000
                                       if self.held_mark else 0.0)
        self.gripper_open = call.opened
        return Action(step=step, call=call, opened=call.opened,
                      why="open" if call.opened else "close")


class StepValidator:
    """Resolves and checks calls one at a time, carrying what the gripper holds from each to the
    next, for a model that decides step by step: a refused call leaves the state as it was, so
    the model can send a corrected one. `validate_plan` walks a whole plan with one."""

    def __init__(self, surface: SurfaceMap, limits: WorkspaceLimits, gripper_open: bool,
                 start_yaw: float = 0.0, policy: GraspPolicy | None = None,
                 landmarks: list[Landmark] | None = None, reachable: Reachable | None = None,
                 steps: int = 0, start: ToolPose | None = None, held: HeldObject | None = None):
        self._resolver = _Resolver(surface, limits, gripper_open, start_yaw,
                                   policy or GraspPolicy(), landmarks, reachable, start, held)
        self.steps = steps  # calls checked so far: the next is step steps + 1

    @property
    def transfers(self) -> list[Transfer]:
        return list(self._resolver.transfers)

    @property
    def holding(self) -> bool:
        """Whether, by the calls so far, the gripper has closed on an object it still holds."""
        return self._resolver.held_below is not None

    def way_home(self) -> list[Call]:
        """The calls that take the tool home from where the calls so far leave it: straight up
        first when it is down."""
        resolver = self._resolver
        if not resolver.down_low():
            return [ReturnToOrigin()]
        x, y = resolver.last_xy
        return [Move(x=round(x * 1000, 1), y=round(y * 1000, 1), high=True), ReturnToOrigin()]

    def check(self, call: Call) -> Action:
        """The call resolved to a metric action with the checks it passed, or `PlanRejected`."""
        trial = copy.copy(self._resolver)
        trial.transfers = list(self._resolver.transfers)
        trial.set_down = list(self._resolver.set_down)
        step = self.steps + 1
        if isinstance(call, Move):
            action = trial.move(step, call)
        elif isinstance(call, SetGripperState):
            action = trial.gripper(step, call)
        else:
            trial.check_home(f"step {step} {describe(call.call())}")
            trial.low_at, trial.last_xy, trial.last_z = None, None, None
            action = Action(step=step, call=call, why="home")
        action.held_after = trial.held()
        self._resolver, self.steps = trial, step
        return action

    def looked(self) -> None:
        """A look checks what was set down so far before the next call runs (a rehearsed
        plan's real camera, where the model looked in the twin): an empty hand may reach down
        to it, at the height it was set down at."""
        resolver = self._resolver
        resolver.set_down = [s._replace(looked_at=True) for s in resolver.set_down]

    def seen_again(self, surface: SurfaceMap, landmarks: list[Landmark] | None,
                   tool: ToolPose) -> None:
        """A new look, with the tool where it is now: later calls are checked against it. A held
        object stays held (its height still lifts every move), but the spot it came from is now
        seen without it, and what the plan set down is seen where it landed."""
        resolver = self._resolver
        resolver.set_down = []
        resolver.surface, resolver.landmarks = surface, landmarks
        resolver.grasp_xy = resolver.held_mark = resolver.taken = None
        resolver.start_at(tool)


def validate_plan(plan: Plan, surface: SurfaceMap, limits: WorkspaceLimits, gripper_open: bool,
                  start_yaw: float = 0.0, policy: GraspPolicy | None = None,
                  landmarks: list[Landmark] | None = None,
                  reachable: Reachable | None = None,
                  looks_after: Collection[int] = (), start: ToolPose | None = None,
                  held: HeldObject | None = None) -> ValidatedPlan:
    """Resolve every call to a metric action and check it; raise `PlanRejected` on the first
    failure, so a plan either validates completely or moves nothing. `landmarks` turns on the
    rule that moves down must go to something perceived; `reachable` checks joint limits;
    `looks_after` are the steps after which a look checks what was set down (`looked`);
    `start` and `held` are the tool's pose and what the gripper holds as the plan begins."""
    if not plan.calls:
        raise PlanRejected("the plan has no steps")
    if len(plan.calls) > limits.max_steps:
        raise PlanRejected(f"the plan has {len(plan.calls)} steps; the limit is {limits.max_steps}")
    warnings = list(plan.notes)
    validator = StepValidator(surface, limits, gripper_open, start_yaw, policy, landmarks,
                              reachable, start=start, held=held)
    actions = []
    for call in plan.calls:
        if isinstance(call, ReturnToOrigin) and len(lift := validator.way_home()) > 1:
            actions.append(validator.check(lift[0]).model_copy(update={"added": True}))
            warnings.append(f"erarm lifted the tool straight up before returnToOrigin at step "
                            f"{validator.steps + 1}: the way home starts above the table")
        actions.append(validator.check(call))
        if actions[-1].step in looks_after:
            validator.looked()
    if not isinstance(plan.calls[-1], ReturnToOrigin):
        way_home = validator.way_home()
        for call in way_home:
            actions.append(validator.check(call).model_copy(update={"added": True}))
        warnings.append("the plan did not end with returnToOrigin; erarm added "
                        + ("a lift and " if len(way_home) > 1 else "") + "it")
    return ValidatedPlan(actions=actions, transfers=validator.transfers, warnings=warnings)
