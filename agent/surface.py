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

    def _near(self, x: float, y: float, radius: float) -> np.ndarray:
        d2 = (self._points[:, 0] - x) ** 2 + (self._points[:, 1] - y) ** 2
        return self._points[d2 <= radius * radius]

    def surface_z(self, x: float, y: float, radius: float = HEIGHT_READ_RADIUS_M) -> float:
        """Height of what is directly under (x, y): a robust top of the points within `radius`."""
        near = self._near(x, y, radius)
        if len(near) < 3:
            return self.table_z
        return max(self.table_z, float(np.percentile(near[:, 2], 90)))

    def top_z(self, x: float, y: float, radius: float) -> float:
        """Height of the highest of what stands within `radius` of (x, y) (a bowl's rim, not
        its floor), robust to a few stray points."""
        near = self._near(x, y, radius)
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
    """The points (x, y in metres) joined to the one nearest (x, y) on a grid of `cell_m`: one
    top face, without a container wall seen at the same height beside it."""
    if len(points) == 0:
        return points
    cells = np.floor((points - points.min(axis=0)) / cell_m).astype(int)
    grid = np.zeros(cells.max(axis=0) + 1, np.uint8)
    grid[cells[:, 0], cells[:, 1]] = 1
    _, parts = cv2.connectedComponents(grid, connectivity=8)
    nearest = int(np.argmin(np.hypot(points[:, 0] - x, points[:, 1] - y)))
    return points[parts[cells[:, 0], cells[:, 1]] == parts[tuple(cells[nearest])]]
