"""What every erarm command shares: the app, the consoles, the brain options, the checks of
input and output files, opening the workcell from flags and the config file."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import cv2
import typer
import typer.core
import typer.rich_utils
from rich.console import Console
from rich.markup import escape

from erarm.agent.brains import BrainChoice
from erarm.agent.config import Orchestration
from erarm.agent.redaction import redact
from erarm.robots.base import CameraCalibration
from erarm.robots.errors import ConfigError
from erarm.robots.files import check_input_file, check_output_file

# OpenCV, and the FFmpeg inside it, log their own [ WARN]/[ERROR] lines on stderr; erarm says
# what went wrong itself (ERARM_DEBUG keeps them).
if not os.environ.get("ERARM_DEBUG"):
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read on first open

app = typer.Typer(
    name="erarm", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode="markdown")

WIDE_COLUMNS = 250  # a console that is not a terminal: wide enough that no table is cut
# what a terminal would obey rather than show: C0 and C1 controls (escape sequences start with
# one), and the bidirectional overrides that reorder what is read
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
OWN_STYLE = re.compile(r"\x1b\[[0-9;]*m")  # the colours rich itself writes


def printable(text: str) -> str:
    """Text from a model, a file or a client, as a terminal shows it rather than obeys it:
    every control character written out as an escape (ESC as \\x1b)."""
    return CONTROLS.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                        else f"\\u{ord(m[0]):04x}", text)


class _Shown:
    """A console's stream that lets through rich's own colours and shows every other control
    character as an escape, whatever printed it: the last guard before a terminal."""

    def __init__(self, stderr: bool):
        self.stderr = stderr

    @property
    def stream(self):
        return sys.stderr if self.stderr else sys.stdout  # as it is now (tests swap it)

    def write(self, text: str) -> int:
        kept = OWN_STYLE.split(text)
        styles = OWN_STYLE.findall(text)
        shown = "".join(printable(part) + (styles[i] if i < len(styles) else "")
                        for i, part in enumerate(kept))
        return self.stream.write(shown)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()


def _console(stderr: bool) -> Console:
    """A console on stdout or stderr; when that is not a terminal (a pipe, a file, a test) and
    COLUMNS is not set, wide enough that rich never squeezes a table to the default 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and not os.environ.get("COLUMNS")
    return Console(file=_Shown(stderr), highlight=False,
                   soft_wrap=True, width=WIDE_COLUMNS if wide else None,
                   emoji=False)  # a path or a module:factory named ":fire:" stays as it is


err_console = _console(stderr=True)


def out_console() -> Console:
    return _console(stderr=False)


def _flag_type(self, ctx) -> str | None:
    """Help shows no value type for a flag: `--json` takes no `<bool>`."""
    return None if self.is_flag else _option_type(self, ctx)


_option_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_type
if not sys.stdout.isatty() and typer.rich_utils.MAX_WIDTH is None:
    typer.rich_utils.MAX_WIDTH = 120  # --help into a pipe or file: not squeezed to 80 columns


def say(message: str) -> None:
    """A progress line on stderr, as written (brackets in it are not markup)."""
    err_console.print(f"[dim]·[/dim] {escape(printable(message))}")


def print_json(document: object) -> None:
    print(redact(json.dumps(document)))


def check_output_image(path: Path, what: str = "image") -> Path:
    """`path` if OpenCV can write an image there: a file name with an image format's extension
    (.png, .jpg ...) in a writable folder."""
    check_output_file(path, what)
    if not cv2.haveImageWriter(str(path)):
        kind = path.suffix or "a name without an extension"
        raise ConfigError(f"{what} {path}: OpenCV cannot write {kind}; use .png or .jpg")
    return path


def input_file(what: str):
    """A typer callback for a path option or argument that must name an input file: checked when
    the command line is parsed, before any work starts."""
    def check(value: Path | list[Path] | None):
        for path in value if isinstance(value, list) else [value]:
            if path is not None:
                check_input_file(path, what)
        return value

    return check


def output_image(what: str):
    """A typer callback for a path option erarm writes an image to."""
    def check(value: Path | None):
        if value is not None:
            check_output_image(value, what)
        return value

    return check


def _print_version(asked: bool) -> None:
    if asked:
        from erarm import __version__

        print(f"erarm {__version__}")
        raise typer.Exit()


