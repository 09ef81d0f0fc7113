"""Replay a flight record: its timeline, and its robot commands sent again to a fresh simulator.

A record keeps every command the arm was sent (`record/robot.jsonl`) and the scene it started
from (`scene.json`), so a simulated run can be re-executed command for command. The simulator is
deterministic, so a faithful replay ends as the recording did; where it does not, the first
command whose reached pose (position or wrist yaw) differs shows where.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from erarm.agent.execute import StepReport, execute
from erarm.agent.recording.run_folder import RECORD
from erarm.agent.schemas import describe
from erarm.agent.validate import Action, Reachable, check_pose
from erarm.robots.base import GroundTruth, Robot, ToolPose, WorkspaceLimits
from erarm.robots.errors import ConfigError
from erarm.robots.files import read_input_text

YAW_TOLERANCE_DEG = 5.0  # a recorded arm reached its commanded yaw at least this closely


class TimelineEvent(BaseModel):
    t: float  # seconds since the run started
    event: str


class RecordedCommand(BaseModel):
    """One line of robot.jsonl: a command, and what the arm reported back."""

    t: float
    context: str = ""  # e.g. "round 2"
    command: Literal["move_to", "set_gripper", "return_to_origin", "stop"]
    commanded: ToolPose | None = None
    reached: ToolPose | None = None
    opened: bool | None = None
    holding: bool | None = None
    outcome: Literal["finished", "unfinished"] = "finished"  # unfinished: stopped on the way
    error: str | None = None  # why it did not finish


class Recording(BaseModel):
    run_dir: Path
    task: str
    recorded: GroundTruth | None  # the simulator's verdict at the end of the recorded run
    timeline: list[TimelineEvent]
    commands: list[RecordedCommand]
    scene: Path | None  # the layout the run started from (simulator runs only)


class ReplayedCommand(BaseModel):
    index: int
    context: str
    call: str  # e.g. move_to(464, 190, 18, 80)
    deviation_mm: float | None = None  # replayed reached pose vs recorded reached pose
    yaw_deviation_deg: float | None = None  # replayed reached yaw vs recorded reached yaw
    holding: bool | None = None
    recorded_holding: bool | None = None


class ReplayResult(BaseModel):
    task: str
    commands: list[ReplayedCommand]
    max_deviation_mm: float
    max_yaw_deviation_deg: float
    recorded_success: bool | None
    success: bool | None
    reason: str
    reproduced: bool  # ended as the recording did
    unfinished: list[str] = []  # recorded motions that stopped on the way, not redone


def read_jsonl(path: Path, model: type[BaseModel]) -> list:
    """A flight record's JSONL file, each line as `model`; a damaged line is a `ConfigError`."""
    if not path.exists():
        return []
    items = []
    for number, line in enumerate(read_input_text(path, "flight record").splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(model.model_validate_json(line))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(map(str, first["loc"])) or "line"
            raise ConfigError(f"{path} line {number}: {where}: {first['msg']}") from None
    return items


def load_recording(folder: Path) -> Recording:
    """A run folder (or its record/ folder) as kept by --record."""
    folder = Path(folder)
    if not folder.exists():
        raise ConfigError(f"run folder {folder} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a run folder")
    if folder.name == RECORD and not (folder / RECORD).is_dir():
        folder = folder.parent
    record = folder / RECORD
    if not record.is_dir():
        raise ConfigError(f"{folder} holds no flight record (no {RECORD}/ folder); record a run "
                          "with --record")
    text = read_input_text(folder / "result.json", "run result")
    try:
        result = json.loads(text)
        task = str(result["task"])
        truth = result.get("ground_truth")
        recorded = GroundTruth.model_validate(truth) if truth else None
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise ConfigError(f"{folder}/result.json is not an erarm result: {err}") from None
    scene = folder / "scene.json"
    return Recording(run_dir=folder, task=task, recorded=recorded,
                     timeline=read_jsonl(record / "timeline.jsonl", TimelineEvent),
                     commands=read_jsonl(record / "robot.jsonl", RecordedCommand),
                     scene=scene if scene.is_file() else None)


def _action(index: int, command: RecordedCommand) -> Action | None:
    """A recorded command as an action for the executor; None for a stop (nothing to redo) and
    for a motion that did not finish (how far it went cannot be redone)."""
    if command.outcome == "unfinished":
        return None
    if command.command == "move_to":
        pose = command.commanded
        if pose is None:
            raise ConfigError(f"recorded command {index}: move_to without a commanded pose")
        args = [round(v * 1000, 1) for v in (pose.x, pose.y, pose.z)]
        command_text = describe({"function": "move_to",
                                 "args": [*args, round(math.degrees(pose.yaw), 1)]})
        return Action(step=index, command=command_text, pose=pose)
    if command.command == "set_gripper":
        if command.opened is None:
            raise ConfigError(f"recorded command {index}: set_gripper without opened")
        return Action(step=index, opened=command.opened,
                      command=describe({"function": "set_gripper", "args": [command.opened]}))
    if command.command == "return_to_origin":
        return Action(step=index, command="return_to_origin()")
    return None


def yaw_difference_deg(a: float, b: float, period: float = 2 * math.pi) -> float:
    """How far apart two yaws (radians) are, in degrees, for a symmetry of `period` radians."""
    return abs(math.degrees((b - a + period / 2) % period - period / 2))


def _check_yaw(where: str, command: RecordedCommand) -> list[str]:
    """A recorded move's reached yaw must be its commanded one (or the half turn that a
    parallel gripper pointing down takes for free): otherwise the record is not of that move."""
    commanded, reached = command.commanded, command.reached
    if commanded is None or reached is None:
        return []
    off = yaw_difference_deg(commanded.yaw, reached.yaw, math.pi)
    if not off <= YAW_TOLERANCE_DEG:
        raise ConfigError(f"{where}: the record says the wrist reached yaw "
                          f"{math.degrees(reached.yaw):.1f} degrees for a commanded "
                          f"{math.degrees(commanded.yaw):.1f}; the record is damaged")
    return [f"recorded yaw within {off:.1f} degrees"]


def replay_actions(commands: list[RecordedCommand], limits: WorkspaceLimits,
                   reachable: Reachable | None) -> list[Action]:
    """The recorded commands as actions, every pose checked against the envelope and the arm's
    joint limits, and its recorded yaw against its commanded one, before any of them runs."""
    actions = []
    for index, command in enumerate(commands, 1):
        action = _action(index, command)
        if action is None:
            continue
        if action.pose is not None:
            where = f"recorded command {index}"
            action.checks = check_pose(where, action.pose, limits, reachable)
            action.checks += _check_yaw(where, command)
        actions.append(action)
    return actions


def _distance_mm(a: ToolPose, b: ToolPose) -> float:
    return math.dist((a.x, a.y, a.z), (b.x, b.y, b.z)) * 1000


def replay(recording: Recording, robot: Robot, judge: Callable[[], GroundTruth],
           on_command: Callable[[ReplayedCommand], None] = lambda _: None) -> ReplayResult:
    """Re-send every recorded command to `robot`, then judge the task from ground truth."""
    actions = replay_actions(recording.commands, robot.limits, robot.reachable)
    replayed: list[ReplayedCommand] = []

    def compare(action: Action, step: StepReport) -> None:
        recorded = recording.commands[action.step - 1]
        both = step.reached is not None and recorded.reached is not None
        deviation = _distance_mm(step.reached, recorded.reached) if both else None
        turn = yaw_difference_deg(step.reached.yaw, recorded.reached.yaw) if both else None
        replayed.append(ReplayedCommand(index=action.step, context=recorded.context,
                                        call=action.label, deviation_mm=deviation,
                                        yaw_deviation_deg=turn, holding=step.holding,
                                        recorded_holding=recorded.holding))
        on_command(replayed[-1])

    execute(actions, robot, on_step=compare)
    truth = judge()
    recorded = recording.recorded.success if recording.recorded else None
    deviations = [c.deviation_mm for c in replayed if c.deviation_mm is not None]
    turns = [c.yaw_deviation_deg for c in replayed if c.yaw_deviation_deg is not None]
    unfinished = [f"command {index} {command.command} did not finish ({command.error})"
                  for index, command in enumerate(recording.commands, 1)
                  if command.outcome == "unfinished"]
    return ReplayResult(task=recording.task, commands=replayed, unfinished=unfinished,
                        max_deviation_mm=max(deviations, default=0.0),
                        max_yaw_deviation_deg=max(turns, default=0.0),
                        recorded_success=recorded, success=truth.success, reason=truth.reason,
                        reproduced=truth.success == recorded and not unfinished)
