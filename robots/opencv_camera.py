"""A camera through OpenCV's `VideoCapture`: a USB webcam by index, a network stream by URL, or a
video file (for tests and for replaying footage). It gives RGB only; pixels map to the robot
through a calibration file made with `erarm calibrate`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
from pydantic import BaseModel, ConfigDict, Field

from erarm.robots.base import CameraCalibration, Frame, load_calibration
from erarm.robots.errors import ConfigError, RobotError


class OpenCVCameraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: int | str = Field(0, description="a device index (0, 1 ...), a stream URL "
                                             "(rtsp://, http://) or a video file")
    calibration: Path | None = Field(None, description="calibration file for its frames (erarm "
                                                       "calibrate ...); without one, image-space "
                                                       "answers only")
    width: int | None = Field(None, gt=0, description="ask a device for this frame width")
    height: int | None = Field(None, gt=0, description="and this frame height")
    warmup_frames: int = Field(5, ge=0, description="frames dropped after opening a device or "
                                                    "stream, while its exposure settles")
    stale_frames: int = Field(1, ge=0, description="buffered frames dropped before each capture "
                                                   "of a device or stream, so it is current")


class OpenCVCamera:
    """Frames from `cv2.VideoCapture`, converted to RGB and tagged with the calibration."""

    name = "opencv"

    def __init__(self, settings: OpenCVCameraOptions):
        source = settings.source
        if isinstance(source, str) and source.isdigit():
            source = int(source)
        self._live = not (isinstance(source, str) and Path(source).is_file())
        if isinstance(source, str) and "://" not in source and self._live:
            raise ConfigError(f"camera source {source!r}: no such video file (a device is given "
                              "by its index, a stream by its URL)")
        self.calibration: CameraCalibration | None = None
        if settings.calibration is not None:
            self.calibration = load_calibration(settings.calibration)
        self._settings, self._source = settings, source
        self._capture = cv2.VideoCapture(source)
        if not self._capture.isOpened():
            raise ConfigError(f"cannot open camera source {source!r}")
        if settings.width:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, settings.width)
        if settings.height:
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, settings.height)
        if self._live:
            self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            for _ in range(settings.warmup_frames):
                self._capture.grab()

    def capture(self) -> Frame:
        if self._live:
            for _ in range(self._settings.stale_frames):
                self._capture.grab()
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            what = "the video file has no more frames" if not self._live else "no frame came"
            raise RobotError(f"camera {self._source!r}: {what}")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        frame = Frame(rgb=rgb, calibration=self.calibration)
        if self.calibration is not None and frame.size != (self.calibration.width,
                                                           self.calibration.height):
            raise ConfigError(f"the calibration is for {self.calibration.width}x"
                              f"{self.calibration.height} images; camera {self._source!r} gives "
                              f"{frame.size[0]}x{frame.size[1]} (set width and height?)")
        return frame

    def close(self) -> None:
        self._capture.release()


def open_opencv_camera(**options: object) -> OpenCVCamera:
    """A webcam, stream or video file through OpenCV, with a calibration file."""
    from erarm.robots.registry import check_options

    return OpenCVCamera(check_options(OpenCVCameraOptions, options, "opencv camera"))


open_opencv_camera.options = OpenCVCameraOptions
