"""Perceive: ask the brain where things are in a camera frame, and parse what it says. Points and
boxes are asked for together: one round trip to the model, not two."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from erarm.agent.brains.base import Brain
from erarm.agent.parallel import together
from erarm.agent.parse import read_boxes, read_points
from erarm.agent.schemas import Box, Point
from erarm.robots.base import Frame


class Perception(BaseModel):
    points: list[Point]
    boxes: list[Box]
    replies: dict[str, str]  # the brain's raw text per question, for the record
    warnings: list[str] = []  # malformed entries the parser dropped from the replies


def perceive(brain: Brain, frame: Frame, queries: Sequence[str] | None = None,
             limit: int = 25) -> Perception:
    asked = together(lambda: brain.point(frame, queries, limit=limit),
                     lambda: brain.detect(frame, limit=limit))
    point_text, box_text = (answer.get() for answer in asked)
    points, boxes = read_points(point_text), read_boxes(box_text)
    return Perception(points=points.items, boxes=boxes.items,
                      replies={"point": point_text, "detect": box_text},
                      warnings=points.warnings + boxes.warnings)
