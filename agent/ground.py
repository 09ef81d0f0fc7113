"""Ground: refine each perceived point with what the depth camera measures around it.

A model's point says which object is meant, not where to grasp it: with a real model's pointing
error it lands on a block's edge, on the table beside it, or on a bowl's rim. Here the object
around each point is segmented in depth (what stands above the table, near the point, of the
point's colour) and measured: a block by the centre and height of its top face, a container by
the centre of its opening (a circle through its rim) and the height of its floor. Which of the two
an object is comes from its shape when the depth shows it clearly (a rim standing above a floor
inside it, or a flat top across its middle), else from its label's kind word: a model may call a
bowl a block. A point on bare table snaps to the nearest raised object its box and colour word
agree with. Without depth, or where no object is found, the point is kept as it was located.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from erarm.agent.geometry import normalized_to_pixel, unproject
from erarm.agent.labels import COLOUR_HUES, is_container
from erarm.agent.schemas import Box, Point
from erarm.agent.surface import MAX_OBJECT_HEIGHT_M, TOP_FACE_BAND_M
from erarm.robots.base import Frame

RAISED_M = 0.005  # a point this far above the table plane belongs to an object
SNAP_M = 0.035  # a point on bare table snaps to an object at most this far away
BLOCK_REACH_M = 0.04  # a block's top face lies within this of its point (~40 mm blocks)
CONTAINER_REACH_M = 0.1  # a container's rim within this of its estimated centre (~68 mm bowls)
HOLDS_SOLID = 1.6  # a container's box this much wider than the solid at its point holds it
RIM_BAND_M = 0.008  # rim points lie this close below the container's top
MIN_FACE_SIDE_M = 0.02  # a top face narrower than this is a ridge or mostly hidden: go by the body
ROOF_M = 0.035  # a ridged top's roof slopes down at most this far below its ridge
HUE_TOLERANCE = 12  # OpenCV hue units (0-180) within which two pixels share a colour
MIN_SATURATION = 80  # greyer than this, a pixel's hue says nothing
RIM_ABOVE_FLOOR_M = 0.015  # a container's rim stands at least this above its floor (45 mm bowls)
MIN_RIM_RADIUS_M = 0.02  # a rim narrower than this is no container's (a block's face seen askew)
CORE_SHARE = 0.4  # an object's middle: this share of its top's radius around the top's centre
RIM_SECTORS, MIN_RIM_SECTORS = 12, 9  # a rim is seen all round: in this many of 12 directions
FLAT_TOP_M = 0.003  # a solid's highest points are in its middle: no rim this much higher round it
ONE_FACE_SHARE = 0.9  # a flat top is one face: this share of the top's points connected
BOX_MARGIN = 30.0  # normalized units (of 1000) a box is widened by against its jitter
SAME_OBJECT_M = 0.015  # two groundings this close (and at one height) are one object
RECT_ASPECT = 1.15  # a rim this much longer than wide is a rectangle's (a basket's, a bin's)
RECT_REACH_M = 0.16  # a rectangular rim lies within this of the centre first fitted to it
RECT_EDGE_M = 0.012  # a rectangle's rim points lie this close to its sides
RECT_ON_EDGES = 0.8  # and this share of them do (a round pan with a handle: far fewer)


def circle_centre(xy: np.ndarray) -> tuple[float, float, float]:
    """Least-squares circle (centre x, y and radius) through points such as a bowl's rim,
    refitted without stray points."""
    keep = np.ones(len(xy), bool)
    cx, cy = xy.mean(axis=0)
    radius = 0.0
    for _ in range(3):
        x, y = xy[keep, 0], xy[keep, 1]
        a = np.column_stack([x, y, np.ones_like(x)])
        (d, e, f), *_ = np.linalg.lstsq(a, x * x + y * y, rcond=None)
        cx, cy = d / 2, e / 2
        radius = math.sqrt(max(f + cx * cx + cy * cy, 0.0))
        residual = np.abs(np.hypot(xy[:, 0] - cx, xy[:, 1] - cy) - radius)
        keep = residual < max(0.01, 2.5 * np.median(residual))
        if keep.sum() < 10:
            break
    return float(cx), float(cy), float(radius)


@dataclass(frozen=True)
class Grounded:
    """One object as measured around its point (metres, robot base frame)."""

    centre: tuple[float, float, float]  # block: top-face centre; container: opening, floor z
    radius_m: float  # half its width on the table
    hue: float | None  # its colour (OpenCV hue), None when grey
    container: bool  # measured as a container: by its shape, or its label where shape is unclear
    extent: tuple[float, float, float] | None = None  # a rectangular rim: half length, half
    # width (metres) and the yaw of its length (radians)


class DepthScene:
    """One depth frame, measured only in windows around each point (metres, base frame)."""

    def __init__(self, frame: Frame):
        calibration = self.calibration = frame.calibration
        self.width, self.height = calibration.width, calibration.height
        self.depth = frame.depth_m
        hsv = cv2.cvtColor(np.ascontiguousarray(frame.rgb), cv2.COLOR_RGB2HSV)
        self.hue = hsv[:, :, 0].astype(np.float32)
        self.coloured = hsv[:, :, 1] >= MIN_SATURATION

    def _pixel(self, y: float, x: float) -> tuple[int, int]:
        u, v = normalized_to_pixel(y, x, self.width, self.height)
        return (min(max(round(u), 0), self.width - 1), min(max(round(v), 0), self.height - 1))

    def _cloud(self, rows: slice, cols: slice) -> np.ndarray:
        """Base-frame points (h x w x 3) of a window of pixels (NaN where depth is unknown); the
        window is cut to the image."""
        rows = slice(*rows.indices(self.height)[:2])
        cols = slice(*cols.indices(self.width)[:2])
        grid_rows, grid_cols = np.mgrid[rows, cols]
        depth = self.depth[rows, cols].astype(np.float64)
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan)
        pixels = np.column_stack([grid_cols.ravel(), grid_rows.ravel()])
        return unproject(pixels, depth.ravel(), self.calibration).reshape(*depth.shape, 3)

    def _window(self, col: int, row: int, reach_m: float, box: Box | None
                ) -> tuple[slice, slice]:
        """Pixel rows and columns that hold the object: its box (with some margin for jitter),
        else what lies within `reach_m` of the point."""
        if box is not None:
            ymin, xmin, ymax, xmax = box.box_2d
            u0, v0 = normalized_to_pixel(ymin - BOX_MARGIN, xmin - BOX_MARGIN, self.width,
                                         self.height)
            u1, v1 = normalized_to_pixel(ymax + BOX_MARGIN, xmax + BOX_MARGIN, self.width,
                                         self.height)
            return (slice(max(round(v0), 0), min(round(v1) + 1, self.height)),
                    slice(max(round(u0), 0), min(round(u1) + 1, self.width)))
        near = self._cloud(slice(max(row - 3, 0), row + 4), slice(max(col - 3, 0), col + 4))
        step = np.nanmedian(np.linalg.norm(np.diff(near, axis=1), axis=2))
        half = int(min(max(reach_m / step if np.isfinite(step) and step > 0 else 200, 20), 300))
        return (slice(max(row - half, 0), min(row + half + 1, self.height)),
                slice(max(col - half, 0), min(col + half + 1, self.width)))

    def ground(self, point: Point, box: Box | None) -> Grounded | None:
        """The object at `point` measured in depth, or None when none is found there."""
        col, row = self._pixel(point.y, point.x)
        container = is_container(point.label)
        rows, cols = self._window(col, row, 2 * CONTAINER_REACH_M if container
                                  else BLOCK_REACH_M + SNAP_M, box)
        if rows.start >= rows.stop or cols.start >= cols.stop:
            return None
        seed = self._cloud(slice(row, row + 1), slice(col, col + 1))[0, 0]
        if not np.isfinite(seed).all():
            return None
        cloud = self._cloud(rows, cols)
        rise = cloud[:, :, 2] - self.calibration.table_z
        raised = np.isfinite(rise) & (rise > RAISED_M) & (rise < MAX_OBJECT_HEIGHT_M)
        hue, coloured = self.hue[rows, cols], self.coloured[rows, cols]
        seed_raised = RAISED_M < seed[2] - self.calibration.table_z < MAX_OBJECT_HEIGHT_M
        inside = rows.start <= row < rows.stop and cols.start <= col < cols.stop
        wanted = label_hue(point.label)
        off_colour = (wanted is not None and self.coloured[row, col]
                      and not same_hue(float(self.hue[row, col]), wanted))
        if not (seed_raised and inside) or off_colour:  # beside its object: snap to it
            near = raised
            if box is None:  # else the box bounds the search
                near = near & (_distance(cloud, seed[0], seed[1]) <= SNAP_M)
            if wanted is not None and (near & coloured & same_hue(hue, wanted)).any():
                near &= coloured & same_hue(hue, wanted)
            if not near.any():
                return None
            d2 = np.where(near, (cloud[:, :, 0] - seed[0]) ** 2 + (cloud[:, :, 1] - seed[1]) ** 2,
                          np.inf)
            r, c = np.unravel_index(np.argmin(d2), d2.shape)
            seed = cloud[r, c]
            reference = float(hue[r, c]) if coloured[r, c] else None
        else:
            reference = float(self.hue[row, col]) if self.coloured[row, col] else None
        if wanted is not None and (raised & coloured & same_hue(hue, wanted)).any():
            reference = wanted  # the point may be on something else: a block in the bowl
        tinted = np.ones_like(raised) if reference is None else (
            coloured & same_hue(hue, reference))
        shape = _shape(cloud, raised & tinted, tinted, seed)
        if shape is not None:
            container = shape
        found = (_container(cloud, raised & tinted, tinted, seed, reference) if container
                 else _block(cloud, raised & tinted, seed, reference))
        if is_container(point.label) and box is not None:
            opening = _opening(cloud, raised)
            if opening is not None and (found is None
                                        or opening.radius_m > HOLDS_SOLID * found.radius_m):
                return opening  # what was measured stands in it: a bottle on a plate
        return found


def label_hue(label: str) -> float | None:
    """The hue of the colour word in a label ('blue block'), if it has one."""
    words = label.lower().split()
    return next((COLOUR_HUES[w] for w in words if w in COLOUR_HUES), None)


def same_hue(hue: np.ndarray | float, reference: float) -> np.ndarray | bool:
    gap = np.abs(hue - reference)
    return np.minimum(gap, 180 - gap) <= HUE_TOLERANCE


def _distance(cloud: np.ndarray, x: float, y: float) -> np.ndarray:
    return np.hypot(cloud[:, :, 0] - x, cloud[:, :, 1] - y)


def _shape(cloud: np.ndarray, member: np.ndarray, tinted: np.ndarray, seed: np.ndarray
           ) -> bool | None:
    """Whether the raised segment nearest the seed is a container (True: its top is a rim seen
    all round, standing clearly above the floor in its middle), a solid (False: its top is one
    flat face across its middle), or neither clearly (None: half hidden, something inside it).
    Only the segment's own points count: a block in a bowl or on another block is its own."""
    count, parts = cv2.connectedComponents(member.astype(np.uint8), connectivity=8)
    if count < 2:
        return None
    gap = np.full(count, np.inf)
    np.minimum.at(gap, parts[member], _distance(cloud, seed[0], seed[1])[member])
    segment = parts == int(np.argmin(gap[1:])) + 1
    z = cloud[:, :, 2]
    top = float(np.percentile(z[segment], 98))
    band = segment & (z >= top - RIM_BAND_M)
    if band.sum() < 10:
        return None
    rim = cloud[band][:, :2]
    cx, cy, _ = circle_centre(rim)
    spread = np.hypot(rim[:, 0] - cx, rim[:, 1] - cy)
    radius = float(np.percentile(spread, 90))
    middle = tinted & np.isfinite(z) & (_distance(cloud, cx, cy) <= CORE_SHARE * radius)
    if middle.sum() < 10:
        return None
    low, floor, high = np.percentile(z[middle], [5, 50, 95])
    depth = top - float(floor)
    if depth >= RIM_ABOVE_FLOOR_M and radius >= MIN_RIM_RADIUS_M:
        outer = spread >= 0.5 * radius
        angles = np.arctan2(rim[outer, 1] - cy, rim[outer, 0] - cx)
        sectors = np.unique(((angles + math.pi) / (2 * math.pi) * RIM_SECTORS).astype(int)
                            % RIM_SECTORS)
        # a floor with something standing on it, or a point on that, is no clear container
        on_floor = math.hypot(seed[0] - cx, seed[1] - cy) < 0.75 * radius
        standing = (high - low > RIM_ABOVE_FLOOR_M / 2
                    or (on_floor and seed[2] - floor > RIM_ABOVE_FLOOR_M))
        return True if len(sectors) >= MIN_RIM_SECTORS and not standing else None
    if depth <= TOP_FACE_BAND_M and top - np.percentile(z[middle], 98) <= FLAT_TOP_M:
        faces, pieces = cv2.connectedComponents(band.astype(np.uint8), connectivity=8)
        largest = np.bincount(pieces[band], minlength=faces)[1:].max()
        return False if largest >= ONE_FACE_SHARE * band.sum() else None
    return None


