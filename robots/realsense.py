"""An Intel RealSense depth camera through `pyrealsense2` (extra `erarm[realsense]`): colour, and
depth aligned to it in metres, with the factory intrinsics of the colour stream. Its pose in the
robot's base frame comes from a calibration file (`erarm calibrate extrinsics`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from erarm.robots.base import CameraCalibration, Frame, load_calibration
from erarm.robots.errors import ConfigError, RobotError


class RealSenseOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    serial: str | None = Field(None, description="the camera's serial number [default: the "
                                                 "first one found]")
    width: int = Field(640, gt=0, description="colour and depth frame width")
    height: int = Field(480, gt=0, description="and height")
    fps: int = Field(30, gt=0, description="frames per second")
    calibration: Path | None = Field(None, description="calibration file with the camera's "
                                                       "pose (its intrinsics replace the "
                                                       "factory ones)")
    warmup_frames: int = Field(15, ge=0, description="frames dropped after starting, while "
                                                     "auto exposure settles")
    timeout_s: float = Field(5.0, gt=0, description="longest wait for a frame")


def _sdk():
    try:
        import pyrealsense2
    except ImportError as err:
        raise ConfigError(f"the realsense camera needs Intel's SDK ({err}): pip install "
                          "'erarm[realsense]' (on Linux also the libusb-1.0-0 package)") from None
    return pyrealsense2


class RealSenseCamera:
    """Aligned colour and depth frames from a running RealSense pipeline."""

    name = "realsense"

    def __init__(self, settings: RealSenseOptions, sdk=None):
        rs = sdk or _sdk()
        self._settings = settings
        config = rs.config()
        if settings.serial:
            config.enable_device(settings.serial)
        config.enable_stream(rs.stream.depth, settings.width, settings.height, rs.format.z16,
                             settings.fps)
        config.enable_stream(rs.stream.color, settings.width, settings.height, rs.format.bgr8,
                             settings.fps)
        self._pipeline = rs.pipeline()
        try:
            profile = self._pipeline.start(config)
        except RuntimeError as err:
            raise ConfigError(f"cannot start the RealSense camera: {err}") from None
        self._depth_scale = profile.get_device().first_depth_sensor().get_depth_scale()
        self._align = rs.align(rs.stream.color)
        self.calibration = (load_calibration(settings.calibration) if settings.calibration
                            else self._factory_calibration(profile, rs))
        for _ in range(settings.warmup_frames):
            self._frames()

    @staticmethod
    def _factory_calibration(profile, rs) -> CameraCalibration:
        stream = profile.get_stream(rs.stream.color).as_video_stream_profile()
        intrinsics = stream.get_intrinsics()
        return CameraCalibration(width=intrinsics.width, height=intrinsics.height,
                                 fx=intrinsics.fx, fy=intrinsics.fy, cx=intrinsics.ppx,
                                 cy=intrinsics.ppy, distortion=list(intrinsics.coeffs),
                                 method="realsense-factory")

    def _frames(self):
        try:
            frames = self._pipeline.wait_for_frames(round(self._settings.timeout_s * 1000))
        except RuntimeError as err:
            raise RobotError(f"the RealSense camera gave no frame: {err}") from None
        aligned = self._align.process(frames)
        return aligned.get_color_frame(), aligned.get_depth_frame()

    def capture(self) -> Frame:
        colour, depth = self._frames()
        if not colour or not depth:
            raise RobotError("the RealSense camera gave an incomplete frame")
        bgr = np.asanyarray(colour.get_data())
        depth_m = np.asanyarray(depth.get_data()).astype(np.float32) * self._depth_scale
        frame = Frame(rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), calibration=self.calibration,
                      depth_m=depth_m)  # 0 where the camera has no depth: read as unknown
        if frame.size != (self.calibration.width, self.calibration.height):
            raise ConfigError(f"the calibration is for {self.calibration.width}x"
                              f"{self.calibration.height} images; the RealSense gives "
                              f"{frame.size[0]}x{frame.size[1]}")
        return frame

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self._pipeline.stop()


def open_realsense_camera(**options: object) -> RealSenseCamera:
    """An Intel RealSense: colour with aligned metric depth."""
    from erarm.robots.registry import check_options

    return RealSenseCamera(check_options(RealSenseOptions, options, "realsense camera"))


open_realsense_camera.options = RealSenseOptions
