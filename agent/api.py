"""erarm's Python API, for notebooks and scripts: the code the `erarm` command runs, as functions.

    import erarm

    task = "pick the blue block into the orange bowl"
    with erarm.open_workcell("sim", task=task, seed=3) as cell:  # the simulator stages the task
        result = erarm.run_task(task, cell, brain="local")
    print(result.success, result.out_dir)

    points = erarm.point("camera.png", "blue block")  # [Point(point=(y, x), label=...)]

Every function checks its input first and raises one of erarm's own exceptions (`ErarmError`
and its subclasses, such as `ConfigError` for bad input) with a one-line message; `exit_code` on
each says what the command line would exit with. `run_task` and `execute_plan` raise only for
input that is wrong before the run starts: once a run folder is claimed, a failed or
interrupted run is a `RunResult` with `error` and `exit_code` set. Progress lines go to `log`
(any callable taking a string, e.g. `print`; none by default).
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from erarm.agent.brains import Brain, BrainChoice, build_brain, check_task
from erarm.agent.config import Orchestration
from erarm.agent.images import CalibrationSource, ImageSource, calibration_from, frame_from
from erarm.agent.recording.rerun_view import RerunOptions, rerun_options
from erarm.agent.run import RunOptions, RunResult
from erarm.agent.schemas import Box, Point
from erarm.robots.base import Frame, Workcell
from erarm.robots.errors import ConfigError, ErarmError

if TYPE_CHECKING:
    from erarm.agent.recording.run_folder import RunFolder
    from erarm.agent.validate import ValidatedPlan

__all__ = ["Box", "Brain", "ConfigError", "ErarmError", "Frame", "Point", "ReplyWarning",
           "RunOptions", "RunResult", "Workcell", "detect", "execute_plan", "open_workcell",
           "point", "run_task", "trajectory"]

Log = Callable[[str], None]
Confirm = Callable[["ValidatedPlan"], bool]  # asked before any motion: True moves the arm
BrainSpec = BrainChoice | str | Brain  # "auto", "local", "gemini", or a brain already built
Pairs = Mapping[str, object] | Sequence[str]  # {"plan": 512}, ["plan=512"] or "plan=512"
MAX_CONSENSUS = 15


class ReplyWarning(UserWarning):
    """A brain's reply had malformed entries, which were dropped (the rest is returned)."""


def _quiet(_: str) -> None:
    """The default `log`: progress goes nowhere."""


def _warn_python(message: str) -> None:
    warnings.warn(message, ReplyWarning, stacklevel=3)


# -- brains -----------------------------------------------------------------------------------

def _pairs(given: Pairs | None) -> list[str]:
    """Gemini settings as the command line takes them: KEY=VALUE strings."""
    if isinstance(given, Mapping):
        return [f"{key}={value}" for key, value in given.items()]
    return [given] if isinstance(given, str) else list(given or [])


def _in_range(value: int, name: str, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bounds}, got {value}")


def _brain(brain: BrainSpec, *, model: str | None = None, base_url: str | None = None,
           config: str | Path | None = None, safety: Pairs | None = None,
           thinking: Pairs | None = None, consensus: int = 1, zoom: bool = False,
           trajectory: int = 0, needs: tuple[str, ...] = ("point", "detect", "plan")
           ) -> Brain:
    """A brain named by a string built as the command line builds it (Gemini settings from
    `config` and the keywords), or a brain object as it is."""
    _in_range(consensus, "consensus", 1, MAX_CONSENSUS)
    if not isinstance(brain, str):
        settings = {"model": model, "base_url": base_url, "config": config, "safety": safety,
                    "thinking": thinking, "consensus": consensus > 1, "zoom": zoom}
        given = [name for name, value in settings.items() if value]
        if given:
            raise ConfigError(f"{given[0]}= applies to a brain named by a string (auto, local, "
                              "gemini), not to a brain object")
        if not all(callable(getattr(brain, ask, None)) for ask in needs):
            raise ConfigError(f"brain must be auto, local, gemini or a Brain (with "
                              f"{', '.join(needs)}), got {type(brain).__name__}")
        return brain
    try:
        choice = BrainChoice(brain)
    except ValueError:
        raise ConfigError(f"brain must be auto, local or gemini, got {brain!r}") from None
    return build_brain(choice, model=model, base_url=base_url, config=config,
                       safety=_pairs(safety), thinking=_pairs(thinking), consensus=consensus,
                       zoom=zoom, trajectory=trajectory)


