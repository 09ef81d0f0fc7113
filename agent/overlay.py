"""Pictures people would rather look at than read: points, boxes and the planned tool path drawn
on the camera image, like the figures in the Robotics-ER docs."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from erarm.agent.geometry import normalized_to_pixel
from erarm.agent.goals import TaskGoal
from erarm.agent.schemas import Box, Point, SceneObject
from erarm.robots.base import CameraCalibration, ToolPose

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 190)]


def _colour(label: str) -> tuple[int, int, int]:
    return _PALETTE[zlib.crc32(label.encode()) % len(_PALETTE)]


def _label(image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    (w, h), base = cv2.getTextSize(text, _FONT, 0.42, 1)
    x = int(np.clip(x, 0, image.shape[1] - w - 2))
    y = int(np.clip(y, h + 2, image.shape[0] - base))
    cv2.rectangle(image, (x, y - h - 2), (x + w + 2, y + base), colour, -1)
    light = sum(colour) > 450
    cv2.putText(image, text, (x + 1, y), _FONT, 0.42, (0, 0, 0) if light else (255, 255, 255), 1,
                cv2.LINE_AA)


def draw(rgb: np.ndarray, points: Sequence[Point] = (), boxes: Sequence[Box] = (),
         path: Sequence[tuple[int, ToolPose]] = (), calibration: CameraCalibration | None = None,
         polyline: bool = False) -> np.ndarray:
    """A copy of the RGB image with boxes, points and (given a calibration) the tool path as
    (step number, pose) pairs. `polyline` joins the points in order, for trajectories."""
    image = rgb.copy()
    height, width = image.shape[:2]
    for box in boxes:
        ymin, xmin, ymax, xmax = box.box_2d
        top_left = (int(xmin / 1000 * width), int(ymin / 1000 * height))
        bottom_right = (int(xmax / 1000 * width), int(ymax / 1000 * height))
        colour = _colour(box.label)
        cv2.rectangle(image, top_left, bottom_right, colour, 2)
        _label(image, box.label, top_left[0], top_left[1] - 3, colour)
    pixels = [tuple(round(float(c)) for c in normalized_to_pixel(p.y, p.x, width, height))
              for p in points]
    if polyline and len(pixels) > 1:
        cv2.polylines(image, [np.array(pixels, np.int32)], False, (255, 255, 255), 2, cv2.LINE_AA)
    for point, (u, v) in zip(points, pixels, strict=True):
        colour = _colour(point.label)
        cv2.circle(image, (u, v), 6, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(image, (u, v), 4, colour, -1, cv2.LINE_AA)
        if not polyline and point.label not in {b.label for b in boxes}:
            _label(image, point.label, u + 8, v + 4, colour)
    if path and calibration is not None:
        _draw_path(image, path, calibration)
    return image


GOAL_COLOUR = (255, 255, 255)


def draw_goals(image: np.ndarray, goals: Sequence[TaskGoal], objects: Sequence[SceneObject]
               ) -> np.ndarray:
    """What erarm understood the task to ask: each goal as a line of text at the top (whose
    left and right, for the directional ones), and an arrow from the object to its target;
    "no goal erarm can check" when there is none."""
    image = image.copy()
    height, width = image.shape[:2]
    where = {o.label: tuple(round(float(c)) for c in normalized_to_pixel(*o.point, width, height))
             for o in objects}
    for goal in goals:
        if goal.item in where and goal.target in where and where[goal.item] != where[goal.target]:
            cv2.arrowedLine(image, where[goal.item], where[goal.target], (20, 20, 20), 4,
                            cv2.LINE_AA, tipLength=0.08)
            cv2.arrowedLine(image, where[goal.item], where[goal.target], GOAL_COLOUR, 2,
                            cv2.LINE_AA, tipLength=0.08)
    lines = [f"goal: {goal}" for goal in goals] or ["no goal erarm can check"]
    for row, text in enumerate(lines[:4]):
        _label(image, text, 6, 18 + 18 * row, GOAL_COLOUR)
    return image


def _draw_path(image: np.ndarray, path: Sequence[tuple[int, ToolPose]],
               calibration: CameraCalibration) -> None:
    """The tool's planned positions projected through the calibration, each spot labelled once
    with the steps that go there."""
    pixels = calibration.project(np.array([[p.x, p.y, p.z] for _, p in path]))
    pixels = [tuple(round(float(c)) for c in px) for px in pixels]
    for a, b in itertools.pairwise(pixels):
        if a != b:
            cv2.arrowedLine(image, a, b, (255, 255, 255), 2, cv2.LINE_AA, tipLength=0.04)
    steps_at: dict[tuple[int, int], list[str]] = {}
    for (step, _), pixel in zip(path, pixels, strict=True):
        steps_at.setdefault(pixel, []).append(str(step))
    for (u, v), steps in steps_at.items():
        cv2.circle(image, (u, v), 4, (20, 20, 20), -1, cv2.LINE_AA)
        _label(image, ",".join(steps), u + 6, v - 6, (255, 255, 255))


def draw_fit(rgb: np.ndarray, seen: np.ndarray, predicted: np.ndarray, caption: str) -> np.ndarray:
    """A calibration picture: what was detected (green rings) and where the calibration puts
    it (red crosses), with a caption such as the RMS error."""
    image = rgb.copy()
    for u, v in np.asarray(seen).reshape(-1, 2):
        cv2.circle(image, (round(float(u)), round(float(v))), 5, (40, 200, 60), 1, cv2.LINE_AA)
    for u, v in np.asarray(predicted).reshape(-1, 2):
        cv2.drawMarker(image, (round(float(u)), round(float(v))), (230, 30, 30),
                       cv2.MARKER_CROSS, 8, 1, cv2.LINE_AA)
    _label(image, caption, 6, 18, (255, 255, 255))
    return image


def save_png(path: Path, rgb: np.ndarray) -> None:
    """An RGB image, or a one-channel one as it is (a 16-bit depth map, in millimetres)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")
