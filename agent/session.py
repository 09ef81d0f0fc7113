"""A session: one task in one workcell, and what every orchestrator shares.

The session holds the run's state (the cell's robot and camera, the brain, the envelope, the
recorder, the run folder, the result being filled in, the phase) and offers the steps an
orchestrator is made of: look (capture, check the calibration, perceive, locate), validate a
plan against what was seen, execute validated actions (after asking, when asked to), back off,
judge, and finish. How those steps are put together, which plan to ask for and when to look
again, is the orchestrator's (`erarm.agent.orchestration`); every file goes through the run
folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable
from weakref import WeakKeyDictionary

from pydantic import BaseModel

from erarm.agent import interrupts
from erarm.agent.brains.base import Brain, require
from erarm.agent.calibrate import require_fit
from erarm.agent.config import Orchestration
from erarm.agent.errors import (
    Declined,
    ExecutionFailed,
    GaveUp,
    Interrupted,
    ReplyError,
    WithheldReply,
)
from erarm.agent.execute import ExecutionReport, StepReport, Watch, execute, stop_arm
from erarm.agent.geometry import locate
from erarm.agent.goals import (
    VERIFY_MARGIN_MM,
    ModelGoals,
    TaskGoal,
    check_task,
    read_model_goals,
    task_goals,
)
from erarm.agent.locate import locate_objects
from erarm.agent.overlay import draw, draw_goals
from erarm.agent.parallel import Answer, Asked, together
from erarm.agent.parse import parse_trajectory, parse_verdict
from erarm.agent.perceive import Perception, perceive, questions_per_look
from erarm.agent.recording.recorder import Recorder, RecordingBrain, RecordingRobot
from erarm.agent.recording.rerun_view import RerunOptions, RerunView, one_line
from erarm.agent.recording.run_folder import RECORD, RunFolder
from erarm.agent.results import ActionRecord, Interruption, Phase, RunResult, Stop
from erarm.agent.schemas import Plan, SceneObject, Verdict
from erarm.agent.surface import SurfaceMap
from erarm.agent.validate import (
    Action,
    HeldObject,
    Landmark,
    StepValidator,
    ValidatedPlan,
    validate_plan,
)
from erarm.agent.verify import (
    Verification,
    carried_up,
    hang_check_pose,
    measure_held,
    sees_under,
)
from erarm.robots.base import Camera, Frame, Robot, ToolPose, Workcell
from erarm.robots.errors import ConfigError, ErarmError

T = TypeVar("T")
Log = Callable[[str], None]
Confirm = Callable[[ValidatedPlan], bool]
HANG_CHECK = "showing the gripper"  # the record's context of the motion that does it

# per robot: what its gripper holds by the checks of the steps it last ran, so the next plan,
# call or request (a new run, an MCP call) starts from it, not from an empty hand
_HOLDS: WeakKeyDictionary[Robot, HeldObject] = WeakKeyDictionary()


def held_by(robot: Robot, camera: Camera) -> HeldObject | None:
    """What `robot`'s gripper holds as checking begins: as the steps that took it checked it,
    else as the camera sees it hang, else unmeasured; None when it holds nothing."""
    state = robot.state()
    if not state.holding:
        _HOLDS.pop(robot, None)
        return None
    return _HOLDS.get(robot) or measure_held(camera.capture(), state)


def ran(robot: Robot, actions: list[Action]) -> None:
    """Remember what the gripper holds after the last of `actions` that ran."""
    if actions:
        held = actions[-1].held_after
        if held is None:
            _HOLDS.pop(robot, None)
        else:
            _HOLDS[robot] = held


@runtime_checkable
class AsksToGoOnLive(Protocol):
    """A `Confirm` the operator answers, who can also be asked, when a rehearsed run parts from
    its rehearsal (the arm stopped and home), whether the model may go on live: True to go on,
    each call checked, False to stop there."""

    def __call__(self, validated: ValidatedPlan) -> bool: ...

    def go_on_live(self, divergence: str) -> bool: ...


class RunOptions(BaseModel):
    dry_run: bool = False  # validate and report, move nothing
    strict_targets: bool = True  # moves down must go to something perceived
    trajectory_points: int = 0  # carry the object along a path the brain draws
    closed_loop: bool = True  # one pick and place at a time, looking again after each
    attempts_per_object: int = 3  # a grasp or place of the same object tried at most this often
    max_rounds: int = 12  # plan-execute-look rounds, at most
    reasks: int = 2  # a reply that cannot be read (cut off, no JSON) is asked again this often
    orchestration: Orchestration = Orchestration.auto  # auto: as the brain's model does it
    # a model calling functions step by step stops at the first of these
    max_turns: int = 40  # model turns in the conversation
    max_refused_calls: int = 8  # calls refused by validation or unreadable
    max_motions: int = 80  # calls that move the arm or the gripper
    time_limit_s: float = 900.0  # wall time of the conversation
    max_calls: int = 200  # calls of any kind, looks too
    max_calls_per_turn: int = 20  # calls after these in one turn are not run
    # rehearsal (always, on a physical arm): the loop runs in a twin first, then the real arm
    # replays its calls as one validated plan
    rehearse: bool = False
    max_rehearsals: int = 2  # a rehearsal that met something or did not finish is tried again
    resume_live: bool = False  # when the real run parts from the rehearsal, go on live
    rerun: RerunOptions | None = None  # the flight record shown in rerun as it is written


@dataclass
class Sighting:
    """What the camera and the brain saw at one moment."""

    frame: Frame
    perception: Perception
    objects: list[SceneObject]
    verdict: Answer | None = None  # the brain's judgement of this frame, when asked with it


def _step_line(action: Action, report: StepReport, total: int) -> str:
    """The step as the log shows it; "of total" only for steps of a plan known in advance."""
    line = f"step {action.step}" + (f"/{total}" if total >= action.step else "") + \
        f" {action.label}"
    if report.target is not None:
        t = report.target
        line += (f" -> ({t.x * 1000:.0f}, {t.y * 1000:.0f}, {t.z * 1000:.0f}) mm, "
                 f"reached within {report.error_mm:.1f} mm")
    elif report.holding:
        line += " holding an object"
    return line + f" [{report.duration_s:.2f} s]"


class Session:
    """One task in one workcell, filling in a `RunResult`."""

    def __init__(self, task: str, brain: Brain, cell: Workcell, folder: RunFolder, log: Log,
                 options: RunOptions, confirm: Confirm | None, record: bool = False,
                 narrate: Log | None = None):
        self.task, self.cell, self.folder = task, cell, folder
        self.options, self.confirm, self.record = options, confirm, record
        self.brain, self.robot = brain, cell.robot
        self.result = RunResult(task=task, brain=brain.name, robot=cell.robot.name,
                                out_dir=str(folder.path), dry_run=options.dry_run)
        self.started = time.perf_counter()
        self.looks = 0
        self.phase = Phase.starting
        self.recorder: Recorder | None = None
        self.task_goals: list[TaskGoal] = []  # what erarm checks itself, from the first look
        self.rerun: RerunView | None = None
        self.log = log
        self.narrate: Log = narrate or (lambda _: None)  # sentences to say aloud (--speak)

    def start(self) -> None:
        """The run folder's first files, and the recorder and video when asked for."""
        for name, content in self.cell.records.items():
            self.folder.write_json(name, content)
        rerun = self.options.rerun
        if not self.record and not (rerun and rerun.wanted):
            return
        recorder = self.recorder = Recorder(self.folder)
        if rerun and rerun.wanted:
            self.rerun = RerunView(rerun, self.folder.path.name, self.folder.path / RECORD)
            recorder.mirror = lambda stream, record: self._show(
                lambda view: view.add(stream, record))
        self.brain = RecordingBrain(self.brain, recorder)
        self.robot = RecordingRobot(self.cell.robot, recorder)
        log = self.log

        def log_and_record(message: str) -> None:
            recorder.event(message)
            log(message)

        self.log = log_and_record
        if self.cell.video is not None and not self.options.dry_run:
            self.cell.video.start(recorder.video_path)

    def _show(self, show: Callable[[RerunView], None]) -> None:
        """Something shown in rerun as well; a viewer or file that fails (gone, disk full) is a
        warning, and the run goes on without it: it watches, it does not steer."""
        if self.rerun is None:
            return
        try:
            show(self.rerun)
        except Exception as err:
            self._lose_rerun(err)

    def _lose_rerun(self, err: Exception) -> None:
        self.rerun = None
        if self.recorder is not None:
            self.recorder.mirror = None
        self.log(f"warning: rerun stopped ({one_line(err)}); the run goes on, its flight "
                 "record is whole")

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

    def asked(self, questions: int) -> None:
        """Count questions put to the brain together: one round trip to the model."""
        self.result.model_calls += questions
        self.result.model_round_trips += 1

    def reasked(self, ask: Callable[[], T], questions: int, what: str,
                first: Answer | None = None) -> T:
        """What `ask` (`questions` questions in one round trip) answers, or its `first` answer
        when it was already asked; a reply that could not be read is asked again (a model's
        reply may be cut off or lose its JSON now and then), at most `options.reasks` times."""
        answer = first
        if answer is None:
            self.asked(questions)
            answer = together(ask)[0]
        for _ in range(self.options.reasks):
            error = answer.error
            if not isinstance(error, ReplyError) or isinstance(error, WithheldReply):
                break
            self.log(f"warning: the {what} could not be read ({error}); asking again")
            self.asked(questions)
            answer = together(ask)[0]
        return answer.get()

    def look(self, judge_from: Frame | None = None) -> Sighting:
        """Capture, check the calibration still fits, perceive and locate everything. With
        `judge_from`, the brain also judges the task from that frame to this one, in the same
        round trip as the points and boxes."""
        clock = time.perf_counter()
        self.phase = Phase.looking
        first = self.looks == 0
        self.looks += 1
        self.log("looking at the table" if first else "looking again")
        frame = self.cell.camera.capture()
        if first and frame.calibration is None:  # nothing it sees could be placed
            raise ConfigError(f"camera {self.cell.camera.name} has no calibration: give "
                              "--calibration FILE (make one with erarm calibrate)")
        brain, task = self.brain, self.task

        def see() -> Perception:
            return perceive(brain, frame)

        judging = judge_from is not None and "judge" in brain.capabilities
        questions = [see]
        if judging:
            questions.append(lambda: parse_verdict(brain.judge(judge_from, frame, task)))
        asked = Asked(*questions)  # the model thinks while the frame is filed and checked
        looking = questions_per_look(brain)
        self.asked(looking + judging)  # points and boxes, and the judgement
        try:
            if self.recorder is not None:
                self.recorder.frame(frame, f"look-{self.looks}")
            if first:
                self.folder.write_png("camera.png", frame.rgb)
                self.folder.write_model("calibration.json", frame.calibration)
                self._show(lambda view: view.calibration(frame.calibration))
                # a moved camera stops us here (the robot renders itself: no recorded command)
                fit = require_fit(frame, self.cell.robot.limits, self.cell.robot)
                if fit is not None:
                    self.result.calibration_fit = fit
                    self.log(f"calibration fits: {fit.summary()}")
            else:
                self.folder.write_png("final.png", frame.rgb)
        except Exception:
            asked.wait()  # an error ends the run: no question left running in native code
            raise
        answers = asked.wait()
        perception = self.reasked(see, looking, "points and boxes", first=answers[0])
        objects = locate_objects(perception, frame)
        for warning in perception.warnings:  # malformed entries dropped, confused labels
            self.log(f"warning: {warning}")
        self.result.warnings += [w for w in perception.warnings if w not in self.result.warnings]
        self.result.timings.perception_s += time.perf_counter() - clock
        if self.recorder is not None:
            self.recorder.picture(draw(frame.rgb, perception.points, perception.boxes),
                                  f"look-{self.looks}-overlay")
            self.recorder.looked(frame, f"look-{self.looks}",
                                 [p.model_dump() for p in perception.points],
                                 [b.model_dump() for b in perception.boxes],
                                 [o.rounded().model_dump() for o in objects])
        if first:
            self.result.objects = [o.rounded() for o in objects]
            self.task_goals = task_goals(self.task, objects) or \
                self._model_goals(frame, objects)
            self.result.goals = [str(goal) for goal in self.task_goals]
            self.folder.write_png("overlay.png", draw_goals(
                draw(frame.rgb, perception.points, perception.boxes), self.task_goals, objects))
        self.log(f"saw {len(objects)} objects: {', '.join(o.label for o in objects) or 'none'}")
        return Sighting(frame, perception, objects, answers[1] if judging else None)

    def _model_goals(self, frame: Frame, objects: list[SceneObject]) -> list[TaskGoal]:
        """A task erarm's own reading cannot turn into goals ("pop the tomato sauce into the
        skillet"): the model's reading of it, checked against what was seen, or none."""
        if "goals" not in self.brain.capabilities or not objects:
            return []
        self.asked(1)
        try:
            read = read_model_goals(self.brain.read_goals(
                frame, self.task, list(dict.fromkeys(o.label for o in objects))), objects)
        except ErarmError as err:
            read = ModelGoals(refused=f"the model could not read the task as goals: {err}")
        if read.refused:
            self.log(f"warning: {read.refused}; erarm has no goal of its own to check")
            self.result.warnings.append(read.refused)
        else:
            self.log("the model reads the task as: " + "; ".join(map(str, read.goals)))
        return read.goals

    def carry_path(self, frame: Frame, points: int) -> list[tuple[float, float]]:
        """The brain's trajectory for the task, located on the table, without its start and
        end (the plan already goes there), in millimetres."""
        require(self.brain, "trajectory")
        self.log(f"asking for a {points}-point path to carry the object along")
        self.asked(1)
        path = parse_trajectory(self.brain.trajectory(frame, self.task, points=points))
        located = [locate(p.y, p.x, frame) for p in path[1:-1]]
        return [(float(q[0]) * 1000, float(q[1]) * 1000) for q in located if q is not None]

    def _landmarks(self, seen: Sighting) -> list[Landmark] | None:
        """What moves down may go to, when targets are strict: the objects seen."""
        if not self.options.strict_targets:
            return None
        return [Landmark(label=o.label, x_mm=o.position_mm[0], y_mm=o.position_mm[1],
                         radius_mm=o.radius_mm) for o in seen.objects]

    def validate(self, plan: Plan, seen: Sighting, clock: float, round_: int = 1,
                 looks_after: Collection[int] = ()) -> ValidatedPlan:
        """The plan resolved against what was seen, every check passed (or `PlanRejected`),
        and recorded: plan.json, the result's plan and actions, the overlay of the first.
        `looks_after`: the steps after which the camera looks and checks what was let go."""
        self.phase = Phase.planning
        robot, limits = self.robot, self.robot.limits
        state = robot.state()
        validated = validate_plan(plan, SurfaceMap(seen.frame, limits), limits,
                                  gripper_open=state.gripper_open, start_yaw=state.tool.yaw,
                                  landmarks=self._landmarks(seen), reachable=robot.reachable,
                                  looks_after=looks_after, start=state.tool,
                                  held=self.held())
        self.file_plan(validated, plan.reasoning, seen, round_)
        self.result.timings.planning_s += time.perf_counter() - clock
        self.log(f"plan validated: {len(validated.actions)} steps, every check passed")
        return validated

    def step_validator(self, seen: Sighting, steps: int = 0) -> StepValidator:
        """Checks calls one at a time against this look and the arm as it is now, numbering
        them on from `steps`."""
        robot, limits = self.robot, self.robot.limits
        state = robot.state()
        return StepValidator(SurfaceMap(seen.frame, limits), limits,
                             gripper_open=state.gripper_open, start_yaw=state.tool.yaw,
                             landmarks=self._landmarks(seen), reachable=robot.reachable,
                             steps=steps, start=state.tool, held=self.held())

    def held(self) -> HeldObject | None:
        """What the gripper holds as checking begins (a plan, a call or a request may start
        where another left the arm holding something)."""
        return held_by(self.cell.robot, self.cell.camera)

    def seen_again(self, validator: StepValidator, seen: Sighting) -> None:
        """Later calls are checked against this look."""
        validator.seen_again(SurfaceMap(seen.frame, self.robot.limits), self._landmarks(seen),
                             self.robot.state().tool)

    def file_plan(self, validated: ValidatedPlan, reasoning: str, seen: Sighting,
                  round_: int = 1) -> None:
        """Record validated steps: plan.json, the result's plan and actions, the recorder's
        plan, and the first look's overlay with the path drawn on it."""
        result = self.result
        result.plan = [a.call for a in validated.actions]
        result.actions = [ActionRecord.of(a) for a in validated.actions]
        result.reasoning = reasoning
        result.warnings += [w for w in validated.warnings if w not in result.warnings]
        for warning in validated.warnings:
            self.log(f"warning: {warning}")
        record = {"task": self.task, "reasoning": reasoning,
                  "plan": [a.call.call() for a in validated.actions],
                  "actions": [a.model_dump(mode="json") for a in result.actions],
                  "warnings": validated.warnings}
        self.folder.write_json("plan.json", record)
        if self.recorder is not None:
            self.recorder.plan(round_, record)
        if self.looks == 1:
            path = [(a.step, a.pose) for a in validated.actions if a.pose is not None]
            self.folder.write_png("overlay.png", draw(seen.frame.rgb, seen.perception.points,
                                                      seen.perception.boxes, path,
                                                      seen.frame.calibration))

    def act(self, actions: list[Action], validated: ValidatedPlan, watch: Watch | None = None,
            round_: int = 1, recover_blocked: bool = False, clear_view: bool = True,
            context: str = "", confirmed: bool = False) -> Stop | None:
        """Execute actions (after asking, when asked to, unless `confirmed` already); return
        why `watch` stopped them (or, with `recover_blocked`, why a blocked motion did), after
        backing off to leave the arm safe at home. With `clear_view`, actions that do not end at
        home are followed by the trip home, so the next look sees the table. `context` says in
        the record what the actions belong to (default: the round)."""
        if not confirmed:
            self.confirm_plan(validated)
        self.phase = Phase.moving
        clock = time.perf_counter()
        timings, total = self.result.timings, len(validated.actions)
        robot = self.robot
        if self.recorder is not None:
            self.recorder.context = context = context or f"round {round_}"
        try:
            report = execute(actions, robot, on_step=lambda a, r: self.log(_step_line(a, r, total)),
                             watch=watch, recover_blocked=recover_blocked)
        except ExecutionFailed as failed:
            ran(self.cell.robot, actions[:len(failed.steps_done)])
            self.result.steps_executed += len(failed.steps_done)
            timings.simulated_s += ExecutionReport(steps=failed.steps_done).duration_s
            raise
        finally:
            timings.execution_s += time.perf_counter() - clock
        ran(self.cell.robot, actions[:len(report.steps)])
        self.result.steps_executed += len(report.steps)
        timings.simulated_s += report.duration_s
        if report.stopped:
            self.log(f"{report.stopped.detail}; backing off to try again")
            self.narrate(f"The arm stopped: {report.stopped.detail.split(':')[0]}.")
            if self.recorder is not None:
                self.recorder.context = f"{context}: backing off"
            with self.moving():
                self._back_off()
        elif clear_view and actions and not actions[-1].goes_home:
            with self.moving():
                timings.simulated_s += robot.return_to_origin().duration_s  # clear the view
        return report.stopped

    def confirm_plan(self, validated: ValidatedPlan) -> None:
        """Ask the operator, when asked to; only a yes goes on."""
        if self.confirm is not None:
            self.phase = Phase.confirming
            if self.confirm(validated) is not True:
                raise Declined("the operator declined the plan; nothing moved")

    def check_what_vanished(self, after: Sighting) -> None:
        """Something seen at the start and not now may hang from the gripper: look there."""
        first = {o.label for o in self.result.objects}
        if self.result.steps_executed and first - {o.label for o in after.objects}:
            self.hang_check(after.frame)

    def hang_check(self, frame: Frame) -> None:
        """Whether something hangs from the open gripper (a bowl hooked on a finger), from
        `frame` (taken with the arm where it is now) when the camera sees under the fingers
        there, else by showing it the gripper (`hang_check_pose`) and going home again;
        something there ends the run."""
        robot = self.robot
        state = robot.state()
        if not state.gripper_open:
            return
        if sees_under(state.tool, frame.calibration):
            carried = carried_up(frame, state, [])
        else:
            pose = hang_check_pose(robot.limits, frame.calibration)
            if pose is None or robot.reachable(pose):
                return
            if self.recorder is not None:
                self.recorder.context = HANG_CHECK
            self.log("showing the camera the open gripper")
            with self.moving():
                moved = robot.move_to(pose).duration_s
                carried = carried_up(self.cell.camera.capture(), robot.state(), [])
                moved += robot.return_to_origin().duration_s
            self.result.timings.simulated_s += moved
        if carried is not None:
            raise GaveUp(f"stopped: {carried.detail}; free the gripper, then run again")

    def _back_off(self) -> None:
        """After a missed grasp, a drop or a blocked motion: open (unless the gripper still
        holds something: never let go in mid-air), rise straight up, go home. Then look, without
        the model: something that came up with the open gripper (a bowl hooked on a finger)
        ends the run."""
        robot = self.robot
        moved = 0.0 if robot.state().holding else robot.set_gripper(True).duration_s
        tool = robot.state().tool
        moved += robot.move_to(ToolPose(x=tool.x, y=tool.y, z=max(tool.z, robot.limits.travel_z),
                                        yaw=tool.yaw)).duration_s
        moved += robot.return_to_origin().duration_s
        self.result.timings.simulated_s += moved
        self.hang_check(self.cell.camera.capture())

    def judge(self, before: Frame, after: Sighting, pointing: Verification) -> None:
        """erarm's own check of the task's goals in the last look, where what moved landed
        (`pointing`), and the model's judgement when the brain can give one (the one asked with
        the last look, else a question now): verified only when all of them agree it is done.
        A task erarm cannot check itself is never verified on the model's word alone."""
        self.check_what_vanished(after)  # before anything is called done
        clock = time.perf_counter()
        self.phase = Phase.verifying
        result = self.result
        # a group ("all the blocks") over what either look saw: one missed at the start counts
        goals = task_goals(self.task, [*result.objects, *after.objects]) or self.task_goals
        own = check_task(goals, after.objects, VERIFY_MARGIN_MM)
        placed = pointing.verified or not pointing.goals  # nothing let go: nothing to place
        # goals that did not hold at the start cannot come to hold with nothing set down: the
        # looks disagree (a point far off), so erarm cannot tell
        unmoved = own.holds is True and not pointing.goals and \
            check_task(goals, result.objects).holds is not True
        result.verified = own.holds is True and placed and not unmoved
        if unmoved:
            result.verification = ("unverifiable: nothing was set down, yet the goals that did "
                                   "not hold in the first look hold in the last (the looks "
                                   "disagree)")
        elif own.holds is not True:
            result.verification = own.reason
        elif not placed:
            result.verification = pointing.reason
        else:
            result.verification = own.reason + (f"; {pointing.reason}" if pointing.goals else "")
        if "judge" in self.brain.capabilities:
            try:
                verdict = after.verdict.get() if after.verdict else self._ask_judge(before, after)
            except ErarmError as err:
                result.verified = False
                result.verification += f"; the model could not judge: {err}"
            else:
                result.model_verdict = verdict
                result.verified = result.verified and verdict.done
                result.verification = (f"{result.verification}; the model says "
                                       f"{'done' if verdict.done else 'not done'}: "
                                       f"{verdict.reason}"
                                       + (f" ({verdict.progress}% done)"
                                          if verdict.progress is not None else ""))
        result.timings.verification_s += time.perf_counter() - clock

    def _ask_judge(self, before: Frame, after: Sighting) -> Verdict:
        self.asked(1)
        return parse_verdict(self.brain.judge(before, after.frame, self.task))

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
            if result.error is None:  # a live session that ended as asked has done its job
                done = result.live is not None or (
                    result.success if result.success is not None else result.verified)
                result.exit_code = 0 if result.dry_run or done else 1
            self.folder.write_result(result)
            self._show(lambda view: view.finish(result.model_dump(mode="json")))
            self.narrate(_outcome_sentence(result))
            if interrupts.take():
                note_interruption(result, self.interruption(), self.folder)
        return result


def _outcome_sentence(result: RunResult) -> str:
    """How the run ended, in a sentence to say aloud."""
    if result.error:
        return f"I stopped: {result.error.split(';')[0]}."
    if result.dry_run:
        return "The plan is valid; nothing moved."
    if result.success is not None:
        reason = result.ground_truth.reason if result.ground_truth else ""
        return ("Done: " if result.success else "Not done: ") + reason + "."
    return ("Done: " if result.verified else "Not done: ") + result.verification + "."


def note_interruption(result: RunResult, interruption: Interruption, folder: RunFolder) -> None:
    """An interrupt that came after the run's outcome was settled (while writing its result or
    closing the workcell): the outcome stands, the record says when, and the exit code is 130."""
    result.interrupted, result.exit_code = interruption.phase, Interrupted.exit_code
    result.error = result.error or interruption.message
    folder.write_result(result)
