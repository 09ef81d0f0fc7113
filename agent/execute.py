"""Execute: run validated actions on a robot, one logged step at a time; on any failure stop the
arm where it is and report which step failed."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from erarm.agent import interrupts
from erarm.agent.errors import ExecutionFailed, Interrupted
from erarm.agent.results import Outcome, Stop
from erarm.agent.validate import Action
from erarm.robots.base import Robot, ToolPose
from erarm.robots.errors import MotionBlocked, RobotError


class StepReport(BaseModel):
    step: int
    label: str  # the step as it reads: move(412, 87, true)
    target: ToolPose | None = None
    reached: ToolPose | None = None
    error_mm: float | None = None
    holding: bool | None = None
    duration_s: float


class ExecutionReport(BaseModel):
    steps: list[StepReport]
    stopped: Stop | None = None  # why a watch stopped the run early

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.steps)


def _run(action: Action, robot: Robot) -> StepReport:
    if action.pose is not None:
        move = robot.move_to(action.pose)
        return StepReport(step=action.step, label=action.label, target=move.target,
                          reached=move.reached, error_mm=move.position_error_m * 1000,
                          duration_s=move.duration_s)
    if action.opened is not None:
        grip = robot.set_gripper(action.opened)
        return StepReport(step=action.step, label=action.label, holding=grip.holding,
                          duration_s=grip.duration_s)
    home = robot.return_to_origin()
    return StepReport(step=action.step, label=action.label, reached=home.reached,
                      error_mm=home.position_error_m * 1000, duration_s=home.duration_s)


Watch = Callable[[Action, StepReport], Stop | None]


def holding_watch(robot: Robot) -> Watch:
    """Between closing on an object and letting go, the gripper must keep holding it."""
    holding = False

    def watch(action: Action, step: StepReport) -> Stop | None:
        nonlocal holding
        if action.opened is False:
            holding = bool(step.holding)
            return None if holding else Stop(
                outcome=Outcome.missed_grasp,
                detail="missed grasp: the gripper closed on nothing")
        if action.opened is True:
            holding = False
            if step.holding:
                return Stop(outcome=Outcome.jammed,
                            detail="jammed: an object stayed wedged between the open fingers")
        elif holding and not robot.state().holding:
            holding = False
            return Stop(outcome=Outcome.dropped,
                        detail="dropped: the object slipped out of the gripper")
        return None

    return watch


def stop_arm(robot: Robot) -> None:
    """Stop the arm where it is; no signal (a second Ctrl-C) can cut the stop short."""
    with interrupts.deferred():
        robot.stop()


def execute(actions: list[Action], robot: Robot,
            on_step: Callable[[Action, StepReport], None] | None = None,
            watch: Watch | None = None, recover_blocked: bool = False) -> ExecutionReport:
    """Run every action in order. A robot failure or an interrupt (Ctrl-C, SIGTERM), whenever it
    lands, stops the arm at once, where it is, before the error goes on. `watch` looks at each
    finished step; a reason from it ends the run early (the report says why), arm at rest. With
    `recover_blocked`, a motion the driver reports blocked (`MotionBlocked`) ends the run early
    in the same way instead of failing it, so the caller can back off and try again."""
    report = ExecutionReport(steps=[])
    current = actions[0] if actions else None
    try:
        for current in actions:
            try:
                step = _run(current, robot)
            except RobotError as err:
                stop_arm(robot)
                where = f"step {current.step} {current.label}"
                if not (recover_blocked and isinstance(err, MotionBlocked)):
                    raise ExecutionFailed(f"{where}: {err}", report.steps) from err
                report.stopped = Stop(outcome=Outcome.blocked, detail=f"blocked at {where}: {err}")
                break
            report.steps.append(step)
            if on_step:
                on_step(current, step)
            if watch and (problem := watch(current, step)):
                report.stopped = problem
                break
    except KeyboardInterrupt:
        stop_arm(robot)
        where = f"at step {current.step} {current.label}" if current else "at the start"
        raise Interrupted(f"interrupted {where}; the arm was stopped there",
                          report.steps) from None
    except ExecutionFailed:
        raise
    except BaseException:
        stop_arm(robot)
        raise
    return report
