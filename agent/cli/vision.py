"""`erarm point`, `erarm detect`, `erarm trajectory`: ask a brain about an image file, through
`erarm.point`, `erarm.detect` and `erarm.trajectory`, and print or draw the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from erarm.agent.brains import BrainChoice, build_brain
from erarm.agent.brains.base import require
from erarm.agent.cli.common import (
    BaseUrlOpt,
    BlurOpt,
    BrainOpt,
    ConfigOpt,
    ConsensusOpt,
    JsonOpt,
    ModelOpt,
    SafetyOpt,
    ThinkingOpt,
    ZoomOpt,
    app,
    input_file,
    out_console,
    output_image,
    print_json,
    say,
)
from erarm.agent.images import frame_from
from erarm.robots.errors import ConfigError

ImageArg = Annotated[Path, typer.Argument(callback=input_file("image"),
                                          help="A PNG, JPEG or BMP image.")]
OverlayOpt = Annotated[Path | None, typer.Option(
    callback=output_image("overlay"), help="Also draw the answer on the image here (.png, .jpg).")]
CalibrationOpt = Annotated[Path | None, typer.Option(
    callback=input_file("calibration file"),
    help="The camera's calibration (JSON, as in a run folder): lets the local brain tell blocks "
         "from bowls by their size on the table.")]


def _table(rows: list[tuple[str, str]], headers: tuple[str, str]) -> Table:
    table = Table(*headers, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    return table


def _said(warnings: list[str]):
    """An API `warn` that says each warning on stderr and keeps it for the JSON document."""
    def warn(line: str) -> None:
        say(f"warning: {line}")
        warnings.append(line)

    return warn


def _save_overlay(path: Path | None, frame, **drawn) -> None:
    if path is None:
        return
    from erarm.agent.overlay import draw, save_png

    try:
        save_png(path, draw(frame.rgb, **drawn))
    except OSError as err:  # checked before the brain was asked; the disk may still refuse
        raise ConfigError(f"overlay {path}: {err.strerror or err}") from None
    say(f"overlay written to {path}")


@app.command()
def point(
    image: ImageArg,
    query: Annotated[list[str] | None, typer.Argument(
        help='What to point at: "blue block", "fruit" ... [default: everything].')] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most points when pointing at everything.")
                     ] = 10,
    brain: BrainOpt = BrainChoice.auto, model: ModelOpt = None, base_url: BaseUrlOpt = None,
    config: ConfigOpt = None, safety: SafetyOpt = None, thinking_budget: ThinkingOpt = None,
    consensus: ConsensusOpt = 1, zoom: ZoomOpt = False, blur_faces: BlurOpt = False,
    calibration: CalibrationOpt = None, json_output: JsonOpt = False,
    overlay: OverlayOpt = None,
) -> None:
    """Point at named objects (or at everything) in an image: [y, x] on a 0-1000 grid."""
    from erarm.agent import api

    chosen = build_brain(brain, model=model, base_url=base_url, config=config, safety=safety,
                         thinking=thinking_budget, consensus=consensus, zoom=zoom)
    frame = frame_from(image, calibration, blur_faces, say)
    warnings: list[str] = []
    points = api.point(frame, *(query or []), brain=chosen, limit=limit,
                       warn=_said(warnings))
    _save_overlay(overlay, frame, points=points)
    if json_output:
        print_json({"image": str(image), "brain": chosen.name,
                    "points": [p.model_dump() for p in points], "warnings": warnings})
    else:
        rows = [(p.label, f"[{p.y:g}, {p.x:g}]") for p in points]
        out_console().print(_table(rows, ("label", "point [y, x]")) if rows else "nothing found")


@app.command()
def detect(
    image: ImageArg,
    limit: Annotated[int, typer.Option(min=1, help="Most boxes.")] = 25,
    brain: BrainOpt = BrainChoice.auto, model: ModelOpt = None, base_url: BaseUrlOpt = None,
    config: ConfigOpt = None, safety: SafetyOpt = None, thinking_budget: ThinkingOpt = None,
    consensus: ConsensusOpt = 1, blur_faces: BlurOpt = False,
    calibration: CalibrationOpt = None, json_output: JsonOpt = False,
    overlay: OverlayOpt = None,
) -> None:
    """Boxes around the objects in an image, with unique labels for repeated ones."""
    from erarm.agent import api

    chosen = build_brain(brain, model=model, base_url=base_url, config=config, safety=safety,
                         thinking=thinking_budget, consensus=consensus)
    frame = frame_from(image, calibration, blur_faces, say)
    warnings: list[str] = []
    boxes = api.detect(frame, brain=chosen, limit=limit, warn=_said(warnings))
    _save_overlay(overlay, frame, boxes=boxes)
    if json_output:
        print_json({"image": str(image), "brain": chosen.name,
                    "boxes": [b.model_dump() for b in boxes], "warnings": warnings})
    else:
        rows = [(b.label, "[{:g}, {:g}, {:g}, {:g}]".format(*b.box_2d)) for b in boxes]
        out_console().print(_table(rows, ("label", "box [ymin, xmin, ymax, xmax]")) if rows
                            else "nothing found")


@app.command()
def trajectory(
    image: ImageArg,
    instruction: Annotated[str, typer.Argument(help='e.g. "move the red pen to the organizer".')],
    points: Annotated[int, typer.Option(min=2, max=50, help="Points after the start point.")
                      ] = 15,
    brain: BrainOpt = BrainChoice.auto, model: ModelOpt = None, base_url: BaseUrlOpt = None,
    config: ConfigOpt = None, safety: SafetyOpt = None, thinking_budget: ThinkingOpt = None,
    consensus: ConsensusOpt = 1, blur_faces: BlurOpt = False,
    json_output: JsonOpt = False, overlay: OverlayOpt = None,
) -> None:
    """An ordered path of points, labelled "0".."n", that carries out an instruction."""
    from erarm.agent import api

    chosen = build_brain(brain, model=model, base_url=base_url, config=config, safety=safety,
                         thinking=thinking_budget, consensus=consensus)
    require(chosen, "trajectory")  # before the image is read
    frame = frame_from(image, None, blur_faces, say)
    path = api.trajectory(frame, instruction, points=points, brain=chosen)
    _save_overlay(overlay, frame, points=path, polyline=True)
    if json_output:
        print_json({"image": str(image), "brain": chosen.name, "instruction": instruction,
                    "trajectory": [p.model_dump() for p in path]})
    else:
        rows = [(p.label, f"[{p.y:g}, {p.x:g}]") for p in path]
        out_console().print(_table(rows, ("step", "point [y, x]")))
