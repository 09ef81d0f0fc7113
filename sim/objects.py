"""Blocks and bowls in named colours, and the one way to put any object on the table (blocks,
bowls and the household kinds of `erarm.sim.household`).

A bowl is a compound of boxes (a floor and a ring of outward-leaning wall slabs), so it is truly
concave for the physics engine: a block dropped into it lands on its floor, inside its walls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pybullet as pb

from erarm.sim.household import KINDS, spawn_household
from erarm.sim.shapes import FRICTION, compound, round_container_parts

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
BOWL_MASS_KG = 0.3


@dataclass(frozen=True)
class Footprint:
    """How much table an object needs, for collision-free layouts."""

    radius_m: float


def footprint(kind: str, scale: float = 1.0) -> Footprint:
    if kind in KINDS:
        return Footprint(KINDS[kind].radius_m)
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


def spawn_bowl(client: int, colour: str, x: float, y: float, yaw: float,
               scale: float = 1.0, z: float = 0.0) -> int:
    # walls and floor keep their thickness at any scale
    parts = round_container_parts(BOWL_RIM_RADIUS_M * scale, BOWL_FLOOR_RADIUS_M * scale,
                                  BOWL_HEIGHT_M * scale, BOWL_WALL_M)
    shape, visual = compound(client, parts, COLOURS[colour])
    body = pb.createMultiBody(BOWL_MASS_KG * scale ** 2, shape, visual, [x, y, z],
                              pb.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=client)
    pb.changeDynamics(body, -1, lateralFriction=FRICTION, physicsClientId=client)
    return body


def spawn(client: int, kind: str, colour: str | None, x: float, y: float, yaw: float,
          scale: float = 1.0, z: float = 0.0) -> int:
    """Any object the simulator knows: a household kind comes in its own size and colour."""
    if kind in KINDS:
        return spawn_household(client, kind, x, y, yaw, z)
    return {"block": spawn_block, "bowl": spawn_bowl}[kind](client, colour, x, y, yaw, scale, z)

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