VersionOpt = Annotated[bool, typer.Option(
    "--version", callback=_print_version, is_eager=True, help="Print erarm's version and exit.")]

# Options shared by the commands that ask a brain something.
BrainOpt = Annotated[BrainChoice, typer.Option(
    help="auto: Gemini when GEMINI_API_KEY or GOOGLE_API_KEY is set, else local (offline).")]
ModelOpt = Annotated[str | None, typer.Option(
    help="Gemini model id [default: gemini-robotics-er-2-preview; also "
         "gemini-robotics-er-1.5-preview].")]
OrchestrationOpt = Annotated[Orchestration, typer.Option(
    case_sensitive=False,
    help="plan: one request, a whole plan validated before any motion; tools: the model calls "
         "the robot's functions step by step, each validated before it runs; auto: as the "
         "model's docs do it (tools on Robotics-ER 2, plan on ER 1.5 and the local brain).")]
BaseUrlOpt = Annotated[str | None, typer.Option(
    help="Gemini API endpoint, for gateways and tests [default: Google's, or "
         "GOOGLE_GEMINI_BASE_URL].")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", callback=input_file("config file"),
    help="TOML settings file ([gemini] model, temperature, thinking_budget, safety, "
         "timeout_s, attempts, image_max_side ...).")]
SafetyOpt = Annotated[list[str] | None, typer.Option(
    "--safety", help="CATEGORY=THRESHOLD, e.g. dangerous_content=BLOCK_ONLY_HIGH; repeatable.")]
ThinkingOpt = Annotated[list[str] | None, typer.Option(
    "--thinking-budget", help="KIND=TOKENS for point, detect, trajectory, plan or judge "
                              "(a level on ER 2); repeatable.")]
ConsensusOpt = Annotated[int, typer.Option(
    min=1, max=15, help="Ask K times and keep the robust median of what most answers agree on.")]
ZoomOpt = Annotated[bool, typer.Option(
    help="Refine each point in a crop around its coarse box.")]
