"""Perceive: ask the brain where things are in a camera frame, and parse what it says."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from agent.brains.base import Brain
from agent.parse import parse_boxes, parse_points
from agent.schemas import Box, Point
from robots.base import Frame


class Perception(BaseModel):
    points: list[Point]
    boxes: list[Box]
    replies: dict[str, str]  # the brain's raw text per question, for the record


def perceive(brain: Brain, frame: Frame, queries: Sequence[str] | None = None,
             limit: int = 25) -> Perception:
    point_text = brain.point(frame, queries, limit=limit)
    box_text = brain.detect(frame, limit=limit)
    return Perception(points=parse_points(point_text), boxes=parse_boxes(box_text),
                      replies={"point": point_text, "detect": box_text})
