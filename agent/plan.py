"""Plan: ask the brain for function calls that do the task, and parse them."""

from __future__ import annotations

from agent.brains.base import Brain, PlanRequest
from agent.parse import parse_plan
from agent.schemas import Plan, SceneObject
from robots.base import Frame, WorkspaceLimits


def make_plan(brain: Brain, task: str, objects: list[SceneObject], frame: Frame,
              limits: WorkspaceLimits) -> tuple[Plan, str]:
    """The parsed plan and the brain's raw reply."""
    reply = brain.plan(PlanRequest(task=task, objects=objects, limits=limits), frame)
    return parse_plan(reply), reply
