"""`erarm mcp`, driven by the MCP SDK's own client: over stdio (the server as a subprocess, one
per module and permission) and over streamable HTTP on loopback. Offline: the local brain and
the simulator, with a fake key in the server's environment that must never come back."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("mcp.server.mcpserver", reason="erarm mcp needs the MCP SDK 2 (the mcp extra)")

import httpx2
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.conftest import TEST_KEY, assert_key_absent

ERARM = str(Path(sys.executable).with_name("erarm"))
TOOLS = {"look", "point", "detect", "dry_run_plan", "execute_plan", "run_task", "return_home",
         "status", "stop"}
HOME_MM = (270.8, 0.0, 330.2)  # the simulated arm's home: where returnToOrigin goes
CALL_TIMEOUT_S = 60
HTTP_TOKEN = "erarm-test-token-0123456789abcdef"


class Client:
    """A connected `ClientSession`, called from the test's own thread through a portal."""

    def __init__(self, portal: BlockingPortal, session: ClientSession):
        self.portal, self.session = portal, session
        self.seen: list[str] = []  # every result's text, for the key check

    def start(self, name: str, arguments: dict | None = None) -> Future:
        return self.portal.start_task_soon(self._call, name, arguments or {})

    def call(self, name: str, arguments: dict | None = None):
        return self.start(name, arguments).result(timeout=CALL_TIMEOUT_S)

    def ok(self, name: str, arguments: dict | None = None) -> dict:
        """The call's JSON document; the call must not be an error."""
        result = self.call(name, arguments)
        assert not result.is_error, result.content[0].text
        return document(result)

    def refused(self, name: str, arguments: dict | None = None) -> str:
        """The call's one-line error text; the call must be an error."""
        result = self.call(name, arguments)
        assert result.is_error, result.content
        return error_line(result)

    async def _call(self, name: str, arguments: dict):
        result = await self.session.call_tool(name, arguments)
        self.seen += [c.text for c in result.content if c.type == "text"]
        self.seen.append(json.dumps(result.structured_content))
        return result

    def tools(self):
        return self.portal.call(self.session.list_tools).tools


def document(result) -> dict:
    text = [c for c in result.content if c.type == "text"]
    assert len(text) == 1
    parsed = json.loads(text[0].text)
    assert parsed == result.structured_content
    return parsed


def error_line(result) -> str:
    """A tool error's text: one line, erarm's own words, no traceback."""
    assert [c.type for c in result.content] == ["text"]
    text = result.content[0].text
    assert text and "\n" not in text and "Traceback" not in text
    assert not text.startswith("Error executing tool")
    return text


@contextmanager
def connected(transport) -> Iterator[Client]:
    with start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(transport) as (read, write), \
            portal.wrap_async_context_manager(ClientSession(read, write)) as session:
        portal.call(session.initialize)
        yield Client(portal, session)


@contextmanager
def stdio_server(tmp: Path, *flags: str) -> Iterator[tuple[Client, Path, Path]]:
    """`erarm mcp` over stdio: the client, the server's stderr file and its run folders."""
    out, log = tmp / "runs", tmp / "stderr.txt"
    params = StdioServerParameters(
        command=ERARM, args=["mcp", "--brain", "local", "--out", str(out), *flags], cwd=tmp,
        env={"GEMINI_API_KEY": TEST_KEY, "COLUMNS": "250"})
    with open(log, "w") as errlog, connected(stdio_client(params, errlog=errlog)) as client:
        yield client, log, out


@pytest.fixture(scope="module")
def watching(tmp_path_factory) -> Iterator[Client]:
    """A server that may look but not move (no --allow-motion)."""
    tmp = tmp_path_factory.mktemp("mcp-watching")
    with stdio_server(tmp) as (client, log, out):
        yield client
    assert_key_absent(*client.seen, log.read_text(), folder=out)  # once the server has ended
    assert "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def moving(tmp_path_factory) -> Iterator[Client]:
    """A server that may move the arm (--allow-motion)."""
    tmp = tmp_path_factory.mktemp("mcp-moving")
    with stdio_server(tmp, "--allow-motion") as (client, log, out):
        yield client
    assert_key_absent(*client.seen, log.read_text(), folder=out)
    assert "Traceback" not in log.read_text()


