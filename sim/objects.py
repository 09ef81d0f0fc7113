"""Blocks and bowls in named colours.

A bowl is a compound of boxes (a floor and a ring of outward-leaning wall slabs), so it is truly
concave for the physics engine: a block dropped into it lands on its floor, inside its walls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pybullet as pb

# RGB in 0..1, chosen to look like painted wooden toys under the simulator's light.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.10, 0.10),
    "orange": (1.00, 0.48, 0.05),
    "yellow": (0.95, 0.85, 0.08),
    "green": (0.12, 0.65, 0.20),
    "cyan": (0.05, 0.78, 0.85),
    "blue": (0.10, 0.28, 0.90),
    "purple": (0.50, 0.18, 0.78),
    "pink": (1.00, 0.40, 0.72),
}

BLOCK_SIZE_M = 0.04
BLOCK_MASS_KG = 0.05
BOWL_RIM_RADIUS_M = 0.068  # outer radius at the rim
BOWL_FLOOR_RADIUS_M = 0.048
BOWL_HEIGHT_M = 0.045
BOWL_WALL_M = 0.006
BOWL_FLOOR_M = 0.006
BOWL_SEGMENTS = 15  # + the floor = 16 shapes, the most a PyBullet visual shape array takes
BOWL_MASS_KG = 0.3
FRICTION = 1.0


@dataclass(frozen=True)
class Footprint:
    """How much table an object needs, for collision-free layouts."""

    radius_m: float


def footprint(kind: str, scale: float = 1.0) -> Footprint:
    if kind == "bowl":
        return Footprint(BOWL_RIM_RADIUS_M * scale)
    return Footprint(BLOCK_SIZE_M * scale * math.sqrt(2) / 2)


def _rgba(colour: str) -> list[float]:
    return [*COLOURS[colour], 1.0]


def spawn_block(client: int, colour: str, x: float, y: float, yaw: float,
                scale: float = 1.0, z: float = 0.0) -> int:
    half = [BLOCK_SIZE_M * scale / 2] * 3
    shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=client)
    visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=_rgba(colour),
                                  specularColor=[0.1, 0.1, 0.1], physicsClientId=client)
    body = pb.createMultiBody(BLOCK_MASS_KG * scale ** 3, shape, visual, [x, y, z + half[2]],
                              pb.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=client)
    pb.changeDynamics(body, -1, lateralFriction=FRICTION, spinningFriction=0.001,
                      rollingFriction=0.0001, frictionAnchor=1, physicsClientId=client)
    return body


def _bowl_parts(scale: float = 1.0) -> dict[str, list]:
    """The shapes of a bowl: a cylindrical floor and a ring of outward-leaning wall slabs, as the
    keyword arguments of PyBullet's shape-array constructors (without the collision/visual
    prefix on frame positions and orientations). Walls and floor keep their thickness."""
    rim, floor, height = (BOWL_RIM_RADIUS_M * scale, BOWL_FLOOR_RADIUS_M * scale,
                          BOWL_HEIGHT_M * scale)
    flare = math.atan2(rim - floor, height)
    slant = math.hypot(rim - floor, height)
    mid_radius = (rim + floor) / 2 - BOWL_WALL_M / 2
    chord = 2 * (mid_radius + BOWL_WALL_M) * math.tan(math.pi / BOWL_SEGMENTS)
    parts: dict[str, list] = {
        "shapeTypes": [pb.GEOM_CYLINDER], "radii": [floor],
        "lengths": [BOWL_FLOOR_M], "halfExtents": [[0.0, 0.0, 0.0]],
        "positions": [[0.0, 0.0, BOWL_FLOOR_M / 2]], "orientations": [[0.0, 0.0, 0.0, 1.0]],
    }
    for i in range(BOWL_SEGMENTS):
        angle = 2 * math.pi * i / BOWL_SEGMENTS
        parts["shapeTypes"].append(pb.GEOM_BOX)
        parts["radii"].append(0.0)
        parts["lengths"].append(0.0)
        parts["halfExtents"].append([BOWL_WALL_M / 2, chord / 2, slant / 2])
        parts["positions"].append([mid_radius * math.cos(angle), mid_radius * math.sin(angle),
                                   height / 2])
        parts["orientations"].append(list(pb.getQuaternionFromEuler([0, flare, angle])))
    return parts


def spawn_bowl(client: int, colour: str, x: float, y: float, yaw: float,
               scale: float = 1.0, z: float = 0.0) -> int:
    parts = _bowl_parts(scale)
    count = len(parts["shapeTypes"])
    common = {key: parts[key] for key in ("shapeTypes", "radii", "lengths", "halfExtents")}
    shape = pb.createCollisionShapeArray(
        **common, collisionFramePositions=parts["positions"],
        collisionFrameOrientations=parts["orientations"], physicsClientId=client)
    visual = pb.createVisualShapeArray(
        **common, visualFramePositions=parts["positions"],
        visualFrameOrientations=parts["orientations"], rgbaColors=[_rgba(colour)] * count,
        physicsClientId=client)
    body = pb.createMultiBody(BOWL_MASS_KG * scale ** 2, shape, visual, [x, y, z],
                              pb.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=client)
    pb.changeDynamics(body, -1, lateralFriction=FRICTION, physicsClientId=client)
    return body


SPAWNERS = {"block": spawn_block, "bowl": spawn_bowl}

SOLID_DENSITY_KG_M3 = 600.0  # about a wooden toy's


def spawn_solid(client: int, rgb: tuple[float, float, float], x: float, y: float, z: float,
                across: float, height: float) -> int:
    """A box standing in for something the simulator has no model of."""
    half = [across / 2, across / 2, height / 2]
    shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=client)
    visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=[*rgb, 1.0],
                                  specularColor=[0.1, 0.1, 0.1], physicsClientId=client)
    mass = SOLID_DENSITY_KG_M3 * across * across * height
    body = pb.createMultiBody(mass, shape, visual, [x, y, z + half[2]], physicsClientId=client)
    pb.changeDynamics(body, -1, lateralFriction=FRICTION, frictionAnchor=1,
                      physicsClientId=client)
    return body
