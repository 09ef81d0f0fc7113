"""Shapes shared by the simulator's objects: the round hollow every bowl, pan and plate is made of,
and the friction every object's surface has."""

from __future__ import annotations

import math

import pybullet as pb

FRICTION = 1.0
ROUND_SEGMENTS = 15  # + the floor = 16 shapes, the most a PyBullet visual shape array takes


def round_container_parts(rim: float, floor: float, height: float,
                          wall: float) -> dict[str, list]:
    """The shapes of a round container (metres: rim and floor radii): a cylindrical floor and a
    ring of outward-leaning wall slabs, as the keyword arguments of PyBullet's shape-array
    constructors (without the collision/visual prefix on frame positions and orientations)."""
    flare = math.atan2(rim - floor, height)
    slant = math.hypot(rim - floor, height)
    mid_radius = (rim + floor) / 2 - wall / 2
    chord = 2 * (mid_radius + wall) * math.tan(math.pi / ROUND_SEGMENTS)
    parts: dict[str, list] = {
        "shapeTypes": [pb.GEOM_CYLINDER], "radii": [floor],
        "lengths": [wall], "halfExtents": [[0.0, 0.0, 0.0]],
        "positions": [[0.0, 0.0, wall / 2]], "orientations": [[0.0, 0.0, 0.0, 1.0]],
    }
    for i in range(ROUND_SEGMENTS):
        angle = 2 * math.pi * i / ROUND_SEGMENTS
        parts["shapeTypes"].append(pb.GEOM_BOX)
        parts["radii"].append(0.0)
        parts["lengths"].append(0.0)
        parts["halfExtents"].append([wall / 2, chord / 2, slant / 2])
        parts["positions"].append([mid_radius * math.cos(angle), mid_radius * math.sin(angle),
                                   height / 2])
        parts["orientations"].append(list(pb.getQuaternionFromEuler([0, flare, angle])))
    return parts


def compound(client: int, parts: dict[str, list], rgb: tuple[float, float, float]
             ) -> tuple[int, int]:
    """Collision and visual shapes of a compound (`parts` as `round_container_parts` gives)."""
    common = {key: parts[key] for key in ("shapeTypes", "radii", "lengths", "halfExtents")}
    shape = pb.createCollisionShapeArray(
        **common, collisionFramePositions=parts["positions"],
        collisionFrameOrientations=parts["orientations"], physicsClientId=client)
    visual = pb.createVisualShapeArray(
        **common, visualFramePositions=parts["positions"],
        visualFrameOrientations=parts["orientations"],
        rgbaColors=[[*rgb, 1.0]] * len(parts["shapeTypes"]), physicsClientId=client)
    return shape, visual
