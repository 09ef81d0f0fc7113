"""Locate: turn perceived image points into objects with robot coordinates."""

from __future__ import annotations

from agent.geometry import locate
from agent.perceive import Perception
from agent.schemas import Box, Point, SceneObject
from robots.base import Frame


def box_for(point: Point, boxes: list[Box]) -> Box | None:
    """The box with the point's label, else the smallest box around the point."""
    same = [b for b in boxes if b.label == point.label]
    if same:
        return same[0]
    around = [b for b in boxes if b.contains(point)]
    return min(around, key=lambda b: (b.box_2d[2] - b.box_2d[0]) * (b.box_2d[3] - b.box_2d[1]),
               default=None)


def locate_objects(perception: Perception, frame: Frame) -> list[SceneObject]:
    """Every perceived point that maps onto the scene, in millimetres in the robot base frame."""
    objects = []
    for point in perception.points:
        position = locate(point.y, point.x, frame)
        if position is None:
            continue
        box = box_for(point, perception.boxes)
        objects.append(SceneObject(
            label=point.label, point=point.point, box_2d=box.box_2d if box else None,
            position_mm=tuple(float(v) * 1000 for v in position)))
    return objects
