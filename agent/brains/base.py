"""The seam every brain fits: three questions, answered as Gemini Robotics-ER text.

Brains return the model's raw text; `agent.parse` turns any brain's text into typed objects, so
the local brain and Gemini go through the same parser and the same safety checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from agent.schemas import SceneObject
from robots.base import Frame, WorkspaceLimits


class PlanRequest(BaseModel):
    """What a planner is told: the instruction, what was seen where, and the workspace."""

    task: str
    objects: list[SceneObject]
    limits: WorkspaceLimits


@runtime_checkable
class Brain(Protocol):
    name: str

    def point(self, frame: Frame, queries: Sequence[str] | None = None, limit: int = 10) -> str:
        """`[{"point": [y, x], "label": ...}]` for the named objects, or for all (up to limit)."""
        ...

    def detect(self, frame: Frame, limit: int = 25) -> str:
        """`[{"box_2d": [ymin, xmin, ymax, xmax], "label": ...}]` with unique labels."""
        ...

    def plan(self, request: PlanRequest, frame: Frame) -> str:
        """Reasoning, then `[{"function": ..., "args": [...]}, ...]` in robot millimetres."""
        ...
