"""Zoom: find things coarsely in the whole frame, then look again in a crop around each.

The Robotics-ER docs' advice for small or hard-to-see objects: crop around a coarse box, query
the crop, and map the refined points back to the full frame.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from erarm.agent.brains.base import Brain, PlanRequest
from erarm.agent.errors import ReplyError
from erarm.agent.geometry import crop
from erarm.agent.parse import parse_boxes, parse_points
from erarm.agent.schemas import Point, box_for
from erarm.robots.base import Frame

MARGIN = 1.0  # the crop adds this many box sizes of context on each side
MIN_CROP_SHARE = 0.25  # and spans at least this share of the frame's width and height


def crop_window(point: Point, box: tuple[float, float, float, float] | None, width: int,
                height: int) -> tuple[int, int, int, int]:
    """Pixel bounds (u0, v0, u1, v1) of a crop around a coarse box (or point)."""
    ymin, xmin, ymax, xmax = box or (point.y, point.x, point.y, point.x)
    half_w = max((xmax - xmin) * (0.5 + MARGIN), 500 * MIN_CROP_SHARE) / 1000 * width
    half_h = max((ymax - ymin) * (0.5 + MARGIN), 500 * MIN_CROP_SHARE) / 1000 * height
    cu, cv = (xmin + xmax) / 2000 * width, (ymin + ymax) / 2000 * height
    u0, v0 = max(0, round(cu - half_w)), max(0, round(cv - half_h))
    return u0, v0, min(width, round(cu + half_w)), min(height, round(cv + half_h))


class ZoomBrain:
    """Wraps a brain: each point is refined in a crop around its coarse box."""

    def __init__(self, inner: Brain):
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities - {"locate"}  # its points, its way

    def point(self, frame: Frame, queries: Sequence[str] | None = None, limit: int = 10) -> str:
        width, height = frame.size
        coarse = parse_points(self.inner.point(frame, queries, limit))
        try:
            boxes = parse_boxes(self.inner.detect(frame)) if coarse else []
        except ReplyError:  # no readable box: crop around the points alone
            boxes = []
        refined = []
        for point in coarse:
            box = box_for(point, boxes)
            u0, v0, u1, v1 = crop_window(point, box.box_2d if box else None, width, height)
            try:
                seen = parse_points(self.inner.point(crop(frame, u0, v0, u1, v1), [point.label],
                                                     1))
            except ReplyError:  # an unreadable second look keeps the first
                seen = []
            full = [Point(point=((v0 + p.y / 1000 * (v1 - v0)) / height * 1000,
                                 (u0 + p.x / 1000 * (u1 - u0)) / width * 1000), label=point.label)
                    for p in seen]
            nearest = min(full, key=lambda p: (p.y - point.y) ** 2 + (p.x - point.x) ** 2,
                          default=point)
            refined.append({"point": [round(nearest.y), round(nearest.x)], "label": point.label})
        return json.dumps(refined)

    def detect(self, frame: Frame, limit: int = 25) -> str:
        return self.inner.detect(frame, limit)

    def plan(self, request: PlanRequest, frame: Frame) -> str:
        return self.inner.plan(request, frame)

    def trajectory(self, frame: Frame, instruction: str, points: int = 15) -> str:
        return self.inner.trajectory(frame, instruction, points)

    def judge(self, before: Frame, after: Frame, task: str) -> str:
        return self.inner.judge(before, after, task)

    def read_goals(self, frame: Frame, task: str, labels: Sequence[str]) -> str:
        return self.inner.read_goals(frame, task, labels)
