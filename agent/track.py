"""Track objects through a video (`erarm track`): the Robotics-ER docs' way, pointing at the
named objects in each sampled frame with their tracking prompt (`prompts/point.txt`: "...If no
objects are found, return an empty JSON list []"), then joining the points by label into one
track per object.

Frames are read with OpenCV, every `every`-th one; `batch` of them are asked about together
(concurrent requests: the API has no call that points in several images at once, and its Batch
API answers in hours, not while you wait). Any brain that points can track: Gemini's, or the
local brain, which finds its coloured blocks and bowls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel

from erarm.agent.brains.base import Brain
from erarm.agent.errors import ReplyError
from erarm.agent.images import MAX_IMAGE_PIXELS
from erarm.agent.overlay import draw, save_png
from erarm.agent.parallel import together
from erarm.agent.parse import read_points
from erarm.agent.recording.video import Mp4Writer
from erarm.agent.schemas import Point
from erarm.robots.base import Frame
from erarm.robots.errors import ConfigError

Progress = Callable[[int, int], None]  # (frames done, frames to do)


class TrackPoint(BaseModel):
    frame: int  # the frame's index in the video
    t_s: float  # its time in the video
    point: tuple[float, float]  # [y, x] on the 0-1000 grid


class Track(BaseModel):
    """One object's positions, in the order of the frames it was found in."""

    label: str
    points: list[TrackPoint]


class Sampled(BaseModel):
    """What was found in one sampled frame."""

    frame: int
    t_s: float
    points: list[Point]
    warnings: list[str] = []


def open_video(path: Path) -> tuple[cv2.VideoCapture, float, int]:
    """The video, its frame rate and its frame count; a one-line `ConfigError` when OpenCV
    cannot read it."""
    video = cv2.VideoCapture(str(path))
    width = int(video.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(video.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width * height > MAX_IMAGE_PIXELS:  # before a frame of it is decoded into memory
        video.release()
        raise ConfigError(f"{path}: its frames are {width} x {height}; erarm reads videos of "
                          f"at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels a frame")
    ok, _ = video.read() if video.isOpened() else (False, None)
    if not ok:
        video.release()
        raise ConfigError(f"{path}: not a video OpenCV can read (MP4, AVI, MKV, ...)")
    video.set(cv2.CAP_PROP_POS_FRAMES, 0)
    fps = video.get(cv2.CAP_PROP_FPS) or 10.0
    return video, fps, int(video.get(cv2.CAP_PROP_FRAME_COUNT))


def sample(video: cv2.VideoCapture, fps: float, every: int) -> Iterator[tuple[int, float,
                                                                              np.ndarray]]:
    """(index, seconds, RGB) of every `every`-th frame, the first included."""
    index = 0
    while True:
        ok, bgr = video.read()
        if not ok:
            return
        if index % every == 0:
            yield index, index / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        index += 1


def track(brain: Brain, path: Path, queries: list[str], every: int = 10, batch: int = 4,
          overlay: Path | None = None, progress: Progress | None = None,
          picture: Path | None = None) -> tuple[list[Track], list[Sampled]]:
    """Each named object's track through the video at `path`, and what each sampled frame
    showed; with `overlay`, an MP4 of the sampled frames with their points drawn; with
    `picture`, a PNG of the first sampled frame with every track drawn over it."""
    video, fps, count = open_video(path)
    to_do = max(1, -(-count // every)) if count > 0 else 0
    writer = Mp4Writer(overlay, max(1.0, fps / every)) if overlay is not None else None
    sampled: list[Sampled] = []
    first: np.ndarray | None = None
    try:
        pending: list[tuple[int, float, np.ndarray]] = []
        for item in sample(video, fps, every):
            first = item[2] if first is None else first
            pending.append(item)
            if len(pending) == batch:
                _ask(brain, queries, pending, sampled, writer)
                pending = []
                if progress:
                    progress(len(sampled), to_do)
        if pending:
            _ask(brain, queries, pending, sampled, writer)
            if progress:
                progress(len(sampled), to_do)
    finally:
        video.release()
        if writer is not None:
            writer.close()
    tracks = _join(sampled)
    if picture is not None and first is not None:
        save_png(picture, draw_tracks(first, tracks))
    return tracks, sampled


def draw_tracks(rgb: np.ndarray, tracks: list[Track]) -> np.ndarray:
    """Each track as a line through its points, in order, labelled where it ends."""
    image = rgb
    for one in tracks:
        points = [Point(point=p.point, label=one.label) for p in one.points]
        image = draw(image, points=points, polyline=True)
        image = draw(image, points=points[-1:])
    return image


def _ask(brain: Brain, queries: list[str], frames: list[tuple[int, float, np.ndarray]],
         sampled: list[Sampled], writer: Mp4Writer | None) -> None:
    answers = together(*[(lambda rgb=rgb: brain.point(Frame(rgb=rgb), queries, limit=25))
                         for _, _, rgb in frames])
    for (index, t_s, rgb), answer in zip(frames, answers, strict=True):
        try:
            reading = read_points(answer.get())
            seen = Sampled(frame=index, t_s=round(t_s, 3), points=reading.items,
                           warnings=reading.warnings)
        except ReplyError as err:  # one frame's unreadable answer: a gap in the tracks
            seen = Sampled(frame=index, t_s=round(t_s, 3), points=[], warnings=[str(err)])
        sampled.append(seen)
        if writer is not None:
            writer.write(draw(rgb, points=seen.points))


def _join(sampled: list[Sampled]) -> list[Track]:
    tracks: dict[str, Track] = {}
    for seen in sampled:
        for point in seen.points:
            tracks.setdefault(point.label, Track(label=point.label, points=[])).points.append(
                TrackPoint(frame=seen.frame, t_s=seen.t_s, point=point.point))
    return sorted(tracks.values(), key=lambda t: t.label)
