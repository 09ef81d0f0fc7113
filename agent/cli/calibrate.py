"""`erarm calibrate ...`: the OpenCV calibration workflow for a camera over a robot's table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from erarm.agent.cli.common import (
    CameraOpt,
    CameraOptions,
    ConfigOpt,
    JsonOpt,
    RobotOpt,
    RobotOptions,
    app,
    err_console,
    open_cell,
    out_console,
    output_image,
    print_json,
    say,
)
from erarm.robots.errors import ConfigError
from erarm.robots.files import read_input_text

calibrate_app = typer.Typer(
    help="Calibrate the camera: intrinsics from ChArUco views, its pose from a board on the table "
         "or the marker on the tool, or a table-plane homography; check that a calibration still "
         "fits.", no_args_is_help=True, rich_markup_mode="markdown")
app.add_typer(calibrate_app, name="calibrate")

OutOpt = Annotated[Path, typer.Option(help="Where to write the calibration file (JSON).")]
PictureOpt = Annotated[Path | None, typer.Option(
    callback=output_image("picture"),
    help="Where to write the picture of detections and reprojections [default: beside --out].")]
IntrinsicsOpt = Annotated[Path | None, typer.Option(
    "--intrinsics", help="A calibration file to take the intrinsics from [default: the camera's "
                         "own].")]


def _triple(text: str, what: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ConfigError(f"{what} takes three numbers separated by commas, got {text!r}")
    return values


MAX_INTRINSICS_RMS_PX = 1.0  # a sharp board in good light reprojects well under this


def _fit(calibration, cell):
    """The fit check on a calibration just made, through the cell's camera and robot."""
    from erarm.agent.calibrate import CalibratedCamera, check_fit

    return check_fit(CalibratedCamera(cell.camera, calibration).capture(), cell.robot.limits,
                     cell.robot)


def _report(result, out: Path, picture: Path | None, json_output: bool, truth=None,
            fit=None, checked: bool = False) -> None:
    """Score against the simulator's truth when there is one, then store, draw and print. A
    calibration that fails its check (`fit`, or for intrinsics its reprojection error) is not
    written: the picture is, to show what went wrong, and the command exits 1."""
    from erarm.agent.calibrate import compare_with_truth, save_calibration
    from erarm.agent.overlay import save_png

    calibration = result.calibration
    if truth is not None:
        calibration.errors.update(compare_with_truth(calibration, truth))
    problem = fit.problem if fit is not None else None
    rms = calibration.errors.get("rms_px", 0.0)
    if calibration.camera_to_base is None and rms > MAX_INTRINSICS_RMS_PX:
        problem = f"its reprojection error of {rms:.2f} px is over {MAX_INTRINSICS_RMS_PX} px"
    picture = picture or out.with_suffix(".png")
    save_png(picture, result.picture)
    if problem is None:
        save_calibration(calibration, out)
    if json_output:
        print_json({"file": str(out) if problem is None else None, "picture": str(picture),
                    "method": calibration.method, "observations": result.observations,
                    "errors": calibration.errors, "good": problem is None, "problem": problem,
                    "fit": json.loads(fit.model_dump_json()) if fit is not None else None,
                    "calibration": calibration.model_dump(mode="json")})
    else:
        table = Table("measure", "value", box=None, pad_edge=False)
        for name, value in calibration.errors.items():
            table.add_row(name, f"{value:.3f}")
        console = out_console()
        made = f"{calibration.method} calibration from {result.observations} observations"
        if problem is not None:
            console.print(f"[red]✗[/red] {made} is not good enough: {problem}")
        elif fit is not None:
            console.print(f"[green]✓[/green] {made}; it fits: {fit.summary()}")
        elif checked:
            console.print(f"[yellow]?[/yellow] {made}; its fit was not checked (the camera "
                          "gives no depth): run erarm calibrate check with a depth camera")
        else:
            console.print(f"[green]✓[/green] {made}")
        console.print(table)
        console.print(f"  written to {out}; picture {picture}" if problem is None else
                      f"  not written to {out}; picture {picture}")
    if problem is not None:
        err_console.print(f"erarm: the new calibration is not good enough ({problem}); "
                          f"{out} was not written")
        raise typer.Exit(1)


