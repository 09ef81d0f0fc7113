"""Plan: ask the brain for function calls that do the task, and parse them."""

from __future__ import annotations

from erarm.agent.brains.base import Brain, PlanRequest
from erarm.agent.parse import parse_plan
from erarm.agent.schemas import Move, Plan, SceneObject, SetGripperState
from erarm.robots.base import Frame, WorkspaceLimits


def make_plan(brain: Brain, task: str, objects: list[SceneObject], frame: Frame,
              limits: WorkspaceLimits) -> tuple[Plan, str]:
    """The parsed plan and the brain's raw reply."""
    reply = brain.plan(PlanRequest(task=task, objects=objects, limits=limits), frame)
    return parse_plan(reply), reply


def carry_along(plan: Plan, waypoints_mm: list[tuple[float, float]]) -> Plan:
    """The plan with the first carried object taken through the waypoints at travel height: they
    go in after the lift that follows the first grasp."""
    calls = list(plan.calls)
    closes = [i for i, c in enumerate(calls) if isinstance(c, SetGripperState) and not c.opened]
    if not closes:
        return plan
    lift = next((i for i in range(closes[0] + 1, len(calls))
                 if isinstance(calls[i], Move) and calls[i].high), None)
    if lift is None:
        return plan
    via = [Move(x=round(x), y=round(y), high=True) for x, y in waypoints_mm]
    return Plan(reasoning=plan.reasoning, calls=[*calls[:lift + 1], *via, *calls[lift + 1:]])