# -- the workcell -----------------------------------------------------------------------------

def build_workcell(robot: str, options: Mapping[str, object], *, camera: str | None = None,
                   camera_options: Mapping[str, object] | None = None,
                   calibration: CalibrationSource | None = None, blur_faces: bool = False
                   ) -> Workcell:
    """`open_workcell` with the robot driver's options as a mapping (the command line's
    --robot-opt, which may name any key)."""
    from erarm.agent import interrupts
    from erarm.robots.registry import open_camera
    from erarm.robots.registry import open_workcell as open_driver

    if camera is None and camera_options:
        raise ConfigError("camera_options need a camera= driver to go to")
    camera_calibration = calibration_from(calibration)
    cell = open_driver(robot, **options)
    try:
        if camera is not None:
            if cell.camera is not None:
                cell.camera.close()
            cell.camera = None
            cell.camera = open_camera(camera, **(camera_options or {}))
        if cell.camera is None:
            raise ConfigError(f"the {robot} robot has no camera of its own: choose one with "
                              "--camera (erarm cameras lists them)")
        if camera_calibration is not None:
            from erarm.agent.calibrate import CalibratedCamera

            cell.camera = CalibratedCamera(cell.camera, camera_calibration)
        if blur_faces:
            from erarm.agent.privacy import FaceBlurringCamera

            cell.camera = FaceBlurringCamera(cell.camera)
    except BaseException:
        with interrupts.deferred():
            cell.close()
        raise
    return cell


def open_workcell(robot: str = "sim", *, camera: str | None = None,
                  camera_options: Mapping[str, object] | None = None,
                  calibration: CalibrationSource | None = None, blur_faces: bool = False,
                  **options: object) -> Workcell:
    """The robot driver's workcell (`erarm robots` lists the drivers), not yet connected: use it
    as `with open_workcell(...) as cell:`, which connects the robot and closes everything after.

    `options` go to the driver as `--robot-opt` does: for the simulator `task=` (stage what the
    task names), `seed=`, `scene=` (a layout file), `gui=`, `realtime=`, ... Another `camera`
    driver (with `camera_options`) can watch instead of the robot's own; `calibration` (a file
    or a `CameraCalibration`) replaces the camera's own; `blur_faces` blurs every face before a
    frame is used, stored or uploaded. Unknown drivers and bad options raise `ConfigError`."""
    return build_workcell(robot, options, camera=camera, camera_options=camera_options,
                          calibration=calibration, blur_faces=blur_faces)


# -- runs -------------------------------------------------------------------------------------

def _check_run(task: object, cell: object, out: object, flags: Mapping[str, object],
               callbacks: Mapping[str, object]) -> None:
    """What a run is given, checked before its run folder is claimed: a task, a cell, flags
    that are booleans (a safety switch takes no "no"), callables, a folder."""
    if not isinstance(task, str):
        raise ConfigError(f"task must be a string, got {type(task).__name__}")
    if not isinstance(cell, Workcell):
        raise ConfigError(f"cell must be a Workcell (from erarm.open_workcell), got "
                          f"{type(cell).__name__}")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be True or False, got {value!r}")
    for name, value in callbacks.items():
        if value is not None and not callable(value):
            raise ConfigError(f"{name} must be a callable or None, got {value!r}")
    from erarm.agent.recording.run_folder import RunFolder

    if out is not None and not isinstance(out, str | PathLike | RunFolder):
        raise ConfigError(f"out must be a folder's path, got {out!r}")


def _check_cell(task: str, cell: Workcell) -> None:
    """The cell can do this task: open, and (a simulator's) staged for it."""
    staged = cell.instruction
    if task and staged and " ".join(task.split()) != " ".join(staged.split()):
        raise ConfigError(f"this workcell was staged for {staged!r}, which is what its referee "
                          f"scores: open one with task={task!r} for this task")
    cell.robot.state()  # a closed cell says so now (RobotError), before anything is written


