"""What the emulated model 'sees': a snapshot of the simulator's ground truth after every camera
capture, as the true camera shows it (the segmentation mask), sent to an emulator session.

The simulator builds and sends it; the agent never sees it (it only talks HTTP to the emulator's
generateContent endpoint, as to Gemini)."""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Literal

import numpy as np
import pybullet as pb
from pydantic import BaseModel

from erarm.agent.geometry import pixel_to_normalized
from erarm.robots.base import CameraCalibration
from erarm.robots.errors import RobotError

if TYPE_CHECKING:
    from erarm.sim.referee import SimReferee
    from erarm.sim.world import World

SEND_TIMEOUT_S = 5.0


class ObjectTruth(BaseModel):
    label: str  # "blue block", "ketchup bottle"
    colour: str | None  # a block's or bowl's; a household object has its own
    kind: str  # "block", "bowl", or a household kind (erarm.sim.household)
    position_mm: tuple[float, float, float]  # its centre, robot base frame
    size_mm: tuple[float, float, float]  # its axis-aligned extent
    yaw_deg: float
    # what the true camera sees of it: None when nothing
    point: tuple[float, float] | None = None  # visible-pixel centroid, normalized [y, x]
    box_2d: tuple[float, float, float, float] | None = None  # normalized [ymin, xmin, ymax, xmax]
    visible_fraction: float = 0.0  # visible pixels over its projected bounding-box hull's area


class GoalTruth(BaseModel):
    relation: str  # "inside", "on", or a place beside the target: "left of" ... (agent.goals)
    viewpoint: Literal["camera", "robot"] = "camera"  # whose left, front ...
    item: int  # index into SceneTruth.objects
    target: int
    done: bool
    reason: str  # the referee's predicate's words


class SceneTruth(BaseModel):
    task: str
    objects: list[ObjectTruth]
    goals: list[GoalTruth]  # empty: the simulator has no success check for the task
    calibration: CameraCalibration


def _visible(mask: np.ndarray, body: int, hull_px: np.ndarray) -> dict:
    import cv2

    rows, cols = np.nonzero(mask == body)
    if rows.size == 0:
        return {}
    height, width = mask.shape
    hull_area = cv2.contourArea(cv2.convexHull(hull_px.astype(np.float32)))
    ymin, xmin = pixel_to_normalized(cols.min() - 0.5, rows.min() - 0.5, width, height)
    ymax, xmax = pixel_to_normalized(cols.max() + 0.5, rows.max() + 0.5, width, height)
    return {"point": pixel_to_normalized(float(cols.mean()), float(rows.mean()), width, height),
            "box_2d": (ymin, xmin, ymax, xmax),
            "visible_fraction": min(1.0, rows.size / hull_area) if hull_area > 0 else 1.0}


def scene_truth(world: World, referee: SimReferee, calibration: CameraCalibration,
                mask: np.ndarray) -> SceneTruth:
    """The snapshot for one capture; `mask` is its segmentation mask (body id per pixel)."""
    objects = []
    for spec, body in zip(world.objects, world.bodies, strict=True):
        position, orientation = pb.getBasePositionAndOrientation(body,
                                                                 physicsClientId=world.client)
        low, high = (np.array(v) for v in pb.getAABB(body, physicsClientId=world.client))
        corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1])
                            for z in (low[2], high[2])])
        seen = _visible(mask, body, calibration.project(corners))
        objects.append(ObjectTruth(
            label=spec.label, colour=spec.colour, kind=spec.kind,
            position_mm=tuple(v * 1000 for v in position),
            size_mm=tuple((high - low) * 1000),
            yaw_deg=math.degrees(pb.getEulerFromQuaternion(orientation)[2]), **seen))
    goals = [GoalTruth(relation=goal.relation, viewpoint=goal.viewpoint, item=goal.item,
                       target=goal.target, done=done, reason=reason)
             for goal, done, reason in referee.progress()]
    return SceneTruth(task=referee.task, objects=objects, goals=goals, calibration=calibration)


def send_truth(session_url: str, truth: SceneTruth) -> None:
    """PUT the snapshot to an emulator session ({session_url}/erarm/truth)."""
    request = urllib.request.Request(
        f"{session_url.rstrip('/')}/erarm/truth", data=truth.model_dump_json().encode(),
        method="PUT", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as reply:
            reply.read()
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise RobotError(f"cannot send the scene's truth to the emulator at {session_url} "
                         f"({reason}); start it with 'erarm emulate' or drop the emulator "
                         f"option") from None
