"""The flight recorder: everything an episode saw, asked, planned and did, kept to be replayed.

In the run folder's `record/`: `frames/` (every camera frame the agent used, and the overlays),
`exchanges.jsonl` (every question to the brain and its reply, images by reference; for Gemini the
request's model, prompt and sizes too; API keys redacted), `looks.jsonl` (each look: its frame and
depth, the points and boxes perceived, the objects located in the robot frame), `plans/` (each
round's parsed and validated plan), `robot.jsonl` (every command sent to the arm, with the pose
commanded and the pose reached), `timeline.jsonl` (the log, timed) and `run.mp4` (the run,
filmed by the simulator).

The run folder (`erarm.agent.recording.run_folder`) writes it, and belongs to one run, so a
record never mixes two runs' commands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from erarm.agent.brains.base import Brain, Conversation, ModelTurn, PlanRequest, ToolResult
from erarm.agent.recording.run_folder import RECORD, RunFolder
from erarm.robots.base import Frame, GripperReport, MoveReport, Robot, RobotState, ToolPose

Mirror = Callable[[str, dict], None]  # (the record's file, one record): each as it is written


class Recorder:
    """The flight record's layout: what goes in which file under `record/`; the run folder
    writes it."""

    def __init__(self, folder: RunFolder):
        self.run_folder = folder
        self._started = time.perf_counter()
        # frames already saved, by id; each keeps its array, so no later array can take its id
        self._frames: dict[int, tuple[object, str]] = {}
        self.context = ""  # what the arm is doing, e.g. "round 1 step 3"
        self._lock = threading.RLock()  # questions to the brain are recorded from their threads
        self._streamed = 0  # media files of a live session so far
        self.mirror: Mirror | None = None  # another view of the record (rerun)

    def _now(self) -> float:
        return round(time.perf_counter() - self._started, 3)

    def _append(self, name: str, record: dict) -> None:
        with self._lock:
            record = {"t": self._now(), **record}
            self.run_folder.append_line(f"{RECORD}/{name}", record)
            if self.mirror is not None:
                self.mirror(name, record)

    def frame(self, frame: Frame, what: str) -> str:
        """Save a frame once; the path it is kept under, relative to the record."""
        with self._lock:
            saved = self._frames.get(id(frame.rgb))
            return saved[1] if saved else self.picture(frame.rgb, what)

    def picture(self, rgb, what: str) -> str:
        with self._lock:
            name = f"frames/{len(self._frames):03d}-{what}.png"
            self.run_folder.write_png(f"{RECORD}/{name}", rgb)
            self._frames[id(rgb)] = (rgb, name)
            return name

    def looked(self, frame: Frame, what: str, points: list[dict], boxes: list[dict],
               objects: list[dict]) -> None:
        """A look: its frame (and depth, as a 16-bit PNG in millimetres), what was perceived in
        it (normalized points and boxes) and the objects located from it (the robot frame)."""
        with self._lock:
            record = {"image": self.frame(frame, what), "width": frame.size[0],
                      "height": frame.size[1], "points": points, "boxes": boxes,
                      "objects": objects}
            if frame.depth_m is not None:
                depth_mm = np.nan_to_num(frame.depth_m * 1000, nan=0, posinf=0, neginf=0)
                record["depth"] = name = f"frames/{len(self._frames):03d}-{what}-depth.png"
                self.run_folder.write_png(f"{RECORD}/{name}",
                                          np.clip(depth_mm, 0, 65535).astype(np.uint16))
                self._frames[id(frame.depth_m)] = (frame.depth_m, name)
            self._append("looks.jsonl", record)

    def event(self, message: str) -> None:
        self._append("timeline.jsonl", {"event": message})

    def exchange(self, record: dict) -> None:
        self._append("exchanges.jsonl", record)

    def streamed(self, record: dict, media: bytes | None = None, suffix: str = "") -> None:
        """One message of a live session, either way (`live.jsonl`); media sent with it (a
        frame, audio) is kept beside it, named in the record."""
        with self._lock:
            if media is not None:
                self._streamed += 1
                name = f"live/{self._streamed:04d}-{record.get('sent', 'media')}{suffix}"
                self.run_folder.write_bytes(f"{RECORD}/{name}", media)
                record = {**record, "file": name, "bytes": len(media)}
            self._append("live.jsonl", record)

    def plan(self, round_: int, record: dict) -> None:
        with self._lock:
            record = {"t": self._now(), "round": round_, **record}
            self.run_folder.write_json(f"{RECORD}/plans/round-{round_:02d}.json", record)
            if self.mirror is not None:
                self.mirror("plans", record)

    def command(self, record: dict) -> None:
        self._append("robot.jsonl", {"context": self.context, **record})

    @property
    def video_path(self) -> str:
        """Where the workcell's video films the run (the video writes it itself)."""
        path = self.run_folder.path / RECORD / "run.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)


def _model_exchanges(brain: object) -> object | None:
    """The innermost brain that reports its model requests (Gemini), through any wrappers."""
    while brain is not None and not hasattr(brain, "on_exchange"):
        brain = getattr(brain, "inner", None)
    return brain


