"""One task, end to end: perceive -> locate -> plan -> validate -> execute -> verify.

Every step's output lands in the run folder (camera.png, overlay.png, plan.json, result.json,
final.png) so a run can be inspected after the fact. Nothing moves until the whole plan has parsed
and validated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from agent.brains.base import Brain, require
from agent.errors import ExecutionFailed
from agent.execute import ExecutionReport, StepReport, describe, execute
from agent.geometry import locate
from agent.locate import locate_objects
from agent.overlay import draw, save_png
from agent.parse import parse_trajectory, parse_verdict
from agent.perceive import perceive
from agent.plan import carry_along, make_plan
from agent.surface import SurfaceMap
from agent.validate import Action, ValidatedPlan, validate_plan
from agent.verify import Verification, check_goals, goals_of
from robots.base import Frame, GroundTruth, Workcell
from robots.errors import ErarmError

Log = Callable[[str], None]


class Timings(BaseModel):
    perception_s: float = 0.0
    planning_s: float = 0.0
    execution_s: float = 0.0
    verification_s: float = 0.0
    total_s: float = 0.0
    simulated_s: float = 0.0  # robot time spent moving (simulated seconds in the simulator)


class RunResult(BaseModel):
    task: str
    brain: str
    robot: str
    success: bool | None = None  # the simulator's ground truth; None without a referee
    verified: bool = False  # perception's verdict (with the model's, when the brain can judge)
    verification: str = ""
    model_verdict: dict | None = None  # {"done", "reason"} from a brain that can judge
    ground_truth: GroundTruth | None = None
    objects: list[dict] = []
    plan: list[dict] = []
    reasoning: str = ""
    warnings: list[str] = []
    steps_executed: int = 0
    timings: Timings = Timings()
    out_dir: str | None = None
    error: str | None = None
    exit_code: int = 0


def _plan_record(task: str, reasoning: str, validated: ValidatedPlan) -> dict:
    return {
        "task": task,
        "reasoning": reasoning,
        "plan": [a.call for a in validated.actions],
        "actions": [{"step": a.step, "call": a.call, "why": a.why, "added": a.added,
                     "target_m": a.pose.model_dump() if a.pose else None}
                    for a in validated.actions],
        "warnings": validated.warnings,
    }


def _step_line(action: Action, report: StepReport, total: int) -> str:
    line = f"step {action.step}/{total} {describe(action.call)}"
    if report.target is not None:
        t = report.target
        line += (f" -> ({t.x * 1000:.0f}, {t.y * 1000:.0f}, {t.z * 1000:.0f}) mm, "
                 f"reached within {report.error_mm:.1f} mm")
    elif report.holding is not None:
        line += " holding an object" if report.holding else ""
    return line + f" [{report.duration_s:.2f} s]"


def _carry_path(brain: Brain, task: str, frame: Frame, points: int) -> list[tuple[float, float]]:
    """The brain's trajectory for the task, located on the table, without its start and end
    (the plan already goes there)."""
    require(brain, "trajectory")
    path = parse_trajectory(brain.trajectory(frame, task, points=points))
    located = [locate(p.y, p.x, frame) for p in path[1:-1]]
    return [(float(q[0]) * 1000, float(q[1]) * 1000) for q in located if q is not None]


def _verify(brain: Brain, task: str, before: Frame, after: Frame, goals_ok: Verification,
            result: RunResult) -> None:
    """Perception's check, combined with the model's own judgement when the brain can give one."""
    result.verified, result.verification = goals_ok.verified, goals_ok.reason
    if "judge" not in brain.capabilities:
        return
    try:
        verdict = parse_verdict(brain.judge(before, after, task))
    except ErarmError as err:
        result.verified = False
        result.verification += f"; the model could not judge: {err}"
        return
    result.model_verdict = verdict.model_dump()
    pointed = bool(goals_ok.goals)
    result.verified = verdict.done and (goals_ok.verified or not pointed)
    result.verification = (f"{goals_ok.reason}; the model says "
                           f"{'done' if verdict.done else 'not done'}: {verdict.reason}")


def run_task(task: str, brain: Brain, cell: Workcell, out_dir: Path,
             log: Log = lambda _: None, trajectory_points: int = 0) -> RunResult:
    """Do the task with this brain in this cell; never raises for an `ErarmError`, which is
    recorded in the result with its exit code instead. With `trajectory_points`, the object is
    carried along a path the brain draws."""
    started = time.perf_counter()
    result = RunResult(task=task, brain=brain.name, robot=cell.robot.name, out_dir=str(out_dir))
    timings = result.timings
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        clock = time.perf_counter()
        log("looking at the table")
        frame = cell.camera.capture()
        save_png(out_dir / "camera.png", frame.rgb)
        if frame.calibration is not None:
            (out_dir / "calibration.json").write_text(frame.calibration.model_dump_json(indent=2))
        perception = perceive(brain, frame)
        objects = locate_objects(perception, frame)
        result.objects = [o.summary() for o in objects]
        timings.perception_s = time.perf_counter() - clock
        log(f"saw {len(objects)} objects: {', '.join(o.label for o in objects) or 'none'}")
        save_png(out_dir / "overlay.png", draw(frame.rgb, perception.points, perception.boxes))

        clock = time.perf_counter()
        log(f"planning with the {brain.name} brain")
        plan, _ = make_plan(brain, task, objects, frame, cell.robot.limits)
        if trajectory_points:
            log(f"asking for a {trajectory_points}-point path to carry the object along")
            plan = carry_along(plan, _carry_path(brain, task, frame, trajectory_points))
        state = cell.robot.state()
        validated = validate_plan(plan, SurfaceMap(frame, cell.robot.limits), cell.robot.limits,
                                  gripper_open=state.gripper_open, start_yaw=state.tool.yaw)
        result.plan = [a.call for a in validated.actions]
        result.reasoning = plan.reasoning
        result.warnings = validated.warnings
        for warning in validated.warnings:
            log(f"warning: {warning}")
        (out_dir / "plan.json").write_text(
            json.dumps(_plan_record(task, plan.reasoning, validated), indent=2))
        path = [(a.step, a.pose) for a in validated.actions if a.pose is not None]
        save_png(out_dir / "overlay.png", draw(frame.rgb, perception.points, perception.boxes,
                                               path, frame.calibration))
        timings.planning_s = time.perf_counter() - clock
        log(f"plan validated: {len(validated.actions)} steps")

        clock = time.perf_counter()
        total = len(validated.actions)
        try:
            report = execute(validated.actions, cell.robot,
                             on_step=lambda a, r: log(_step_line(a, r, total)))
        except ExecutionFailed as failed:
            done = ExecutionReport(steps=failed.steps_done)
            result.steps_executed, timings.simulated_s = len(done.steps), done.duration_s
            raise
        finally:
            timings.execution_s = time.perf_counter() - clock
        result.steps_executed, timings.simulated_s = len(report.steps), report.duration_s

        clock = time.perf_counter()
        log("checking the result")
        after = cell.camera.capture()
        save_png(out_dir / "final.png", after.rgb)
        seen_after = locate_objects(perceive(brain, after), after)
        pointing = check_goals(goals_of(validated.transfers, objects), seen_after,
                               after.calibration)
        _verify(brain, task, frame, after, pointing, result)
        timings.verification_s = time.perf_counter() - clock
    except ErarmError as err:
        result.error, result.exit_code = str(err), err.exit_code
    if cell.referee is not None:
        result.ground_truth = cell.referee.judge()
        result.success = result.ground_truth.success
    timings.total_s = time.perf_counter() - started
    if result.error is None:
        succeeded = result.success if result.success is not None else result.verified
        result.exit_code = 0 if succeeded else 1
    (out_dir / "result.json").write_text(result.model_dump_json(indent=2))
    return result
