"""Locate: turn perceived image points into objects with robot coordinates."""

from __future__ import annotations

import numpy as np

from erarm.agent.geometry import intersect_plane, locate, normalized_to_pixel, pixel_rays
from erarm.agent.perceive import Perception
from erarm.agent.schemas import SceneObject, box_for
from erarm.robots.base import CameraCalibration, Frame


def locate_objects(perception: Perception, frame: Frame) -> list[SceneObject]:
    """Every perceived point that maps onto the scene, in millimetres in the robot base frame."""
    objects = []
    for point in perception.points:
        position = locate(point.y, point.x, frame)
        if position is None:
            continue
        box = box_for(point, perception.boxes)
        seen = SceneObject(label=point.label, point=point.point,
                           box_2d=box.box_2d if box else None,
                           position_mm=tuple(float(v) * 1000 for v in position))
        seen.radius_mm = footprint_radius_mm(seen, frame.calibration)
        objects.append(seen)
    return objects


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
