"""erarm as an MCP server (`erarm mcp`): the workcell's camera, perception, plan validation and
motion as tools any MCP client (an agent) can call, over stdio or streamable HTTP on loopback.

Every tool goes through erarm's own functions: `look` captures and perceives as a run's look
does (`perceive`, `locate_objects`), `point` and `detect` are `erarm.point` and `erarm.detect`,
`dry_run_plan` and `execute_plan` are `erarm.execute_plan` (the same parser, validation and
envelope as `erarm execute`, with `dry_run=True` for the first), `run_task` is `erarm.run_task`
(the orchestration of `erarm run`). Each of those calls gets its own run folder under the
server's folder, as the command line's runs do. `return_home`, the way back after a stop (a
plan's first look checks the calibration with the arm at home), is a two-step plan checked by
`validate_plan` and run by `execute`, as every plan is.

Motion (`execute_plan`, `run_task`, `return_home`) needs the operator's permission given when
the server starts (`allow_motion`): it stands for the command line's confirmation, on a
physical arm too (every plan is still validated in full first, and a physical arm's tool loop is
rehearsed in a twin first, as `erarm run` does). Without it those tools are refused; the others
work.

Threads. The workcell stays on the thread that opened it, the main thread: every look, question
to the brain and motion runs there, one at a time, as in `erarm run` and `erarm live`. The
protocol runs on a thread of its own. `stop` halts a running motion as Ctrl-C does: it raises
`erarm.agent.interrupts.Halt` in the main thread (`interrupts.halt_main`), so execution stops
the arm where it is through `stop_arm` and the run records it; the motion's tool call then
returns saying it was stopped. `status` reads the robot's state from the protocol's side while
a motion runs. Only one motion at a time: while one runs every other call that needs the
workcell is refused (`status` and `stop` answer).

The API key never crosses the protocol: no tool takes one, erarm reads it from the environment
as always, and every text a tool returns is redacted (`erarm.agent.redaction`). Every error is
one line in an `is_error` tool result, never a traceback.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import logging
import math
import os
import queue
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from erarm.agent import interrupts
from erarm.agent.brains import api_key_from_env
from erarm.agent.brains.base import Brain
from erarm.agent.config import Orchestration
from erarm.agent.execute import stop_arm
from erarm.agent.redaction import guard, redact
from erarm.robots.base import Workcell
from erarm.robots.errors import ConfigError, ErarmError

__all__ = ["MOTION_TOOLS", "Bench", "Refused", "ServerOptions", "Stopped", "build_server",
           "serve"]

MOTION_TOOLS = ("execute_plan", "run_task", "return_home")
IMAGE_MAX_SIDE = 1024  # the camera image a look returns, at most this many pixels a side
STOP_WAIT_S = 15.0  # how long `stop` waits for the stopped motion to come back
POLL_S = 0.02  # how often a waiting tool call looks whether its job is done
HTTP_PATH = "/mcp"

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


# -- the job queue: every use of the workcell, on the main thread -----------------------------

@dataclass
class _Job:
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
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._current: _Job | None = None  # the job the main thread is running
        self._motion: _Job | None = None  # the motion accepted, queued or running
        self._moving = False  # the main thread is inside the motion: a halt reaches it
        self._stop_asked = False  # `stop` was called for the motion
        self._started = 0.0
        self._progress: str | None = None  # the motion's last progress line
        self._last: dict | None = None  # the last motion's outcome, for `status`
        self._closed = False
        self._calls = 0
        self._away = False  # see `away`

    # -- from the protocol's threads -------------------------------------------------------
    def submit(self, name: str, work: Callable[[], Any], motion: bool = False) -> _Job:
        """Queue `work` for the main thread; refused while a motion runs (one at a time)."""
        if motion and not self.options.allow_motion:
            raise Refused(f"{name} moves the arm, and this server was started without "
                          "--allow-motion: restart it as `erarm mcp --allow-motion` to let it "
                          "move (look, point, detect, dry_run_plan and status work without it)")
        job = _Job(name, work, motion)
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

    def stop(self) -> _Job | None:
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

    def _run(self, job: _Job) -> None:
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

    def _end(self, job: _Job) -> None:
        with self._lock:
            if self._motion is job:
                self._motion, self._moving = None, False
            if self._current is job:
                self._current = None

    # -- what the jobs share ---------------------------------------------------------------
    def folder(self, tool: str, about: str = "") -> Path:
        """A new run folder's path for one call (claimed by the run itself)."""
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


