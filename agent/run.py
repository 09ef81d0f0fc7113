"""A task (or a plan file), end to end: perceive -> locate -> plan -> validate -> execute -> verify.

`run_task` works in a closed loop: it plans from what it sees, checks the whole plan, executes
only its first pick and place, and looks again: did the gripper hold the object, did it land
where it should? Then it plans again from the new view, so a missed grasp is retried and a
changed scene replanned, until the brain says the task is done or an object has failed too often.
`execute_plan` runs a plan file as written, after the same checks.

Every step's output lands in the run folder (camera.png, calibration.json, overlay.png,
plan.json, result.json, final.png) and, with a recorder, much more.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel

from erarm.agent import interrupts
from erarm.agent.brains.base import Brain, require
from erarm.agent.calibrate import require_fit
from erarm.agent.errors import Declined, ExecutionFailed, GaveUp, Interrupted
from erarm.agent.execute import ExecutionReport, StepReport, execute, stop_arm
from erarm.agent.geometry import locate
from erarm.agent.locate import footprint_radius_mm, locate_objects
from erarm.agent.overlay import draw, save_png
from erarm.agent.parse import parse_plan, parse_trajectory, parse_verdict
from erarm.agent.perceive import Perception, perceive
from erarm.agent.plan import carry_along, make_plan
from erarm.agent.recording.recorder import Recorder, RecordingBrain, RecordingRobot, RunFolder
from erarm.agent.schemas import Plan, SceneObject, describe
from erarm.agent.secrets import redact
from erarm.agent.surface import SurfaceMap
from erarm.agent.validate import Action, Landmark, ValidatedPlan, validate_plan
from erarm.agent.verify import Goal, Verification, check_goals, goals_of
from erarm.robots.base import Frame, GroundTruth, ToolPose, Workcell
from erarm.robots.errors import ConfigError, ErarmError

Log = Callable[[str], None]
Confirm = Callable[[ValidatedPlan], bool]


class RunOptions(BaseModel):
    dry_run: bool = False  # validate and report, move nothing
    strict_targets: bool = True  # moves down must go to something perceived
    trajectory_points: int = 0  # carry the object along a path the brain draws
    closed_loop: bool = True  # one pick and place at a time, looking again after each
    attempts_per_object: int = 3  # a grasp or place of the same object tried at most this often
    max_rounds: int = 12  # plan-execute-look rounds, at most


class Phase(StrEnum):
    """What a run was doing, as its record says when an interrupt lands."""

    opening = "opening the workcell"
    starting = "starting the run folder, recorder and video"
    looking = "looking"
    planning = "planning"
    confirming = "asking the operator"
    moving = "moving"
    verifying = "verifying"
    writing = "writing the result"
    closing = "closing the workcell"


class Timings(BaseModel):
    perception_s: float = 0.0
    planning_s: float = 0.0
    execution_s: float = 0.0
    verification_s: float = 0.0
    total_s: float = 0.0
    simulated_s: float = 0.0  # robot time spent moving (simulated seconds in the simulator)


class Attempt(BaseModel):
    """One round of the closed loop: what it tried to move, and how that went."""

    round: int
    item: str | None = None
    target: str | None = None
    outcome: str  # placed, missed grasp, dropped, landed elsewhere, done
    detail: str = ""
    steps: int = 0


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
    plan: list[dict] = []  # the validated calls of the last plan, erarm's additions included
    actions: list[dict] = []  # each of them resolved: target in mm, how, the checks passed
    reasoning: str = ""
    warnings: list[str] = []
    attempts: list[Attempt] = []
    steps_executed: int = 0
    timings: Timings = Timings()
    out_dir: str | None = None
    error: str | None = None
    interrupted: Phase | None = None  # what the run was doing when Ctrl-C or SIGTERM came
    exit_code: int = 0


@dataclass
class Sighting:
    """What the camera and the brain saw at one moment."""

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


def first_transfer(validated: ValidatedPlan) -> list[Action]:
    """The actions up to the end of the first pick and place: through the first release, the
    moves up that follow it and a return home right after. A plan with no pick and place is
    returned whole."""
    actions = validated.actions
    closed = False
    for index, action in enumerate(actions):
        if action.opened is False:
            closed = True
        elif action.opened is True and closed:
            end = index + 1
            while end < len(actions) and actions[end].pose is not None and \
                    actions[end].call["args"][2] is True:
                end += 1  # the lift after letting go
            if end < len(actions) and actions[end].call["function"] == "returnToOrigin":
                end += 1
            return actions[:end]
    return actions


def _holding_watch(robot) -> Callable[[Action, StepReport], str | None]:
    """Between closing on an object and letting go, the gripper must keep holding it."""
    holding = False

    def watch(action: Action, step: StepReport) -> str | None:
        nonlocal holding
        if action.opened is False:
            holding = bool(step.holding)
            return None if holding else "missed grasp: the gripper closed on nothing"
        if action.opened is True:
            holding = False
            if step.holding:
                return "jammed: an object stayed wedged between the open fingers"
        elif holding and not robot.state().holding:
            holding = False
            return "dropped: the object slipped out of the gripper"
        return None

    return watch


class Episode:
    """One task in one workcell, filling in a `RunResult`."""

    def __init__(self, task: str, brain: Brain, cell: Workcell, out_dir: Path | RunFolder,
                 log: Log, options: RunOptions, confirm: Confirm | None, record: bool = False):
        folder = out_dir if isinstance(out_dir, RunFolder) else RunFolder.claim(out_dir)
        self.task, self.cell, self.out_dir = task, cell, folder.path
        self.options, self.confirm, self.record = options, confirm, record
        self.brain, self.robot = brain, cell.robot
        self.result = RunResult(task=task, brain=brain.name, robot=cell.robot.name,
                                out_dir=str(folder.path), dry_run=options.dry_run)
        self.started = time.perf_counter()
        self.looks = 0
        self.phase = Phase.starting
        self.recorder: Recorder | None = None
        self.log = log

    def start(self) -> None:
        """The run folder's first files, and the recorder and video when asked for."""
        for name, content in self.cell.records.items():
            (self.out_dir / name).write_text(json.dumps(content, indent=2))
        if not self.record:
            return
        recorder = self.recorder = Recorder(self.out_dir)
        self.brain = RecordingBrain(self.brain, recorder)
        self.robot = RecordingRobot(self.cell.robot, recorder)
        log = self.log

        def log_and_record(message: str) -> None:
            recorder.event(message)
            log(message)

        self.log = log_and_record
        if self.cell.video is not None and not self.options.dry_run:
            self.cell.video.start(recorder.video_path)

    @contextmanager
    def moving(self) -> Iterator[None]:
        """Motion outside `execute` (backing off, going home to clear the view): an interrupt
        stops the arm where it is, as it does mid-plan."""
        self.phase = Phase.moving
        try:
            yield
        except KeyboardInterrupt:
            stop_arm(self.robot)
            raise Interrupted(self.interruption(stopped=True).message, []) from None

    def interruption(self, stopped: bool = False) -> Interruption:
        """What an interrupt now means, from the run's own state: its phase and the steps run."""
        return Interruption.during(self.phase, self.result.steps_executed, stopped)

    def look(self) -> Sighting:
        """Capture, check the calibration still fits, perceive and locate everything."""
        clock = time.perf_counter()
        self.phase = Phase.looking
        first = self.looks == 0
        self.looks += 1
        self.log("looking at the table" if first else "looking again")
        frame = self.cell.camera.capture()
        if self.recorder is not None:
            self.recorder.frame(frame, f"look-{self.looks}")
        if first:
            if frame.calibration is None:  # nothing it sees could be placed in the robot's frame
                raise ConfigError(f"camera {self.cell.camera.name} has no calibration: give "
                                  "--calibration FILE (make one with erarm calibrate)")
            save_png(self.out_dir / "camera.png", frame.rgb)
            (self.out_dir / "calibration.json").write_text(
                frame.calibration.model_dump_json(indent=2))
            # a moved camera stops us here (the robot renders itself: no recorded command)
            fit = require_fit(frame, self.cell.robot.limits, self.cell.robot)
            if fit is not None:
                self.result.calibration_fit = fit.model_dump()
                self.log(f"calibration fits: {fit.summary()}")
        else:
            save_png(self.out_dir / "final.png", frame.rgb)
        perception = perceive(self.brain, frame)
        for warning in perception.warnings:  # malformed entries the parser dropped
            self.log(f"warning: {warning}")
        self.result.warnings += [w for w in perception.warnings if w not in self.result.warnings]
        objects = locate_objects(perception, frame)
        self.result.timings.perception_s += time.perf_counter() - clock
        if self.recorder is not None:
            self.recorder.picture(draw(frame.rgb, perception.points, perception.boxes),
                                  f"look-{self.looks}-overlay")
        if first:
            self.result.objects = [o.summary() for o in objects]
            save_png(self.out_dir / "overlay.png", draw(frame.rgb, perception.points,
                                                        perception.boxes))
        self.log(f"saw {len(objects)} objects: {', '.join(o.label for o in objects) or 'none'}")
        return Sighting(frame, perception, objects)

    def carry_path(self, frame: Frame, points: int) -> list[tuple[float, float]]:
        """The brain's trajectory for the task, located on the table, without its start and
        end (the plan already goes there)."""
        require(self.brain, "trajectory")
        self.log(f"asking for a {points}-point path to carry the object along")
        path = parse_trajectory(self.brain.trajectory(frame, self.task, points=points))
        located = [locate(p.y, p.x, frame) for p in path[1:-1]]
        return [(float(q[0]) * 1000, float(q[1]) * 1000) for q in located if q is not None]

    def validate(self, plan: Plan, seen: Sighting, clock: float, round_: int = 1
                 ) -> ValidatedPlan:
        self.phase = Phase.planning
        robot, limits = self.robot, self.robot.limits
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
        result.warnings += [w for w in validated.warnings if w not in result.warnings]
        for warning in validated.warnings:
            self.log(f"warning: {warning}")
        record = {"task": self.task, "reasoning": plan.reasoning, "plan": result.plan,
                  "actions": result.actions, "warnings": validated.warnings}
        (self.out_dir / "plan.json").write_text(redact(json.dumps(record, indent=2)))
        if self.recorder is not None:
            self.recorder.plan(round_, record)
        if self.looks == 1:
            path = [(a.step, a.pose) for a in validated.actions if a.pose is not None]
            save_png(self.out_dir / "overlay.png", draw(seen.frame.rgb, seen.perception.points,
                                                        seen.perception.boxes, path,
                                                        seen.frame.calibration))
        result.timings.planning_s += time.perf_counter() - clock
        self.log(f"plan validated: {len(validated.actions)} steps, every check passed")
        return validated

    def act(self, actions: list[Action], validated: ValidatedPlan, watched: bool,
            round_: int = 1) -> str | None:
        """Execute actions (after asking, when asked to); return why a watch stopped them, after
        leaving the arm safe at home."""
        if self.confirm is not None:
            self.phase = Phase.confirming
            if not self.confirm(validated):
                raise Declined("the operator declined the plan; nothing moved")
        self.phase = Phase.moving
        clock = time.perf_counter()
        timings, total = self.result.timings, len(validated.actions)
        robot = self.robot
        if self.recorder is not None:
            self.recorder.context = f"round {round_}"
        try:
            report = execute(actions, robot, on_step=lambda a, r: self.log(_step_line(a, r, total)),
                             watch=_holding_watch(robot) if watched else None)
        except ExecutionFailed as failed:
            self.result.steps_executed += len(failed.steps_done)
            timings.simulated_s += ExecutionReport(steps=failed.steps_done).duration_s
            raise
        finally:
            timings.execution_s += time.perf_counter() - clock
        self.result.steps_executed += len(report.steps)
        timings.simulated_s += report.duration_s
        if report.stopped:
            self.log(f"{report.stopped}; backing off to try again")
            if self.recorder is not None:
                self.recorder.context = f"round {round_}: backing off"
            with self.moving():
                self._back_off()
        elif actions and actions[-1].call["function"] != "returnToOrigin":
            with self.moving():
                timings.simulated_s += robot.return_to_origin().duration_s  # clear the view
        return report.stopped

    def _back_off(self) -> None:
        """After a missed grasp or a drop: open, rise straight up, go home."""
        robot = self.robot
        moved = robot.set_gripper(True).duration_s
        tool = robot.state().tool
        moved += robot.move_to(ToolPose(x=tool.x, y=tool.y, z=robot.limits.travel_z,
                                        yaw=tool.yaw)).duration_s
        moved += robot.return_to_origin().duration_s
        self.result.timings.simulated_s += moved

    def judge(self, before: Frame, after: Sighting, pointing: Verification) -> None:
        """Perception's check, and the model's own judgement when the brain can give one."""
        clock = time.perf_counter()
        self.phase = Phase.verifying
        result = self.result
        result.verified, result.verification = pointing.verified, pointing.reason
        if "judge" in self.brain.capabilities:
            try:
                verdict = parse_verdict(self.brain.judge(before, after.frame, self.task))
            except ErarmError as err:
                result.verified = False
                result.verification += f"; the model could not judge: {err}"
            else:
                result.model_verdict = verdict.model_dump()
                result.verified = verdict.done and (pointing.verified or not pointing.goals)
                result.verification = (f"{pointing.reason}; the model says "
                                       f"{'done' if verdict.done else 'not done'}: "
                                       f"{verdict.reason}")
        result.timings.verification_s += time.perf_counter() - clock

    def finish(self, error: ErarmError | None) -> RunResult:
        """Score the run and write result.json; signals wait until it is written, and one that
        came meanwhile is recorded as such (the outcome stands, the exit code is 130)."""
        result = self.result
        with interrupts.deferred():
            if error is not None:
                result.error, result.exit_code = str(error), error.exit_code
                if isinstance(error, Interrupted):
                    result.interrupted = self.phase
            self.phase = Phase.writing
            if self.cell.video is not None:
                self.cell.video.stop()
            if self.cell.referee is not None and not result.dry_run:
                result.ground_truth = self.cell.referee.judge()
                result.success = result.ground_truth.success
            result.timings.total_s = time.perf_counter() - self.started
            if result.error is None:
                done = result.success if result.success is not None else result.verified
                result.exit_code = 0 if result.dry_run or done else 1
            write_result(self.out_dir, result)
            if interrupts.take():
                note_interruption(result, self.interruption(), self.out_dir)
        return result


