"""Blur faces before an image leaves the machine, as the Robotics-ER privacy notice asks
operators to do. Uses the frontal and profile Haar cascades that ship with OpenCV."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from erarm.robots.base import Camera, Frame

CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml")


@cache
def _detectors() -> tuple[cv2.CascadeClassifier, ...]:
    return tuple(cv2.CascadeClassifier(cv2.data.haarcascades + name) for name in CASCADES)


def find_faces(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Face rectangles (x, y, w, h) in pixels. Tuned for recall: blurring a face too many is
    harmless, uploading one is not."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    faces = []
    for detector in _detectors():
        found = detector.detectMultiScale(gray, scaleFactor=1.05, minNeighbors=4, minSize=(20, 20))
        faces.extend(tuple(int(v) for v in face) for face in found)
    return sorted(faces)  # OpenCV's threads find them in any order; overlaps blur in this one


def blur_faces(frame: Frame) -> tuple[Frame, int]:
    """The frame with every detected face (plus a margin) pixelated and blurred, and the count."""
    faces = find_faces(frame.rgb)
    if not faces:
        return frame, 0
    rgb = frame.rgb.copy()
    height, width = rgb.shape[:2]
    for x, y, w, h in faces:
        x0, y0 = max(0, x - w // 5), max(0, y - h // 5)
        x1, y1 = min(width, x + w + w // 5), min(height, y + h + h // 5)
        region = rgb[y0:y1, x0:x1]
        small = cv2.resize(region, (max(1, (x1 - x0) // 16), max(1, (y1 - y0) // 16)),
                           interpolation=cv2.INTER_AREA)
        coarse = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
        rgb[y0:y1, x0:x1] = cv2.GaussianBlur(coarse, (0, 0), sigmaX=max(w, h) / 10)
    return Frame(rgb=rgb, calibration=frame.calibration, depth_m=frame.depth_m), len(faces)


class FaceBlurringCamera:
    """A camera whose frames have their faces blurred before anyone sees them."""

    def __init__(self, camera: Camera):
        self._camera = camera
        self.name = camera.name
        self.faces_blurred = 0

    def capture(self) -> Frame:
        frame, count = blur_faces(self._camera.capture())
        self.faces_blurred += count
        return frame

    def close(self) -> None:
        self._camera.close()
