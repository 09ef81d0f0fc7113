"""`erarm track`: points for named objects through a video, an overlay video and a JSON track
per object."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from erarm.agent.brains import BrainChoice, build_brain
from erarm.agent.brains.base import require
from erarm.agent.cli.common import (
    BaseUrlOpt,
    BrainOpt,
    ConfigOpt,
    JsonOpt,
    ModelOpt,
    app,
    out_console,
    print_json,
    say,
)
from erarm.robots.errors import ConfigError
from erarm.robots.files import check_input_file

VIDEO_MAX_BYTES = 8 * 1024 ** 3


def _video_of(path: Path) -> Path:
    """The video itself, or a run folder's flight-record video."""
    if path.is_dir():
        recorded = next((video for video in (path / "record" / "run.mp4", path / "run.mp4")
                         if video.is_file()), path / "record" / "run.mp4")  # or record/ itself
        if not recorded.is_file():
            raise ConfigError(f"{path} is a folder with no flight-record video "
                              "(record/run.mp4): record a run with --record, or give a video")
        return recorded
    return check_input_file(path, "video", max_bytes=VIDEO_MAX_BYTES)


def _file_name(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "object"


@app.command()
def track(
    video: Annotated[Path, typer.Argument(
        help="A video file (MP4, AVI, ...), or a run folder recorded with --record.")],
    query: Annotated[list[str], typer.Argument(
        help='What to track: "blue block", "orange bowl" ...')],
    every: Annotated[int, typer.Option(min=1, help="Ask about every Nth frame.")] = 10,
    batch: Annotated[int, typer.Option(
        min=1, max=16, help="Frames asked about together (concurrent requests).")] = 4,
    out: Annotated[Path | None, typer.Option(
        help="Folder for overlay.mp4, tracks.png, tracks.json and one track-<object>.json per "
             "object [default: a new folder under runs/].")] = None,
    brain: BrainOpt = BrainChoice.auto, model: ModelOpt = None, base_url: BaseUrlOpt = None,
    config: ConfigOpt = None, json_output: JsonOpt = False,
) -> None:
    """Track named objects through a video: [y, x] points (0-1000) in each sampled frame,
    joined into one track per object."""
    from erarm.agent.api import default_out_dir
    from erarm.agent.recording.run_folder import RunFolder
    from erarm.agent.track import track as track_video

    source = _video_of(video)
    chosen = build_brain(brain, model=model, base_url=base_url, config=config)
    require(chosen, "point")
    folder = RunFolder.claim(out) if out is not None else RunFolder.claim_new(
        default_out_dir("track"))
    overlay = folder.path / "overlay.mp4"
    try:
        tracks, sampled = track_video(
            chosen, source, query, every=every, batch=1 if chosen.name == "local" else batch,
            overlay=overlay, progress=lambda done, total: say(f"{done}/{total} frames"),
            picture=folder.path / "tracks.png")
    except ConfigError:
        folder.abandon()
        raise
    for line in {w for s in sampled for w in s.warnings}:
        say(f"warning: {line}")
    document = {"video": str(source), "brain": chosen.name, "queries": query, "every": every,
                "frames": len(sampled), "overlay": str(overlay),
                "tracks": [t.model_dump() for t in tracks],
                "frames_seen": [s.model_dump() for s in sampled]}
    folder.write_json("tracks.json", document)
    for one in tracks:
        folder.write_json(f"track-{_file_name(one.label)}.json", one.model_dump())
    if json_output:
        print_json(document)
        return
    console = out_console()
    for one in tracks:
        console.print(f"{one.label}: found in {len(one.points)} of {len(sampled)} frames",
                      markup=False)
    if not tracks:
        console.print("nothing found in any frame")
    console.print(f"  overlay and tracks: {folder.path}/", markup=False)