class Interruption(BaseModel):
    phase: Phase
    message: str

    @classmethod
    def during(cls, phase: Phase, steps: int, stopped: bool = False) -> Interruption:
        moved = "before the arm moved" if steps == 0 else f"after {steps} steps"
        arm = "; the arm was stopped there" if stopped else ""
        return cls(phase=phase, message=f"interrupted while {phase}, {moved}{arm}")


def write_result(out_dir: Path, result: RunResult) -> None:
    with interrupts.deferred():
        (out_dir / "result.json").write_text(redact(result.model_dump_json(indent=2)))


def note_interruption(result: RunResult, interruption: Interruption, out_dir: Path) -> None:
    """An interrupt that came after the run's outcome was settled (while writing its result or
    closing the workcell): the outcome stands, the record says when, and the exit code is 130."""
    result.interrupted, result.exit_code = interruption.phase, Interrupted.exit_code
    result.error = result.error or interruption.message
    write_result(out_dir, result)


def interrupted_while_opening(task: str, brain: Brain, robot: str, folder: RunFolder
                              ) -> RunResult:
    """The record of a run interrupted before its workcell was open: nothing moved."""
    result = RunResult(task=task, brain=brain.name, robot=robot, out_dir=str(folder.path),
                       interrupted=Phase.opening, exit_code=Interrupted.exit_code,
                       error=Interruption.during(Phase.opening, 0).message)
    write_result(folder.path, result)
    return result