# -- what each tool does on the main thread ---------------------------------------------------

class _Warnings(logging.Handler):
    """Warnings erarm logs while a job runs (a brain's remarks), into `lines`."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        line = one_line(record.getMessage())
        if line not in self.lines:
            self.lines.append(line)


def _collecting(work: Callable[[list[str]], Any]) -> Callable[[], Any]:
    """`work(warnings)`, with what erarm logs as warnings while it runs added to `warnings`."""
    def run() -> Any:
        warnings: list[str] = []
        handler = _Warnings(warnings)
        logger = logging.getLogger("erarm")
        logger.addHandler(handler)
        try:
            return work(warnings)
        finally:
            logger.removeHandler(handler)

    return run


def _capture(bench: Bench):
    camera = bench.cell.camera
    frame = camera.capture()
    if frame.calibration is None:
        raise Refused(f"camera {camera.name} has no calibration: start the server with "
                      "--calibration FILE (make one with erarm calibrate)")
    return frame


def _mm(position) -> dict | None:
    if position is None:
        return None
    x, y, z = (float(v) for v in position)
    return {"x": round(x, 1), "y": round(y, 1), "z": round(z, 1)}


def _look(bench: Bench, annotate: bool) -> Callable[[], Any]:
    def work(warnings: list[str]) -> tuple[bytes, str, dict]:
        from erarm.agent.images import encode_image
        from erarm.agent.locate import locate_objects
        from erarm.agent.perceive import perceive
        from erarm.robots.base import Frame

        frame = _capture(bench)
        perception = perceive(bench.brain, frame)
        objects = locate_objects(perception, frame)
        warnings += [w for w in perception.warnings if w not in warnings]
        shown = frame
        if annotate:
            from erarm.agent.overlay import draw

            shown = Frame(rgb=draw(frame.rgb, perception.points, perception.boxes))
        data, mime = encode_image(shown, IMAGE_MAX_SIDE, "jpeg")
        width, height = frame.size
        document = {
            "camera": bench.cell.camera.name, "image_px": [width, height],
            "frame": "robot base frame, millimetres: x forward, y left, z up from the table",
            "objects": [{"label": o.label,
                         **_mm(o.position_mm),
                         "size_mm": round(2 * o.radius_mm, 1),
                         "point": list(o.point),
                         "box_2d": list(o.box_2d) if o.box_2d is not None else None}
                        for o in (seen.rounded() for seen in objects)],
            "warnings": warnings}
        return data, mime, document

    return _collecting(work)


def _point(bench: Bench, queries: list[str], limit: int) -> Callable[[], Any]:
    def work(warnings: list[str]) -> dict:
        from erarm.agent.api import point
        from erarm.agent.geometry import locate

        frame = _capture(bench)
        points = point(frame, *queries, brain=bench.brain, limit=limit, warn=warnings.append)
        if not points and queries:
            said = f" ({'; '.join(warnings)})" if warnings else ""
            raise Refused(f"nothing found for {', '.join(repr(q) for q in queries)}{said}")
        found = []
        for p in points:
            under = locate(p.y, p.x, frame)
            found.append({"label": p.label, "point": [p.y, p.x],
                          "mm": None if under is None else _mm(under * 1000)})
        return {"points": found,
                "grid": "point is [y, x] normalized to 0-1000 on the camera image; mm is the "
                        "spot under it in the robot base frame (from depth, else the table)",
                "warnings": warnings}

    return _collecting(work)


def _detect(bench: Bench, limit: int) -> Callable[[], Any]:
    def work(warnings: list[str]) -> dict:
        from erarm.agent.api import detect

        frame = _capture(bench)
        boxes = detect(frame, brain=bench.brain, limit=limit, warn=warnings.append)
        return {"boxes": [{"label": b.label, "box_2d": list(b.box_2d)} for b in boxes],
                "grid": "box_2d is [ymin, xmin, ymax, xmax] normalized to 0-1000 on the camera "
                        "image",
                "warnings": warnings}

    return _collecting(work)


def _operator_said_yes(_validated) -> bool:
    """--allow-motion: the operator's yes, given when the server started."""
    return True


