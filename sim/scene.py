"""What is on the table: an explicit layout (`--scene FILE`), or one a task family stages from a
seed (see `erarm.sim.tasks`). Either way the agent still has to find everything in the camera
image."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from erarm.robots.base import WorkspaceLimits
from erarm.robots.errors import ConfigError
from erarm.robots.files import read_input_text
from erarm.sim.household import KINDS, holds_things
from erarm.sim.objects import COLOURS, footprint

# Where staged objects may go: in view of the camera and comfortably within the arm's reach.
LAYOUT_X_M = (0.30, 0.58)
LAYOUT_Y_M = (-0.24, 0.24)
CLEARANCE_M = 0.025  # free gap kept between any two objects
MAX_SCENE_BYTES = 1024 * 1024


def _known_colour(colour: str) -> str:
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r} (known: {', '.join(COLOURS)})")
    return colour


Colour = Annotated[str, AfterValidator(_known_colour)]


def _known_kind(kind: str) -> str:
    if kind not in ("block", "bowl", *KINDS):
        raise ValueError(f"unknown kind {kind!r} (known: block, bowl, {', '.join(KINDS)})")
    return kind


Kind = Annotated[str, AfterValidator(_known_kind)]


def _coloured(obj: BaseModel) -> BaseModel:
    """A block or bowl needs a colour; a household object comes in its own."""
    if obj.kind in KINDS:
        if obj.colour is not None:
            raise ValueError(f"a {obj.kind} comes in its own colour: leave colour out")
        if obj.size != 1.0:
            raise ValueError(f"a {obj.kind} comes in its own size: leave size out")
    elif obj.colour is None:
        raise ValueError(f"a {obj.kind} needs a colour (known: {', '.join(COLOURS)})")
    return obj


class SceneObject(BaseModel):
    kind: Kind
    colour: Colour | None = None  # a block's or bowl's; a household object has its own
    x: float = Field(description="metres in the robot base frame")
    y: float = Field(description="metres in the robot base frame")
    yaw_deg: float = 0.0
    size: float = Field(1.0, ge=0.7, le=1.3, description="scale of the standard object")
    z: float = Field(0.0, ge=0.0, description="metres above the table its base starts at (a "
                                              "twin's object seen resting on another)")

    _check_colour = model_validator(mode="after")(_coloured)

    @property
    def label(self) -> str:
        return self.kind if self.colour is None else f"{self.colour} {self.kind}"


class Solid(BaseModel):
    """A stand-in for a thing the simulator has no model of: a box of its measured footprint and
    height, in the colour it was seen in (a twin of a perceived scene)."""

    label: str
    x: float = Field(description="metres in the robot base frame")
    y: float = Field(description="metres in the robot base frame")
    z: float = Field(0.0, ge=0.0, description="metres above the table its base starts at")
    across: float = Field(gt=0, description="metres, its width on the table")
    height: float = Field(gt=0, description="metres")
    rgb: tuple[float, float, float] = (0.5, 0.5, 0.5)  # 0..1


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
    solids: list[Solid] = []  # stand-ins the referee and the emulator do not know
    render: RenderConditions | None = None  # None: the standard light and camera


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SceneFileObject(_FileModel):
    """One object as a scene file gives it: millimetres and degrees, like every other input."""

    kind: Kind
    colour: Colour | None = None
    x_mm: float = Field(description="millimetres in the robot base frame")
    y_mm: float = Field(description="millimetres in the robot base frame")
    yaw_deg: float = 0.0
    size: float = Field(1.0, ge=0.7, le=1.3, description="scale of the standard object")
    z_mm: float | None = Field(None, ge=0, le=100, description="millimetres above the table "
                                                               "its base starts at: in a container")

    _check_colour = model_validator(mode="after")(_coloured)


class SceneFileRender(_FileModel):
    light_direction: tuple[float, float, float] = (0.4, 0.3, 1.0)
    ambient: float = Field(0.55, ge=0, le=1)
    diffuse: float = Field(0.5, ge=0, le=1)
    camera_offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    camera_rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)


class SceneFile(_FileModel):
    """A scene file (`--scene`, and a run folder's scene.json):
    {"objects": [{"kind": "block", "colour": "blue", "x_mm": 400, "y_mm": 100, "yaw_deg": 20}]}."""

    objects: list[SceneFileObject]
    render: SceneFileRender | None = None


def scene_document(scene: SceneSpec) -> dict:
    """A layout as a scene file's JSON document, which `load_scene` reads back unchanged."""
    render = scene.render
    return SceneFile(
        objects=[SceneFileObject(kind=o.kind, colour=o.colour, x_mm=round(o.x * 1000, 3),
                                 y_mm=round(o.y * 1000, 3), yaw_deg=o.yaw_deg, size=o.size,
                                 z_mm=round(o.z * 1000, 3) if o.z else None)
                 for o in scene.objects],
        render=None if render is None else SceneFileRender(
            light_direction=render.light_direction, ambient=render.ambient,
            diffuse=render.diffuse,
            camera_offset_mm=tuple(v * 1000 for v in render.camera_offset_m),
            camera_rotation_deg=render.camera_rotation_deg),
    ).model_dump(exclude_none=True)


def _in_metres(data: object) -> int | None:
    """The index of the first object given the old way (x, y in metres), if any."""
    objects = data.get("objects") if isinstance(data, dict) else None
    for index, obj in enumerate(objects if isinstance(objects, list) else []):
        if isinstance(obj, dict) and ({"x", "y"} & obj.keys()):
            return index
    return None


def load_scene(path: Path) -> SceneSpec:
    """Read a scene file (see `SceneFile`), and check every object lies on the table, in the
    camera's view and in the arm's reach."""
    text = read_input_text(path, "scene file", MAX_SCENE_BYTES)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"scene file {path} is not valid JSON: {err.msg} "
                          f"(line {err.lineno})") from None
    except RecursionError:
        raise ConfigError(f"scene file {path} is nested too deeply") from None
    old = _in_metres(data)
    if old is not None:
        raise ConfigError(f"scene file {path}: objects.{old} gives x, y (metres); scene files "
                          "give x_mm, y_mm in millimetres: multiply by 1000 and rename "
                          '("x": 0.4 becomes "x_mm": 400)')
    try:
        document = SceneFile.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"scene file {path}: {where}: {first['msg']}") from None
    render = document.render
    scene = SceneSpec(
        objects=[SceneObject(kind=o.kind, colour=o.colour, x=o.x_mm / 1000, y=o.y_mm / 1000,
                             yaw_deg=o.yaw_deg, size=o.size, z=(o.z_mm or 0.0) / 1000)
                 for o in document.objects],
        render=None if render is None else RenderConditions(
            light_direction=render.light_direction, ambient=render.ambient,
            diffuse=render.diffuse,
            camera_offset_m=tuple(v / 1000 for v in render.camera_offset_mm),
            camera_rotation_deg=render.camera_rotation_deg))
    for index, obj in enumerate(scene.objects):
        problem = placement_problem(obj, scene.render or RenderConditions())
        if problem:
            raise ConfigError(f"scene file {path}: objects.{index} ({obj.label} at "
                              f"{obj.x * 1000:.0f}, {obj.y * 1000:.0f} mm) {problem}")
    for index, obj in enumerate(scene.objects):
        if obj.z > 0 and not any(_stands_in(obj, other) for other in scene.objects):
            raise ConfigError(f"scene file {path}: objects.{index} ({obj.label}) starts "
                              f"{obj.z * 1000:.0f} mm above the table in no container: z_mm is "
                              "for an object standing in one (its x_mm, y_mm inside it)")
    check_layout(scene)
    return scene


