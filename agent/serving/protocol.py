"""The MCP side: the tools as the SDK declares them, each answering with what its job on the main
thread returned, every failure as one line in an `is_error` result."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from erarm.agent.redaction import redact
from erarm.agent.serving import work
from erarm.agent.serving.jobs import Bench, Job, one_line
from erarm.robots.errors import ErarmError

STOP_WAIT_S = 15.0  # how long `stop` waits for the stopped motion to come back
POLL_S = 0.02  # how often a waiting tool call looks whether its job is done


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
    secret): arguments that fail the schema or that it does not take (the SDK would drop them
    and go on, pointing at everything for a misspelt `queries`), an unknown tool, erarm's own
    errors."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context=None):
        tool = next((t for t in await self.list_tools() if t.name == name), None)
        if tool is not None:
            takes = sorted((tool.input_schema or {}).get("properties", {}))
            unknown = sorted(set(arguments or {}) - set(takes))
            if unknown:
                return _error(f"{name} takes {', '.join(takes) or 'no arguments'}, not "
                              f"{', '.join(unknown)}")
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

GoalArg = Annotated[str | None, Field(description=(
    "What the plan is for, in words ('put the blue block in the orange bowl'): erarm checks it "
    "itself in its last look. Without it the run is unverifiable: verified is false however "
    "well the plan ran."))]
PlanArg = Annotated[str | list[dict[str, Any]], Field(description=(
    'The plan: a JSON list of calls, e.g. [{"function": "move", "args": [400, 100, true]}, '
    '{"function": "setGripperState", "args": [false]}, {"function": "returnToOrigin", '
    '"args": []}] (move(x_mm, y_mm, high): high=true goes at travel height, false down onto '
    "what is there; setGripperState(opened)), or model text that ends in such a list."))]


def build_server(bench: Bench) -> MCPServer:
    """The MCP server and its tools, working on `bench`."""
    from erarm import __version__

    guarded = {}
    if bench.options.token is not None and bench.options.url is not None:
        from erarm.agent.serving.auth import StaticTokenVerifier, auth_settings

        guarded = dict(token_verifier=StaticTokenVerifier(bench.options.token),
                       auth=auth_settings(bench.options.url))
    server = _ErarmMCP("erarm", instructions=INSTRUCTIONS, version=__version__,
                       log_level="WARNING", **guarded)
    moving = "enabled" if bench.options.allow_motion else \
        "refused: the server was started without --allow-motion"

    async def done(job: Job, motion: bool = False) -> Any:
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
    moves = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False,
                            open_world_hint=True)  # the arm, in the world

    @server.tool(description=(
        "Capture the camera image and locate every object on the table: the image, and JSON "
        "with each object's label, x/y/z in mm in the robot base frame (z: a block's top, a "
        "bowl's floor), size_mm (its width on the table), and its image point and box. "
        "annotate=true draws the points and boxes on the image."),
        annotations=read_only, structured_output=False)
    async def look(annotate: Annotated[bool, Field(
            description="Draw what was perceived on the image.")] = False):
        async def call():
            data, mime, document = await done(bench.submit("look", work.look(bench, annotate)))
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
            return _answer(await done(bench.submit("point", work.point(bench, list(queries),
                                                                   limit))))

        return await refused_or(call)

    @server.tool(description=(
        "Boxes around the objects in a fresh camera image: label and [ymin, xmin, ymax, xmax] "
        "normalized to 0-1000, repeated objects labelled apart."),
        annotations=read_only, structured_output=False)
    async def detect(limit: Annotated[int, Field(description="Most boxes.")] = 25):
        async def call():
            return _answer(await done(bench.submit("detect", work.detect(bench, limit))))

        return await refused_or(call)

    @server.tool(description=(
        "Validate a plan without moving: parse it, look at the table, and check every step "
        "against the workspace, the arm's reach and joint limits and what is perceived (a move "
        "down must go to a perceived object, or, holding one, to free table). Returns the "
        "validated steps with their resolved targets (erarm adds returnToOrigin at the end "
        "when missing), or the one-line reason the whole plan is refused."),
        annotations=read_only,
        structured_output=False)
    async def dry_run_plan(plan: PlanArg):
        async def call():
            return _run_answer(await done(bench.submit(
                "dry_run_plan", work.plan_run(bench, "dry_run_plan", plan, dry_run=True))))

        return await refused_or(call)

    @server.tool(description=(
        f"Move the arm through a plan (motion: {moving}). The plan gets exactly the validation "
        "dry_run_plan does, then runs step by step and is checked by a last look; nothing moves "
        "unless every step passes. Returns the steps executed and the outcome; stop halts it. "
        "One motion at a time."),
        annotations=moves,
        structured_output=False)
    async def execute_plan(plan: PlanArg, task: GoalArg = None):
        async def call():
            job = bench.submit("execute_plan", work.plan_run(bench, "execute_plan", plan, False,
                                                             task), motion=True)
            return _run_answer(await done(job, motion=True))

        return await refused_or(call)

    @server.tool(description=(
        f"Do a task in natural language, as `erarm run` does (motion: {moving}): look, plan, "
        "validate the whole plan, move, look again and retry what failed. Returns success (the "
        "simulator's ground truth when it has a check for the task), verified (perception's "
        "verdict), the plan and the steps executed; stop halts it. One motion at a time."),
        annotations=moves,
        structured_output=False)
    async def run_task(task: Annotated[str, Field(
            description='What to do, e.g. "pick the blue block into the orange bowl".')]):
        async def call():
            job = bench.submit("run_task", work.task_run(bench, task), motion=True)
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
            job = bench.submit("return_home", work.home(bench), motion=True)
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
