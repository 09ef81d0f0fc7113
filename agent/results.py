"""What a run did, as typed records: the result of a task or plan file (`result.json`, `--json`),
each round's outcome, the resolved actions, timings, and where an interrupt landed.

These are the hand-offs between the session, the orchestrators, the CLI, the API and the
benchmark: control flow reads their fields, never the wording of a message.
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import BaseModel

from erarm.agent.calibrate import FitReport
from erarm.agent.config import Orchestration
from erarm.agent.schemas import RecordedCall, SceneObject, Verdict
from erarm.agent.validate import Action
from erarm.robots.base import GroundTruth


class Phase(StrEnum):
    """What a run was doing, as its record says when an interrupt lands."""

    opening = "opening the workcell"
    starting = "starting the run folder, recorder and video"
    looking = "looking"
    planning = "planning"
    rehearsing = "rehearsing in a simulated twin"
    confirming = "asking the operator"
    moving = "moving"
    verifying = "verifying"
    writing = "writing the result"
    closing = "closing the workcell"


class Outcome(StrEnum):
    """How one round of moving went. The first four are what the gripper watch and the driver
    see while the arm moves; the rest what the look afterwards (or the brain) says."""

    missed_grasp = "missed grasp"  # the gripper closed on nothing
    dropped = "dropped"  # the object slipped out on the way
    jammed = "jammed"  # something stayed between the fingers as they opened
    blocked = "blocked"  # the arm met something on its way and stopped short
    placed = "placed"
    landed_elsewhere = "landed elsewhere"
    carried = "carried off"  # what was let go came up with the open gripper, hanging under it
    diverged = "diverged"  # the real arm or camera parted from what the rehearsal showed
    refused = "refused"  # the plan failed validation against this look; nothing moved
    done = "done"  # the brain found nothing left to do


class Stop(BaseModel):
    """Why the gripper watch ended a batch of steps early, and what it saw."""

    outcome: Outcome
    detail: str  # for people: "missed grasp: the gripper closed on nothing"


class Timings(BaseModel):
    perception_s: float = 0.0
    planning_s: float = 0.0
    execution_s: float = 0.0
    verification_s: float = 0.0
    total_s: float = 0.0
    simulated_s: float = 0.0  # robot time spent moving (simulated seconds in the simulator)
    rehearsal_s: float = 0.0  # wall time of the rehearsals in a twin


class Attempt(BaseModel):
    """One round of the closed loop: what it tried to move, and how that went."""

    round: int
    item: str | None = None
    target: str | None = None
    outcome: Outcome
    detail: str = ""
    steps: int = 0
    round_trips: int = 0  # model round trips in sequence this round (concurrent questions: one)


class TargetMm(BaseModel):
    """A resolved tool pose as people read it: millimetres and degrees."""

    x_mm: float
    y_mm: float
    z_mm: float
    yaw_deg: float


class ActionRecord(BaseModel):
    """One validated step as the record keeps it: the call, its target, why, and its checks."""

    step: int
    call: RecordedCall | None
    target: TargetMm | None
    why: str
    checks: list[str]
    added: bool

    @classmethod
    def of(cls, action: Action) -> ActionRecord:
        pose = action.pose
        target = None if pose is None else TargetMm(
            x_mm=round(pose.x * 1000, 1), y_mm=round(pose.y * 1000, 1),
            z_mm=round(pose.z * 1000, 1), yaw_deg=round(math.degrees(pose.yaw), 1))
        return cls(step=action.step, call=action.call, target=target, why=action.why,
                   checks=action.checks, added=action.added)


class CallOutcome(StrEnum):
    """What became of one function call of a model that orchestrates step by step."""

    ran = "ran"  # validated and executed (or, in a dry run, validated only)
    observed = "observed"  # an observation (a look, the gripper's state) answered
    refused = "refused"  # failed a check or could not be read; nothing moved
    stopped = "stopped"  # ran, and the arm met something or the gripper lost its hold
    skipped = "skipped"  # not run: a call before it in the same turn was refused or stopped


class ToolCallRecord(BaseModel):
    """One function call as the record keeps it: the model's call, and what erarm answered."""

    turn: int
    id: str | None = None
    name: str
    args: dict
    outcome: CallOutcome
    response: dict