def _require_confirm(cell: Workcell, confirm: Confirm | None, dry_run: bool) -> None:
    """A physical arm moves only after someone (or something) said yes: as the command line
    asks by default there, the API wants `confirm` given."""
    if cell.robot.physical and confirm is None and not dry_run:
        raise ConfigError(f"the {cell.robot.name} robot is a physical arm: pass confirm= (a "
                          "callable shown the validated plan, True moves the arm), or "
                          "dry_run=True")


RerunSpec = bool | str | PathLike | RerunOptions | None  # True: a viewer; a path: an .rrd


def _rerun(rerun: RerunSpec) -> RerunOptions | None:
    if rerun is None or isinstance(rerun, RerunOptions):
        return rerun
    if isinstance(rerun, bool):
        return rerun_options(spawn=rerun)
    if not isinstance(rerun, str | PathLike):
        raise ConfigError(f"rerun must be True or an .rrd path, got {rerun!r}")
    return rerun_options(save=rerun)


def default_out_dir(name: str) -> Path:
    """A new run folder's path: runs/<date>-<time>-<name as a slug>."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "run"
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"


def _folder(out: str | PathLike | RunFolder | None, name: str) -> RunFolder:
    """The run folder, claimed: `out` (a path, or a `RunFolder` already claimed), else a new one
    under runs/ named after `name`."""
    from erarm.agent.recording.run_folder import RunFolder

    if isinstance(out, RunFolder):
        return out
    if out is None:
        return RunFolder.claim_new(default_out_dir(name))
    return RunFolder.claim(Path(out))


def run_task(task: str, cell: Workcell, *, brain: BrainSpec = "auto",
             out: str | PathLike | RunFolder | None = None, dry_run: bool = False,
             closed_loop: bool = True, strict_targets: bool = True, trajectory: int = 0,
             record: bool = False, log: Log | None = None, confirm: Confirm | None = None,
             model: str | None = None, base_url: str | None = None,
             config: str | Path | None = None, safety: Pairs | None = None,
             thinking: Pairs | None = None, consensus: int = 1, zoom: bool = False,
             orchestration: str = "auto", rehearse: bool = False,
             resume_live: bool = False, narrate: Log | None = None,
             rerun: RerunSpec = None) -> RunResult:
    """Do `task` in the open `cell`, as `erarm run` does: look, plan, validate the whole plan,
    then move and check (one pick and place at a time unless `closed_loop=False`); with
    `orchestration="tools"` the model calls the robot's functions step by step instead, each
    call checked before it runs ("auto": as the model's docs do it); `rehearse` (always on a
    physical arm) lets it do the task in a simulated twin first and moves the arm through its
    calls as one validated plan, going on live after a divergence only with `resume_live`.

    `brain` is "auto" (Gemini when GEMINI_API_KEY or GOOGLE_API_KEY is set, else local),
    "local", "gemini" (settings: `model`, `base_url`, `config` file, `safety` and `thinking`
    as {KEY: VALUE}, `consensus`, `zoom`) or a brain object. The files go to `out` (default: a
    new folder under runs/, relative to the working directory; a `RunFolder` already claimed
    is taken as it is). `dry_run` validates and moves nothing; `trajectory` carries objects
    along a path of that many points (Gemini); `record` keeps a flight record;
    `confirm(validated_plan)` is asked before any motion and moves the arm only when it
    returns True (None: no question, which a physical arm refuses unless `dry_run`); a
    `confirm` with a `go_on_live(divergence)` method (`AsksToGoOnLive`) is also asked whether a
    rehearsed run that parted from its rehearsal goes on live, when `resume_live` is False;
    `narrate(sentence)` is given what erarm would say aloud as it happens (`erarm.agent.speech`);
    `rerun` shows the run in rerun (True: a viewer spawned; a path: an .rrd file written).

    Returns the `RunResult` (`success`, `verified`, `objects`, `plan`, `actions`, `timings`,
    `out_dir`, `error`, `exit_code`); bad input raises `ConfigError` (or another `ErarmError`)
    before a run folder is made."""
    from erarm.agent.orchestration import check_options
    from erarm.agent.run import run_task as run

    _check_run(task, cell, out, {"dry_run": dry_run, "closed_loop": closed_loop,
                                 "strict_targets": strict_targets, "record": record},
               {"log": log, "confirm": confirm, "narrate": narrate})
    _in_range(trajectory, "trajectory", 0, 30)
    chosen = _brain(brain, model=model, base_url=base_url, config=config, safety=safety,
                    thinking=thinking, consensus=consensus, zoom=zoom, trajectory=trajectory)
    check_task(task, chosen)
    _check_cell(task, cell)
    _require_confirm(cell, confirm, dry_run)
    try:
        style = Orchestration(orchestration)
    except ValueError:
        raise ConfigError(f"orchestration must be one of auto, plan, tools, got "
                          f"{orchestration!r}") from None
    options = RunOptions(dry_run=dry_run, strict_targets=strict_targets,
                         trajectory_points=trajectory, closed_loop=closed_loop,
                         orchestration=style, rehearse=rehearse, resume_live=resume_live,
                         rerun=_rerun(rerun))
    check_options(options, chosen)
    return run(task, chosen, cell, _folder(out, task), log=log or _quiet, options=options,
               confirm=confirm, record=record, narrate=narrate)


def read_plan_file(path: Path) -> tuple[str, str | None]:
    """The plan file's text, and the task recorded in it when it is a run's plan.json."""
    from erarm.robots.files import read_input_text

    text = read_input_text(path, "plan file")
    task = None
    if text.lstrip().startswith("{"):
        try:
            recorded = json.loads(text)
        except (ValueError, RecursionError):
            recorded = None
        if isinstance(recorded, dict) and isinstance(recorded.get("task"), str):
            task = recorded["task"]
    return text, task


def _number(value: object) -> object:
    """A numpy scalar in a plan's calls as the Python number it holds."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    raise TypeError(f"{type(value).__name__} is not a number, a boolean or a string")


