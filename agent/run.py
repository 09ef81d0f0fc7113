"""A task (or a plan file), end to end: perceive -> locate -> plan -> validate -> execute -> verify.

`run_task` asks the brain for the plan; `execute_plan` reads it from a file. Both look at the
scene first (validation needs the perceived surface and objects), check the whole plan before the
first motion, optionally stop at a dry run or ask the operator, and then move and check. Every
step's output lands in the run folder (camera.png, calibration.json, overlay.png, plan.json,
result.json, final.png).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from agent.brains.base import Brain, require
from agent.calibrate import require_fit
from agent.errors import Declined, ExecutionFailed, Interrupted
from agent.execute import StepReport, execute
from agent.geometry import locate
from agent.locate import footprint_radius_mm, locate_objects
from agent.overlay import draw, save_png
from agent.parse import parse_plan, parse_trajectory, parse_verdict
from agent.perceive import Perception, perceive
from agent.plan import carry_along, make_plan
from agent.schemas import Plan, SceneObject, describe
from agent.surface import SurfaceMap
from agent.validate import Action, Landmark, ValidatedPlan, validate_plan
from agent.verify import Verification, check_goals, goals_of
from robots.base import Frame, GroundTruth, Workcell
from robots.errors import ErarmError

Log = Callable[[str], None]
Confirm = Callable[[ValidatedPlan], bool]


class RunOptions(BaseModel):
    dry_run: bool = False  # validate and report, move nothing
    strict_targets: bool = True  # moves down must go to something perceived
    trajectory_points: int = 0  # carry the object along a path the brain draws


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
    dry_run: bool = False
    success: bool | None = None  # the simulator's ground truth; None when there is none
    verified: bool = False  # perception's verdict (with the model's, when the brain can judge)
    verification: str = ""
    model_verdict: dict | None = None  # {"done", "reason"} from a brain that can judge
    calibration_fit: dict | None = None  # how well the camera calibration fits the scene
    ground_truth: GroundTruth | None = None
    objects: list[dict] = []
    plan: list[dict] = []  # the validated calls, erarm's additions included
    actions: list[dict] = []  # each call resolved: target in mm, how, and the checks passed
    reasoning: str = ""
    warnings: list[str] = []
    steps_executed: int = 0
    timings: Timings = Timings()
    out_dir: str | None = None
    error: str | None = None
    exit_code: int = 0


@dataclass
class Sighting:
    """What the camera and the brain saw before anything moved."""

    frame: Frame
    perception: Perception
    objects: list[SceneObject]


def action_record(action: Action) -> dict:
    pose = action.pose
    target = None if pose is None else {"x_mm": round(pose.x * 1000, 1),
                                        "y_mm": round(pose.y * 1000, 1),
                                        "z_mm": round(pose.z * 1000, 1),
                                        "yaw_deg": round(pose.yaw * 57.29578, 1)}
    return {"step": action.step, "call": action.call, "target": target, "why": action.why,
            "checks": action.checks, "added": action.added}


def _step_line(action: Action, report: StepReport, total: int) -> str:
    line = f"step {action.step}/{total} {describe(action.call)}"
    if report.target is not None:
        t = report.target
        line += (f" -> ({t.x * 1000:.0f}, {t.y * 1000:.0f}, {t.z * 1000:.0f}) mm, "
                 f"reached within {report.error_mm:.1f} mm")
    elif report.holding:
        line += " holding an object"
    return line + f" [{report.duration_s:.2f} s]"


class Episode:
    """One pass through the pipeline in one workcell, filling in a `RunResult`."""

    def __init__(self, task: str, brain: Brain, cell: Workcell, out_dir: Path, log: Log,
                 options: RunOptions, confirm: Confirm | None):
        self.task, self.brain, self.cell, self.out_dir = task, brain, cell, out_dir
        self.log, self.options, self.confirm = log, options, confirm
        self.result = RunResult(task=task, brain=brain.name, robot=cell.robot.name,
                                out_dir=str(out_dir), dry_run=options.dry_run)
        self.started = time.perf_counter()
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, content in cell.records.items():
            (out_dir / name).write_text(json.dumps(content, indent=2))

    def look(self) -> Sighting:
        clock = time.perf_counter()
        self.log("looking at the table")
        frame = self.cell.camera.capture()
        save_png(self.out_dir / "camera.png", frame.rgb)
        if frame.calibration is not None:
            (self.out_dir / "calibration.json").write_text(
                frame.calibration.model_dump_json(indent=2))
        fit = require_fit(frame, self.cell.robot.limits)  # a moved camera stops us here
        if fit is not None:
            self.result.calibration_fit = fit.model_dump()
            self.log(f"calibration fits: the table comes out {fit.table_offset_mm:+.1f} mm, "
                     f"tilted {fit.table_tilt_deg:.2f} degrees")
        perception = perceive(self.brain, frame)
        objects = locate_objects(perception, frame)
        self.result.objects = [o.summary() for o in objects]
        self.result.timings.perception_s = time.perf_counter() - clock
        self.log(f"saw {len(objects)} objects: {', '.join(o.label for o in objects) or 'none'}")
        save_png(self.out_dir / "overlay.png", draw(frame.rgb, perception.points,
                                                    perception.boxes))
        return Sighting(frame, perception, objects)

    def carry_path(self, frame: Frame, points: int) -> list[tuple[float, float]]:
        """The brain's trajectory for the task, located on the table, without its start and
        end (the plan already goes there)."""
        require(self.brain, "trajectory")
        self.log(f"asking for a {points}-point path to carry the object along")
        path = parse_trajectory(self.brain.trajectory(frame, self.task, points=points))
        located = [locate(p.y, p.x, frame) for p in path[1:-1]]
        return [(float(q[0]) * 1000, float(q[1]) * 1000) for q in located if q is not None]

    def validate(self, plan: Plan, seen: Sighting, clock: float) -> ValidatedPlan:
        robot, limits = self.cell.robot, self.cell.robot.limits
        state = robot.state()
        landmarks = None
        if self.options.strict_targets:
            calibration = seen.frame.calibration
            landmarks = [Landmark(label=o.label, x_mm=o.position_mm[0], y_mm=o.position_mm[1],
                                  radius_mm=footprint_radius_mm(o, calibration))
                         for o in seen.objects]
        validated = validate_plan(plan, SurfaceMap(seen.frame, limits), limits,
                                  gripper_open=state.gripper_open, start_yaw=state.tool.yaw,
                                  landmarks=landmarks, reachable=robot.reachable)
        result = self.result
        result.plan = [a.call for a in validated.actions]
        result.actions = [action_record(a) for a in validated.actions]
        result.reasoning = plan.reasoning
        result.warnings = validated.warnings
        for warning in validated.warnings:
            self.log(f"warning: {warning}")
        (self.out_dir / "plan.json").write_text(json.dumps(
            {"task": self.task, "reasoning": plan.reasoning, "plan": result.plan,
             "actions": result.actions, "warnings": validated.warnings}, indent=2))
        path = [(a.step, a.pose) for a in validated.actions if a.pose is not None]
        save_png(self.out_dir / "overlay.png", draw(seen.frame.rgb, seen.perception.points,
                                                    seen.perception.boxes, path,
                                                    seen.frame.calibration))
        result.timings.planning_s = time.perf_counter() - clock
        self.log(f"plan validated: {len(validated.actions)} steps, every check passed")
        return validated

    def act_and_verify(self, validated: ValidatedPlan, seen: Sighting) -> None:
        if self.options.dry_run:
            self.log("dry run: nothing moved")
            return
        if self.confirm is not None and not self.confirm(validated):
            raise Declined("the operator declined the plan; nothing moved")
        clock = time.perf_counter()
        timings, total = self.result.timings, len(validated.actions)
        try:
            report = execute(validated.actions, self.cell.robot,
                             on_step=lambda a, r: self.log(_step_line(a, r, total)))
        except ExecutionFailed as failed:
            self.result.steps_executed = len(failed.steps_done)
            timings.simulated_s = sum(s.duration_s for s in failed.steps_done)
            raise
        finally:
            timings.execution_s = time.perf_counter() - clock
        self.result.steps_executed, timings.simulated_s = len(report.steps), report.duration_s

        clock = time.perf_counter()
        self.log("checking the result")
        after = self.cell.camera.capture()
        save_png(self.out_dir / "final.png", after.rgb)
        seen_after = locate_objects(perceive(self.brain, after), after)
        pointing = check_goals(goals_of(validated.transfers, seen.objects), seen_after,
                               after.calibration)
        self._combine_with_judgement(seen.frame, after, pointing)
        timings.verification_s = time.perf_counter() - clock

    def _combine_with_judgement(self, before: Frame, after: Frame, pointing: Verification) -> None:
        """Perception's check, and the model's own judgement when the brain can give one."""
        result = self.result
        result.verified, result.verification = pointing.verified, pointing.reason
        if "judge" not in self.brain.capabilities:
            return
        try:
            verdict = parse_verdict(self.brain.judge(before, after, self.task))
        except ErarmError as err:
            result.verified = False
            result.verification += f"; the model could not judge: {err}"
            return
        result.model_verdict = verdict.model_dump()
        result.verified = verdict.done and (pointing.verified or not pointing.goals)
        result.verification = (f"{pointing.reason}; the model says "
                               f"{'done' if verdict.done else 'not done'}: {verdict.reason}")

    def finish(self, error: ErarmError | None) -> RunResult:
        result = self.result
        if error is not None:
            result.error, result.exit_code = str(error), error.exit_code
        if self.cell.referee is not None and not result.dry_run:
            result.ground_truth = self.cell.referee.judge()
            result.success = result.ground_truth.success
        result.timings.total_s = time.perf_counter() - self.started
        if result.error is None:
            done = result.success if result.success is not None else result.verified
            result.exit_code = 0 if result.dry_run or done else 1
        (self.out_dir / "result.json").write_text(result.model_dump_json(indent=2))
        return result


def _conduct(episode: Episode, steps: Callable[[], None]) -> RunResult:
    """Run the episode's steps; any `ErarmError` (or an interrupt before motion) ends up in
    the result with its exit code, never as an exception."""
    try:
        steps()
    except ErarmError as err:
        return episode.finish(err)
    except KeyboardInterrupt:
        return episode.finish(Interrupted("interrupted before the arm moved", []))
    return episode.finish(None)


def run_task(task: str, brain: Brain, cell: Workcell, out_dir: Path, log: Log = lambda _: None,
             options: RunOptions | None = None, confirm: Confirm | None = None) -> RunResult:
    """Do the task with this brain in this cell. Never raises an `ErarmError`: it is recorded in
    the result, with its exit code, instead."""
    options = options or RunOptions()
    episode = Episode(task, brain, cell, out_dir, log, options, confirm)

    def steps() -> None:
        seen = episode.look()
        clock = time.perf_counter()
        log(f"planning with the {brain.name} brain")
        plan, _ = make_plan(brain, task, seen.objects, seen.frame, cell.robot.limits)
        if options.trajectory_points:
            plan = carry_along(plan, episode.carry_path(seen.frame, options.trajectory_points))
        episode.act_and_verify(episode.validate(plan, seen, clock), seen)

    return _conduct(episode, steps)


def execute_plan(plan_text: str, task: str, brain: Brain, cell: Workcell, out_dir: Path,
                 log: Log = lambda _: None, options: RunOptions | None = None,
                 confirm: Confirm | None = None) -> RunResult:
    """Run a plan from a file (model text or JSON): the brain only looks, for validation and
    verification; the plan itself is taken as written, if it passes every check."""
    options = options or RunOptions()
    episode = Episode(task, brain, cell, out_dir, log, options, confirm)

    def steps() -> None:
        plan = parse_plan(plan_text)  # a bad file fails before the camera is used
        seen = episode.look()
        episode.act_and_verify(episode.validate(plan, seen, time.perf_counter()), seen)

    return _conduct(episode, steps)