class RehearsalRecord(BaseModel):
    """A step-by-step model rehearsed in a simulated twin of the perceived scene, then its calls
    replayed on the real arm as one validated plan (a live session's commands add up here)."""

    attempts: int = 0  # rehearsals run (a failed one is tried again from a fresh twin)
    calls: int = 0  # function calls the model made in the twins
    refused: int = 0  # of those, refused by erarm's checks
    collisions: int = 0  # motions that met something in a twin: caught before the real arm moved
    verified: bool = False  # the last rehearsal finished the task, by erarm's check and the model's
    reason: str = ""  # why the last rehearsal was or was not taken
    steps: int = 0  # steps of the rehearsed plan validated against the real look
    diverged: str | None = None  # where the real run parted from the rehearsal
    resumed_live: bool = False  # after that, the model went on live (--resume-live)
    folders: list[str] = []  # each rehearsal's own run folder


class SessionEnd(StrEnum):
    """How a live session ended."""

    commands_done = "commands_done"  # the last command was answered (and watched, if asked)
    operator_stop = "operator_stop"  # a typed or spoken "stop": the arm halted, then the end
    go_away = "go_away"  # the server announced it would close the session: the arm halted
    dropped = "dropped"  # the connection ended unasked: the arm halted
    interrupted = "interrupted"  # Ctrl-C or SIGTERM
    timed_out = "timed_out"  # the model owed an answer too long, or the session ran too long
    failed = "failed"  # an error ended it (a limit, the robot)


class LiveRecord(BaseModel):
    """A streaming session with a model on the Live API: what went each way, and how it ended."""

    model: str = ""
    frames_sent: int = 0  # camera frames streamed (JPEG)
    frames_per_s: float = 0.0  # their rate, from the first frame to the last
    audio_s: float = 0.0  # seconds of 16 kHz PCM sent
    commands: list[str] = []  # what the operator typed, read from a file or said (as text)
    said: list[str] = []  # what the model said, turn by turn
    ended: SessionEnd | None = None
    reason: str = ""  # why, in words


class RunResult(BaseModel):
    task: str
    brain: str
    robot: str
    dry_run: bool = False
    success: bool | None = None  # the simulator's ground truth; None when there is none
    verified: bool = False  # perception's verdict (with the model's, when the brain can judge)
    verification: str = ""
    model_verdict: Verdict | None = None  # from a brain that can judge
    calibration_fit: FitReport | None = None  # how well the camera calibration fits the scene
    ground_truth: GroundTruth | None = None
    objects: list[SceneObject] = []  # what the first look located
    goals: list[str] = []  # what erarm understood the task to ask, and checks itself
    plan: list[RecordedCall] = []  # the validated calls of the last plan, erarm's additions too
    actions: list[ActionRecord] = []  # each of them resolved: target, how, the checks passed
    reasoning: str = ""
    warnings: list[str] = []
    attempts: list[Attempt] = []
    tool_calls: list[ToolCallRecord] = []  # a step-by-step model's calls, in order
    orchestration: Orchestration = Orchestration.plan  # how it ran: plan or tools
    rehearsal: RehearsalRecord | None = None  # the tool loop rehearsed in a twin first
    live: LiveRecord | None = None  # a streaming session (erarm live) instead of one task
    steps_executed: int = 0
    model_calls: int = 0  # questions asked of the brain
    model_round_trips: int = 0  # the same, counting questions asked together once
    timings: Timings = Timings()
    out_dir: str | None = None
    error: str | None = None
    interrupted: Phase | None = None  # what the run was doing when Ctrl-C or SIGTERM came
    exit_code: int = 0


class Interruption(BaseModel):
    phase: Phase
    message: str

    @classmethod
    def during(cls, phase: Phase, steps: int, stopped: bool = False) -> Interruption:
        moved = "before the arm moved" if steps == 0 else f"after {steps} steps"
        arm = "; the arm was stopped there" if stopped else ""
        return cls(phase=phase, message=f"interrupted while {phase}, {moved}{arm}")
