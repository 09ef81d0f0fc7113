"""The referee: whether a task is done, judged from the simulator's ground truth.

Each goal a task family states (`erarm.sim.tasks`) is a predicate over the bodies' true poses and
contacts: an object resting inside a container, on another object or a plate, or on the table in
a relation to another (left of, next to, out of ...: the agent's own goal geometry, applied to the
truth). These read the simulator's state; they score runs, and the agent never sees them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pybullet as pb

from erarm.agent.geometry import pixel_to_normalized
from erarm.agent.goals import Relation, TaskGoal, Viewpoint, check_goal
from erarm.agent.schemas import SceneObject
from erarm.robots.base import CameraCalibration, GroundTruth
from erarm.sim.household import KINDS, WALL_M, Build, Holds, holds_things
from erarm.sim.objects import BLOCK_SIZE_M, BOWL_FLOOR_M, BOWL_RIM_RADIUS_M
from erarm.sim.tasks import Goal, Placed, family_for

if TYPE_CHECKING:
    from erarm.sim.camera import CameraSetup
    from erarm.sim.world import World

ON_TABLE_M = 0.006  # an object whose lowest point is this near the table stands on it
SEATED_M = 0.012  # an object on another has its lowest point this near the other's top


def _pose(world: World, index: int) -> tuple[float, float, float]:
    position, _ = pb.getBasePositionAndOrientation(world.bodies[index],
                                                   physicsClientId=world.client)
    return position


def _yaw(world: World, index: int) -> float:
    _, orientation = pb.getBasePositionAndOrientation(world.bodies[index],
                                                      physicsClientId=world.client)
    return pb.getEulerFromQuaternion(orientation)[2]


def _bounds(world: World, index: int) -> tuple[np.ndarray, np.ndarray]:
    low, high = pb.getAABB(world.bodies[index], physicsClientId=world.client)
    return np.array(low), np.array(high)


def half_width_m(world: World, index: int) -> float:
    """Half an object's narrow side: how far its centre must stay from a wall."""
    spec = world.objects[index]
    if spec.kind in KINDS:
        return KINDS[spec.kind].size_mm[1] / 2000
    return (BLOCK_SIZE_M if spec.kind == "block" else 2 * BOWL_RIM_RADIUS_M) * spec.size / 2


def _within(world: World, item: int, container: int) -> tuple[float, str] | None:
    """How far the item's centre is inside the container's walls (metres; negative: outside),
    with the words for how far it is off, or None for something that is not a container."""
    (ix, iy, _), (cx, cy, _) = _pose(world, item), _pose(world, container)
    spec, half = world.objects[container], half_width_m(world, item)
    kind = KINDS.get(spec.kind)
    offset = math.hypot(ix - cx, iy - cy)
    where = f"{offset * 1000:.0f} mm from the {world.labels[container]}'s centre"
    if spec.kind == "bowl" or (kind is not None and kind.build is Build.dish):
        rim = BOWL_RIM_RADIUS_M * spec.size if kind is None else kind.size_mm[0] / 2000
        return rim - half - offset, where
    if kind is None or kind.build is not Build.crate:
        return None
    turn = _yaw(world, container)
    along = (ix - cx) * math.cos(turn) + (iy - cy) * math.sin(turn)
    across = -(ix - cx) * math.sin(turn) + (iy - cy) * math.cos(turn)
    length, width = kind.size_mm[0] / 2000 - WALL_M, kind.size_mm[1] / 2000 - WALL_M
    return min(length - abs(along), width - abs(across)), where


def _free(world: World, item: int) -> str | None:
    if world.arm_touches(world.bodies[item]):
        return f"the gripper still holds the {world.labels[item]}"
    return None


def rests_inside(world: World, item: int, container: int) -> tuple[bool, str]:
    """The item's centre within the container's walls, its lowest point below the rim,
    touching the container, and not held by the gripper (in a tray or on a plate alike)."""
    label, holder = world.labels[item], world.labels[container]
    within = _within(world, item, container)
    if within is None:
        return False, f"the {holder} is not a container"
    margin, where = within
    if margin < 0:
        return False, f"the {label} is {where}"
    (item_low, _), (_, top) = _bounds(world, item), _bounds(world, container)
    if item_low[2] > top[2]:
        return False, f"the {label} is above the {holder}'s rim"
    if not pb.getContactPoints(world.bodies[item], world.bodies[container],
                               physicsClientId=world.client):
        return False, f"the {label} does not touch the {holder}"
    held = _free(world, item)
    if held:
        return False, held
    on = world.objects[container].kind in KINDS and \
        KINDS[world.objects[container].kind].holds is Holds.on
    return True, f"the {label} rests {'on' if on else 'inside'} the {holder}"


