"""Physical calibration targets: a ChArUco board to print, and an ArUco marker mounted on the tool.

Both are data first: the simulator renders exactly these, the agent detects exactly these, and a
user prints the board with `erarm calibrate board`.
"""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

_DICTIONARIES = {name: getattr(cv2.aruco, name) for name in
                 ("DICT_4X4_50", "DICT_5X5_100", "DICT_6X6_250", "DICT_APRILTAG_36h11")}


def dictionary(name: str) -> cv2.aruco.Dictionary:
    if name not in _DICTIONARIES:
        raise ValueError(f"unknown ArUco dictionary {name!r} (known: {', '.join(_DICTIONARIES)})")
    return cv2.aruco.getPredefinedDictionary(_DICTIONARIES[name])


class BoardSpec(BaseModel):
    """A ChArUco board. Its frame: origin at the first outer corner of the printed image (top
    left), x along the columns, y down the rows, z into the board (OpenCV's convention)."""

    model_config = ConfigDict(frozen=True, ignored_types=(cached_property,))

    squares_x: int = 9
    squares_y: int = 6
    square_m: float = 0.04
    marker_m: float = 0.028
    dictionary: str = "DICT_5X5_100"

    @property
    def size_m(self) -> tuple[float, float]:
        return self.squares_x * self.square_m, self.squares_y * self.square_m

    @cached_property
    def board(self) -> cv2.aruco.CharucoBoard:
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_m,
                                      self.marker_m, dictionary(self.dictionary))

    def on_table(self, x: float, y: float, yaw: float, table_z: float = 0.0) -> np.ndarray:
        """4x4 pose of the board's frame when it lies print-up on the table with its centre at
        (x, y) metres and its columns turned `yaw` radians from the base x axis."""
        c, s = np.cos(yaw), np.sin(yaw)
        rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([1, -1, -1])
        width, height = self.size_m
        pose = np.eye(4)
        pose[:3, :3] = rotation
        pose[:3, 3] = np.array([x, y, table_z]) - rotation @ np.array([width / 2, height / 2, 0])
        return pose

    def image(self, pixels_per_square: int = 100, blur: float = 0.0) -> np.ndarray:
        """The board as a grey image with no margin; `blur` (sigma in pixels) pre-filters it
        the way optics would, for renderers that point-sample their textures."""
        size = (self.squares_x * pixels_per_square, self.squares_y * pixels_per_square)
        picture = self.board.generateImage(size, marginSize=0, borderBits=1)
        return cv2.GaussianBlur(picture, (0, 0), blur) if blur else picture


class MarkerSpec(BaseModel):
    """A square ArUco marker on the tool, facing the tool's +x side. `offset_m` is the marker's
    centre in the tool frame (x, y, z; the tool frame's z points out of the flange). Its frame
    follows OpenCV: x to the marker's right, y down its image, z into it."""

    model_config = ConfigDict(frozen=True)

    marker_id: int = 7
    size_m: float = 0.05
    dictionary: str = "DICT_5X5_100"
    offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def corners_m(self) -> np.ndarray:
        """The four corners in the marker's own frame, in ArUco's detection order."""
        half = self.size_m / 2
        return np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]],
                        dtype=np.float64)

    def image(self, pixels: int = 210, blur: float = 0.0) -> np.ndarray:
        picture = cv2.aruco.generateImageMarker(dictionary(self.dictionary), self.marker_id,
                                                pixels)
        return cv2.GaussianBlur(picture, (0, 0), blur) if blur else picture