def _summary(result, stopped: bool) -> dict:
    """A run's result as a tool answers with it."""
    from erarm.agent.schemas import describe

    return {
        "task": result.task, "brain": result.brain, "robot": result.robot,
        "dry_run": result.dry_run, "success": result.success, "verified": result.verified,
        "verification": result.verification,
        "ground_truth": result.ground_truth.reason if result.ground_truth else None,
        "steps_executed": result.steps_executed,
        "plan": [describe(call) for call in result.plan],
        "steps": [{"step": a.step, "call": describe(a.call) if a.call is not None else None,
                   "target_mm": a.target.model_dump() if a.target is not None else None,
                   "why": a.why, "checks": a.checks, "added_by_erarm": a.added}
                  for a in result.actions],
        "warnings": result.warnings, "error": result.error,
        "interrupted": str(result.interrupted) if result.interrupted else None,
        "stopped": stopped, "exit_code": result.exit_code, "out_dir": result.out_dir,
        "timings_s": {"total": round(result.timings.total_s, 2),
                      "execution": round(result.timings.execution_s, 2)}}


def _plan_run(bench: Bench, tool: str, plan: Any, dry_run: bool) -> Callable[[], Any]:
    def work() -> dict:
        from erarm.agent.api import execute_plan

        result = execute_plan(plan, bench.cell, brain=bench.brain, dry_run=dry_run,
                              out=bench.folder(tool), log=bench.log,
                              confirm=None if dry_run else _operator_said_yes)
        return _finished(bench, tool, result, motion=not dry_run)

    return work


def _task_run(bench: Bench, task: str) -> Callable[[], Any]:
    def work() -> dict:
        from erarm.agent.api import run_task

        result = run_task(task, bench.cell, brain=bench.brain, out=bench.folder("run_task", task),
                          log=bench.log, confirm=_operator_said_yes,
                          orchestration=bench.options.orchestration.value)
        return _finished(bench, "run_task", result, motion=True)

    return work


def _finished(bench: Bench, tool: str, result, motion: bool) -> dict:
    stopped = motion and result.interrupted is not None and bench.stop_was_asked()
    summary = _summary(result, stopped)
    if motion:
        bench.remember(tool, summary)
        bench.moved(ok=not result.error,
                    moved=bool(result.steps_executed or result.interrupted is not None))
    if result.error and result.steps_executed == 0 and bench.away:
        summary["error"] = (f"{result.error} (the last motion left the arm where it stopped: "
                            "return_home brings it back to where a plan's first look is made)")
    return summary


def _home(bench: Bench) -> Callable[[], Any]:
    """Up to travel height where the tool is, then home: the way back after a stop, validated
    against the envelope, the reach and the joint limits as any plan is (a plan's first look
    checks the calibration with the arm home, out of the table's way) and executed by erarm's
    executor, so `stop` halts it too."""
    def work() -> dict:
        from erarm.agent.errors import ExecutionFailed
        from erarm.agent.execute import execute
        from erarm.agent.parse import parse_plan
        from erarm.agent.schemas import describe
        from erarm.agent.surface import SurfaceMap
        from erarm.agent.validate import validate_plan

        robot = bench.cell.robot
        state = robot.state()
        tool = state.tool
        calls = [{"function": "move", "args": [round(tool.x * 1000, 1), round(tool.y * 1000, 1),
                                               True]},
                 {"function": "returnToOrigin", "args": []}]
        frame = bench.cell.camera.capture()
        validated = validate_plan(parse_plan(json.dumps(calls)), SurfaceMap(frame, robot.limits),
                                  robot.limits, gripper_open=state.gripper_open,
                                  start_yaw=tool.yaw, reachable=robot.reachable)
        summary = {"plan": [describe(a.call) for a in validated.actions], "steps_executed": 0,
                   "error": None, "interrupted": None, "stopped": False, "exit_code": 0}
        try:
            report = execute(validated.actions, robot,
                             on_step=lambda action, _: bench.log(f"step {action.step} "
                                                                 f"{action.label}"))
            summary["steps_executed"] = len(report.steps)
        except ExecutionFailed as failed:
            summary.update(steps_executed=len(failed.steps_done), error=str(failed),
                           exit_code=failed.exit_code,
                           stopped=bench.stop_was_asked(),
                           interrupted="moving" if failed.exit_code == 130 else None)
        bench.remember("return_home", summary)
        bench.moved(ok=not summary["error"],
                    moved=bool(summary["steps_executed"] or summary["interrupted"]))
        return summary

    return work


