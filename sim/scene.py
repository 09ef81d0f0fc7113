"""What is on the table: an explicit layout (`--scene FILE`), or one a task family stages from a
seed (see `sim.tasks`). Either way the agent still has to find everything in the camera image."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from robots.errors import ConfigError
from sim.objects import COLOURS, footprint

Kind = Literal["block", "bowl"]

# Where staged objects may go: in view of the camera and comfortably within the arm's reach.
LAYOUT_X_M = (0.30, 0.58)
LAYOUT_Y_M = (-0.24, 0.24)
CLEARANCE_M = 0.025  # free gap kept between any two objects


class SceneObject(BaseModel):
    kind: Kind
    colour: str
    x: float = Field(description="metres in the robot base frame")
    y: float = Field(description="metres in the robot base frame")
    yaw_deg: float = 0.0
    size: float = Field(1.0, ge=0.7, le=1.3, description="scale of the standard object")

    @field_validator("colour")
    @classmethod
    def _known_colour(cls, colour: str) -> str:
        if colour not in COLOURS:
            raise ValueError(f"unknown colour {colour!r} (known: {', '.join(COLOURS)})")
        return colour

    @property
    def label(self) -> str:
        return f"{self.colour} {self.kind}"


class RenderConditions(BaseModel):
    """How a scene looks: the light, and how far the camera sits from its nominal pose."""

    light_direction: tuple[float, float, float] = (0.4, 0.3, 1.0)
    ambient: float = 0.55
    diffuse: float = 0.5
    camera_offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    camera_rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def random(cls, rng: random.Random) -> RenderConditions:
        """A harder look: light from elsewhere, dimmer or brighter, the camera a little off."""
        return cls(light_direction=(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.5, 1.5)),
                   ambient=rng.uniform(0.4, 0.7), diffuse=rng.uniform(0.35, 0.65),
                   camera_offset_m=tuple(rng.uniform(-0.006, 0.006) for _ in range(3)),
                   camera_rotation_deg=tuple(rng.uniform(-0.6, 0.6) for _ in range(3)))


class SceneSpec(BaseModel):
    objects: list[SceneObject]
    render: RenderConditions | None = None  # None: the standard light and camera


def load_scene(path: Path) -> SceneSpec:
    """Read a scene file: {"objects": [{"kind": "block", "colour": "blue", "x": 0.4, "y": 0.1}]}."""
    try:
        scene = SceneSpec.model_validate(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise ConfigError(f"scene file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"scene file {path} is not valid JSON: {err.msg} "
                          f"(line {err.lineno})") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"scene file {path}: {where}: {first['msg']}") from None
    check_layout(scene)
    return scene


def check_layout(scene: SceneSpec) -> None:
    for i, a in enumerate(scene.objects):
        for b in scene.objects[i + 1:]:
            gap = math.hypot(a.x - b.x, a.y - b.y)
            if gap < footprint(a.kind, a.size).radius_m + footprint(b.kind, b.size).radius_m:
                raise ConfigError(f"scene objects overlap: {a.label} at ({a.x}, {a.y}) and "
                                  f"{b.label} at ({b.x}, {b.y})")


Wanted = tuple[str, Kind, float]  # colour, kind, size


def place(wanted: list[Wanted], rng: random.Random) -> list[SceneObject]:
    """Rejection-sample a layout with everything in reach and nothing overlapping; start over when
    early picks leave no room for later ones."""
    for _ in range(100):
        layout = _try_place(wanted, rng)
        if layout is not None:
            return layout
    raise ConfigError(f"cannot fit {len(wanted)} objects on the table without overlaps")


def _try_place(wanted: list[Wanted], rng: random.Random) -> list[SceneObject] | None:
    # Big things first: they are the hardest to fit.
    order = sorted(range(len(wanted)), key=lambda i: -footprint(*wanted[i][1:]).radius_m)
    placed: dict[int, SceneObject] = {}
    for index in order:
        colour, kind, size = wanted[index]
        radius = footprint(kind, size).radius_m
        for _ in range(200):
            x = rng.uniform(LAYOUT_X_M[0] + radius * 0.5, LAYOUT_X_M[1] - radius * 0.5)
            y = rng.uniform(LAYOUT_Y_M[0] + radius * 0.5, LAYOUT_Y_M[1] - radius * 0.5)
            if all(math.hypot(x - o.x, y - o.y) >= radius + footprint(o.kind, o.size).radius_m
                   + CLEARANCE_M for o in placed.values()):
                placed[index] = SceneObject(kind=kind, colour=colour, x=round(x, 4),
                                            y=round(y, 4), yaw_deg=round(rng.uniform(-45, 45), 1),
                                            size=round(size, 3))
                break
        else:
            return None
    return [placed[i] for i in range(len(wanted))]
