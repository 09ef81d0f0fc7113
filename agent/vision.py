"""Local perception: find coloured blocks and bowls in a camera frame with OpenCV.

Reads only what a real robot has, the RGB image and (when the camera has one) the depth image
with its calibration. Colour comes from hue; block versus bowl from the object's metric footprint;
the point given for a block is the centre of its top face, for a bowl the centre of its floor, so
a depth lookup at that point lands where a gripper should go. A bare image without calibration
gets an image-space guess: bowls are the big objects, points are mask centroids.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from agent.geometry import pixel_rays, point_cloud, project
from agent.labels import COLOUR_HUES
from robots.base import Frame

MIN_SATURATION = 80  # the table, the arm and shadows are greyer than this
MIN_VALUE = 50
MIN_AREA_PX = 40
BOWL_MIN_FOOTPRINT_M = 0.075  # a 4 cm block is at most ~6 cm across; a bowl twice that
BOWL_MIN_IMAGE_SHARE = 0.01  # without a calibration: a bowl covers over 1% of a tabletop view
TOP_FACE_BAND_M = 0.006
RIM_BAND_M = 0.008


@dataclass(frozen=True)
class Detection:
    colour: str
    kind: str
    box_px: tuple[int, int, int, int]  # u_min, v_min, u_max, v_max (exclusive)
    point_px: tuple[float, float]  # u, v of the top-face or floor centre
    area_px: int
    label: str = ""

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"


def _hue_labels(hsv: np.ndarray) -> tuple[np.ndarray, list[str]]:
    names = list(COLOUR_HUES)
    centres = np.array([COLOUR_HUES[n] for n in names], dtype=np.float32)
    hue = hsv[:, :, 0].astype(np.float32)[..., None]
    distance = np.abs(hue - centres)
    distance = np.minimum(distance, 180 - distance)  # hue is circular
    return np.argmin(distance, axis=2), names


def _footprint(frame: Frame, rows: np.ndarray, cols: np.ndarray,
               cloud: np.ndarray | None) -> np.ndarray | None:
    """Base-frame points of a component: from depth, else its pixels' rays meeting the table;
    None for a bare image without calibration."""
    if frame.calibration is None:
        return None
    if cloud is not None:
        points = cloud[rows, cols]
        return points[np.isfinite(points).all(axis=1)]
    origin, directions = pixel_rays(np.column_stack([cols, rows]), frame.calibration)
    t = (frame.calibration.table_z - origin[2]) / directions[:, 2]
    return origin + t[:, None] * directions


def _grasp_point(frame: Frame, kind: str, points: np.ndarray | None, rows: np.ndarray,
                 cols: np.ndarray, has_depth: bool) -> tuple[float, float]:
    if not has_depth or points is None or len(points) < 5:
        return float(cols.mean()), float(rows.mean())
    if kind == "block":
        # The centre of the rectangle the top face spans: side faces seen just below the top
        # edge share its footprint, but their dense pixels would pull a plain mean toward the
        # camera.
        top = points[:, 2].max()
        face = points[points[:, 2] >= top - TOP_FACE_BAND_M]
        (cx, cy), _, _ = cv2.minAreaRect(face[:, :2].astype(np.float32))
        centre = np.array([cx, cy, top])
    else:
        rim = points[points[:, 2] >= points[:, 2].max() - RIM_BAND_M][:, :2]
        cx, cy = _circle_centre(rim if len(rim) >= 10 else points[:, :2])
        centre = np.array([cx, cy, np.percentile(points[:, 2], 5)])
    u, v = project(centre[None, :], frame.calibration)[0]
    return float(u), float(v)


def _circle_centre(xy: np.ndarray) -> tuple[float, float]:
    """Least-squares circle through points (a bowl's rim), refitted without stray points."""
    keep = np.ones(len(xy), bool)
    cx, cy = xy.mean(axis=0)
    for _ in range(3):
        x, y = xy[keep, 0], xy[keep, 1]
        a = np.column_stack([x, y, np.ones_like(x)])
        (d, e, f), *_ = np.linalg.lstsq(a, x * x + y * y, rcond=None)
        cx, cy = d / 2, e / 2
        radius = np.sqrt(max(f + cx * cx + cy * cy, 0.0))
        residual = np.abs(np.hypot(xy[:, 0] - cx, xy[:, 1] - cy) - radius)
        keep = residual < max(0.01, 2.5 * np.median(residual))
        if keep.sum() < 10:
            break
    return float(cx), float(cy)


def detect_objects(frame: Frame) -> list[Detection]:
    """Every coloured block and bowl in view, labelled like 'blue block' (numbered when a colour
    and kind repeat: 'red block 1', 'red block 2', left to right)."""
    hsv = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2HSV)
    coloured = (hsv[:, :, 1] >= MIN_SATURATION) & (hsv[:, :, 2] >= MIN_VALUE)
    hue_index, names = _hue_labels(hsv)
    has_geometry = frame.depth_m is not None and frame.calibration is not None
    cloud = point_cloud(frame) if has_geometry else None
    image_area = frame.rgb.shape[0] * frame.rgb.shape[1]
    kernel = np.ones((3, 3), np.uint8)
    found: list[Detection] = []
    for index, colour in enumerate(names):
        mask = (coloured & (hue_index == index)).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, iterations=2)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for component in range(1, count):
            u0, v0, w, h, area = stats[component]
            if area < MIN_AREA_PX:
                continue
            rows, cols = np.nonzero(labels[v0:v0 + h, u0:u0 + w] == component)
            rows, cols = rows + v0, cols + u0
            points = _footprint(frame, rows, cols, cloud)
            if points is None:
                kind = "bowl" if area >= BOWL_MIN_IMAGE_SHARE * image_area else "block"
            elif len(points) < 5:
                continue
            else:
                # the shorter side: without depth a tall block's table footprint stretches away
                # from the camera, but never sideways
                (_, _), sides, _ = cv2.minAreaRect(points[:, :2].astype(np.float32))
                kind = "bowl" if min(sides) >= BOWL_MIN_FOOTPRINT_M else "block"
            point = _grasp_point(frame, kind, points, rows, cols, cloud is not None)
            found.append(Detection(colour=colour, kind=kind,
                                   box_px=(int(u0), int(v0), int(u0 + w), int(v0 + h)),
                                   point_px=point, area_px=int(area)))
    return _with_unique_labels(found)


def _with_unique_labels(found: list[Detection]) -> list[Detection]:
    labelled = []
    for detection in sorted(found, key=lambda d: (d.name, d.point_px[0])):
        twins = [d for d in found if d.name == detection.name]
        if len(twins) == 1:
            label = detection.name
        else:
            rank = sorted(twins, key=lambda d: d.point_px[0]).index(detection) + 1
            label = f"{detection.name} {rank}"
        labelled.append(Detection(**{**detection.__dict__, "label": label}))
    return labelled
