"""Locate: turn perceived image points into objects with robot coordinates.

With a depth camera each point is grounded (agent/ground.py): the object around it is measured,
so `position_mm` is a block's top-face centre at its top height, or a container's opening centre
at its floor height, and `radius_mm` half its width on the table from the depth. Where the
object's shape says it is a container and its label a block (or the other way round), the shape
wins: the label's kind word is changed (a warning says so), so planning and checking use it. A
point for which grounding finds no object, or any point without depth, keeps where its pixel's
depth (or the table plane) puts it, and the radius its box gives.
"""

from __future__ import annotations

import math

import numpy as np

from erarm.agent.geometry import intersect_plane, locate, normalized_to_pixel, pixel_rays
from erarm.agent.ground import SAME_OBJECT_M, DepthScene, Grounded, label_hue, same_hue
from erarm.agent.labels import with_kind
from erarm.agent.perceive import Perception
from erarm.agent.schemas import Box, Point, SceneObject, box_for
from erarm.robots.base import CameraCalibration, Frame

SAME_HEIGHT_MM = 10.0  # two groundings at one spot and this close in height are one object


def locate_objects(perception: Perception, frame: Frame) -> list[SceneObject]:
    """Every perceived point that maps onto the scene, in millimetres in the robot base frame.
    Two points grounded on one object (a label confused) give one object: the one whose label
    its box and colour agree with; a warning in `perception.warnings` names the other."""
    scene = DepthScene(frame) if frame.depth_m is not None else None
    found: list[tuple[SceneObject, Grounded | None, Point]] = []
    for point in perception.points:
        box = box_for(point, perception.boxes)
        grounded = scene.ground(point, box) if scene is not None else None
        if grounded is not None:
            seen = SceneObject(label=with_kind(point.label, grounded.container), point=point.point,
                               box_2d=box.box_2d if box else None,
                               position_mm=tuple(v * 1000 for v in grounded.centre),
                               radius_mm=grounded.radius_m * 1000)
            if grounded.extent is not None:
                half_long, half_short, yaw = grounded.extent
                seen.extent_mm = (half_long * 1000, half_short * 1000)
                seen.yaw_deg = math.degrees(yaw)
        else:
            position = locate(point.y, point.x, frame)
            if position is None:
                continue
            seen = SceneObject(label=point.label, point=point.point,
                               box_2d=box.box_2d if box else None,
                               position_mm=tuple(float(v) * 1000 for v in position))
            seen.radius_mm = footprint_radius_mm(seen, frame.calibration)
        twin = next((i for i, (o, _, _) in enumerate(found) if _same_object(o, seen)), None)
        if twin is None:
            found.append((seen, grounded, point))
            continue
        _, first_grounded, kept = found[twin]
        other = point
        if (_agreement(point, grounded, perception.boxes)
                > _agreement(kept, first_grounded, perception.boxes)):
            found[twin], kept, other = (seen, grounded, point), point, kept
        perception.warnings.append(
            f"two '{kept.label}' points are on one object; kept one" if other.label == kept.label
            else f"the '{other.label}' point is on the same object as the '{kept.label}' point; "
            f"kept '{kept.label}'")
    for seen, grounded, point in found:
        if seen.label != point.label:  # the shape's kind, not the label's
            perception.warnings.append(
                f"the '{point.label}' looks like "
                + ("a container (a rim around a lower floor)" if grounded.container
                   else "a solid (a flat top across it), no container")
                + f"; treated as the '{seen.label}'")
    return [seen for seen, _, _ in found]


def _same_object(a: SceneObject, b: SceneObject) -> bool:
    return (math.dist(a.position_mm[:2], b.position_mm[:2]) <= SAME_OBJECT_M * 1000
            and abs(a.position_mm[2] - b.position_mm[2]) <= SAME_HEIGHT_MM)


def _agreement(point: Point, grounded: Grounded | None, boxes: list[Box]) -> int:
    """How many signs agree with a point's label: a box of that label around it, and its colour
    word naming the colour measured."""
    score = int(any(b.label == point.label and b.contains(point) for b in boxes))
    wanted = label_hue(point.label)
    if grounded is not None and grounded.hue is not None and wanted is not None:
        score += int(same_hue(grounded.hue, wanted))
    return score


def footprint_radius_mm(container: SceneObject, calibration: CameraCalibration) -> float:
    """Half the container's width on the table, from its image box at its own height."""
    if container.box_2d is None:
        return 0.0
    ymin, xmin, ymax, xmax = container.box_2d
    row = (ymin + ymax) / 2
    pixels = np.array([normalized_to_pixel(row, x, calibration.width, calibration.height)
                       for x in (xmin, xmax)])
    origin, directions = pixel_rays(pixels, calibration)
    z = container.position_mm[2] / 1000
    left, right = (intersect_plane(origin, d, z) for d in directions)
    if left is None or right is None:
        return 0.0
    return float(np.linalg.norm(right - left)) * 1000 / 2
