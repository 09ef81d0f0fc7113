"""The embedded default brain: OpenCV perception and a rule planner, offline, no key needed.

It speaks the Gemini Robotics-ER text formats, so its answers go through the same parser and
validator as the model's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from erarm.agent.brains.base import CORE, PlanRequest, require
from erarm.agent.brains.local.rule_planner import plan_text
from erarm.agent.brains.local.vision import KNOWN, Detection, detect_objects
from erarm.agent.geometry import pixel_to_normalized
from erarm.agent.labels import KIND_SYNONYMS, canonical, matches
from erarm.robots.base import Frame

log = logging.getLogger(__name__)


class LocalBrain:
    name = "local"
    capabilities = CORE

    def __init__(self) -> None:
        self._last: tuple[Frame, list[Detection]] | None = None

    def _detections(self, frame: Frame) -> list[Detection]:
        """Analyse each frame once, however many questions are asked about it, and warn once
        when it does not look like the calibrated table scene this brain is made for."""
        if self._last is None or self._last[0] is not frame:
            sight = detect_objects(frame)
            if warning := sight.warning(frame):
                log.warning("local brain: %s", warning)
            self._last = (frame, sight.detections)
        return self._last[1]

    def point(self, frame: Frame, queries: Sequence[str] | None = None, limit: int = 10) -> str:
        width, height = frame.size
        found = self._detections(frame)
        if queries:
            for query in queries:
                if not set(canonical(query).split()) & set(KIND_SYNONYMS.values()):
                    log.warning("local brain: %r is not a block or a bowl: it finds only %s",
                                query, KNOWN)
            found = [d for d in found if any(matches(q, d.label) for q in queries)]
        points = []
        for detection in found[:limit]:
            y, x = pixel_to_normalized(*detection.point_px, width, height)
            if 0 <= y <= 1000 and 0 <= x <= 1000:  # an object cut off by the image's edge
                points.append({"point": [round(y), round(x)], "label": detection.label})
        return json.dumps(points)

    def detect(self, frame: Frame, limit: int = 25) -> str:
        width, height = frame.size
        boxes = []
        for detection in self._detections(frame)[:limit]:
            u0, v0, u1, v1 = detection.box_px
            box = [v0 / height * 1000, u0 / width * 1000, v1 / height * 1000, u1 / width * 1000]
            boxes.append({"box_2d": [round(v) for v in box], "label": detection.label})
        return json.dumps(boxes)

    def plan(self, request: PlanRequest, frame: Frame) -> str:
        return plan_text(request.task, request.objects)

    def trajectory(self, frame: Frame, instruction: str, points: int = 15) -> str:
        require(self, "trajectory")
        raise AssertionError("unreachable")

    def judge(self, before: Frame, after: Frame, task: str) -> str:
        require(self, "judge")
        raise AssertionError("unreachable")

    def read_goals(self, frame: Frame, task: str, labels: Sequence[str]) -> str:
        require(self, "goals")
        raise AssertionError("unreachable")
