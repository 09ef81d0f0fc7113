"""MP4 files people can open: H.264 (yuv420p, the moov atom first) through PyAV, whose wheel
ships FFmpeg with libx264, so the flight record's `run.mp4` and the tracker's overlay play in
browsers and on GitHub, where OpenCV's own MP4 (MPEG-4 part 2) does not."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


class Mp4Writer:
    """Frames (RGB, H x W x 3 uint8, all one size) in, an H.264 MP4 out; `close` finishes it."""

    def __init__(self, path: str | Path, fps: float, crf: int = 23):
        self.path, self.fps, self.crf = str(path), fps, crf
        self._container = None
        self._stream = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        if self._stream is None:
            self._open(rgb.shape[1], rgb.shape[0])
        height, width = self._stream.height, self._stream.width
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:height, :width]),
                                           format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def _open(self, width: int, height: int) -> None:
        import av  # FFmpeg takes a tenth of a second to load: only when filming

        self._av = av
        self._container = av.open(self.path, mode="w",
                                  options={"movflags": "+faststart"})  # plays while loading
        stream = self._stream = self._container.add_stream(
            "libx264", rate=Fraction(self.fps).limit_denominator(1000))
        stream.width, stream.height = width - width % 2, height - height % 2  # 4:2:0 needs even
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": "veryfast"}

    def close(self) -> None:
        if self._container is None:
            return
        for packet in self._stream.encode():  # what the encoder still holds
            self._container.mux(packet)
        self._container.close()
        self._container = self._stream = None