# -- the protocol side ------------------------------------------------------------------------

def _text(document: Any) -> TextContent:
    body = document if isinstance(document, str) else json.dumps(document)
    return TextContent(type="text", text=redact(body))


def _error(message: str, document: dict | None = None) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=one_line(message))],
                          structured_content=json.loads(redact(json.dumps(document)))
                          if document is not None else None,
                          is_error=True)


def _answer(document: dict) -> CallToolResult:
    clean = json.loads(redact(json.dumps(document)))
    return CallToolResult(content=[_text(clean)], structured_content=clean)


def _run_answer(summary: dict) -> CallToolResult:
    """A run's answer: its summary, or an error result saying in one line what went wrong
    (refused, failed, stopped) with the summary alongside."""
    error = summary.get("error")
    if not error:
        return _answer(summary)
    back = "; return_home brings it back before the next plan"
    if summary.get("stopped"):
        line = f"stopped by the stop tool: {error}{back}"
    elif summary.get("interrupted"):
        line = f"stopped: {error}{back}"
    elif summary.get("exit_code") == 2:
        line = f"refused: {error}"
    else:
        line = f"failed: {error}"
    return _error(line, summary)


def _failure(name: str, err: BaseException) -> str:
    """An exception as the one line its tool error says."""
    if isinstance(err, ToolError) and isinstance(err.__cause__, ValidationError):
        problems = err.__cause__.errors()
        said = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                         for e in problems[:2])
        more = f" (and {len(problems) - 2} more)" if len(problems) > 2 else ""
        return f"{name}: bad arguments: {said}{more}"
    if isinstance(err, ToolError):
        text = str(err)
        prefix = f"Error executing tool {name}: "
        return text[len(prefix):] if text.startswith(prefix) else text
    if isinstance(err, ErarmError):
        return str(err)
    return f"internal error: {type(err).__name__}: {err}"