BlurOpt = Annotated[bool, typer.Option(
    help="Blur faces in every camera image before it is used, stored or uploaded.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


RobotOpt = Annotated[str | None, typer.Option(
    help="Robot driver: sim, or an installed plugin such as xarm (erarm robots lists them) "
         "[default: [robot] in --config, else sim].")]
RobotOptions = Annotated[list[str] | None, typer.Option(
    "--robot-opt", help="KEY=VALUE for the robot driver, e.g. host=192.168.1.200 or, for the "
                        "simulator, camera_offset_mm=30,0,-20; repeatable.")]
CameraOpt = Annotated[str | None, typer.Option(
    help="Camera driver: opencv, realsense, sim or a plugin (erarm cameras lists them) "
         "[default: [camera] in --config, else the robot's own].")]
CameraOptions = Annotated[list[str] | None, typer.Option(
    "--camera-opt", help="KEY=VALUE for the camera driver, e.g. source=0 or "
                         "calibration=calibration.json; repeatable.")]


def _option_value(text: str) -> object:
    """A driver option's value: JSON if it parses (5, true, [1, 2], {"size_m": 0.04}), else a
    comma list of such, or the text itself."""
    def one(part: str) -> object:
        try:
            return json.loads(part)
        except ValueError:
            return part

    whole = one(text)
    if whole is not text or "," not in text:
        return whole
    return [one(p.strip()) for p in text.split(",")]


def driver_options(entries: list[str] | None, flag: str = "--robot-opt") -> dict[str, object]:
    options = {}
    for entry in entries or []:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} takes KEY=VALUE, got {entry!r}")
        options[key.strip()] = _option_value(value.strip())
    return options


EmulateOpt = Annotated[bool, typer.Option(
    "--emulate", help="Use the Gemini brain against erarm's Robotics-ER emulator, which answers "
                      "from the simulator's ground truth with a real model's kinds of error "
                      "(offline, no key); the simulator only.")]
EmulateOptions = Annotated[list[str] | None, typer.Option(
    "--emulate-opt", help="KEY=VALUE for the emulator, e.g. pointing_sigma=20, "
                          "latency_median_s=0 or seed=3 (README, \"The Robotics-ER "
                          "emulator\"); repeatable.")]


@contextmanager
def emulator(enabled: bool, entries: list[str] | None) -> Iterator[Any]:
    """A Robotics-ER emulator (`erarm.sim.emulator.Emulator`) serving on loopback while the
    command runs, or None without --emulate. The simulator feeds it the truth; the agent only
    talks HTTP to it."""
    if not enabled:
        if entries:
            raise ConfigError("--emulate-opt needs --emulate")
        yield None
        return
    from erarm.robots.registry import check_options
    from erarm.sim.emulator import Emulator, EmulatorSettings

    settings = check_options(EmulatorSettings, driver_options(entries, "--emulate-opt"),
                             "emulator")
    with Emulator(settings) as running:
        yield running


RerunOpt = Annotated[bool, typer.Option(
    "--rerun", help="Show the run in rerun as it happens (spawns its viewer; needs "
                    "erarm[rerun]); keeps the flight record too.")]
RerunSaveOpt = Annotated[Path | None, typer.Option(
    "--rerun-save", help="Write the run as a rerun recording to this .rrd file (open it with "
                         "`rerun FILE.rrd`); keeps the flight record too.")]
SpeakOpt = Annotated[bool, typer.Option(
    "--speak", help="Say what erarm is about to do and what happened: Gemini's speech "
                    "generation with a key, else espeak-ng.")]
SpeakToOpt = Annotated[Path | None, typer.Option(
    "--speak-to", help="Write the narration to this WAV file instead of playing it (implies "
                       "--speak).")]


@contextmanager
def narration(speak: bool, speak_to: Path | None, base_url: str | None = None
              ) -> Iterator[Any]:
    """The narrator's `say` while the command runs (None without --speak or --speak-to); the
    last sentence is said, or the file written, before the command ends."""
    if not speak and speak_to is None:
        yield None
        return
    from erarm.agent.brains import api_key_from_env
    from erarm.agent.speech import check_speak_to, open_narrator

    target = check_speak_to(speak_to) if speak_to is not None else None
    narrator = open_narrator(api_key_from_env(), say, target, base_url)
    try:
        yield narrator.say
    finally:
        narrator.close()


def refuse_emulate_with(brain: BrainChoice, base_url: str | None, robot: str | None = None,
                        camera: str | None = None) -> None:
    """--emulate is the Gemini brain with the emulator's URL, on the simulator whose truth it
    reads: another brain, URL, robot or camera contradicts it."""
    if (robot or "sim") != "sim" or camera not in (None, "sim"):
        raise ConfigError("--emulate answers from the simulator's truth: it needs the "
                          "simulated robot and camera")
    if brain is BrainChoice.local:
        raise ConfigError("--emulate plays the Gemini model; it cannot be used with --brain local")
    if base_url is not None:
        raise ConfigError("--emulate serves the model itself; leave out --base-url (or run "
                          "erarm emulate and give its URL to --base-url and --robot-opt "
                          "emulator=URL)")


def _choose(name: str | None, entries: list[str] | None, configured, flag: str,
            default: str | None) -> tuple[str | None, dict[str, object]]:
    """A driver and its options: the flag's name, else the config file's, else the default;
    the file's options for that driver, overridden by the flag's."""
    chosen = name or (configured.name if configured else default)
    options = dict(configured.options) if configured and configured.name == chosen else {}
    options.update(driver_options(entries, flag))
    return chosen, options


def open_cell(robot: str | None, robot_entries: list[str] | None, *, camera: str | None = None,
              camera_entries: list[str] | None = None, config: Path | None = None,
              calibration: CameraCalibration | None = None, blur_faces: bool = False,
              **simulator: object):
    """The chosen robot driver's workcell, watched by the chosen camera (else the robot's own),
    as `erarm.open_workcell` opens it. `simulator` holds the flags only a simulator takes (task,
    seed, scene, gui, realtime)."""
    from erarm.agent.api import build_workcell
    from erarm.agent.config import load_config

    settings = load_config(config)
    robot, options = _choose(robot, robot_entries, settings.robot, "--robot-opt", "sim")
    camera, camera_options = _choose(camera, camera_entries, settings.camera, "--camera-opt",
                                     None)
    if robot == "sim":
        options = {**simulator, **options}
    return build_workcell(robot, options, camera=camera, camera_options=camera_options,
                          calibration=calibration, blur_faces=blur_faces)
