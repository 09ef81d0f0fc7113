"""`erarm mcp`: serve the workcell to any MCP client (an agent) over stdio or streamable HTTP on
loopback; the tools, the permission and the threads are in `erarm.agent.serving`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from erarm.agent import interrupts
from erarm.agent.brains import EMULATOR_KEY, BrainChoice, build_brain
from erarm.agent.cli.common import (
    BaseUrlOpt,
    BlurOpt,
    BrainOpt,
    CameraOpt,
    CameraOptions,
    ConfigOpt,
    ConsensusOpt,
    EmulateOpt,
    EmulateOptions,
    ModelOpt,
    OrchestrationOpt,
    RobotOpt,
    RobotOptions,
    SafetyOpt,
    ThinkingOpt,
    ZoomOpt,
    app,
    emulator,
    open_cell,
    refuse_emulate_with,
    say,
)
from erarm.agent.cli.run import CalibrationOpt, GuiOpt, RealtimeOpt, SceneOpt, SeedOpt
from erarm.agent.config import Orchestration
from erarm.robots.errors import ConfigError

DEFAULT_SCENE_TASK = "pick the blue block into the orange bowl"  # the table `erarm live` lays
DEFAULT_PORT = 8000


def _default_scene(seed: int, folder: Path) -> Path:
    """The table the simulator lays out for the demo task from `seed`, as a scene file: opened
    from it, the cell takes any task (no referee scoring one task)."""
    from erarm.sim.scene import scene_document
    from erarm.sim.tasks import stage

    path = folder / "scene.json"
    path.write_text(json.dumps(scene_document(stage(DEFAULT_SCENE_TASK, seed))))
    return path


def _connected(hardware: dict, calibration: Path | None, blur_faces: bool):
    """The workcell, connected; closed again if connecting fails."""
    from erarm.robots.base import load_calibration

    camera_calibration = load_calibration(calibration) if calibration is not None else None
    cell = open_cell(**hardware, calibration=camera_calibration, blur_faces=blur_faces)
    try:
        cell.robot.connect()
    except BaseException:
        with interrupts.deferred():
            cell.close()
        raise
    return cell


@app.command(name="mcp")
def mcp_command(
    allow_motion: Annotated[bool, typer.Option(
        "--allow-motion",
        help="Let clients move the arm (execute_plan, run_task, return_home): the operator's "
             "confirmation, given once for the session, on a physical arm too; every plan is "
             "still validated in full first. Without it those tools are refused.")] = False,
    http: Annotated[bool, typer.Option(
        "--http", help="Serve streamable HTTP on 127.0.0.1 (at /mcp) instead of stdio. Clients "
                       "must send the bearer token shown at start (or set in ERARM_MCP_TOKEN).")
    ] = False,
    port: Annotated[int | None, typer.Option(
        min=0, max=65535, help=f"The --http port on 127.0.0.1 (0: any free one; the URL is "
                               f"printed) [default: {DEFAULT_PORT}].")] = None,
    task: Annotated[str | None, typer.Option(
        help="Lay the simulated table out for this task and let the simulator's referee score "
             "it (run_task then takes only this task) [default: the table laid out for "
             f"'{DEFAULT_SCENE_TASK}' from --seed, and any task; with --emulate, that task].")
    ] = None,
    brain: BrainOpt = BrainChoice.auto, robot: RobotOpt = None, robot_opt: RobotOptions = None,
    camera: CameraOpt = None, camera_opt: CameraOptions = None,
    seed: SeedOpt = 0, scene: SceneOpt = None, gui: GuiOpt = False,
    realtime: RealtimeOpt = False, calibration: CalibrationOpt = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the run folders of the calls that plan or move (one per call) "
             "[default: a new folder under runs/].")] = None,
    orchestration: OrchestrationOpt = Orchestration.auto,
    model: ModelOpt = None, base_url: BaseUrlOpt = None, config: ConfigOpt = None,
    safety: SafetyOpt = None, thinking_budget: ThinkingOpt = None,
    consensus: ConsensusOpt = 1, zoom: ZoomOpt = False, blur_faces: BlurOpt = False,
    emulate: EmulateOpt = False, emulate_opt: EmulateOptions = None,
) -> None:
    """Serve the arm to MCP clients (agents): look, point, detect, dry_run_plan, execute_plan,
    run_task, return_home, status and stop, over stdio (default) or streamable HTTP on
    loopback. Motion needs --allow-motion; the API key stays in the environment and never
    crosses the protocol."""
    from erarm.agent.api import default_out_dir
    from erarm.agent.orchestration import check_options
    from erarm.agent.session import RunOptions

    try:
        from erarm.agent.serving.auth import TOKEN_ENV, bearer_token
        from erarm.agent.serving.jobs import ServerOptions
        from erarm.agent.serving.server import HTTP_PATH, loopback_socket, serve
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("mcp"):
            raise
        raise ConfigError("erarm mcp needs the MCP Python SDK: pip install 'erarm[mcp]' (or "
                          "pip install 'mcp>=2.3,<3')") from None
    if emulate:
        refuse_emulate_with(brain, base_url, robot, camera)
    if port is not None and not http:
        raise ConfigError("--port is the --http server's: give --http too (stdio has no port)")
    token = bearer_token() if http else None  # a bad ERARM_MCP_TOKEN fails before serving
    # a port in use fails before anything opens
    sock = loopback_socket(DEFAULT_PORT if port is None else port) if http else None
    try:
        with emulator(emulate, emulate_opt) as model_emulator, \
                tempfile.TemporaryDirectory(prefix="erarm-mcp-") as scratch:
            session = model_emulator.session_url(f"mcp-{seed}") if model_emulator else None
            chosen = build_brain(brain, model=model, base_url=session or base_url,
                                 config=config, safety=safety, thinking=thinking_budget,
                                 consensus=consensus, zoom=zoom,
                                 api_key=EMULATOR_KEY if session else None)
            check_options(RunOptions(orchestration=orchestration), chosen)  # before it opens
            if task is None and scene is None and session:
                task = DEFAULT_SCENE_TASK  # the emulator plays the model from the task's truth
            elif task is None and scene is None:
                scene = _default_scene(seed, Path(scratch))
            simulator = dict(task=task or "", seed=seed, scene=scene, gui=gui,
                             realtime=realtime)
            if session:
                simulator["emulator"] = session
            cell = _connected(dict(robot=robot, robot_entries=robot_opt, camera=camera,
                                   camera_entries=camera_opt, config=config, **simulator),
                              calibration, blur_faces)
            try:
                folder = out if out is not None else default_out_dir("mcp")
                motion = "motion allowed" if allow_motion else "no motion (--allow-motion)"
                where, url = "stdio", None
                if sock is not None:
                    where = url = f"http://127.0.0.1:{sock.getsockname()[1]}{HTTP_PATH}"
                say(f"erarm MCP server on {where}: {cell.robot.name}, brain {chosen.name}, "
                    f"{motion}; run folders in {folder}/")
                if token is not None:
                    say(f"clients send the header 'Authorization: Bearer {token}'"
                        + ("" if os.environ.get(TOKEN_ENV) else
                           f" (a new token each start; set {TOKEN_ENV} to keep one)"))
                if sock is not None:
                    print(where, flush=True)  # stdout, last: a script reading it may connect
                serve(cell, chosen, ServerOptions(allow_motion=allow_motion, out=folder,
                                                  orchestration=orchestration, log=say,
                                                  url=url, token=token),
                      sock)
            finally:
                with interrupts.deferred():
                    cell.close()
    finally:
        if sock is not None:
            sock.close()
