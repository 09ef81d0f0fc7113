"""What every erarm command shares: the app, the consoles, the brain options, the checks of
input and output files, image loading."""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import time
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import typer
import typer.core
import typer.rich_utils
from rich.console import Console

from erarm.agent.brains import BrainChoice
from erarm.agent.secrets import redact
from erarm.robots.base import Frame
from erarm.robots.errors import ConfigError
from erarm.robots.files import check_input_file, check_output_file, read_input_bytes

# OpenCV, and the FFmpeg inside it, log their own [ WARN]/[ERROR] lines on stderr; erarm says
# what went wrong itself (ERARM_DEBUG keeps them).
if not os.environ.get("ERARM_DEBUG"):
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read on first open

app = typer.Typer(
    name="erarm", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode="markdown")

WIDE_COLUMNS = 250  # a console that is not a terminal: wide enough that no table is cut


def _console(stderr: bool) -> Console:
    """A console on stdout or stderr; when that is not a terminal (a pipe, a file, a test) and
    COLUMNS is not set, wide enough that rich never squeezes a table to the default 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and not os.environ.get("COLUMNS")
    return Console(file=None if stderr else stream, stderr=stderr, highlight=False,
                   soft_wrap=True, width=WIDE_COLUMNS if wide else None)


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
    """A progress line on stderr."""
    err_console.print(f"[dim]·[/dim] {message}")


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
    help="Gemini model id [default: gemini-robotics-er-2-preview; also -1.6-, -1.5-preview].")]
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


MAX_IMAGE_PIXELS = 50_000_000  # 50 megapixels: far beyond any camera erarm works with
MAX_IMAGE_BYTES = 256 * 1024 * 1024
JPEG_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                      0xCF}  # start-of-frame markers, which carry the image's size


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG or BMP header, without decoding any pixels; None for
    anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in JPEG_FRAME_MARKERS:
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            at += 2
            continue
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
    return None


def decode_image(path: Path) -> np.ndarray:
    """An image file as RGB; its size is read from the header and bounded before any pixel is
    decoded, so a small file cannot ask for gigabytes."""
    data = read_input_bytes(path, "image", MAX_IMAGE_BYTES)
    size = image_size(data)
    if size is None:
        raise ConfigError(f"image {path}: not a PNG, JPEG or BMP image")
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise ConfigError(f"image {path} is {width}x{height} pixels; erarm reads at most "
                          f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ConfigError(f"image {path}: damaged or truncated, OpenCV cannot decode it")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_frame(image: Path, calibration: Path | None = None, blur_faces: bool = False) -> Frame:
    """An image file as a frame, with its calibration when one is given."""
    rgb = decode_image(image)
    from erarm.robots.base import load_calibration

    camera = load_calibration(calibration) if calibration else None
    if camera is not None and (camera.width, camera.height) != (rgb.shape[1], rgb.shape[0]):
        raise ConfigError(f"calibration {calibration} is for {camera.width}x{camera.height} "
                          f"images, {image} is {rgb.shape[1]}x{rgb.shape[0]}")
    frame = Frame(rgb=rgb, calibration=camera)
    if blur_faces:
        from erarm.agent.privacy import blur_faces as blur

        frame, count = blur(frame)
        if count:
            say(f"blurred {count} face(s)")
    return frame


def default_out_dir(task: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", task.lower()).strip("-")[:40] or "run"
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"


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
              **simulator: object):
    """The chosen robot driver's workcell, watched by the chosen camera (else the robot's own).
    `simulator` holds the flags only a simulator takes (task, seed, scene, gui, realtime)."""
    from erarm.agent.config import load_config
    from erarm.robots.registry import open_camera, open_workcell

    settings = load_config(config)
    robot, options = _choose(robot, robot_entries, settings.robot, "--robot-opt", "sim")
    camera, camera_options = _choose(camera, camera_entries, settings.camera, "--camera-opt",
                                     None)
    if robot == "sim":
        options = {**simulator, **options}
    cell = open_workcell(robot, **options)
    try:
        if camera is not None:
            if cell.camera is not None:
                cell.camera.close()
            cell.camera = None
            cell.camera = open_camera(camera, **camera_options)
        if cell.camera is None:
            raise ConfigError(f"the {robot} robot has no camera of its own: choose one with "
                              "--camera (erarm cameras lists them)")
    except BaseException:
        cell.close()
        raise
    return cell
