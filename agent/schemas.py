"""Typed forms of what brains say, in the Gemini Robotics-ER formats.

Image coordinates are normalized to 0-1000 and ordered [y, x] as the model gives them; robot
coordinates the model sees are millimetres in the robot base frame.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictFloat


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


# Strict: a bool or a string where a number belongs is an error, never a silent conversion.
Normalized = Annotated[StrictFloat, AfterValidator(_finite), Field(ge=0, le=1000)]
Millimetres = Annotated[StrictFloat, AfterValidator(_finite)]


class Point(BaseModel):
    """`{"point": [y, x], "label": ...}`"""

    model_config = ConfigDict(extra="ignore")

    point: tuple[Normalized, Normalized]
    label: str

    @property
    def y(self) -> float:
        return self.point[0]

    @property
    def x(self) -> float:
        return self.point[1]


class Box(BaseModel):
    """`{"box_2d": [ymin, xmin, ymax, xmax], "label": ...}`"""

    model_config = ConfigDict(extra="ignore")

    box_2d: tuple[Normalized, Normalized, Normalized, Normalized]
    label: str

    def contains(self, point: Point) -> bool:
        ymin, xmin, ymax, xmax = self.box_2d
        return ymin <= point.y <= ymax and xmin <= point.x <= xmax


class Move(BaseModel):
    """move(x, y, high): x, y in millimetres in the robot base frame; high = travel height."""

    function: Literal["move"] = "move"
    x: Millimetres
    y: Millimetres
    high: StrictBool

    def call(self) -> dict:
        return {"function": "move", "args": [self.x, self.y, self.high]}


class SetGripperState(BaseModel):
    """setGripperState(opened)"""

    function: Literal["setGripperState"] = "setGripperState"
    opened: StrictBool

    def call(self) -> dict:
        return {"function": "setGripperState", "args": [self.opened]}


class ReturnToOrigin(BaseModel):
    """returnToOrigin()"""

    function: Literal["returnToOrigin"] = "returnToOrigin"

    def call(self) -> dict:
        return {"function": "returnToOrigin", "args": []}


Call = Move | SetGripperState | ReturnToOrigin

# Positional parameter names of each function in the robot API, in order.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "move": ("x", "y", "high"),
    "setGripperState": ("opened",),
    "returnToOrigin": (),
}
CALL_TYPES: dict[str, type[BaseModel]] = {
    "move": Move, "setGripperState": SetGripperState, "returnToOrigin": ReturnToOrigin}


class Plan(BaseModel):
    reasoning: str = ""
    calls: list[Call]

    def as_json(self) -> list[dict]:
        return [call.call() for call in self.calls]


class SceneObject(BaseModel):
    """One perceived object: where the brain saw it and where it is for the robot."""

    label: str
    point: tuple[float, float]  # normalized [y, x]
    box_2d: tuple[float, float, float, float] | None = None  # normalized [ymin, xmin, ymax, xmax]
    position_mm: tuple[float, float, float]  # robot base frame

    def summary(self) -> dict:
        return {"label": self.label, "point": list(self.point),
                "box_2d": list(self.box_2d) if self.box_2d else None,
                "position_mm": [round(v, 1) for v in self.position_mm]}