class RecordingBrain:
    """Wraps a brain: records each question, the frames it was shown, and the reply."""

    def __init__(self, inner: Brain, recorder: Recorder):
        self.inner, self.recorder = inner, recorder
        self.name, self.capabilities = inner.name, inner.capabilities
        self._asking = threading.local()  # each question's model requests, in its own thread
        reporting = _model_exchanges(inner)
        if reporting is not None:
            reporting.on_exchange = lambda request: self._asking.requests.append(request)

    def _ask(self, kind: str, frames: Sequence[Frame], question: str, call):
        """The call's reply (text, or a model's turn), recorded with the question."""
        images = [self.recorder.frame(frame, "seen") for frame in frames]
        requests = self._asking.requests = []
        record = {"kind": kind, "brain": self.name, "question": question, "images": images}
        try:
            reply = call()
        except Exception as err:
            self.recorder.exchange({**record, "error": str(err), "model_requests": requests})
            raise
        kept = reply if isinstance(reply, str) else reply.model_dump()
        self.recorder.exchange({**record, "reply": kept, "model_requests": requests})
        return reply

    def point(self, frame: Frame, queries: Sequence[str] | None = None, limit: int = 10) -> str:
        return self._ask("point", [frame], f"point at {', '.join(queries or []) or 'everything'}",
                         lambda: self.inner.point(frame, queries, limit))

    def detect(self, frame: Frame, limit: int = 25) -> str:
        return self._ask("detect", [frame], f"boxes, at most {limit}",
                         lambda: self.inner.detect(frame, limit))

    def locate(self, frame: Frame, limit: int = 25) -> str:
        return self._ask("locate", [frame], f"points and boxes, at most {limit}",
                         lambda: self.inner.locate(frame, limit))

    def plan(self, request: PlanRequest, frame: Frame) -> str:
        seen = "; ".join(f"{o.label} at ({o.position_mm[0]:.0f}, {o.position_mm[1]:.0f})"
                         for o in request.objects)
        return self._ask("plan", [frame], f"plan: {request.task} | seen: {seen}",
                         lambda: self.inner.plan(request, frame))

    def converse(self, request: PlanRequest, frame: Frame) -> RecordingConversation:
        return RecordingConversation(self, self.inner.converse(request, frame), request, frame)

    def trajectory(self, frame: Frame, instruction: str, points: int = 15) -> str:
        return self._ask("trajectory", [frame], f"{points}-point path: {instruction}",
                         lambda: self.inner.trajectory(frame, instruction, points))

    def judge(self, before: Frame, after: Frame, task: str) -> str:
        return self._ask("judge", [before, after], f"done? {task}",
                         lambda: self.inner.judge(before, after, task))

    def read_goals(self, frame: Frame, task: str, labels: Sequence[str]) -> str:
        return self._ask("goals", [frame], f"goals of: {task} | seen: {', '.join(labels)}",
                         lambda: self.inner.read_goals(frame, task, labels))


class RecordingConversation:
    """Wraps a conversation: records each of the model's turns with what was sent for it."""

    def __init__(self, brain: RecordingBrain, inner: Conversation, request: PlanRequest,
                 frame: Frame):
        self.brain, self.inner, self.request, self.frame = brain, inner, request, frame

    def start(self) -> ModelTurn:
        return self.brain._ask("tools", [self.frame], f"tools: {self.request.task}",
                               self.inner.start)

    def reply(self, results: list[ToolResult]) -> ModelTurn:
        sent = "; ".join(f"{r.call.name} -> {r.response}" for r in results)
        return self.brain._ask("tools", [r.image for r in results if r.image is not None],
                               f"results: {sent}", lambda: self.inner.reply(results))

    def tell(self, message: str, frame: Frame) -> ModelTurn:
        return self.brain._ask("tools", [frame], f"told: {message}",
                               lambda: self.inner.tell(message, frame))

    def again(self) -> ModelTurn:
        return self.brain._ask("tools", [], "the same again", self.inner.again)


class RecordingRobot:
    """Wraps a robot: records every command, the pose commanded and the pose reached."""

    def __init__(self, inner: Robot, recorder: Recorder):
        self.inner, self.recorder = inner, recorder

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)  # name, limits, physical, marker, ...

    @contextmanager
    def _unfinished_noted(self, command: str, **fields: object) -> Iterator[None]:
        """A command that does not finish (a collision, an interrupt, a halt) is recorded: what
        was sent and where the arm is, so the record never ends as if it had been made."""
        try:
            yield
        except BaseException as err:
            try:
                where = {"reached": self.inner.state().tool.model_dump()}
            except Exception:  # a lost connection: where it stopped is unknown
                where = {}
            self.recorder.command({"command": command, **fields, **where,
                                   "outcome": "unfinished", "error": str(err) or
                                   type(err).__name__})
            raise

    def move_to(self, pose: ToolPose) -> MoveReport:
        with self._unfinished_noted("move_to", commanded=pose.model_dump()):
            report = self.inner.move_to(pose)
        self.recorder.command({"command": "move_to", "commanded": pose.model_dump(),
                               "reached": report.reached.model_dump(),
                               "error_mm": report.position_error_m * 1000,
                               "duration_s": report.duration_s})
        return report

    def set_gripper(self, opened: bool) -> GripperReport:
        with self._unfinished_noted("set_gripper", opened=opened):
            report = self.inner.set_gripper(opened)
        self.recorder.command({"command": "set_gripper", "opened": opened,
                               "holding": report.holding, "opening_mm": report.opening_m * 1000,
                               "duration_s": report.duration_s})
        return report

    def return_to_origin(self) -> MoveReport:
        with self._unfinished_noted("return_to_origin"):
            report = self.inner.return_to_origin()
        self.recorder.command({"command": "return_to_origin",
                               "reached": report.reached.model_dump(),
                               "duration_s": report.duration_s})
        return report

    def state(self) -> RobotState:
        return self.inner.state()

    def reachable(self, pose: ToolPose) -> str | None:
        return self.inner.reachable(pose)

    def stop(self) -> None:
        self.recorder.command({"command": "stop"})
        self.inner.stop()

    def connect(self) -> None:
        self.inner.connect()

    def close(self) -> None:
        self.inner.close()