class _ErarmMCP(MCPServer):
    """The SDK's server, with every failure of a tool call as one line (no traceback, no
    secret): arguments that fail the schema, an unknown tool, erarm's own errors."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context=None):
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as err:
            cause = err.__cause__
            if cause is not None and not isinstance(cause, ValidationError):
                return _error(_failure(name, cause))
            return _error(_failure(name, err))


INSTRUCTIONS = (
    "erarm drives a robot arm (by default a simulated xArm6) that looks through a calibrated "
    "camera. Coordinates are millimetres in the robot base frame: x forward from the base, y to"
    " the left, z up from the table top. Image points are [y, x] and boxes [ymin, xmin, ymax, "
    "xmax], normalized to 0-1000. Start with `look` (the image and every object located in mm);"
    " plan with the three robot functions move(x, y, high), setGripperState(opened) and "
    "returnToOrigin(); check a plan with `dry_run_plan`, then `execute_plan` it, or hand a "
    "whole task to `run_task`. Every plan is validated in full (workspace, reach, joint limits,"
    " moves down only onto what is perceived) before anything moves: one failed check refuses "
    "the whole plan. `status` and `stop` answer at any time; `stop` halts the arm where it is, "
    "and `return_home` brings it back.")

PlanArg = Annotated[str | list[dict[str, Any]], Field(description=(
    'The plan: a JSON list of calls, e.g. [{"function": "move", "args": [400, 100, true]}, '
    '{"function": "setGripperState", "args": [false]}, {"function": "returnToOrigin", '
    '"args": []}] (move(x_mm, y_mm, high): high=true goes at travel height, false down onto '
    "what is there; setGripperState(opened)), or model text that ends in such a list."))]


def build_server(bench: Bench) -> MCPServer:
    """The MCP server and its tools, working on `bench`."""
    from erarm import __version__

    server = _ErarmMCP("erarm", instructions=INSTRUCTIONS, version=__version__,
                       log_level="WARNING")
    moving = "enabled" if bench.options.allow_motion else \
        "refused: the server was started without --allow-motion"

    async def done(job: _Job, motion: bool = False) -> Any:
        """The job's value once the main thread has run it; if this call is cancelled (the
        client went away) a motion is halted."""
        try:
            while not job.future.done():
                await anyio.sleep(POLL_S)
        except BaseException:
            if motion:
                bench.stop()
            raise
        return job.future.result()

    async def refused_or(call: Callable[[], Any]) -> Any:
        try:
            return await call()
        except ErarmError as err:  # refused, or input erarm found wrong before anything ran
            return _error(str(err))

    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(description=(
        "Capture the camera image and locate every object on the table: the image, and JSON "
        "with each object's label, x/y/z in mm in the robot base frame (z: a block's top, a "
        "bowl's floor), size_mm (its width on the table), and its image point and box. "
        "annotate=true draws the points and boxes on the image."),
        annotations=read_only, structured_output=False)
    async def look(annotate: Annotated[bool, Field(
            description="Draw what was perceived on the image.")] = False):
        async def call():
            data, mime, document = await done(bench.submit("look", _look(bench, annotate)))
            clean = json.loads(redact(json.dumps(document)))
            return CallToolResult(content=[
                ImageContent(type="image", data=base64.b64encode(data).decode(),
                             mime_type=mime), _text(clean)], structured_content=clean)

        return await refused_or(call)

    @server.tool(description=(
        "Point at named objects in a fresh camera image: each found object's label, its "
        "normalized [y, x] point (0-1000) and the spot under it in mm in the robot base frame. "
        "No queries: point at everything, up to limit."),
        annotations=read_only, structured_output=False)
    async def point(queries: Annotated[tuple[str, ...], Field(
            description='What to point at, e.g. ["blue block", "orange bowl"].')] = (),
                    limit: Annotated[int, Field(description="Most points.")] = 10):
        async def call():
            return _answer(await done(bench.submit("point", _point(bench, list(queries),
                                                                   limit))))

        return await refused_or(call)

    @server.tool(description=(
        "Boxes around the objects in a fresh camera image: label and [ymin, xmin, ymax, xmax] "
        "normalized to 0-1000, repeated objects labelled apart."),
        annotations=read_only, structured_output=False)
    async def detect(limit: Annotated[int, Field(description="Most boxes.")] = 25):
        async def call():
            return _answer(await done(bench.submit("detect", _detect(bench, limit))))

        return await refused_or(call)

    @server.tool(description=(
        "Validate a plan without moving: parse it, look at the table, and check every step "
        "against the workspace, the arm's reach and joint limits and what is perceived (a move "
        "down must go to a perceived object, or, holding one, to free table). Returns the "
        "validated steps with their resolved targets (erarm adds returnToOrigin at the end "
        "when missing), or the one-line reason the whole plan is refused."),
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
        structured_output=False)
    async def dry_run_plan(plan: PlanArg):
        async def call():
            return _run_answer(await done(bench.submit(
                "dry_run_plan", _plan_run(bench, "dry_run_plan", plan, dry_run=True))))

        return await refused_or(call)

    @server.tool(description=(
        f"Move the arm through a plan (motion: {moving}). The plan gets exactly the validation "
        "dry_run_plan does, then runs step by step and is checked by a last look; nothing moves "
        "unless every step passes. Returns the steps executed and the outcome; stop halts it. "
        "One motion at a time."),
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True,
                                    idempotent_hint=False, open_world_hint=True),
        structured_output=False)
    async def execute_plan(plan: PlanArg):
        async def call():
            job = bench.submit("execute_plan", _plan_run(bench, "execute_plan", plan, False),
                               motion=True)
            return _run_answer(await done(job, motion=True))

        return await refused_or(call)

    @server.tool(description=(
        f"Do a task in natural language, as `erarm run` does (motion: {moving}): look, plan, "
        "validate the whole plan, move, look again and retry what failed. Returns success (the "
        "simulator's ground truth when it has a check for the task), verified (perception's "
        "verdict), the plan and the steps executed; stop halts it. One motion at a time."),
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True,
                                    idempotent_hint=False, open_world_hint=True),
        structured_output=False)
    async def run_task(task: Annotated[str, Field(
            description='What to do, e.g. "pick the blue block into the orange bowl".')]):
        async def call():
            job = bench.submit("run_task", _task_run(bench, task), motion=True)
            return _run_answer(await done(job, motion=True))

        return await refused_or(call)

    @server.tool(description=(
        f"Bring the arm back home after a stop (motion: {moving}): straight up to travel "
        "height where the tool is, then returnToOrigin, validated and stoppable like any plan. "
        "A stop leaves the arm where it was; plans and tasks start from home."),
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                    idempotent_hint=True, open_world_hint=True),
        structured_output=False)
    async def return_home():
        async def call():
            job = bench.submit("return_home", _home(bench), motion=True)
            return _run_answer(await done(job, motion=True))

        return await refused_or(call)

    @server.tool(description=(
        "The robot's state now, also while a motion runs: joints, the tool's pose in mm and "
        "yaw, the gripper, whether a motion is running (and its progress), and the last "
        "motion's result."), annotations=read_only, structured_output=False)
    async def status():
        async def call():
            return _answer(await anyio.to_thread.run_sync(bench.status))

        return await refused_or(call)

    @server.tool(description=(
        "Halt the running motion at once: the arm stops where it is (as Ctrl-C stops erarm "
        "run), and the motion's own call returns saying it was stopped. Nothing running: says "
        "so."), annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                            idempotent_hint=True, open_world_hint=True),
        structured_output=False)
    async def stop():
        async def call():
            job = bench.stop()
            if job is None:
                return _answer({"stopped": False, "reason": "no motion is running"})
            waited = time.monotonic() + STOP_WAIT_S
            while not job.future.done() and time.monotonic() < waited:
                await anyio.sleep(POLL_S)
            state = await anyio.to_thread.run_sync(bench.status)
            return _answer({"stopped": True, "tool": job.name, "ended": job.future.done(),
                            "next": "the arm stays where it stopped; return_home brings it "
                                    "back before the next plan",
                            "tool_mm": state["tool_mm"],
                            "motion": state["motion"], "last_result": state["last_result"]})

        return await refused_or(call)

    return server


# -- serving ----------------------------------------------------------------------------------

def loopback_socket(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (port 0: a free one), or a one-line error."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {err.strerror or err}") from None
    sock.set_inheritable(False)
    return sock


def _protocol(server: MCPServer, sock: socket.socket | None) -> None:
    """Serve the protocol until its transport ends: stdio (the client closed it) or HTTP."""
    if sock is None:
        anyio.run(server.run_stdio_async)
        return
    import uvicorn

    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    anyio.run(uvicorn.Server(config).serve, [sock])


def serve(cell: Workcell, brain: Brain, options: ServerOptions,
          sock: socket.socket | None = None) -> None:
    """Serve `cell` with `brain` over stdio (or streamable HTTP on `sock`) until the client
    closes stdio or the process is interrupted. Runs on the main thread, which keeps the
    workcell; the protocol runs on a thread of its own. The workcell is the caller's to
    close."""
    if threading.current_thread() is not threading.main_thread():
        raise ConfigError("erarm's MCP server runs on the main thread (stop reaches a motion "
                          "there, as Ctrl-C does)")
    interrupts.install()  # `stop` halts the main thread through erarm's one signal path
    key = api_key_from_env()
    if key:  # clients' text is echoed in log lines: keep the key out of those too
        guard(key)
    try:
        options.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {options.out}: {err.strerror or err}") from None
    if not os.access(options.out, os.W_OK):
        raise ConfigError(f"cannot write to {options.out}: choose another --out")
    bench = Bench(cell, brain, options)
    server = build_server(bench)
    failure: list[BaseException] = []

    def protocol() -> None:
        try:
            _protocol(server, sock)
        except BaseException as err:  # reported on the main thread, as one line
            failure.append(err)
        finally:
            bench.close()

    thread = threading.Thread(target=protocol, name="erarm-mcp-protocol", daemon=True)
    thread.start()
    try:
        bench.serve_jobs()
    finally:
        bench.close()
    if failure and not interrupts.interrupted():
        err = failure[0]
        raise err if isinstance(err, ErarmError) else ErarmError(
            f"the MCP transport ended: {type(err).__name__}: {err}")
