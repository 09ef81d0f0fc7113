"""Execute: run validated actions on a robot, one logged step at a time; on any failure stop the
arm where it is and report which step failed."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from agent.errors import ExecutionFailed
from agent.validate import Action
from robots.base import Robot, ToolPose
from robots.errors import RobotError


class StepReport(BaseModel):
    step: int
    call: dict
    target: ToolPose | None = None
    reached: ToolPose | None = None
    error_mm: float | None = None
    holding: bool | None = None
    duration_s: float


class ExecutionReport(BaseModel):
    steps: list[StepReport]

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.steps)


def describe(call: dict) -> str:
    args = ", ".join(str(a).lower() if isinstance(a, bool) else f"{a:g}" if isinstance(a, float)
                     else str(a) for a in call["args"])
    return f"{call['function']}({args})"


def _run(action: Action, robot: Robot) -> StepReport:
    if action.pose is not None:
        move = robot.move_to(action.pose)
        return StepReport(step=action.step, call=action.call, target=move.target,
                          reached=move.reached, error_mm=move.position_error_m * 1000,
                          duration_s=move.duration_s)
    if action.opened is not None:
        grip = robot.set_gripper(action.opened)
        return StepReport(step=action.step, call=action.call, holding=grip.holding,
                          duration_s=grip.duration_s)
    home = robot.return_to_origin()
    return StepReport(step=action.step, call=action.call, reached=home.reached,
                      error_mm=home.position_error_m * 1000, duration_s=home.duration_s)


def execute(actions: list[Action], robot: Robot,
            on_step: Callable[[Action, StepReport], None] | None = None) -> ExecutionReport:
    """Run every action in order. A robot failure or an interrupt stops the arm first."""
    report = ExecutionReport(steps=[])
    for action in actions:
        try:
            step = _run(action, robot)
        except RobotError as err:
            robot.stop()
            raise ExecutionFailed(f"step {action.step} {describe(action.call)}: {err}",
                                  report.steps) from err
        except BaseException:
            robot.stop()
            raise
        report.steps.append(step)
        if on_step:
            on_step(action, step)
    return report
