"""What is on the table: an explicit layout (`--scene FILE`) or one staged for a task from a seed.

Staging is a simulator convenience: every object the task names is placed, plus a few seeded
distractors of other colours. The agent still has to find everything in the camera image.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from robots.errors import ConfigError
from sim.objects import COLOURS, footprint
from sim.tasks import mentions

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

    @field_validator("colour")
    @classmethod
    def _known_colour(cls, colour: str) -> str:
        if colour not in COLOURS:
            raise ValueError(f"unknown colour {colour!r} (known: {', '.join(COLOURS)})")
        return colour

    @property
    def label(self) -> str:
        return f"{self.colour} {self.kind}"


class SceneSpec(BaseModel):
    objects: list[SceneObject]


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
            if gap < footprint(a.kind).radius_m + footprint(b.kind).radius_m:
                raise ConfigError(f"scene objects overlap: {a.label} at ({a.x}, {a.y}) and "
                                  f"{b.label} at ({b.x}, {b.y})")


def stage_scene(task: str, seed: int, distractors: tuple[int, int] = (2, 4)) -> SceneSpec:
    """Place what the task names (uncoloured mentions get a random colour) plus 2-4 distractors
    of other colours, without overlaps, reproducibly from `seed`."""
    rng = random.Random(seed)
    named = mentions(task)
    used = {colour for colour, _ in named if colour}
    wanted: list[tuple[str, Kind]] = []
    for colour, kind in named:
        if colour is None:
            colour = rng.choice(sorted(set(COLOURS) - used))
            used.add(colour)
        if (colour, kind) not in wanted:
            wanted.append((colour, kind))
    # A kind named without a colour ("the bowl") must stay unambiguous: no distractors of it.
    distractor_kinds = [k for k in ("block", "bowl") if (None, k) not in named]
    free_colours = sorted(set(COLOURS) - used)
    for _ in range(rng.randint(*distractors)):
        if not free_colours or not distractor_kinds:
            break
        colour = free_colours.pop(rng.randrange(len(free_colours)))
        wanted.append((colour, rng.choice(distractor_kinds)))
    return SceneSpec(objects=_place(wanted, rng))


def _place(wanted: list[tuple[str, Kind]], rng: random.Random) -> list[SceneObject]:
    """Rejection-sample a layout; start over when early picks leave no room for later ones."""
    for _ in range(100):
        layout = _try_place(wanted, rng)
        if layout is not None:
            return layout
    raise ConfigError(f"cannot fit {len(wanted)} objects on the table without overlaps")


def _try_place(wanted: list[tuple[str, Kind]], rng: random.Random) -> list[SceneObject] | None:
    # Big things first: they are the hardest to fit.
    order = sorted(range(len(wanted)), key=lambda i: -footprint(wanted[i][1]).radius_m)
    placed: dict[int, SceneObject] = {}
    for index in order:
        colour, kind = wanted[index]
        radius = footprint(kind).radius_m
        for _ in range(200):
            x = rng.uniform(LAYOUT_X_M[0] + radius * 0.5, LAYOUT_X_M[1] - radius * 0.5)
            y = rng.uniform(LAYOUT_Y_M[0] + radius * 0.5, LAYOUT_Y_M[1] - radius * 0.5)
            if all(math.hypot(x - o.x, y - o.y) >= radius + footprint(o.kind).radius_m
                   + CLEARANCE_M for o in placed.values()):
                placed[index] = SceneObject(kind=kind, colour=colour, x=round(x, 4),
                                            y=round(y, 4), yaw_deg=round(rng.uniform(-45, 45), 1))
                break
        else:
            return None
    return [placed[i] for i in range(len(wanted))]