def _opening(cloud: np.ndarray, raised: np.ndarray) -> Grounded | None:
    """A container measured across its whole box, for one whose middle holds something: the
    middle of the largest raised part of the box (what stands beside it is apart from it), its
    floor (the lowest points there) and half its narrow extent."""
    count, parts = cv2.connectedComponents(raised.astype(np.uint8), connectivity=8)
    if count < 2:
        return None
    largest = int(np.argmax(np.bincount(parts[raised]))[()]) if raised.any() else 0
    points = cloud[parts == largest]
    if len(points) < 20:
        return None
    low, high = np.percentile(points[:, :2], 2, axis=0), np.percentile(points[:, :2], 98, axis=0)
    cx, cy = (low + high) / 2
    floor = float(np.percentile(points[:, 2], 3))
    return Grounded(centre=(float(cx), float(cy), floor), radius_m=float(min(high - low) / 2),
                    hue=None, container=True)


def _block(cloud: np.ndarray, member: np.ndarray, seed: np.ndarray,
           hue: float | None) -> Grounded | None:
    """The top face connected near the seed: its centre, height and the block's footprint."""
    member = member & (_distance(cloud, seed[0], seed[1]) <= BLOCK_REACH_M)
    if member.sum() < 8:
        return None
    z = cloud[:, :, 2]
    top = float(np.percentile(z[member], 98))
    band = (member & (z >= top - TOP_FACE_BAND_M)).astype(np.uint8)
    count, parts = cv2.connectedComponents(band, connectivity=8)
    best, best_gap = 0, math.inf
    for part in range(1, count):
        face = cloud[parts == part]
        if len(face) < 8:
            continue
        gap = float(np.min(np.hypot(face[:, 0] - seed[0], face[:, 1] - seed[1])))
        if gap < best_gap:
            best, best_gap = part, gap
    if not best:
        return None
    face = cloud[parts == best]
    (cx, cy), sides, _ = cv2.minAreaRect(face[:, :2].astype(np.float32))
    if min(sides) < MIN_FACE_SIDE_M:  # a ridge (a carton's gable), or a top mostly hidden
        # the point on its roof, or else it is a sliver of something else's top
        centre = _body_centre(cloud, member, parts == best) if seed[2] >= top - ROOF_M else None
        if centre is None:
            return None
        cx, cy = centre
    body = cloud[member]
    radius = float(np.percentile(np.hypot(body[:, 0] - cx, body[:, 1] - cy), 95))
    return Grounded(centre=(float(cx), float(cy), float(np.median(face[:, 2]))),
                    radius_m=max(radius, max(sides) / 2), hue=hue, container=False)


