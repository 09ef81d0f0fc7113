"""A stand-in for the parts of Intel's `pyrealsense2` a camera driver uses, serving recorded
colour (BGR) and depth (z16, 1 mm units) frames with the names, shapes and units of the real
SDK, for tests without a camera."""

from __future__ import annotations

from types import SimpleNamespace
from typing import ClassVar

import numpy as np

stream = SimpleNamespace(color="color", depth="depth")
format = SimpleNamespace(bgr8="bgr8", z16="z16")
DEPTH_SCALE = 0.001  # metres per z16 unit, a D400's default


class _Data:
    def __init__(self, array: np.ndarray):
        self._array = array

    def get_data(self) -> np.ndarray:
        return self._array

    def __bool__(self) -> bool:
        return True


class _Frames:
    def __init__(self, bgr: np.ndarray, depth_units: np.ndarray):
        self.bgr, self.depth_units = bgr, depth_units

    def get_color_frame(self) -> _Data:
        return _Data(self.bgr)

    def get_depth_frame(self) -> _Data:
        return _Data(self.depth_units)


class config:
    def __init__(self):
        self.streams, self.serial = [], None

    def enable_stream(self, kind, width, height, fmt, fps):
        self.streams.append((kind, width, height, fmt, fps))

    def enable_device(self, serial):
        self.serial = serial


class align:
    def __init__(self, to):
        self.to = to

    def process(self, frames: _Frames) -> _Frames:
        return frames  # the recorded depth is already registered to the colour image


class pipeline:
    """Serves `recording` (a list of (bgr, depth_units) pairs, repeating the last) through the
    SDK's start / wait_for_frames / stop calls, with the colour stream's intrinsics."""

    recording: ClassVar[list[tuple[np.ndarray, np.ndarray]]] = []
    intrinsics = SimpleNamespace(width=640, height=480, fx=500.0, fy=500.0, ppx=320.0,
                                 ppy=240.0, coeffs=[0.0] * 5)

    def __init__(self):
        self.started, self.served, self.config = False, 0, None

    def start(self, settings: config):
        if not self.recording:
            raise RuntimeError("No device connected")
        self.started, self.config = True, settings
        stream_profile = SimpleNamespace(
            as_video_stream_profile=lambda: SimpleNamespace(
                get_intrinsics=lambda: self.intrinsics))
        sensor = SimpleNamespace(get_depth_scale=lambda: DEPTH_SCALE)
        return SimpleNamespace(
            get_device=lambda: SimpleNamespace(first_depth_sensor=lambda: sensor),
            get_stream=lambda kind: stream_profile)

    def wait_for_frames(self, timeout_ms: int = 5000) -> _Frames:
        if not self.started:
            raise RuntimeError("wait_for_frames cannot be called before start()")
        bgr, depth = self.recording[min(self.served, len(self.recording) - 1)]
        self.served += 1
        return _Frames(bgr, depth)

    def stop(self):
        if not self.started:
            raise RuntimeError("stop() cannot be called before start()")
        self.started = False