def placement_problem(obj: SceneObject, look: RenderConditions) -> str | None:
    """Why an object cannot stand where it is: off the table, outside the arm's workspace or
    reach, or out of the camera's view; None when it can."""
    from erarm.sim.camera import CameraSetup, calibration
    from erarm.sim.world import TABLE_CENTRE_M, TABLE_HALF_EXTENTS_M

    radius = footprint(obj.kind, obj.size).radius_m
    for axis, value in (("x", obj.x), ("y", obj.y)):
        centre, half = TABLE_CENTRE_M["xy".index(axis)], TABLE_HALF_EXTENTS_M["xy".index(axis)]
        if abs(value - centre) + radius > half:
            return (f"is off the table ({axis} {(centre - half) * 1000:.0f}.."
                    f"{(centre + half) * 1000:.0f} mm)")
    problem = WorkspaceLimits().check_spot(obj.x, obj.y)
    if problem:
        return f"is {problem.message}"  # outside the workspace (...) or beyond the arm's reach
    camera = calibration(CameraSetup(offset_m=look.camera_offset_m,
                                     rotation_deg=look.camera_rotation_deg))
    world_to_camera = np.linalg.inv(camera.pose())
    for dx, dy in ((radius, 0), (-radius, 0), (0, radius), (0, -radius)):
        x, y, z = world_to_camera[:3, :3] @ (obj.x + dx, obj.y + dy, 0.0) + world_to_camera[:3, 3]
        u, v = camera.fx * x / z + camera.cx, camera.fy * y / z + camera.cy
        if z <= 0 or not (0 <= u < camera.width and 0 <= v < camera.height):
            return "is outside the camera's view"
    return None


def _stands_in(inner: SceneObject, outer: SceneObject) -> bool:
    """Whether `inner` is raised off the table within `outer`'s footprint, `outer` a container
    (an object staged in a basket)."""
    offset = math.hypot(inner.x - outer.x, inner.y - outer.y)
    return holds_things(outer.kind) and inner.z > 0 and offset + \
        footprint(inner.kind, inner.size).radius_m <= footprint(outer.kind, outer.size).radius_m


def check_layout(scene: SceneSpec) -> None:
    for i, a in enumerate(scene.objects):
        for b in scene.objects[i + 1:]:
            if _stands_in(a, b) or _stands_in(b, a):
                continue
            gap = math.hypot(a.x - b.x, a.y - b.y)
            if gap < footprint(a.kind, a.size).radius_m + footprint(b.kind, b.size).radius_m:
                raise ConfigError(f"scene objects overlap: {a.label} at ({a.x * 1000:.0f}, "
                                  f"{a.y * 1000:.0f}) mm and {b.label} at ({b.x * 1000:.0f}, "
                                  f"{b.y * 1000:.0f}) mm")


Wanted = tuple[str | None, str, float]  # colour (None: a household kind's own), kind, size


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