def _body_centre(cloud: np.ndarray, member: np.ndarray, face: np.ndarray
                 ) -> tuple[float, float] | None:
    """The middle of the footprint of the solid whose narrow top is `face`: the raised points
    joined to that top, as a carton's gable slopes down to its walls; None when too little of
    the body shows to say where its middle is."""
    count, parts = cv2.connectedComponents(member.astype(np.uint8), connectivity=8)
    own = np.bincount(parts[face], minlength=count)
    body = cloud[parts == int(np.argmax(own))][:, :2]
    if len(body) < 20:
        return None
    (cx, cy), sides, _ = cv2.minAreaRect(body.astype(np.float32))
    return (float(cx), float(cy)) if min(sides) >= MIN_FACE_SIDE_M else None


def _container(cloud: np.ndarray, member: np.ndarray, tinted: np.ndarray, seed: np.ndarray,
               hue: float | None) -> Grounded | None:
    """The centre of the opening (a circle through the rim's top points, refitted once around
    the first centre, as a point on the rim starts far from it; or the rectangle a basket's
    rim is), the floor's height and the rim's radius (a rectangle's half length)."""
    z = cloud[:, :, 2]
    cx, cy = float(seed[0]), float(seed[1])
    radius = 0.0
    for _ in range(2):
        near = member & (_distance(cloud, cx, cy) <= CONTAINER_REACH_M)
        if near.sum() < 20:
            return None
        top = float(np.percentile(z[near], 98))
        rim = cloud[near & (z >= top - RIM_BAND_M)][:, :2]
        if len(rim) < 10:
            return None
        fitted = circle_centre(rim)
        if not 0.015 <= fitted[2] <= CONTAINER_REACH_M:
            break  # no bowl's rim: a rectangle's, perhaps
        cx, cy, radius = fitted
    extent = _rectangle(cloud, member & (z >= top - RIM_BAND_M), cx, cy)
    if extent is not None:
        cx, cy, *extent = extent
        radius = extent[0]
    elif not radius:
        return None
    inner = cloud[tinted & np.isfinite(z) & (_distance(cloud, cx, cy)
                                             <= 0.7 * (extent[1] if extent else radius))]
    if len(inner) < 5:
        return None
    floor = float(np.percentile(inner[:, 2], 5))
    return Grounded(centre=(cx, cy, floor), radius_m=radius, hue=hue, container=True,
                    extent=tuple(extent) if extent else None)


