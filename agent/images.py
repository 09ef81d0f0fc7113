"""Images from files, arrays or camera frames, as the frames the brains look at: read with their
size bounded before any pixel is decoded, checked against a calibration, faces blurred on
request."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from erarm.robots.base import CameraCalibration, Frame, load_calibration
from erarm.robots.errors import ConfigError, ErarmError
from erarm.robots.files import read_input_bytes

ImageSource = str | Path | np.ndarray | Frame  # a file, an RGB array (H x W x 3, uint8), a frame
CalibrationSource = str | Path | CameraCalibration  # a calibration file, or one already read

MAX_IMAGE_PIXELS = 50_000_000  # 50 megapixels: far beyond any camera erarm works with
MAX_IMAGE_BYTES = 256 * 1024 * 1024
JPEG_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                      0xCF}  # start-of-frame markers, which carry the image's size


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG or BMP header, without decoding any pixels; None for
    anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in JPEG_FRAME_MARKERS:
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            at += 2
            continue
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
    return None


def decode_image(path: Path) -> np.ndarray:
    """An image file as RGB; its size is read from the header and bounded before any pixel is
    decoded, so a small file cannot ask for gigabytes."""
    data = read_input_bytes(path, "image", MAX_IMAGE_BYTES)
    size = image_size(data)
    if size is None:
        raise ConfigError(f"image {path}: not a PNG, JPEG or BMP image")
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise ConfigError(f"image {path} is {width}x{height} pixels; erarm reads at most "
                          f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ConfigError(f"image {path}: damaged or truncated, OpenCV cannot decode it")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def calibration_from(source: CalibrationSource | None) -> CameraCalibration | None:
    """A calibration file read (one-line errors), or a calibration passed as it is."""
    if source is None or isinstance(source, CameraCalibration):
        return source
    return load_calibration(source)


def frame_from(image: ImageSource, calibration: CalibrationSource | None = None,
               blur_faces: bool = False, log: Callable[[str], None] = lambda _: None) -> Frame:
    """An image file, an RGB array or a frame as a frame, with `calibration` (else a frame's
    own) and its faces blurred when asked (`log` says how many)."""
    if isinstance(image, Frame):
        rgb, own = image.rgb, image.calibration
    elif isinstance(image, np.ndarray):
        rgb, own = image, None
    elif isinstance(image, str | Path):
        rgb, own = decode_image(Path(image)), None
    else:
        raise ConfigError(f"image: a file path, an RGB array or a Frame, got "
                          f"{type(image).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or 0 in rgb.shape:
        raise ConfigError(f"image: an RGB array is H x W x 3 of uint8, got shape "
                          f"{'x'.join(map(str, rgb.shape))} of {rgb.dtype}")
    camera = calibration_from(calibration) or own
    if camera is not None and (camera.width, camera.height) != (rgb.shape[1], rgb.shape[0]):
        named = f"calibration {calibration}" if isinstance(calibration, str | Path) \
            else "the calibration"
        shown = image if isinstance(image, str | Path) else "the image"
        raise ConfigError(f"{named} is for {camera.width}x{camera.height} images, {shown} is "
                          f"{rgb.shape[1]}x{rgb.shape[0]}")
    depth = image.depth_m if isinstance(image, Frame) else None
    frame = Frame(rgb=rgb, calibration=camera, depth_m=depth)
    if blur_faces:
        from erarm.agent.privacy import blur_faces as blur

        frame, count = blur(frame)
        if count:
            log(f"blurred {count} face(s)")
    return frame


def encode_image(frame: Frame, max_side: int, image_format: str) -> tuple[bytes, str]:
    """The frame as JPEG or PNG bytes, downscaled so its longest side is at most `max_side`."""
    rgb = frame.rgb
    scale = max_side / max(rgb.shape[:2])
    if scale < 1:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if image_format == "png":
        ok, data = cv2.imencode(".png", bgr)
        mime = "image/png"
    else:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
        mime = "image/jpeg"
    if not ok:
        raise ErarmError(f"could not encode the camera image as {image_format}")
    return data.tobytes(), mime
