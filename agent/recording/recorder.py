"""The flight recorder: everything an episode saw, asked, planned and did, kept to be replayed.

In the run folder's `record/`: `frames/` (every camera frame the agent used, and the overlays),
`exchanges.jsonl` (every question to the brain and its reply, images by reference; for Gemini the
request's model, prompt and sizes too; API keys redacted), `plans/` (each round's parsed and
validated plan), `robot.jsonl` (every command sent to the arm, with the pose commanded and the
pose reached), `timeline.jsonl` (the log, timed) and `run.mp4` (the run, filmed by the simulator).

A run folder belongs to one run (`RunFolder`), so a record never mixes two runs' commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from erarm.agent.brains.base import Brain, PlanRequest
from erarm.agent.overlay import save_png
from erarm.agent.secrets import redact
from erarm.robots.base import Frame, GripperReport, MoveReport, Robot, RobotState, ToolPose
from erarm.robots.errors import ConfigError

RECORD = "record"
OWNER = ".erarm-run"  # created atomically by the one run a run folder belongs to
# what a run (or a bench) leaves: a folder holding any of them is another run's
RUN_FILES = ("result.json", "plan.json", "scene.json", "camera.png", "bench.json", RECORD)


class RunFolder:
    """A run folder, owned by one run: `claim` creates its owner file atomically (O_EXCL), so
    of two runs given one folder, at once or one after the other, only the first gets it."""

    def __init__(self, path: Path, created: bool = False):
        self.path, self.created = path, created

    @classmethod
    def claim(cls, path: Path) -> RunFolder:
        """Claim `path` for this run; a one-line `ConfigError` (nothing written) when it is a
        file, cannot be created or written, or holds another run."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"run folder {path} is a file, not a folder: choose another --out")
        created = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot create the run folder {path}: "
                              f"{err.strerror or err}") from None
        traces = [name for name in RUN_FILES if (path / name).exists()]
        if (path / OWNER).exists() or traces:
            what = ", ".join(traces) or OWNER
            raise ConfigError(f"run folder {path} holds another run ({what}): a run folder "
                              "belongs to one run, choose a new --out")
        try:
            descriptor = os.open(path / OWNER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise ConfigError(f"run folder {path} is being used by another run: a run folder "
                              "belongs to one run, choose a new --out") from None
        except OSError as err:
            raise ConfigError(f"cannot write to the run folder {path}: "
                              f"{err.strerror or err}") from None
        with os.fdopen(descriptor, "w", encoding="utf-8") as owner:
            owner.write(json.dumps({"pid": os.getpid(), "started": time.time()}) + "\n")
        return cls(path, created)

    def abandon(self) -> None:
        """Give the folder back when the run never started (its workcell could not be opened):
        the owner file goes, and the folder too if this run created it and it is empty."""
        (self.path / OWNER).unlink(missing_ok=True)
        if self.created:
            with contextlib.suppress(OSError):
                self.path.rmdir()

    @classmethod
    def claim_new(cls, path: Path) -> RunFolder:
        """A default run folder: `path`, or `path-2`, `path-3`, ... when runs started in the same
        second took the first."""
        for number in range(1, 1000):
            candidate = path if number == 1 else path.with_name(f"{path.name}-{number}")
            if (candidate.is_dir() and any(candidate.iterdir())) or candidate.is_file():
                continue
            try:
                return cls.claim(candidate)
            except ConfigError:
                if not (candidate / OWNER).exists():
                    raise  # not a race lost to another run: a real problem
        raise ConfigError(f"cannot find a free run folder next to {path}")


class Recorder:
    def __init__(self, run_dir: Path):
        self.folder = Path(run_dir) / RECORD
        (self.folder / "frames").mkdir(parents=True, exist_ok=True)
        (self.folder / "plans").mkdir(exist_ok=True)
        self._started = time.perf_counter()
        # frames already saved, by id; each keeps its array, so no later array can take its id
        self._frames: dict[int, tuple[object, str]] = {}
        self.context = ""  # what the arm is doing, e.g. "round 1 step 3"

    def _append(self, name: str, record: dict) -> None:
        record = {"t": round(time.perf_counter() - self._started, 3), **record}
        line = redact(json.dumps(record, default=str))
        with open(self.folder / name, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def frame(self, frame: Frame, what: str) -> str:
        """Save a frame once; the path it is kept under, relative to the record."""
        saved = self._frames.get(id(frame.rgb))
        return saved[1] if saved else self.picture(frame.rgb, what)

    def picture(self, rgb, what: str) -> str:
        name = f"frames/{len(self._frames):03d}-{what}.png"
        save_png(self.folder / name, rgb)
        self._frames[id(rgb)] = (rgb, name)
        return name

    def event(self, message: str) -> None:
        self._append("timeline.jsonl", {"event": message})

    def exchange(self, record: dict) -> None:
        self._append("exchanges.jsonl", record)

    def plan(self, round_: int, record: dict) -> None:
        path = self.folder / "plans" / f"round-{round_:02d}.json"
        path.write_text(redact(json.dumps(record, indent=2, default=str)))

    def command(self, record: dict) -> None:
        self._append("robot.jsonl", {"context": self.context, **record})

    @property
    def video_path(self) -> str:
        return str(self.folder / "run.mp4")


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
        self._requests: list[dict] = []
        reporting = _model_exchanges(inner)
        if reporting is not None:
            reporting.on_exchange = self._requests.append

    def _ask(self, kind: str, frames: Sequence[Frame], question: str, call) -> str:
        images = [self.recorder.frame(frame, "seen") for frame in frames]
        self._requests.clear()
        record = {"kind": kind, "brain": self.name, "question": question, "images": images}
        try:
            reply = call()
        except Exception as err:
            self.recorder.exchange({**record, "error": str(err),
                                    "model_requests": list(self._requests)})
            raise
        self.recorder.exchange({**record, "reply": reply, "model_requests": list(self._requests)})
        return reply

    def point(self, frame: Frame, queries: Sequence[str] | None = None, limit: int = 10) -> str:
        return self._ask("point", [frame], f"point at {', '.join(queries or []) or 'everything'}",
                         lambda: self.inner.point(frame, queries, limit))

    def detect(self, frame: Frame, limit: int = 25) -> str:
        return self._ask("detect", [frame], f"boxes, at most {limit}",
                         lambda: self.inner.detect(frame, limit))

    def plan(self, request: PlanRequest, frame: Frame) -> str:
        seen = "; ".join(f"{o.label} at ({o.position_mm[0]:.0f}, {o.position_mm[1]:.0f})"
                         for o in request.objects)
        return self._ask("plan", [frame], f"plan: {request.task} | seen: {seen}",
                         lambda: self.inner.plan(request, frame))

    def trajectory(self, frame: Frame, instruction: str, points: int = 15) -> str:
        return self._ask("trajectory", [frame], f"{points}-point path: {instruction}",
                         lambda: self.inner.trajectory(frame, instruction, points))

    def judge(self, before: Frame, after: Frame, task: str) -> str:
        return self._ask("judge", [before, after], f"done? {task}",
                         lambda: self.inner.judge(before, after, task))


class RecordingRobot:
    """Wraps a robot: records every command, the pose commanded and the pose reached."""

    def __init__(self, inner: Robot, recorder: Recorder):
        self.inner, self.recorder = inner, recorder

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)  # name, limits, physical, marker, ...

    def move_to(self, pose: ToolPose) -> MoveReport:
        report = self.inner.move_to(pose)
        self.recorder.command({"command": "move_to", "commanded": pose.model_dump(),
                               "reached": report.reached.model_dump(),
                               "error_mm": report.position_error_m * 1000,
                               "duration_s": report.duration_s})
        return report

    def set_gripper(self, opened: bool) -> GripperReport:
        report = self.inner.set_gripper(opened)
        self.recorder.command({"command": "set_gripper", "opened": opened,
                               "holding": report.holding, "opening_mm": report.opening_m * 1000,
                               "duration_s": report.duration_s})
        return report

    def return_to_origin(self) -> MoveReport:
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