def located(client: Client) -> dict[str, dict]:
    """What a look located, by label."""
    return {o["label"]: o for o in client.ok("look")["objects"]}


def pose(status: dict) -> tuple[float, float, float]:
    tool = status["tool_mm"]
    return tool["x"], tool["y"], tool["z"]


def wait_for_motion(client: Client, started: Future, progressed: bool = True) -> dict:
    """The status of the motion once it has run its first step (or once it runs)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not started.done():
        status = client.ok("status")
        motion = status["motion"]
        if motion["running"] and (not progressed
                                  or (motion.get("progress") or "").startswith("step ")):
            return status
        time.sleep(0.05)
    raise AssertionError("the motion never got going" + (
        f": {started.result().content[0].text}" if started.done() else ""))


# -- tools that need no permission ------------------------------------------------------------

def test_every_tool_is_listed_with_a_description(watching):
    tools = {tool.name: tool for tool in watching.tools()}
    assert set(tools) == TOOLS
    assert all(len(tool.description or "") > 40 for tool in tools.values())
    assert "--allow-motion" in tools["execute_plan"].description
    assert tools["look"].annotations.read_only_hint
    assert tools["execute_plan"].annotations.destructive_hint
    schema = json.dumps([tool.input_schema for tool in tools.values()]).lower()
    assert "key" not in schema  # nothing a client could pass a secret in


def test_look_gives_the_camera_image_and_the_objects_in_millimetres(watching):
    result = watching.call("look", {"annotate": True})
    assert not result.is_error
    image, text = result.content
    assert image.type == "image" and image.mime_type == "image/jpeg"
    assert base64.b64decode(image.data).startswith(b"\xff\xd8")
    seen = {o["label"]: o for o in json.loads(text.text)["objects"]}
    assert {"blue block", "orange bowl"} <= set(seen)  # the default scene: the demo's table
    block = seen["blue block"]
    assert 150 <= block["x"] <= 700 and -400 <= block["y"] <= 400
    assert 30 <= block["z"] <= 50 and 40 <= block["size_mm"] <= 70  # a 40 mm block's top
    assert seen["orange bowl"]["size_mm"] > block["size_mm"]


def test_point_gives_image_points_and_robot_millimetres(watching):
    block = located(watching)["blue block"]
    points = watching.ok("point", {"queries": ["blue block"]})["points"]
    assert [p["label"] for p in points] == ["blue block"]
    y, x = points[0]["point"]
    assert 0 <= y <= 1000 and 0 <= x <= 1000
    spot = points[0]["mm"]
    assert math.dist((spot["x"], spot["y"]), (block["x"], block["y"])) < 15


def test_detect_gives_boxes(watching):
    boxes = watching.ok("detect", {"limit": 3})["boxes"]
    assert 1 <= len(boxes) <= 3
    for box in boxes:
        ymin, xmin, ymax, xmax = box["box_2d"]
        assert 0 <= ymin < ymax <= 1000 and 0 <= xmin < xmax <= 1000


def test_status_tells_the_robots_state(watching):
    status = watching.ok("status")
    assert status["robot"] == "xarm6-sim" and status["physical"] is False
    assert status["motion_allowed"] is False and status["motion"] == {"running": False}
    assert len(status["joints_rad"]) == 6
    assert math.dist(pose(status), HOME_MM) < 2
    assert status["gripper"]["open"] is True and status["gripper"]["holding"] is False


def test_a_dry_run_validates_the_plan_and_moves_nothing(watching):
    before = pose(watching.ok("status"))
    block = located(watching)["blue block"]
    plan = [{"function": "move", "args": [block["x"], block["y"], True]},
            {"function": "move", "args": [block["x"], block["y"], False]}]
    checked = watching.ok("dry_run_plan", {"plan": plan})
    assert checked["dry_run"] is True and checked["steps_executed"] == 0
    steps = checked["steps"]
    # the plan ends down at the block: erarm lifts straight up there before the way home
    assert [s["call"] for s in steps[2:]] == [f"move({block['x']:g}, {block['y']:g}, true)",
                                              "returnToOrigin()"]
    assert steps[-1]["added_by_erarm"] is True and steps[-2]["added_by_erarm"] is True
    assert steps[1]["target_mm"]["z_mm"] < steps[0]["target_mm"]["z_mm"]
    assert "in workspace" in steps[0]["checks"]
    assert pose(watching.ok("status")) == before


def test_a_plan_outside_the_workspace_is_refused_with_its_one_line_reason(watching):
    line = watching.refused("dry_run_plan",
                            {"plan": [{"function": "move", "args": [900, 0, True]}]})
    assert line == ("refused: step 1 move(900, 0, true) is outside the workspace (x 150..700, "
                    "y -400..400 mm)")
    text = 'I will go far out.\n```json\n[{"function": "move", "args": [400, -600, true]}]\n```'
    assert "outside the workspace" in watching.refused("dry_run_plan", {"plan": text})


@pytest.mark.parametrize(("tool", "arguments", "expected"), [
    ("dry_run_plan", {"plan": "move(400, 0)"}, "no JSON list of function calls"),
    ("dry_run_plan", {"plan": [{"function": "fly", "args": [1]}]}, "fly"),
    ("dry_run_plan", {"plan": [{"function": "move", "args": [400, 0, True], "speed": 99}]},
     "speed"),
    ("dry_run_plan", {"plan": [{"function": "move", "args": [math.inf, 0, True]}]},
     "must be a number"),  # JSON has no infinity: it arrives as null
    ("dry_run_plan", {"plan": '[{"function": "move", "args": [1e400, 0, true]}]'}, "finite"),
    ("dry_run_plan", {"plan": [{"function": "move", "args": ["400", 0, True]}]}, "number"),
    ("dry_run_plan", {}, "plan"),
    ("point", {"queries": ["unicorn"]}, "nothing found for 'unicorn'"),
    ("point", {"limit": 0}, "limit must be at least 1"),
    ("point", {"limit": "many"}, "limit"),
    ("detect", {"limit": -5}, "limit must be at least 1"),
    ("fly", {}, "fly"),
    ("point", {"objects": ["blue block"]}, "point takes limit, queries, not objects"),
    ("status", {"verbose": True}, "status takes no arguments, not verbose"),
])
def test_bad_input_is_a_one_line_tool_error(watching, tool, arguments, expected):
    assert expected in watching.refused(tool, arguments)


def test_motion_without_permission_is_refused(watching):
    before = pose(watching.ok("status"))
    for tool, arguments in [("execute_plan", {"plan": [{"function": "returnToOrigin",
                                                         "args": []}]}),
                            ("run_task", {"task": "pick the blue block into the orange bowl"}),
                            ("return_home", {})]:
        line = watching.refused(tool, arguments)
        assert line.startswith(f"{tool} moves the arm") and "--allow-motion" in line
    assert pose(watching.ok("status")) == before
    assert watching.ok("stop") == {"stopped": False, "reason": "no motion is running"}


def test_the_key_never_comes_back_even_when_a_client_sends_it(watching):
    line = watching.refused("point", {"queries": [TEST_KEY]})
    assert "nothing found for '***'" in line
    line = watching.refused("dry_run_plan", {"plan": f"{TEST_KEY} [{{\"function\": "
                                                     f"\"{TEST_KEY}\", \"args\": []}}]"})
    assert "***" in line
    assert_key_absent(*watching.seen)


# -- motion, with --allow-motion --------------------------------------------------------------

def test_execute_plan_moves_the_simulated_arm(moving):
    seen = located(moving)
    block, bowl = seen["blue block"], seen["orange bowl"]
    bx, by, ox, oy = block["x"], block["y"], bowl["x"], bowl["y"]
    plan = [{"function": "move", "args": [bx, by, True]},
            {"function": "setGripperState", "args": [True]},
            {"function": "move", "args": [bx, by, False]},
            {"function": "setGripperState", "args": [False]},
            {"function": "move", "args": [bx, by, True]},
            {"function": "move", "args": [ox, oy, True]},
            {"function": "move", "args": [ox, oy, False]},
            {"function": "setGripperState", "args": [True]},
            {"function": "move", "args": [ox, oy, True]},
            {"function": "returnToOrigin", "args": []}]
    started = moving.start("execute_plan", {"plan": plan, "task": "put the blue block in the "
                                                                  "orange bowl"})
    poses = []
    while not started.done():
        status = moving.ok("status")
        if status["motion"]["running"]:
            assert status["motion"]["tool"] == "execute_plan"
            poses.append(pose(status))
        time.sleep(0.05)
    result = started.result()
    assert not result.is_error, result.content[0].text
    done = document(result)
    assert done["steps_executed"] == 10 and done["verified"] is True and done["exit_code"] == 0
    assert any(z < 100 for _, _, z in poses)  # status saw the arm down at the block or bowl
    assert max(math.dist(p, HOME_MM) for p in poses) > 150
    status = moving.ok("status")
    assert status["motion"] == {"running": False}
    assert status["last_result"]["tool"] == "execute_plan"
    assert status["last_result"]["steps_executed"] == 10
    assert math.dist(pose(status), HOME_MM) < 5  # the plan ended at home
    after = located(moving)["blue block"]
    assert math.dist((after["x"], after["y"]), (ox, oy)) < 40  # in the bowl now
    assert Path(done["out_dir"], "result.json").is_file()


def test_run_task_does_a_task_on_the_default_scene(moving):
    seen = located(moving)
    cube, bowl = seen["red block"], seen["cyan bowl"]
    done = moving.ok("run_task", {"task": "put the red block in the cyan bowl"})
    assert done["exit_code"] == 0 and done["verified"] is True and done["error"] is None
    assert done["steps_executed"] >= 8 and done["plan"][-1] == "returnToOrigin()"
    after = located(moving)["red block"]
    assert math.dist((after["x"], after["y"]), (bowl["x"], bowl["y"])) < 40
    assert math.dist((after["x"], after["y"]), (cube["x"], cube["y"])) > 100
    assert "did you mean 'blue'" in moving.refused("run_task", {"task": "put the bleu block "
                                                                         "in the red bowl"})
    line = moving.refused("run_task", {"task": f"put the {TEST_KEY} block in the red bowl"})
    assert "'put the *** block" in line  # echoed back, masked


def test_stop_halts_a_running_motion_where_it_is(moving):
    plan = [{"function": "move", "args": [400, y, True]} for y in (150, -150) * 30]
    started = moving.start("execute_plan", {"plan": plan, "task": "put the blue block in the "
                                                                  "orange bowl"})
    running = wait_for_motion(moving, started)
    assert running["motion"]["tool"] == "execute_plan" and running["motion_allowed"]
    assert "one motion at a time" in moving.refused("execute_plan", {"plan": plan[:1]})
    assert "one motion at a time" in moving.refused("look")
    stopped = moving.ok("stop")
    assert stopped["stopped"] is True and stopped["tool"] == "execute_plan" and stopped["ended"]
    result = started.result(timeout=CALL_TIMEOUT_S)
    assert result.is_error
    line = error_line(result)
    assert line.startswith("stopped by the stop tool: interrupted at step ")
    assert "the arm was stopped there" in line
    halted = result.structured_content
    assert halted["stopped"] is True and halted["exit_code"] == 130
    assert 0 < halted["steps_executed"] < len(plan)
    status = moving.ok("status")
    assert status["motion"] == {"running": False} and status["last_result"]["stopped"] is True
    here = pose(status)
    assert math.dist(here, HOME_MM) > 50  # it stopped on the way, not at home
    time.sleep(0.3)
    assert math.dist(pose(moving.ok("status")), here) < 1  # and stays there
    home = moving.ok("return_home")
    assert home["plan"][-1] == "returnToOrigin()" and home["steps_executed"] == 2
    assert math.dist(pose(moving.ok("status")), HOME_MM) < 5


# -- streamable HTTP on loopback ---------------------------------------------------------------

def _url(process: subprocess.Popen, timeout_s: float = 30) -> str:
    """The URL the server prints on stdout when it is ready."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise AssertionError("the server printed no URL")
    return process.stdout.readline().strip()


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "attacker", "version": "1"}}}


