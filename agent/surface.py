"""What the table looks like in 3D around a spot, from the camera's depth image alone.

`move(x, y, high=false)` means "interacting height at that spot"; this module answers how high the
surface is there (a block's top, a bowl's floor, the bare table) and how a block there is turned.
Without a depth camera every spot reads as the bare table plane.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from erarm.agent.geometry import point_cloud
from erarm.robots.base import Frame, WorkspaceLimits

MAX_OBJECT_HEIGHT_M = 0.15  # anything taller above the table is the arm, not a tabletop object
TOP_FACE_BAND_M = 0.006  # points this close below the top belong to the top face
FREE_TABLE_TOLERANCE_M = 0.006  # bare table reads within this of the table plane
HEIGHT_READ_RADIUS_M = 0.012  # the height at a spot is read from the points this close to it


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
        the jaws close on its flat sides; None when there is no such face (bare table, a bowl)."""
        top = self.surface_z(x, y)
        if top - self.support_z(x, y) < 0.01:
            return None
        near = self._near(x, y, radius)
        face = near[near[:, 2] >= top - TOP_FACE_BAND_M][:, :2]
        if len(face) < 8:
            return None
        (_, _), (w, h), angle = cv2.minAreaRect(face.astype(np.float32))
        if max(w, h) > 0.07:
            return None
        yaw = math.radians(angle) % (math.pi / 2)
        return yaw - math.pi / 2 if yaw > math.pi / 4 else yaw
