"""Perceive: ask the brain where things are in a camera frame, and parse what it says. Points and
boxes come in one reply when the brain can give both at once (`locate`), else as two questions
asked at the same time: one round trip to the model either way."""

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


def questions_per_look(brain: Brain) -> int:
    """How many questions one look puts to the brain (in one round trip either way)."""
    return 1 if "locate" in brain.capabilities else 2


def perceive(brain: Brain, frame: Frame, queries: Sequence[str] | None = None,
             limit: int = 25) -> Perception:
    if queries is None and questions_per_look(brain) == 1:
        text = brain.locate(frame, limit=limit)
        replies = {"locate": text}
        points, boxes = read_points(text), read_boxes(text)
    else:
        asked = together(lambda: brain.point(frame, queries, limit=limit),
                         lambda: brain.detect(frame, limit=limit))
        point_text, box_text = (answer.get() for answer in asked)
        replies = {"point": point_text, "detect": box_text}
        points, boxes = read_points(point_text), read_boxes(box_text)
    return Perception(points=points.items, boxes=boxes.items, replies=replies,
                      warnings=points.warnings + boxes.warnings)