def test_streamable_http_on_loopback(tmp_path, monkeypatch):
    """Over HTTP every request needs the bearer token: without it, or with another, the server
    answers 401 and nothing runs; with it, the tools work."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    env = {**os.environ, "GEMINI_API_KEY": TEST_KEY, "ERARM_MCP_TOKEN": HTTP_TOKEN}
    env.pop("GOOGLE_API_KEY", None)
    process = subprocess.Popen(
        [ERARM, "mcp", "--http", "--port", "0", "--brain", "local", "--allow-motion", "--out",
         str(tmp_path / "runs")], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = _url(process)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
        headers = {"Accept": "application/json, text/event-stream"}
        for sent in ({}, {"Authorization": "Bearer " + "x" * 32},
                     {"Authorization": HTTP_TOKEN}):
            answer = httpx2.post(url, json=INITIALIZE, headers={**headers, **sent}, timeout=10)
            assert answer.status_code == 401, (sent, answer.text)
        authorised = create_mcp_http_client(headers={"Authorization": f"Bearer {HTTP_TOKEN}"})
        with connected(streamable_http_client(url, http_client=authorised)) as client:
            assert {tool.name for tool in client.tools()} == TOOLS
            assert client.ok("status")["motion_allowed"] is True
            assert "blue block" in {o["label"] for o in client.ok("look")["objects"]}
            assert "outside the workspace" in client.refused(
                "dry_run_plan", {"plan": [{"function": "move", "args": [400, 900, True]}]})
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert_key_absent(*client.seen, stderr, folder=tmp_path)


def test_a_generated_token_is_shown_at_start_and_a_weak_one_refused(tmp_path):
    """Without ERARM_MCP_TOKEN the server makes a token and shows it; a short one is refused in
    one line before anything opens."""
    env = {k: v for k, v in os.environ.items() if k != "ERARM_MCP_TOKEN"}
    process = subprocess.Popen(
        [ERARM, "mcp", "--http", "--port", "0", "--brain", "local", "--out",
         str(tmp_path / "runs")], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = _url(process)
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    token = re.search(r"Authorization: Bearer (\S+)'", stderr)
    assert url.endswith("/mcp") and token and len(token[1]) >= 32
    weak = subprocess.run([ERARM, "mcp", "--http", "--port", "0", "--out", str(tmp_path / "w")],
                          env={**env, "ERARM_MCP_TOKEN": "secret"}, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert weak.returncode == 2 and len(weak.stderr.strip().splitlines()) == 1
    assert "ERARM_MCP_TOKEN must be at least 16 characters" in weak.stderr


@pytest.mark.parametrize(("args", "words"), [
    (["--port", "9000"], "--port is the --http server's: give --http too"),
    (["--http", "--port", "70000"], "Invalid value for '--port'"),
])
def test_bad_options_are_one_line_before_serving(args, words, tmp_path):
    done = subprocess.run([str(Path(sys.executable).with_name("erarm")), "mcp", *args,
                           "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and not (tmp_path / "out").exists()