class PlanInput(NamedTuple):
    """A plan ready to execute: its text (parsed once as a check), the task it is for, and the
    name its run folder is given."""

    text: str
    task: str
    name: str


def load_plan(plan: str | PathLike | Sequence[Mapping], task: str | None = None) -> PlanInput:
    """`execute_plan`'s `plan` and `task`, checked before any robot or run folder is touched: a
    plan that does not parse raises here."""
    from erarm.agent.parse import parse_plan

    recorded, name = None, "execute"
    if isinstance(plan, PathLike):
        text, recorded = read_plan_file(Path(plan))
        name = f"execute {Path(plan).stem}"
    elif isinstance(plan, str):
        if "\n" not in plan and Path(plan).suffix in (".json", ".txt") and Path(plan).is_file():
            raise ConfigError(f"plan {plan!r} names a file: pass Path({plan!r}) to read it (a "
                              "string is the plan's text)")
        text = plan
    elif isinstance(plan, Mapping):
        raise ConfigError("plan: a list of call dicts, got one dict (wrap it in a list)")
    else:
        try:
            text = json.dumps(list(plan), default=_number)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"plan: model text, a list of call dicts or a plan file's path; "
                              f"{err}") from None
    parse_plan(text)
    return PlanInput(text, task if task is not None else (recorded or ""), name)


def execute_plan(plan: str | PathLike | Sequence[Mapping], cell: Workcell, *,
                 task: str | None = None, brain: BrainSpec = "local",
                 out: str | PathLike | RunFolder | None = None, dry_run: bool = False,
                 strict_targets: bool = True, record: bool = False, log: Log | None = None,
                 confirm: Confirm | None = None, model: str | None = None,
                 base_url: str | None = None, config: str | Path | None = None,
                 narrate: Log | None = None, rerun: RerunSpec = None) -> RunResult:
    """Run a plan as written in the open `cell`, after the same validation a model's plan gets,
    as `erarm execute` does. `plan` is model text (reasoning, then JSON), a list of call dicts
    (`[{"function": "move", "args": [412, 87, true]}, ...]`) or the path (a `Path`) of a plan
    file or a run's plan.json. `task` is what the plan is for (default: the one a plan.json
    records; a simulated cell must have been opened with the same `task=` to be scored);
    `brain` only looks, for validation and verification; `rerun` as for `run_task`. Returns
    the `RunResult`; a plan that does not parse raises before a run folder is made."""
    from erarm.agent.run import execute_plan as execute

    checked = load_plan(plan, task)
    _check_run(checked.task, cell, out, {"dry_run": dry_run, "strict_targets": strict_targets,
                                         "record": record},
               {"log": log, "confirm": confirm, "narrate": narrate})
    looker = _brain(brain, model=model, base_url=base_url, config=config)
    _check_cell(checked.task, cell)
    _require_confirm(cell, confirm, dry_run)
    options = RunOptions(dry_run=dry_run, strict_targets=strict_targets, rerun=_rerun(rerun))
    return execute(checked.text, checked.task, looker, cell, _folder(out, checked.name),
                   log=log or _quiet, options=options, confirm=confirm, record=record,
                   narrate=narrate)


