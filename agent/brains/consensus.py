"""Consensus: ask K times and keep what most answers agree on, at their robust median.

The Robotics-ER docs recommend it for precision. Per label, answers are grouped into instances
(a label may name several objects), outliers are rejected by median absolute deviation, and an
instance survives only if a majority of the K answers contains it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence

import numpy as np

from erarm.agent.brains.base import Brain, PlanRequest
from erarm.agent.errors import ReplyError
from erarm.agent.parse import parse_boxes, parse_points
from erarm.agent.schemas import Box, Point
from erarm.robots.base import Frame

SAME_INSTANCE = 40.0  # normalized units (of 1000) within which two answers are one object

Vote = tuple[int, str, np.ndarray]  # (answer number, label, coordinates)


def _robust_median(vectors: np.ndarray) -> np.ndarray:
    centre = np.median(vectors, axis=0)
    distance = np.linalg.norm(vectors - centre, axis=1)
    spread = 1.4826 * np.median(distance)
    keep = distance <= max(3 * spread, 5.0)
    return np.median(vectors[keep], axis=0)


def agree(answers: list[list[tuple[str, np.ndarray]]], centre: Callable[[np.ndarray], np.ndarray]
          ) -> list[tuple[str, np.ndarray]]:
    """The instances a majority of answers contains, each at its robust median. `centre` maps
    coordinates to the point used to tell instances apart."""
    needed = math.ceil(len(answers) / 2)
    votes: dict[str, list[Vote]] = {}
    for number, answer in enumerate(answers):
        for label, coordinates in answer:
            votes.setdefault(label, []).append((number, label, coordinates))
    agreed = []
    for label, entries in votes.items():
        instances: list[list[Vote]] = []
        for vote in entries:
            here = centre(vote[2])
            fits = [i for i in instances if vote[0] not in {v[0] for v in i}
                    and np.linalg.norm(centre(np.median([v[2] for v in i], axis=0)) - here)
                    <= SAME_INSTANCE]
            if fits:
                fits[0].append(vote)
            else:
                instances.append([vote])
        for instance in instances:
            if len({v[0] for v in instance}) >= needed:
                agreed.append((label, _robust_median(np.array([v[2] for v in instance]))))
    return agreed


class ConsensusBrain:
    """Wraps a brain: points, boxes and trajectories by consensus of K answers."""

    def __init__(self, inner: Brain, k: int):
        if k < 1:
            raise ValueError("consensus needs at least one answer")
        self.inner, self.k = inner, k
        self.name = inner.name
        self.capabilities = inner.capabilities - {"locate"}  # its points, its way

    def _answers(self, ask: Callable[[], str], parse: Callable[[str], list]) -> list[list]:
        """K parsed answers; a minority of unreadable ones is tolerated."""
        answers, errors = [], []
        for _ in range(self.k):
            try:
                answers.append(parse(ask()))
            except ReplyError as err:
                errors.append(err)
        if len(answers) < math.ceil(self.k / 2):
            raise errors[0]
        return answers

    def _points(self, ask: Callable[[], str]) -> list[Point]:
        answers = self._answers(ask, parse_points)
        voted = agree([[(p.label, np.array(p.point)) for p in a] for a in answers],
                      centre=lambda v: v)
        return [Point(point=(round(float(v[0])), round(float(v[1]))), label=label)
                for label, v in voted]

    def point(self, frame: Frame, queries: Sequence[str] | None = None, limit: int = 10) -> str:
        points = self._points(lambda: self.inner.point(frame, queries, limit))
        return json.dumps([p.model_dump() for p in points])

    def detect(self, frame: Frame, limit: int = 25) -> str:
        answers = self._answers(lambda: self.inner.detect(frame, limit), parse_boxes)
        voted = agree([[(b.label, np.array(b.box_2d)) for b in a] for a in answers],
                      centre=lambda v: np.array([(v[0] + v[2]) / 2, (v[1] + v[3]) / 2]))
        boxes = [Box(box_2d=tuple(round(float(c)) for c in v), label=label) for label, v in voted]
        return json.dumps([b.model_dump() for b in boxes])

    def trajectory(self, frame: Frame, instruction: str, points: int = 15) -> str:
        path = self._points(lambda: self.inner.trajectory(frame, instruction, points))
        return json.dumps([p.model_dump() for p in path])

    def plan(self, request: PlanRequest, frame: Frame) -> str:
        return self.inner.plan(request, frame)

    def judge(self, before: Frame, after: Frame, task: str) -> str:
        return self.inner.judge(before, after, task)

    def read_goals(self, frame: Frame, task: str, labels: Sequence[str]) -> str:
        return self.inner.read_goals(frame, task, labels)
