"""Tasks as the simulator sees them: which objects a task names, and whether it is done.

These predicates read the simulator's ground truth. They score runs; the agent never sees them.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import pybullet as pb
from pydantic import BaseModel

from robots.base import CameraCalibration, GroundTruth
from sim.objects import BLOCK_SIZE_M, BOWL_HEIGHT_M, BOWL_RIM_RADIUS_M, COLOURS

if TYPE_CHECKING:
    from sim.camera import CameraSetup
    from sim.world import World

_MENTION = re.compile(
    r"\b(?:(?P<colour>" + "|".join(COLOURS) + r")\s+)?(?P<kind>block|cube|bowl)s?\b",
    re.IGNORECASE)


def mentions(task: str) -> list[tuple[str | None, str]]:
    """(colour or None, kind) for every block/cube/bowl the task names, in order."""
    found = []
    for match in _MENTION.finditer(task):
        colour = match["colour"].lower() if match["colour"] else None
        kind = "block" if match["kind"].lower() in ("block", "cube") else "bowl"
        found.append((colour, kind))
    return found


class Placement(BaseModel):
    """Object `item` (an index into the scene) must rest inside container `container`."""

    item: int
    container: int


def goal_for(task: str, labels: list[str]) -> list[Placement] | None:
    """The placements a pick-into-bowl task asks for, or None if this task has no scorer."""
    named = mentions(task)
    blocks = [m for m in named if m[1] == "block"]
    bowls = [m for m in named if m[1] == "bowl"]
    if len(blocks) != 1 or len(bowls) != 1:
        return None

    def find(colour: str | None, kind: str) -> int | None:
        hits = [i for i, label in enumerate(labels)
                if label.endswith(kind) and (colour is None or label == f"{colour} {kind}")]
        return hits[0] if len(hits) == 1 else None

    item, container = find(*blocks[0]), find(*bowls[0])
    if item is None or container is None:
        return None
    return [Placement(item=item, container=container)]


def rests_inside(world: World, item: int, container: int) -> tuple[bool, str]:
    """True when the item's centre is within the bowl's walls, below its rim, touching the bowl
    and not held by the gripper."""
    client = world.client
    item_body, bowl_body = world.bodies[item], world.bodies[container]
    (ix, iy, iz), _ = pb.getBasePositionAndOrientation(item_body, physicsClientId=client)
    (bx, by, bz), _ = pb.getBasePositionAndOrientation(bowl_body, physicsClientId=client)
    offset = math.hypot(ix - bx, iy - by)
    label, bowl_label = world.labels[item], world.labels[container]
    if offset > BOWL_RIM_RADIUS_M - BLOCK_SIZE_M / 2:
        return False, f"the {label} is {offset * 1000:.0f} mm from the {bowl_label}'s centre"
    if iz - bz > BOWL_HEIGHT_M:
        return False, f"the {label} is above the {bowl_label}'s rim"
    if not pb.getContactPoints(item_body, bowl_body, physicsClientId=client):
        return False, f"the {label} does not touch the {bowl_label}"
    if world.arm_touches(item_body):
        return False, f"the gripper still holds the {label}"
    return True, f"the {label} rests inside the {bowl_label}"


class SimReferee:
    """Judges a task from the simulator's ground truth."""

    def __init__(self, world: World, task: str, camera: CameraSetup):
        self._world = world
        self._camera = camera
        self._goal = goal_for(task, world.labels)
        self._start = world.object_report()

    def true_calibration(self) -> CameraCalibration:
        from sim.camera import calibration

        return calibration(self._camera)

    def judge(self) -> GroundTruth:
        objects = self._world.object_report()
        verdict = {"objects": objects, "objects_at_start": self._start}
        if self._goal is None:
            return GroundTruth(success=None, reason="the simulator has no success check for "
                               "this task", **verdict)
        reasons = []
        for placement in self._goal:
            ok, reason = rests_inside(self._world, placement.item, placement.container)
            if not ok:
                return GroundTruth(success=False, reason=reason, **verdict)
            reasons.append(reason)
        return GroundTruth(success=True, reason="; ".join(reasons), **verdict)