# -- questions about an image ----------------------------------------------------------------

def point(image: ImageSource, *queries: str, brain: BrainSpec = "auto", limit: int = 10,
          calibration: CalibrationSource | None = None, blur_faces: bool = False,
          consensus: int = 1, zoom: bool = False, model: str | None = None,
          base_url: str | None = None, config: str | Path | None = None,
          safety: Pairs | None = None, thinking: Pairs | None = None, log: Log | None = None,
          warn: Log | None = None) -> list[Point]:
    """Points at the named objects (or at everything, up to `limit`) in `image` (a PNG, JPEG or
    BMP path, an RGB array H x W x 3 of uint8, or a `Frame`), as `erarm point` does: each a
    `Point` with `.y`, `.x` on a 0-1000 grid and a `.label`. `calibration` lets the local brain
    tell blocks from bowls by size. Malformed entries of the reply are dropped, each said to
    `warn` (default: a `ReplyWarning`)."""
    from erarm.agent.parse import read_points

    chosen = _brain(brain, model=model, base_url=base_url, config=config, safety=safety,
                    thinking=thinking, consensus=consensus, zoom=zoom, needs=("point",))
    if not all(isinstance(query, str) for query in queries):
        raise ConfigError("point: each query is a string, e.g. point(image, 'blue block', "
                          "'bowl')")
    _in_range(limit, "limit", 1)
    frame = frame_from(image, calibration, blur_faces, log or _quiet)
    reading = read_points(chosen.point(frame, list(queries) or None, limit=limit))
    for line in reading.warnings:
        (warn or _warn_python)(line)
    return reading.items


def detect(image: ImageSource, *, brain: BrainSpec = "auto", limit: int = 25,
           calibration: CalibrationSource | None = None, blur_faces: bool = False,
           consensus: int = 1, model: str | None = None, base_url: str | None = None,
           config: str | Path | None = None, safety: Pairs | None = None,
           thinking: Pairs | None = None, log: Log | None = None, warn: Log | None = None
           ) -> list[Box]:
    """Boxes around the objects in `image` (as for `point`), with unique labels for repeated
    ones, as `erarm detect` does: each a `Box` with `.box_2d` [ymin, xmin, ymax, xmax] on a
    0-1000 grid and a `.label`."""
    from erarm.agent.parse import read_boxes

    chosen = _brain(brain, model=model, base_url=base_url, config=config, safety=safety,
                    thinking=thinking, consensus=consensus, needs=("detect",))
    _in_range(limit, "limit", 1)
    frame = frame_from(image, calibration, blur_faces, log or _quiet)
    reading = read_boxes(chosen.detect(frame, limit=limit))
    for line in reading.warnings:
        (warn or _warn_python)(line)
    return reading.items


def trajectory(image: ImageSource, instruction: str, *, points: int = 15,
               brain: BrainSpec = "auto", blur_faces: bool = False, consensus: int = 1,
               model: str | None = None, base_url: str | None = None,
               config: str | Path | None = None, safety: Pairs | None = None,
               thinking: Pairs | None = None, log: Log | None = None) -> list[Point]:
    """An ordered path of `points` points after the start, labelled "0".."n", that carries out
    `instruction` in `image`, as `erarm trajectory` does (a brain that can draw paths: Gemini)."""
    from erarm.agent.brains.base import require
    from erarm.agent.parse import parse_trajectory

    chosen = _brain(brain, model=model, base_url=base_url, config=config, safety=safety,
                    thinking=thinking, consensus=consensus, needs=())
    require(chosen, "trajectory")
    _in_range(points, "points", 2, 50)
    frame = frame_from(image, None, blur_faces, log or _quiet)
    return parse_trajectory(chosen.trajectory(frame, instruction, points=points))
