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
PAPER_MM = {"a3": (420.0, 297.0), "a4": (297.0, 210.0), "a5": (210.0, 148.0),  # landscape
            "letter": (279.4, 215.9), "legal": (355.6, 215.9), "tabloid": (431.8, 279.4)}
PAPER_MARGIN_MM = 12.0  # what printers leave unprinted, with room for the caption
MARKER_SHARE = 0.7  # marker side over square side, as on the default board (28 of 40 mm)


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

    def describe(self) -> str:
        """The board's geometry as `--board` takes it: COLSxROWS:SQUARE_MM:MARKER_MM:DICT."""
        return (f"{self.squares_x}x{self.squares_y}:{self.square_m * 1000:g}:"
                f"{self.marker_m * 1000:g}:{self.dictionary}")

    @classmethod
    def parse(cls, text: str) -> BoardSpec:
        """A board from `COLSxROWS:SQUARE_MM[:MARKER_MM[:DICTIONARY]]`, e.g. `9x6:30` (the
        marker then 0.7 of the square); ValueError says what is wrong."""
        parts = text.strip().split(":")
        try:
            columns, rows = (int(v) for v in parts[0].lower().split("x"))
            square_mm = float(parts[1])
            marker_mm = float(parts[2]) if len(parts) > 2 else MARKER_SHARE * square_mm
        except (ValueError, IndexError):
            raise ValueError(f"a board is COLSxROWS:SQUARE_MM[:MARKER_MM[:DICTIONARY]] like "
                             f"9x6:30, got {text!r}") from None
        name = parts[3] if len(parts) > 3 else cls.model_fields["dictionary"].default
        if len(parts) > 4 or not (3 <= columns <= 40 and 3 <= rows <= 40):
            raise ValueError(f"a board has 3 to 40 squares a side, got {text!r}")
        if not (1 <= square_mm <= 500 and 0 < marker_mm < square_mm):
            raise ValueError(f"board {text!r}: the square must be 1 to 500 mm and the marker "
                             "smaller than the square")
        dictionary(name)
        return cls(squares_x=columns, squares_y=rows, square_m=square_mm / 1000,
                   marker_m=marker_mm / 1000, dictionary=name)

    def on_paper(self, paper: str, square_mm: float | None = None) -> BoardSpec:
        """This board's layout at `square_mm` (default: the largest whole millimetre that fits),
        laid landscape on a sheet of `paper` inside its margins; ValueError if it does not fit."""
        if paper not in PAPER_MM:
            raise ValueError(f"unknown paper {paper!r} (known: {', '.join(PAPER_MM)})")
        width, height = (side - 2 * PAPER_MARGIN_MM for side in PAPER_MM[paper])
        largest = min(width / self.squares_x, height / self.squares_y)
        square = float(int(largest)) if square_mm is None else square_mm
        if square > largest or square <= 0:
            raise ValueError(f"{self.squares_x} x {self.squares_y} squares of {square:g} mm "
                             f"({self.squares_x * square:g} x {self.squares_y * square:g} mm) do "
                             f"not fit {paper.upper()} ({width:g} x {height:g} mm inside its "
                             f"margins): use --square-mm {int(largest)} or less, or a larger "
                             "--paper")
        return self.model_copy(update={"square_m": square / 1000,
                                       "marker_m": round(MARKER_SHARE * square, 1) / 1000})

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

    def page(self, paper: str, dpi: int) -> np.ndarray:
        """A printable grey sheet of `paper` at `dpi`: the board centred at its true size, and
        a caption saying how to print and what to pass to the commands that detect it."""
        dots_per_mm = dpi / 25.4
        page_w, page_h = (round(side * dots_per_mm) for side in PAPER_MM[paper])
        board_w, board_h = (round(side * 1000 * dots_per_mm) for side in self.size_m)
        sheet = np.full((page_h, page_w), 255, np.uint8)
        left, top = (page_w - board_w) // 2, (page_h - board_h) // 2
        sheet[top:top + board_h, left:left + board_w] = self.board.generateImage(
            (board_w, board_h), marginSize=0, borderBits=1)
        caption = (f"erarm ChArUco board --board {self.describe()}: print at 100% (no fit to "
                   f"page); one square must measure {self.square_m * 1000:g} mm")
        scale = dpi / 300 * 0.9
        (text_w, text_h), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        baseline = min(page_h - 2, top + board_h + (page_h - top - board_h + text_h) // 2)
        cv2.putText(sheet, caption, (max(0, (page_w - text_w) // 2), baseline),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, 0, max(1, round(dpi / 300)), cv2.LINE_AA)
        return sheet


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