def rests_on(world: World, top: int, bottom: int) -> tuple[bool, str]:
    """The top object centred over the bottom one (within half the bottom's narrow side), its
    lowest point at the bottom's top, touching it, and not held by the gripper. On a plate or a
    tray this is resting in it."""
    if holds_things(world.objects[bottom].kind) and world.objects[bottom].kind != "bowl":
        return rests_inside(world, top, bottom)
    (tx, ty, _), (bx, by, _) = _pose(world, top), _pose(world, bottom)
    label, below = world.labels[top], world.labels[bottom]
    offset = math.hypot(tx - bx, ty - by)
    if offset > half_width_m(world, bottom):
        return False, f"the {label} is {offset * 1000:.0f} mm off the {below}'s centre"
    (top_low, _), (_, bottom_high) = _bounds(world, top), _bounds(world, bottom)
    rise = top_low[2] - bottom_high[2]
    if abs(rise) > SEATED_M:
        return False, f"the {label} is not on the {below} ({rise * 1000:.0f} mm above its top)"
    if not pb.getContactPoints(world.bodies[top], world.bodies[bottom],
                               physicsClientId=world.client):
        return False, f"the {label} does not touch the {below}"
    held = _free(world, top)
    return (False, held) if held else (True, f"the {label} rests on the {below}")


def seen_truly(world: World, index: int, calibration: CameraCalibration) -> SceneObject:
    """A scene object as perception would report it if it were perfect: a solid's top-face
    centre, a container's floor, half its width, and where the true camera sees it stand (its
    footprint's centre on the table: a tall bottle's top shows farther up the image than where
    it stands, and in front of or behind is about where things stand)."""
    x, y, _ = _pose(world, index)
    low, high = _bounds(world, index)
    spec = world.objects[index]
    kind = KINDS.get(spec.kind)
    if holds_things(spec.kind):
        floor = BOWL_FLOOR_M * spec.size if kind is None else WALL_M
        top = low[2] + floor
        radius = BOWL_RIM_RADIUS_M * spec.size if kind is None else kind.size_mm[1] / 2000
    else:
        top, radius = high[2], half_width_m(world, index)
    u, v = calibration.project(np.array([[x, y, low[2]]]))[0]
    return SceneObject(label=world.labels[index], position_mm=(x * 1000, y * 1000, top * 1000),
                       radius_mm=radius * 1000,
                       point=pixel_to_normalized(float(u), float(v), calibration.width,
                                                 calibration.height))


def rests_beside(world: World, goal: Goal, calibration: CameraCalibration) -> tuple[bool, str]:
    """The item at rest on the table, not held, in the goal's relation to the target (the
    agent's own geometry, on the truth)."""
    label = world.labels[goal.item]
    low, _ = _bounds(world, goal.item)
    if low[2] > ON_TABLE_M:
        return False, f"the {label} is not on the table"
    held = _free(world, goal.item)
    if held:
        return False, held
    wanted = TaskGoal(relation=Relation(goal.relation), item=label,
                      target=world.labels[goal.target], viewpoint=Viewpoint(goal.viewpoint))
    check = check_goal(wanted, [seen_truly(world, goal.item, calibration),
                                seen_truly(world, goal.target, calibration)])
    return bool(check.holds), check.reason


PREDICATES = {"inside": rests_inside, "on": rests_on}


class SimReferee:
    """Judges a task from the simulator's ground truth."""

    def __init__(self, world: World, task: str, camera: CameraSetup):
        self._world = world
        self.task = task
        self._camera = camera
        self._family = family_for(task)
        self._goals = (self._family.goals(task, world.labels, self._placed())
                       if self._family else None)
        self._start = world.object_report()

    def _placed(self) -> list[Placed]:
        centres = [_pose(self._world, i) for i in range(len(self._world.labels))]
        if not centres:
            return []
        columns = self.true_calibration().project(np.array(centres))[:, 0]
        return [Placed(column_px=float(u), xy_mm=(x * 1000, y * 1000))
                for u, (x, y, _) in zip(columns, centres, strict=True)]

    def true_calibration(self) -> CameraCalibration:
        from erarm.sim.camera import calibration

        return calibration(self._camera)

    def progress(self) -> list[tuple[Goal, bool, str]]:
        """Each goal of the task with whether its predicate holds now, and why (empty: no
        success check for the task)."""
        return [(goal, *self._holds(goal)) for goal in self._goals or []]

    def _holds(self, goal: Goal) -> tuple[bool, str]:
        if goal.relation in PREDICATES:
            return PREDICATES[goal.relation](self._world, goal.item, goal.target)
        return rests_beside(self._world, goal, self.true_calibration())

    def judge(self) -> GroundTruth:
        objects = self._world.object_report()
        verdict = {"objects": objects, "objects_at_start": self._start}
        if self._family is not None and self._goals is None:  # the task is known, not done
            return GroundTruth(success=False, reason="the table lacks an object the task names",
                               **verdict)
        if not self._goals:
            return GroundTruth(success=None, reason="the simulator has no success check for "
                               "this task", **verdict)
        reasons = []
        for goal in self._goals:
            ok, reason = self._holds(goal)
            if not ok:
                return GroundTruth(success=False, reason=reason, **verdict)
            reasons.append(reason)
        return GroundTruth(success=True, reason="; ".join(reasons), **verdict)
