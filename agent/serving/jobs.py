"""The MCP server's jobs: every use of the workcell runs on the main thread, one at a time, queued
from the protocol's thread (`Bench`); a motion needs the permission given at start, and `stop`
halts it as Ctrl-C does."""

from __future__ import annotations

import concurrent.futures
import math
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erarm.agent import interrupts
from erarm.agent.brains.base import Brain
from erarm.agent.config import Orchestration
from erarm.agent.execute import stop_arm
from erarm.agent.redaction import redact
from erarm.robots.base import Workcell
from erarm.robots.errors import ErarmError

Log = Callable[[str], None]


class Refused(ErarmError):
    """A tool call refused before anything ran: no permission, busy, bad input."""


class Stopped(ErarmError):
    """The motion was halted by `stop` (or by its caller going away); the arm stopped there."""

    exit_code = 130


def one_line(text: str) -> str:
    """A message as the one line a tool error is: whitespace collapsed, secrets masked."""
    return redact(" ".join(str(text).split()))


@dataclass
class ServerOptions:
    allow_motion: bool = False  # the operator's permission to move the arm, given at start
    out: Path = Path("runs/mcp")  # each call's run folder goes in here
    orchestration: Orchestration = Orchestration.auto
    log: Log = lambda _: None  # progress lines (the command line's stderr)
    url: str | None = None  # where HTTP clients reach the server; None: stdio
    token: str | None = None  # the bearer token HTTP clients must send


# -- the job queue: every use of the workcell, on the main thread -----------------------------

@dataclass
class Job:
    name: str
    work: Callable[[], Any]
    motion: bool
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)

    def settle(self, value: Any = None, error: BaseException | None = None) -> None:
        if self.future.done():
            return
        if error is None:
            self.future.set_result(value)
        else:
            self.future.set_exception(error)


