"""Local perception: find coloured blocks and bowls in a camera frame with OpenCV.

Reads only what a real robot has, the RGB image and (when the camera has one) the depth image
with its calibration. Colour comes from hue; block versus bowl from the object's metric footprint;
the point given for a block is the centre of its top face, for a bowl the centre of its floor, so
a depth lookup at that point lands where a gripper should go. A bare image without calibration
gets an image-space guess: bowls are the big objects, points are mask centroids.

It knows only solid-coloured blocks and bowls in eight colours on a grey table. An image that is
mostly colour (a portrait, a poster, a gradient) holds none of them; a coloured region that does
not look like one (ragged, unevenly coloured, or too big) is left out and counted: a photo of
something else is said to be one rather than turned into confident nonsense.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from erarm.agent.geometry import pixel_rays, point_cloud
from erarm.agent.ground import circle_centre
from erarm.agent.labels import COLOUR_HUES
from erarm.robots.base import Frame

MIN_SATURATION = 80  # the table, the arm and shadows are greyer than this
MIN_VALUE = 50
MIN_AREA_PX = 40
BOWL_MIN_FOOTPRINT_M = 0.075  # a 4 cm block is at most ~6 cm across; a bowl twice that
BOWL_MIN_IMAGE_SHARE = 0.01  # without a calibration: a bowl covers over 1% of a tabletop view
TOP_FACE_BAND_M = 0.006
RIM_BAND_M = 0.008
FLOOR_BAND_M = 0.006
FLAT_TOP = 0.95  # |n_z| of a surface facing up
MIN_TOP_M = 0.02  # a block's top stands at least this high above the table
MIN_TOP_PX = 15
BLOCK_TOP_M = (0.02, 0.07)  # the longer side of a block's top face
SQUARENESS = 0.5  # its shorter side is at least this share of the longer
# What a solid block or bowl looks like. Simulated ones, even as JPEG at quality 60: solidity
# >= 0.94 (unoccluded), saturation spread <= 46, hue spread <= 2.6 on OpenCV's 0-180 scale.
MIN_SOLIDITY = 0.7  # its outline fills this share of its convex hull (holes filled); asked
# only of an uncalibrated image: a block half hidden by another is an L, and with a calibration
# its footprint on the table is what tells blocks from bowls
MAX_SATURATION_SPREAD = 60.0  # standard deviation of saturation over its pixels
MAX_HUE_SPREAD = 5.0  # circular standard deviation of its hue
MAX_IMAGE_SPAN = 0.45  # it spans at most this share of the image's width and height
MAX_COLOURED_SHARE = 0.3  # a table view is mostly grey table (simulated ones: <= 10% colour)
KNOWN = ("solid-coloured blocks and bowls in eight colours (" + ", ".join(COLOUR_HUES) +
         ") on a calibrated table")


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


@dataclass(frozen=True)
class Sight:
    """What one frame showed: the objects found, and how many coloured regions were left out
    because they do not look like solid blocks or bowls."""

    detections: list[Detection]
    implausible: int
    coloured_share: float  # of the image's pixels, how many are saturated colour

    def warning(self, frame: Frame) -> str | None:
        """Why these detections may not mean what they say (no calibration, no depth, regions
        unlike blocks and bowls), with what this brain can find; None for a table scene."""
        notes = []
        if frame.calibration is None:
            notes.append("no calibration, so blocks and bowls are told apart by their size in "
                         "the image only")
        elif frame.depth_m is None:
            notes.append("no depth image, so objects are placed on the table plane")
        if self.coloured_share > MAX_COLOURED_SHARE:
            notes.append(f"{self.coloured_share:.0%} of it is saturated colour, where a table "
                         "view shows a few coloured objects on a grey table, so nothing in it "
                         "was taken for an object")
        left_out = (f"{self.implausible} coloured region(s) were left out as unlike solid "
                    "blocks or bowls (ragged, unevenly coloured or too big)")
        if not notes:  # a calibrated table scene: only say what was left out of it
            return f"{left_out}; it finds only {KNOWN}" if self.implausible else None
        if self.implausible:
            notes.append(left_out)
        return (f"this is not a calibrated table scene ({'; '.join(notes)}): the local brain "
                f"finds only {KNOWN}")


def _implausible(hsv: np.ndarray, component: np.ndarray, own: np.ndarray,
                 image_size: tuple[int, int], calibrated: bool) -> bool:
    """Whether a connected region of one colour is unlike a solid block or bowl: `hsv` is its
    box of the image (`image_size`: height, width), `component` its mask there and `own` its
    pixels of that colour."""
    height, width = component.shape
    image_height, image_width = image_size
    if width > MAX_IMAGE_SPAN * image_width or height > MAX_IMAGE_SPAN * image_height:
        return True
    if not calibrated:
        outlines, _ = cv2.findContours(component.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        outline = max(outlines, key=cv2.contourArea)
        hull = cv2.contourArea(cv2.convexHull(outline))
        if hull > 0 and cv2.contourArea(outline) < MIN_SOLIDITY * hull:
            return True
    saturation = hsv[:, :, 1][own].astype(np.float32)
    angle = hsv[:, :, 0][own].astype(np.float32) * (np.pi / 90)  # 0-180 -> a full turn
    length = min(float(np.hypot(np.cos(angle).mean(), np.sin(angle).mean())), 1.0)
    hue_spread = np.sqrt(-2 * np.log(max(length, 1e-9))) * (90 / np.pi)
    return bool(saturation.std() > MAX_SATURATION_SPREAD or hue_spread > MAX_HUE_SPREAD)


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
        return cloud[rows, cols]
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
        top = np.percentile(points[:, 2], 98)
        in_face = points[:, 2] >= top - TOP_FACE_BAND_M
        (cx, cy), _, _ = cv2.minAreaRect(points[in_face, :2].astype(np.float32))
        u, v = frame.calibration.project(np.array([[cx, cy, top]]))[0]
        if (round(float(v)), round(float(u))) in set(zip(rows.tolist(), cols.tolist(),
                                                         strict=True)):
            return float(u), float(v)
        # The centre is hidden (a block stacked on this one): point at this block's own pixel
        # nearest to it instead, so a depth lookup lands on this block, not on what hides it.
        nearest = np.argmin(np.where(in_face, np.hypot(points[:, 0] - cx, points[:, 1] - cy),
                                     np.inf))
        return float(cols[nearest]), float(rows[nearest])
    else:
        # The rim's circle gives the centre; point at the visible floor nearest to it, so a
        # depth lookup lands on the bowl itself even when something in it hides the middle.
        rim = points[points[:, 2] >= points[:, 2].max() - RIM_BAND_M][:, :2]
        cx, cy, _ = circle_centre(rim if len(rim) >= 10 else points[:, :2])
        floor = points[:, 2] <= np.percentile(points[:, 2], 5) + FLOOR_BAND_M
        nearest = np.argmin(np.where(floor, np.hypot(points[:, 0] - cx, points[:, 1] - cy),
                                     np.inf))
        if floor[nearest]:
            return float(cols[nearest]), float(rows[nearest])
        centre = np.array([cx, cy, np.percentile(points[:, 2], 5)])
    u, v = frame.calibration.project(centre[None, :])[0]
    return float(u), float(v)


def _facing_up(cloud: np.ndarray) -> np.ndarray:
    """How vertical each pixel's surface normal is (|n_z|, 1 for a flat top), from the point
    cloud's neighbours; 0 where it cannot be told."""
    across = cloud[1:-1, 2:] - cloud[1:-1, :-2]
    down = cloud[2:, 1:-1] - cloud[:-2, 1:-1]
    normal = np.cross(across, down)
    length = np.linalg.norm(normal, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        up = np.abs(normal[:, :, 2]) / length
    result = np.zeros(cloud.shape[:2])
    result[1:-1, 1:-1] = np.nan_to_num(up)
    return result


def _detection(colour: str, kind: str, rows: np.ndarray, cols: np.ndarray,
               point: tuple[float, float]) -> Detection:
    return Detection(colour=colour, kind=kind, point_px=point, area_px=len(rows),
                     box_px=(int(cols.min()), int(rows.min()), int(cols.max()) + 1,
                             int(rows.max()) + 1))


def _split_component(frame: Frame, colour: str, rows: np.ndarray, cols: np.ndarray,
                     points: np.ndarray, up: np.ndarray) -> list[Detection]:
    """The blocks and the bowl in one colour's connected region. A block shows a flat top above
    the table, and claims the sides around it; what is left is a bowl if it is bowl-sized, or,
    when no top was seen at all, a block seen only from the side (under another, say)."""
    found = []
    top = (up[rows, cols] > FLAT_TOP) & (points[:, 2] > frame.calibration.table_z + MIN_TOP_M)
    claimed = np.zeros(len(points), bool)
    if top.any():
        tops = np.zeros(up.shape, np.uint8)
        tops[rows[top], cols[top]] = 1
        count, labels = cv2.connectedComponents(tops, connectivity=8)
        for face_id in range(1, count):
            face = top & (labels[rows, cols] == face_id)
            if face.sum() < MIN_TOP_PX:
                continue
            (cx, cy), sides, _ = cv2.minAreaRect(points[face, :2].astype(np.float32))
            if not (BLOCK_TOP_M[0] <= max(sides) <= BLOCK_TOP_M[1]
                    and min(sides) >= SQUARENESS * max(sides)):
                continue  # a bowl's rim seen as a thin arc is not a block's square top
            top_z = float(np.median(points[face, 2]))
            member = ((np.hypot(points[:, 0] - cx, points[:, 1] - cy) <= 0.75 * max(sides))
                      & (points[:, 2] <= top_z + TOP_FACE_BAND_M))
            claimed |= member
            u, v = frame.calibration.project(np.array([[cx, cy, top_z]]))[0]
            found.append(_detection(colour, "block", rows[member], cols[member],
                                    (float(u), float(v))))
    rest = ~claimed
    if rest.sum() >= MIN_AREA_PX:
        (_, _), sides, _ = cv2.minAreaRect(points[rest, :2].astype(np.float32))
        kind = "bowl" if min(sides) >= BOWL_MIN_FOOTPRINT_M else "block"
        if kind == "bowl" or not found:
            point = _grasp_point(frame, kind, points[rest], rows[rest], cols[rest], True)
            found.append(_detection(colour, kind, rows[rest], cols[rest], point))
    return found


def detect_objects(frame: Frame) -> Sight:
    """Every coloured block and bowl in view, labelled like 'blue block' (numbered when a colour
    and kind repeat: 'red block 1', 'red block 2', left to right), and how many coloured regions
    were left out as unlike them."""
    hsv = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2HSV)
    coloured = (hsv[:, :, 1] >= MIN_SATURATION) & (hsv[:, :, 2] >= MIN_VALUE)
    coloured_share = float(coloured.mean())
    if coloured_share > MAX_COLOURED_SHARE:
        return Sight(detections=[], implausible=0, coloured_share=coloured_share)
    hue_index, names = _hue_labels(hsv)
    has_geometry = frame.depth_m is not None and frame.calibration is not None
    cloud = point_cloud(frame) if has_geometry else None
    up = _facing_up(cloud) if cloud is not None else None
    image_area = frame.rgb.shape[0] * frame.rgb.shape[1]
    kernel = np.ones((3, 3), np.uint8)
    found: list[Detection] = []
    implausible = 0
    for index, colour in enumerate(names):
        raw = coloured & (hue_index == index)
        mask = cv2.morphologyEx(raw.astype(np.uint8), cv2.MORPH_OPEN, kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, iterations=2)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for component in range(1, count):
            u0, v0, w, h, area = stats[component]
            if area < MIN_AREA_PX:
                continue
            box = (slice(v0, v0 + h), slice(u0, u0 + w))
            if _implausible(hsv[box], labels[box] == component,
                            (labels[box] == component) & raw[box], hsv.shape[:2],
                            frame.calibration is not None):
                implausible += 1
                continue
            # the cleaned mask joins the object up; only pixels of its own colour carry its
            # geometry (closing also takes in a neighbour's edge)
            rows, cols = np.nonzero((labels[v0:v0 + h, u0:u0 + w] == component)
                                    & raw[v0:v0 + h, u0:u0 + w])
            rows, cols = rows + v0, cols + u0
            points = _footprint(frame, rows, cols, cloud)
            if points is None:  # a bare image: guess from size alone
                kind = "bowl" if area >= BOWL_MIN_IMAGE_SHARE * image_area else "block"
                point = _grasp_point(frame, kind, None, rows, cols, False)
                found.append(_detection(colour, kind, rows, cols, point))
                continue
            valid = np.isfinite(points).all(axis=1)  # keep pixels and points in step
            rows, cols, points = rows[valid], cols[valid], points[valid]
            if len(points) < 5:
                continue
            if up is not None:
                found += _split_component(frame, colour, rows, cols, points, up)
            else:  # calibrated but no depth: the table-plane footprint's shorter side
                (_, _), sides, _ = cv2.minAreaRect(points[:, :2].astype(np.float32))
                kind = "bowl" if min(sides) >= BOWL_MIN_FOOTPRINT_M else "block"
                found.append(_detection(colour, kind, rows, cols,
                                        _grasp_point(frame, kind, points, rows, cols, False)))
    return Sight(detections=_with_unique_labels(found), implausible=implausible,
                 coloured_share=coloured_share)


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