def _conduct(episode: Episode, steps: Callable[[], None]) -> RunResult:
    """Start the episode and run its steps; any `ErarmError`, and an interrupt wherever it lands,
    ends up in the result with its exit code, never as an exception."""
    try:
        episode.start()
        steps()
    except ErarmError as err:
        return episode.finish(err)
    except KeyboardInterrupt:
        return episode.finish(Interrupted(episode.interruption().message, []))
    return episode.finish(None)


def run_task(task: str, brain: Brain, cell: Workcell, out_dir: Path, log: Log = lambda _: None,
             options: RunOptions | None = None, confirm: Confirm | None = None,
             record: bool = False) -> RunResult:
    """Do the task with this brain in this cell. Never raises an `ErarmError` once the run folder
    is claimed (a `ConfigError` when it belongs to another run): it is recorded in the result,
    with its exit code, instead. `record` keeps a flight record in the run folder."""
    options = options or RunOptions()
    episode = Episode(task, brain, cell, out_dir, log, options, confirm, record)
    result = episode.result

    def steps() -> None:
        brain, log = episode.brain, episode.log  # as started: recording, when asked to
        seen = start = episode.look()
        achieved: dict[str, Goal] = {}  # per object moved: where it landed as planned
        failures: Counter[str] = Counter()
        for round_ in range(1, options.max_rounds + 1):
            clock = time.perf_counter()
            log(f"planning with the {brain.name} brain" + (f", round {round_}" if round_ > 1
                                                            else ""))
            plan, _ = make_plan(brain, task, seen.objects, seen.frame, cell.robot.limits)
            if not plan.calls:
                log("the brain says the task is done")
                result.attempts.append(Attempt(round=round_, outcome="done",
                                               detail=plan.reasoning))
                break
            if options.trajectory_points and round_ == 1:
                plan = carry_along(plan, episode.carry_path(seen.frame,
                                                            options.trajectory_points))
            validated = episode.validate(plan, seen, clock, round_)
            if options.dry_run:
                log("dry run: nothing moved")
                return
            batch = first_transfer(validated) if options.closed_loop else validated.actions
            goal = goals_of(validated.transfers[:1], seen.objects) if validated.transfers else []
            before = result.steps_executed
            problem = episode.act(batch, validated, watched=options.closed_loop, round_=round_)
            seen = episode.look()
            attempt = Attempt(round=round_, steps=result.steps_executed - before,
                              item=goal[0].item if goal else None,
                              target=goal[0].container if goal else None, outcome="placed")
            landed = check_goals(goal, seen.objects) if goal else None
            # fingers that could not open fully may only have met a neighbour: the look decides
            blocked = bool(problem) and problem.startswith("jammed")
            if problem and not (blocked and landed and landed.verified):
                attempt.outcome, attempt.detail = problem.split(":")[0], problem
            elif landed is not None:
                attempt.detail = landed.reason + ("; the fingers met something as they opened"
                                                  if blocked else "")
                if not landed.verified:
                    attempt.outcome = "landed elsewhere"
            result.attempts.append(attempt)
            log(f"round {round_}: {attempt.outcome}" + (f" ({attempt.detail})"
                                                        if attempt.detail else ""))
            if attempt.outcome == "placed":
                if goal:
                    achieved[goal[0].item] = goal[0]
            else:
                failures[attempt.item or "the plan"] += 1
                if failures[attempt.item or "the plan"] >= options.attempts_per_object:
                    raise GaveUp(f"gave up after {options.attempts_per_object} attempts on the "
                                 f"{attempt.item or 'plan'}: {attempt.detail}")
            if not options.closed_loop or not validated.transfers:
                break
        else:
            raise GaveUp(f"gave up after {options.max_rounds} rounds without finishing")
        pointing = (check_goals(list(achieved.values()), seen.objects) if achieved else
                    Verification(
                        verified=bool(result.attempts) and result.attempts[-1].outcome == "done",
                        reason="the brain found nothing left to do", goals=[]))
        episode.judge(start.frame, seen, pointing)

    return _conduct(episode, steps)


def execute_plan(plan_text: str, task: str, brain: Brain, cell: Workcell, out_dir: Path,
                 log: Log = lambda _: None, options: RunOptions | None = None,
                 confirm: Confirm | None = None, record: bool = False) -> RunResult:
    """Run a plan from a file (model text or JSON) as written, if it passes every check: the
    brain only looks, for validation and verification."""
    options = options or RunOptions()
    episode = Episode(task, brain, cell, out_dir, log, options, confirm, record)

    def steps() -> None:
        log = episode.log  # as started: recording, when asked to
        plan = parse_plan(plan_text)  # a bad file fails before the camera is used
        seen = episode.look()
        validated = episode.validate(plan, seen, time.perf_counter())
        if options.dry_run:
            log("dry run: nothing moved")
            return
        episode.act(validated.actions, validated, watched=False)
        after = episode.look()
        goals = goals_of(validated.transfers, seen.objects)
        pointing = check_goals(goals, after.objects) if goals else Verification(
            verified=True, goals=[], reason=f"all {len(validated.actions)} steps ran; the plan "
                                            "moves no object, so there is nothing to check")
        episode.judge(seen.frame, after, pointing)

    return _conduct(episode, steps)