def _rectangle(cloud: np.ndarray, rim: np.ndarray, cx: float, cy: float
               ) -> tuple[float, float, float, float, float] | None:
    """A rim that is a rectangle's (a basket's, a bin's), followed as one ring in the image:
    its centre, half length, half width (metres) and the yaw of its length; None for a round
    one. A circle fitted to such a rim (seen from a corner, its far side cut off) misses the
    middle by centimetres."""
    near = rim & (_distance(cloud, cx, cy) <= RECT_REACH_M)
    count, parts = cv2.connectedComponents(near.astype(np.uint8), connectivity=8)
    if count < 2:
        return None
    sizes = np.bincount(parts[near], minlength=count)
    sizes[0] = 0
    ring = cloud[parts == int(np.argmax(sizes))][:, :2]
    if len(ring) < 20:
        return None
    (rx, ry), (w, h), angle = cv2.minAreaRect(ring.astype(np.float32))
    half_long, half_short = max(w, h) / 2, min(w, h) / 2
    if half_long < RECT_ASPECT * half_short:
        return None
    yaw = math.radians(angle if w >= h else angle + 90)
    du, dv = ring[:, 0] - rx, ring[:, 1] - ry
    u = np.abs(du * math.cos(yaw) + dv * math.sin(yaw))
    v = np.abs(-du * math.sin(yaw) + dv * math.cos(yaw))
    on_edges = np.minimum(half_long - u, half_short - v) <= RECT_EDGE_M
    if on_edges.mean() < RECT_ON_EDGES:
        return None
    return float(rx), float(ry), float(half_long), float(half_short), yaw
