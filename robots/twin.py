"""A twin of a perceived scene: what the agent hands a simulator so a model's step-by-step calls
can be rehearsed before a real arm makes them.

Only what a real robot knows goes in: each located object (its label, where it was seen, its
measured footprint and height, the colour it was seen in) and the camera's calibration. The
simulator stands each one in as the model it has of that thing, or as a solid of its footprint
and height, with a camera where the real one is.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from erarm.robots.base import CameraCalibration


class TwinObject(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    label: str
    x_mm: float = Field(description="robot base frame")
    y_mm: float = Field(description="robot base frame")
    top_mm: float = Field(ge=0, description="its top, above the table")
    across_mm: float = Field(gt=0, description="its width on the table")
    rgb: tuple[int, int, int] = Field((128, 128, 128), description="as seen, 0-255")


class TwinScene(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    objects: list[TwinObject]
    calibration: CameraCalibration  # the real camera's: the twin's camera sits where it does
