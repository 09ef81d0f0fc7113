"""What the table looks like in 3D around a spot, from the camera's depth image alone.

`move(x, y, high=false)` means "interacting height at that spot"; this module answers how high the
surface is there (a block's top, a bowl's floor, the bare table) and how a block there is turned.
Without a depth camera every spot reads as the bare table plane.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from erarm.agent.geometry import point_cloud
from erarm.robots.base import Frame, WorkspaceLimits

MAX_OBJECT_HEIGHT_M = 0.15  # anything taller above the table is the arm, not a tabletop object
TOP_FACE_BAND_M = 0.006  # points this close below the top belong to the top face
FREE_TABLE_TOLERANCE_M = 0.006  # bare table reads within this of the table plane
HEIGHT_READ_RADIUS_M = 0.012  # the height at a spot is read from the points this close to it
SQUARE_ASPECT = 1.3  # a top face longer than this times its width is taken across its width
LONG_TOP_RADIUS_M = 0.08  # how far an elongated top face is followed from its point
RIDGE_M = 0.02  # a top face narrower than this is a ridge (a carton's gable), not a face
BODY_RISE_M = 0.005  # what stands this far above the table is part of an object
SHOULDER_SHARE = 0.85  # below its ridge a body has its walls where it is this share of its width
SHOULDER_REACH_M = 0.05  # a ridged body's walls lie within this of the spot on its ridge
WALL_FOOT_M = 0.01  # a ridged body's walls are followed down to this above the table


class LongTop(NamedTuple):
    """A top face longer than it is wide (metres, radians)."""

    yaw: float  # the jaws close across its narrow side at this yaw (within +-90 degrees)
    width_m: float
    length_m: float


class SurfaceMap:
    """Base-frame points of the tabletop (workspace only), queried by horizontal neighbourhood."""

    def __init__(self, frame: Frame, limits: WorkspaceLimits, margin_m: float = 0.05):
        self.table_z = limits.table_z
        if frame.depth_m is None:
            self._points = np.empty((0, 3))
            return
        points = point_cloud(frame).reshape(-1, 3)
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        keep = (np.isfinite(points).all(axis=1)
                & (x > limits.x_min - margin_m) & (x < limits.x_max + margin_m)
                & (y > limits.y_min - margin_m) & (y < limits.y_max + margin_m)
                & (z < self.table_z + MAX_OBJECT_HEIGHT_M))
        self._points = points[keep]

    def _near(self, x: float, y: float, radius: float, without: np.ndarray | None = None
              ) -> np.ndarray:
        points = self._points
        keep = (points[:, 0] - x) ** 2 + (points[:, 1] - y) ** 2 <= radius * radius
        if without is not None:
            keep &= ~without
        return points[keep]

    def body_at(self, x: float, y: float) -> np.ndarray:
        """Which points (a mask for `without`) are the object standing at (x, y): what stands
        above the table joined to it, within an elongated top's reach. Once the gripper has
        taken it, the camera's view of it there is stale."""
        near = ((self._points[:, 0] - x) ** 2 + (self._points[:, 1] - y) ** 2
                <= LONG_TOP_RADIUS_M ** 2) & (self._points[:, 2] > self.table_z + BODY_RISE_M)
        mask = np.zeros(len(self._points), bool)
        index = np.flatnonzero(near)
        if len(index):
            mask[index[_connected_mask(self._points[index], x, y)]] = True
        return mask

    def surface_z(self, x: float, y: float, radius: float = HEIGHT_READ_RADIUS_M,
                  without: np.ndarray | None = None) -> float:
        """Height of what is directly under (x, y): a robust top of the points within `radius`."""
        near = self._near(x, y, radius, without)
        if len(near) < 3:
            return self.table_z
        return max(self.table_z, float(np.percentile(near[:, 2], 90)))

    def top_z(self, x: float, y: float, radius: float, without: np.ndarray | None = None) -> float:
        """Height of the highest of what stands within `radius` of (x, y) (a bowl's rim, not
        its floor), robust to a few stray points."""
        near = self._near(x, y, radius, without)
        if len(near) < 3:
            return self.table_z
        return max(self.table_z, float(np.percentile(near[:, 2], 98)))

    def support_z(self, x: float, y: float, inner: float = 0.035, outer: float = 0.06) -> float:
        """Height of what surrounds (x, y): what an object standing there rests on."""
        d2 = (self._points[:, 0] - x) ** 2 + (self._points[:, 1] - y) ** 2
        ring = self._points[(d2 >= inner * inner) & (d2 <= outer * outer)]
        if len(ring) < 3:
            return self.table_z
        return max(self.table_z, float(np.percentile(ring[:, 2], 10)))

    def is_free(self, x: float, y: float, radius: float = 0.035) -> bool:
        """Whether the camera sees bare table all around (x, y): room to set something down."""
        near = self._near(x, y, radius)
        enough = len(near) >= 20
        return enough and float(near[:, 2].max()) <= self.table_z + FREE_TABLE_TOLERANCE_M

    def top_face_yaw(self, x: float, y: float, radius: float = 0.035) -> float | None:
        """Yaw (radians, within +-45 degrees) of a small raised square-ish top face at (x, y), so
        the jaws close on its flat sides; None when there is no such face (bare table, a bowl,
        an elongated top: see `long_top`)."""
        rect = self._top_rect(x, y, radius)
        if rect is None:
            return None
        (_, _), (w, h), angle = rect
        if max(w, h) > 0.07 or max(w, h) > SQUARE_ASPECT * min(w, h):
            return None
        yaw = math.radians(angle) % (math.pi / 2)
        return yaw - math.pi / 2 if yaw > math.pi / 4 else yaw

    def long_top(self, x: float, y: float) -> LongTop | None:
        """A raised top at (x, y) that is not square (a bottle's cap with a mug's handle, a
        cereal box, a banana): the yaw at which the jaws close across its narrow side, and how
        wide that side is; None for a square top, bare table or a container's inside."""
        rect = self._top_rect(x, y, 0.035, wide=True)
        if rect is not None and max(rect[1]) > 0.055:  # it reaches past the first look
            rect = self._top_rect(x, y, LONG_TOP_RADIUS_M, wide=True)
        if rect is None:
            return None
        (_, _), (w, h), angle = rect
        if max(w, h) <= 0.07 and max(w, h) <= SQUARE_ASPECT * min(w, h):
            return None
        a = math.radians(angle)
        across = (math.cos(a), math.sin(a)) if w < h else (-math.sin(a), math.cos(a))
        yaw = math.atan2(across[0], -across[1])  # the jaws close along (sin yaw, -cos yaw)
        yaw = (yaw + math.pi / 2) % math.pi - math.pi / 2
        return LongTop(yaw=yaw, width_m=float(min(w, h)), length_m=float(max(w, h)))

    def top_face_width(self, x: float, y: float) -> float | None:
        """How wide the raised top face at (x, y) is across its narrow side, metres: what an
        object set down on it stands on; None for bare table or a container's inside."""
        rect = self._top_rect(x, y, LONG_TOP_RADIUS_M, wide=True)
        return None if rect is None else float(min(rect[1]))

    def shoulder_z(self, x: float, y: float) -> float | None:
        """Where a ridged top (a carton's gable roof) has widened to the body's walls, metres:
        jaws closing higher would squeeze the slopes and slip; None for any other top."""
        rect = self._top_rect(x, y, 0.035)
        if rect is None or min(rect[1]) >= RIDGE_M:
            return None
        near = self._near(x, y, SHOULDER_REACH_M)
        body = _connected(near[near[:, 2] > self.table_z + WALL_FOOT_M], x, y)
        if len(body) < 20:
            return None
        full = min(cv2.minAreaRect(body[:, :2].astype(np.float32))[1])
        top = self.surface_z(x, y)
        for level in np.arange(top, self.table_z + WALL_FOOT_M, -0.003):
            above = body[body[:, 2] >= level]
            if len(above) >= 8 and min(cv2.minAreaRect(
                    above[:, :2].astype(np.float32))[1]) >= SHOULDER_SHARE * full:
                return float(level)
        return None

    def _top_rect(self, x: float, y: float, radius: float, wide: bool = False) -> tuple | None:
        """OpenCV's rotated rectangle around the raised top face near (x, y), or None. A top
        stands above what surrounds it; a `wide` one may be wider than that ring (a tray's),
        so it need only stand above the table and not lie in a hollow."""
        top, support = self.surface_z(x, y), self.support_z(x, y)
        raised = top - self.table_z >= 0.01 and top >= support - 0.005 if wide else \
            top - support >= 0.01
        if not raised:
            return None
        near = self._near(x, y, radius)
        face = _connected(near[np.abs(near[:, 2] - top) <= TOP_FACE_BAND_M][:, :2], x, y)
        if len(face) < 8:
            return None
        return cv2.minAreaRect(face.astype(np.float32))


def _connected(points: np.ndarray, x: float, y: float, cell_m: float = 0.003) -> np.ndarray:
    """The points (x, y first, metres) joined to the one nearest (x, y) on a grid of `cell_m`:
    one top face, without a container wall seen at the same height beside it."""
    return points[_connected_mask(points, x, y, cell_m)] if len(points) else points


def _connected_mask(points: np.ndarray, x: float, y: float, cell_m: float = 0.003
                    ) -> np.ndarray:
    xy = points[:, :2]
    cells = np.floor((xy - xy.min(axis=0)) / cell_m).astype(int)
    grid = np.zeros(cells.max(axis=0) + 1, np.uint8)
    grid[cells[:, 0], cells[:, 1]] = 1
    _, parts = cv2.connectedComponents(grid, connectivity=8)
    nearest = int(np.argmin(np.hypot(xy[:, 0] - x, xy[:, 1] - y)))
    return parts[cells[:, 0], cells[:, 1]] == parts[tuple(cells[nearest])]
