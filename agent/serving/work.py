"""What each MCP tool does on the main thread, through erarm's own functions (perception,
`erarm.point`/`detect`, `erarm.execute_plan`, `erarm.run_task`, validation and execution)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from erarm.agent.serving.jobs import Bench, Refused, one_line

IMAGE_MAX_SIDE = 1024  # the camera image a look returns, at most this many pixels a side


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


def look(bench: Bench, annotate: bool) -> Callable[[], Any]:
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


def point(bench: Bench, queries: list[str], limit: int) -> Callable[[], Any]:
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


def detect(bench: Bench, limit: int) -> Callable[[], Any]:
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


def plan_run(bench: Bench, tool: str, plan: Any, dry_run: bool,
             task: str | None = None) -> Callable[[], Any]:
    def work() -> dict:
        from erarm.agent.api import execute_plan

        result = execute_plan(plan, bench.cell, task=task, brain=bench.brain, dry_run=dry_run,
                              out=bench.folder(tool), log=bench.log,
                              confirm=None if dry_run else _operator_said_yes)
        return _finished(bench, tool, result, motion=not dry_run)

    return work


def task_run(bench: Bench, task: str) -> Callable[[], Any]:
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


def home(bench: Bench) -> Callable[[], Any]:
    """Up to travel height where the tool is, then home: the way back after a stop, validated
    against the envelope, the reach and the joint limits as any plan is (a plan's first look
    checks the calibration with the arm home, out of the table's way) and executed by erarm's
    executor, so `stop` halts it too."""
    def work() -> dict:
        from erarm.agent.errors import ExecutionFailed
        from erarm.agent.execute import execute
        from erarm.agent.parse import parse_plan
        from erarm.agent.schemas import describe
        from erarm.agent.session import held_by, ran
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
                                  start_yaw=tool.yaw, reachable=robot.reachable, start=tool,
                                  held=held_by(robot, bench.cell.camera))
        summary = {"plan": [describe(a.call) for a in validated.actions], "steps_executed": 0,
                   "error": None, "interrupted": None, "stopped": False, "exit_code": 0}
        try:
            report = execute(validated.actions, robot,
                             on_step=lambda action, _: bench.log(f"step {action.step} "
                                                                 f"{action.label}"))
            summary["steps_executed"] = len(report.steps)
            ran(robot, validated.actions[:len(report.steps)])
        except ExecutionFailed as failed:
            ran(robot, validated.actions[:len(failed.steps_done)])
            summary.update(steps_executed=len(failed.steps_done), error=str(failed),
                           exit_code=failed.exit_code,
                           stopped=bench.stop_was_asked(),
                           interrupted="moving" if failed.exit_code == 130 else None)
        bench.remember("return_home", summary)
        bench.moved(ok=not summary["error"],
                    moved=bool(summary["steps_executed"] or summary["interrupted"]))
        return summary

    return work