def _intrinsics(path: Path | None, cell) -> object:
    """The intrinsics to pose the camera with: a file, else the camera's own calibration."""
    from erarm.robots.base import load_calibration

    if path is not None:
        return load_calibration(path)
    own = cell.camera.capture().calibration
    if own is None:
        raise ConfigError("this camera reports no intrinsics: calibrate them first (erarm "
                          "calibrate intrinsics) and pass --intrinsics")
    return own


def _ask(message: str) -> None:
    if not typer.confirm(message, default=True, err=True):
        raise typer.Exit(1)


PRINT_FORMATS = {".pdf": "PDF", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF"}
LOSSY_FORMATS = {".jpg", ".jpeg", ".jpe", ".jp2", ".webp", ".gif", ".heic", ".avif"}


def _print_format(out: Path) -> str:
    """Pillow's name for a lossless printable format, from the file name; lossy formats would
    blur the marker edges a detector needs."""
    suffix = out.suffix.lower()
    if suffix in LOSSY_FORMATS:
        raise ConfigError(f"{out}: {suffix} is lossy and would blur the board's edges; write "
                          ".pdf or .png")
    if suffix not in PRINT_FORMATS:
        kind = suffix or "a file without an extension"
        raise ConfigError(f"{out}: cannot write a board as {kind}; give a .pdf, .png or .tif "
                          "name")
    return PRINT_FORMATS[suffix]


def _board(text: str | None) -> object:
    """The board to detect: --board's geometry, else the one erarm prints by default."""
    from erarm.robots.targets import BoardSpec

    if text is None:
        return BoardSpec()
    try:
        return BoardSpec.parse(text)
    except ValueError as err:
        raise ConfigError(f"--board: {err}") from None


BoardOpt = Annotated[str | None, typer.Option(
    "--board", help="The printed board's geometry, COLSxROWS:SQUARE_MM[:MARKER_MM[:DICTIONARY]] "
                    "as `erarm calibrate board` prints it, e.g. 9x6:30 [default: "
                    "9x6:40:28:DICT_5X5_100, the simulator's].")]


@calibrate_app.command()
def board(
    out: Annotated[Path, typer.Option(help="The file to print: .pdf or .png (.tif).")] = Path(
        "charuco-board.pdf"),
    paper: Annotated[str, typer.Option(help="a4, letter, a3, a5, legal or tabloid "
                                            "(landscape).")] = "a4",
    square_mm: Annotated[float | None, typer.Option(
        min=5, help="Side of a square, mm [default: the largest whole mm that fits the "
                    "paper].")] = None,
    squares: Annotated[str, typer.Option(help="Columns x rows of squares.")] = "9x6",
    dpi: Annotated[int, typer.Option(min=72, max=600, help="Print resolution.")] = 300,
) -> None:
    """Write a ChArUco board to print: fitted on the paper at its true size, with the DPI in
    the file, and the `--board` geometry to give the commands that detect it."""
    from PIL import Image

    from erarm.robots.targets import BoardSpec

    kind = _print_format(out)
    try:
        columns, rows = (int(v) for v in squares.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--squares takes COLUMNSxROWS like 9x6, got {squares!r}") from None
    if not (3 <= columns <= 40 and 3 <= rows <= 40):
        raise ConfigError(f"--squares: a board has 3 to 40 squares a side, got {squares!r}")
    try:
        spec = BoardSpec(squares_x=columns, squares_y=rows).on_paper(paper.lower(), square_mm)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    page = Image.fromarray(spec.page(paper.lower(), dpi))
    try:
        if kind == "PDF":
            page.save(out, kind, resolution=float(dpi))
        else:
            page.save(out, kind, dpi=(dpi, dpi))
    except OSError as err:
        raise ConfigError(f"could not write {out}: {err.strerror or err}") from None
    width, height = spec.size_m
    out_console().print(
        f"board written to {out} ({paper.upper()}, {dpi} dpi): {spec.squares_x} x "
        f"{spec.squares_y} squares of {spec.square_m * 1000:g} mm ({width * 1000:g} x "
        f"{height * 1000:g} mm), {spec.dictionary}. Print it at 100%, measure a square, and "
        f"pass --board {spec.describe()} to calibrate intrinsics and extrinsics")


@calibrate_app.command()
def capture(
    out: Annotated[Path, typer.Option(help="Folder for the views.")] = Path("calibration-views"),
    views: Annotated[int, typer.Option(min=4, max=100)] = 20,
    robot: RobotOpt = None, robot_opt: RobotOptions = None, camera: CameraOpt = None,
    camera_opt: CameraOptions = None, config: ConfigOpt = None,
) -> None:
    """Capture views of the board for `calibrate intrinsics`: the simulator holds it up at
    varied angles; with a real camera, hold it (tilted, all over the view) and press Enter."""
    from erarm.agent.overlay import save_png

    out.mkdir(parents=True, exist_ok=True)
    with open_cell(robot, robot_opt, camera=camera, camera_entries=camera_opt,
                   config=config) as cell:
        for view in range(views):
            if cell.stage is not None:
                cell.stage.hold_board(view)
            else:
                _ask(f"view {view + 1} of {views}: hold the board at a new angle. Capture?")
            save_png(out / f"view-{view:02d}.png", cell.camera.capture().rgb)
            say(f"view {view + 1} of {views} captured")
        if cell.stage is not None:
            cell.stage.clear_board()
    out_console().print(f"{views} views in {out}/; next: erarm calibrate intrinsics "
                        f"{out}/*.png")


@calibrate_app.command()
def intrinsics(
    images: Annotated[list[Path], typer.Argument(help="Views of the ChArUco board.")],
    out: OutOpt = Path("intrinsics.json"), picture: PictureOpt = None,
    board_geometry: BoardOpt = None, json_output: JsonOpt = False,
) -> None:
    """Focal lengths, principal point and distortion from ChArUco views (cv2.calibrateCamera),
    with the RMS reprojection error."""
    from erarm.agent.calibrate import calibrate_intrinsics
    from erarm.agent.images import frame_from

    spec = _board(board_geometry)
    frames = [frame_from(image).rgb for image in images]
    _report(calibrate_intrinsics(frames, spec), out, picture, json_output)


@calibrate_app.command()
def extrinsics(
    board_pose: Annotated[list[str] | None, typer.Option(
        help="X,Y,YAW of a board lying on the table: its centre in mm in the robot base frame, "
             "and its columns' turn from the base x axis in degrees; repeat for more placements "
             "[default: three placements, with the simulator].")] = None,
    hand_eye: Annotated[bool, typer.Option(
        "--hand-eye", help="Use the marker on the tool instead: the robot moves it through "
                           "--poses poses (eye-to-hand, cv2.calibrateHandEye).")] = False,
    poses: Annotated[int, typer.Option(min=5, max=60)] = 16,
    intrinsics_file: IntrinsicsOpt = None, board_geometry: BoardOpt = None,
    robot: RobotOpt = None, robot_opt: RobotOptions = None, camera: CameraOpt = None,
    camera_opt: CameraOptions = None, config: ConfigOpt = None,
    out: OutOpt = Path("calibration.json"), picture: PictureOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """The camera's pose in the robot base frame, from a board at known poses on the table
    (cv2.solvePnP) or by hand-eye with the marker on the tool."""
    from erarm.agent.calibrate import hand_eye_poses, pose_from_board, pose_from_hand_eye

    spec = _board(board_geometry)
    with open_cell(robot, robot_opt, camera=camera, camera_entries=camera_opt,
                   config=config) as cell:
        known = _intrinsics(intrinsics_file, cell)
        truth = cell.referee.true_calibration() if cell.referee else None
        if hand_eye:
            marker = getattr(cell.robot, "marker", None)
            if marker is None:
                raise ConfigError(f"the {cell.robot.name} robot has no calibration marker; "
                                  "describe the one on its tool with --robot-opt marker=JSON")
            if cell.robot.physical:
                _ask(f"The arm will move its marker through {poses} poses. Go on?")
            result = pose_from_hand_eye(cell.robot, cell.camera, known, marker,
                                        hand_eye_poses(poses, cell.robot.limits), log=say)
        else:
            placements = ([_triple(p, "--board-pose") for p in board_pose] if board_pose else
                          [(450, 0, 17), (380, 120, -11), (520, -120, 6)])
            if cell.stage is None and not board_pose:
                raise ConfigError("give --board-pose X,Y,YAW for where the board lies")
            views = []
            for x, y, yaw in placements:
                if cell.stage is not None:
                    cell.stage.lay_board(x / 1000, y / 1000, np.radians(yaw))
                else:
                    _ask(f"Lay the board at ({x:.0f}, {y:.0f}) mm, turned {yaw:.0f} degrees. "
                         "Capture?")
                views.append((cell.camera.capture(), spec.on_table(x / 1000, y / 1000,
                                                                  np.radians(yaw))))
            if cell.stage is not None:
                cell.stage.clear_board()
            result = pose_from_board(views, known, spec)
        fit = _fit(result.calibration, cell)
    _report(result, out, picture, json_output, truth, fit, checked=True)


@calibrate_app.command()
def plane(
    pairs: Annotated[Path | None, typer.Option(
        help='JSON pairs on one plane: [{"pixel": [u, v], "robot_mm": [x, y]}, ...] (at least '
             "four).")] = None,
    plane_z_mm: Annotated[float, typer.Option(help="Height of the plane of --pairs, mm.")] = 0.0,
    touch: Annotated[int, typer.Option(
        min=0, max=36, help="Instead, the robot traces this many points over the table with "
                            "the marker on its tool.")] = 0,
    height_mm: Annotated[float, typer.Option(help="Tool height while tracing, mm.")] = 60.0,
    intrinsics_file: IntrinsicsOpt = None,
    robot: RobotOpt = None, robot_opt: RobotOptions = None, camera: CameraOpt = None,
    camera_opt: CameraOptions = None, config: ConfigOpt = None,
    out: OutOpt = Path("calibration.json"), picture: PictureOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """The quick path without a board: a homography from four or more pixel/robot pairs on a
    horizontal plane, and the camera that explains it (focal length estimated from the
    homography unless --intrinsics is given)."""
    from erarm.agent.calibrate import (
        PlanePair,
        calibrate_plane,
        marker_plane_z,
        touch_pairs,
    )
    from erarm.robots.base import load_calibration

    known = load_calibration(intrinsics_file) if intrinsics_file else None
    if (pairs is None) == (touch == 0):
        raise ConfigError("give either --pairs FILE or --touch N")
    with open_cell(robot, robot_opt, camera=camera, camera_entries=camera_opt,
                   config=config) as cell:
        truth = cell.referee.true_calibration() if cell.referee else None
        if pairs is not None:
            try:
                found = [PlanePair.model_validate(p)
                         for p in json.loads(read_input_text(pairs, "pairs file"))]
            except (ValueError, TypeError) as err:
                raise ConfigError(f"pairs file {pairs}: {' '.join(str(err).split())[:160]}") \
                    from None
            plane_z = plane_z_mm / 1000
        else:
            marker = getattr(cell.robot, "marker", None)
            if marker is None:
                raise ConfigError(f"the {cell.robot.name} robot has no calibration marker; "
                                  "describe the one on its tool with --robot-opt marker=JSON")
            if cell.robot.physical:
                _ask(f"The arm will trace {touch} points at {height_mm:.0f} mm. Go on?")
            found = touch_pairs(cell.robot, cell.camera, marker, touch, height_mm / 1000, say)
            plane_z = marker_plane_z(marker, height_mm / 1000)
        result = calibrate_plane(found, plane_z, cell.camera.capture().rgb, known)
        fit = _fit(result.calibration, cell)
    _report(result, out, picture, json_output, truth, fit, checked=True)


@calibrate_app.command()
def check(
    calibration: Annotated[Path | None, typer.Option(
        help="The calibration file to check [default: the camera's own].")] = None,
    robot: RobotOpt = None, robot_opt: RobotOptions = None, camera: CameraOpt = None,
    camera_opt: CameraOptions = None, config: ConfigOpt = None, json_output: JsonOpt = False,
) -> None:
    """Whether a calibration still fits the scene: through it, a depth camera's view of the
    table must come out flat and at the table's height, and the robot, rendered from its own
    model at its joint readings, must be seen where the calibration puts it. Exit 0 if it fits,
    1 if not."""
    from erarm.agent.calibrate import CalibratedCamera, check_fit
    from erarm.robots.base import load_calibration

    with open_cell(robot, robot_opt, camera=camera, camera_entries=camera_opt,
                   config=config) as cell:
        checked = (CalibratedCamera(cell.camera, load_calibration(calibration)) if calibration
                   else cell.camera)
        report = check_fit(checked.capture(), cell.robot.limits, cell.robot)
    if report is None:
        raise ConfigError("this camera gives no depth: the fit cannot be checked")
    if json_output:
        print_json(json.loads(report.model_dump_json()))  # null, not NaN, where nothing agreed
    elif report.fits:
        out_console().print(f"[green]✓ fits[/green]: {report.summary()}")
    else:
        out_console().print(f"[red]✗ does not fit[/red]: {report.problem}")
    if not report.fits:
        err_console.print("erarm: the calibration no longer fits; recalibrate")
        raise typer.Exit(1)
