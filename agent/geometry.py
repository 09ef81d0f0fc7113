"""Pixels to robot coordinates and back, as pure functions of a `CameraCalibration`.

normalized [y, x] (0-1000) -> pixel (u, v) -> ray through the intrinsics -> depth lookup or the
table plane -> robot base frame (metres). Pixel coordinates follow OpenCV: pixel (0, 0)'s centre is
at (0, 0); the normalized grid spans the image edges, 0 at the top/left edge and 1000 at the
bottom/right edge.
"""

from __future__ import annotations

import cv2
import numpy as np

from erarm.robots.base import CameraCalibration, Frame


def normalized_to_pixel(y: float, x: float, width: int, height: int) -> tuple[float, float]:
    return x / 1000 * width - 0.5, y / 1000 * height - 0.5


def pixel_to_normalized(u: float, v: float, width: int, height: int) -> tuple[float, float]:
    return (v + 0.5) / height * 1000, (u + 0.5) / width * 1000


def _undistorted(pixels: np.ndarray, calibration: CameraCalibration) -> np.ndarray:
    """Normalized image coordinates (x/z, y/z) in the camera frame for each pixel."""
    pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    if not any(calibration.distortion):
        k = calibration
        return np.column_stack([(pixels[:, 0] - k.cx) / k.fx, (pixels[:, 1] - k.cy) / k.fy])
    return cv2.undistortPoints(pixels.reshape(-1, 1, 2), calibration.intrinsic_matrix(),
                               np.asarray(calibration.distortion)).reshape(-1, 2)


def pixel_rays(pixels: np.ndarray,
               calibration: CameraCalibration) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre and unit ray directions (N x 3) in the base frame."""
    xy = _undistorted(pixels, calibration)
    directions = np.column_stack([xy, np.ones(len(xy))])
    pose = calibration.pose()
    directions = directions @ pose[:3, :3].T
    return pose[:3, 3], directions / np.linalg.norm(directions, axis=1, keepdims=True)


def unproject(pixels: np.ndarray, depth_m: np.ndarray,
              calibration: CameraCalibration) -> np.ndarray:
    """Base-frame points (N x 3) for pixels with known depth along the optical axis."""
    xy = _undistorted(pixels, calibration)
    depth = np.asarray(depth_m, dtype=np.float64).reshape(-1)
    camera_points = np.column_stack([xy * depth[:, None], depth])
    pose = calibration.pose()
    return camera_points @ pose[:3, :3].T + pose[:3, 3]


def intersect_plane(origin: np.ndarray, direction: np.ndarray, z: float) -> np.ndarray | None:
    """Where a ray meets the horizontal plane at height z, or None if it never does."""
    if abs(direction[2]) < 1e-9:
        return None
    t = (z - origin[2]) / direction[2]
    return None if t <= 0 else origin + t * direction


def depth_near(depth_m: np.ndarray, u: float, v: float, radius: int = 1) -> float | None:
    """Median valid depth in a small window around a pixel (robust to one bad reading)."""
    height, width = depth_m.shape
    col, row = round(float(u)), round(float(v))
    if not (0 <= col < width and 0 <= row < height):
        return None
    window = depth_m[max(0, row - radius): row + radius + 1, max(0, col - radius): col + radius + 1]
    valid = window[np.isfinite(window) & (window > 0)]
    return float(np.median(valid)) if valid.size else None


def locate(y: float, x: float, frame: Frame) -> np.ndarray | None:
    """The base-frame point (metres) seen at normalized image point [y, x]: through the depth image
    when there is one, else where the pixel's ray meets the table."""
    calibration = frame.calibration
    u, v = normalized_to_pixel(y, x, calibration.width, calibration.height)
    if frame.depth_m is not None:
        depth = depth_near(frame.depth_m, u, v)
        if depth is not None:
            return unproject(np.array([[u, v]]), np.array([depth]), calibration)[0]
    origin, directions = pixel_rays(np.array([[u, v]]), calibration)
    return intersect_plane(origin, directions[0], calibration.table_z)


def point_cloud(frame: Frame) -> np.ndarray:
    """Base-frame points (H x W x 3) for every pixel of a depth frame (NaN where unknown)."""
    if frame.depth_m is None:
        raise ValueError("this frame has no depth")
    height, width = frame.depth_m.shape
    rows, cols = np.mgrid[0:height, 0:width]
    pixels = np.column_stack([cols.ravel(), rows.ravel()])
    depth = frame.depth_m.ravel().astype(np.float64)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan)
    return unproject(pixels, depth, frame.calibration).reshape(height, width, 3)


def crop(frame: Frame, u0: int, v0: int, u1: int, v1: int) -> Frame:
    """The part of a frame in pixel columns u0..u1 and rows v0..v1 (exclusive), with its
    calibration moved along so crop pixels still map to the same rays."""
    calibration = frame.calibration
    if calibration is not None:
        calibration = calibration.model_copy(update={
            "width": u1 - u0, "height": v1 - v0,
            "cx": calibration.cx - u0, "cy": calibration.cy - v0})
    depth = frame.depth_m[v0:v1, u0:u1] if frame.depth_m is not None else None
    return Frame(rgb=np.ascontiguousarray(frame.rgb[v0:v1, u0:u1]), calibration=calibration,
                 depth_m=depth)