class Bench:
    """The workcell, its brain and what the server knows of them: the queue of jobs the main
    thread runs (`serve_jobs`), the motion running, the last motion's result."""

    def __init__(self, cell: Workcell, brain: Brain, options: ServerOptions):
        self.cell, self.brain, self.options = cell, brain, options
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._current: Job | None = None  # the job the main thread is running
        self._motion: Job | None = None  # the motion accepted, queued or running
        self._moving = False  # the main thread is inside the motion: a halt reaches it
        self._stop_asked = False  # `stop` was called for the motion
        self._started = 0.0
        self._progress: str | None = None  # the motion's last progress line
        self._last: dict | None = None  # the last motion's outcome, for `status`
        self._closed = False
        self._calls = 0
        self._away = False  # see `away`

    # -- from the protocol's threads -------------------------------------------------------
    def submit(self, name: str, work: Callable[[], Any], motion: bool = False) -> Job:
        """Queue `work` for the main thread; refused while a motion runs (one at a time)."""
        if motion and not self.options.allow_motion:
            raise Refused(f"{name} moves the arm, and this server was started without "
                          "--allow-motion: restart it as `erarm mcp --allow-motion` to let it "
                          "move (look, point, detect, dry_run_plan and status work without it)")
        job = Job(name, work, motion)
        with self._lock:
            if self._closed:
                raise Refused("the server is shutting down")
            if self._motion is not None:
                raise Refused(f"{self._motion.name} is running: one motion at a time, and "
                              "nothing else uses the workcell meanwhile (status shows its "
                              "progress, stop halts it)")
            if motion:
                self._motion, self._stop_asked, self._progress = job, False, None
                self._started = time.monotonic()
            self._jobs.put(job)
        return job

    def stop(self) -> Job | None:
        """Halt the motion running (the arm stops where it is, as for Ctrl-C), or keep one
        queued from starting; the motion's job, or None when there is none."""
        with self._lock:
            job = self._motion
            if job is None or self._stop_asked:
                return job
            self._stop_asked = True
            if self._moving:
                interrupts.halt_main()
        return job

    def status(self) -> dict:
        """The robot's state, read now (also while a motion runs), and the server's."""
        robot = self.cell.robot
        with self._lock:
            motion = self._motion
            moving = {"running": motion is not None}
            if motion is not None:
                moving.update(tool=motion.name,
                              elapsed_s=round(time.monotonic() - self._started, 2),
                              progress=self._progress, stopping=self._stop_asked)
            last = self._last
        state = robot.state()
        tool = state.tool
        return {
            "robot": robot.name, "physical": bool(robot.physical),
            "motion_allowed": self.options.allow_motion, "brain": self.brain.name,
            "joints_rad": [round(q, 4) for q in state.joint_positions_rad],
            "joints_deg": [round(math.degrees(q), 1) for q in state.joint_positions_rad],
            "tool_mm": {"x": round(tool.x * 1000, 1), "y": round(tool.y * 1000, 1),
                        "z": round(tool.z * 1000, 1),
                        "yaw_deg": round(math.degrees(tool.yaw), 1)},
            "gripper": {"open": state.gripper_open,
                        "opening_mm": round(state.gripper_opening_m * 1000, 1),
                        "holding": state.holding},
            "motion": moving, "last_result": last}

    def close(self) -> None:
        """No more jobs: a motion running is halted, the main thread's loop ends."""
        with self._lock:
            self._closed = True
        self.stop()
        self._jobs.put(None)

    # -- the main thread -------------------------------------------------------------------
    def serve_jobs(self) -> None:
        """Run the jobs as they come, until `close`. A halt that lands outside a run (a stop
        asked as the motion was ending) settles the job it cut short as stopped; a real
        interrupt (Ctrl-C, SIGTERM) ends the loop."""
        while True:
            try:
                try:
                    job = self._jobs.get(timeout=0.2)
                except queue.Empty:
                    continue
                if job is None:
                    return
                self._run(job)
            except interrupts.Halt:
                cut = self._current
                stop_arm(self.cell.robot)
                if cut is not None:
                    cut.settle(error=Stopped(f"{cut.name} was stopped"))
                    self._end(cut)
            if interrupts.interrupted():
                return

    def _run(self, job: Job) -> None:
        self._current = job
        try:
            if job.motion:
                with self._lock:
                    if self._stop_asked:
                        raise Stopped(f"{job.name} was stopped before it started; nothing "
                                      "moved")
                    self._moving = True
            job.settle(job.work())
        except interrupts.Halt:  # it landed outside erarm's own handling: stop all the same
            stop_arm(self.cell.robot)
            job.settle(error=Stopped(f"{job.name} was stopped"))
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the server winds down
            job.settle(error=Refused("the server was interrupted"))
            raise
        except Exception as err:
            job.settle(error=err)
        finally:
            self._end(job)

    def _end(self, job: Job) -> None:
        with self._lock:
            if self._motion is job:
                self._motion, self._moving = None, False
            if self._current is job:
                self._current = None

    # -- what the jobs share ---------------------------------------------------------------
    def folder(self, tool: str, about: str = "") -> Path:
        """A new run folder's path for one call (claimed by the run itself), numbered on from
        the folders already in --out (a restarted server with the same --out goes on)."""
        if self._calls == 0 and self.options.out.is_dir():
            taken = [int(m[1]) for p in self.options.out.iterdir()
                     if (m := re.match(r"(\d+)-", p.name))]
            self._calls = max(taken, default=0)
        self._calls += 1
        slug = re.sub(r"[^a-z0-9]+", "-", redact(about).lower()).strip("-")[:40]
        return self.options.out / (f"{self._calls:03d}-{tool}" + (f"-{slug}" if slug else ""))

    def log(self, line: str) -> None:
        self._progress = line = redact(line)
        self.options.log(line)

    @property
    def away(self) -> bool:
        """The last motion ended early after moving: the arm may be where it stopped."""
        return self._away

    def moved(self, ok: bool, moved: bool) -> None:
        """Note how the last motion ended: whole (at home), or early after it began moving."""
        if ok:
            self._away = False
        elif moved:
            self._away = True

    def stop_was_asked(self) -> bool:
        with self._lock:
            return self._stop_asked

    def remember(self, tool: str, summary: dict) -> None:
        with self._lock:
            self._last = {"tool": tool, **{k: summary.get(k) for k in (
                "success", "verified", "steps_executed", "exit_code", "error", "stopped",
                "out_dir")}}
