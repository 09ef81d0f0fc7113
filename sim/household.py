"""Household objects: the things people put on a table, with the names they call them by, their
sizes, whether they hold other things, and a body the physics engine grasps through contact.

Shapes come from meshes where a package ships one (robosuite's scanned-style food and drink
models, PyBullet's own mug, duck and teddy bear: sources and licences in
`sim/assets/household/SOURCES.md`) and from simple solids otherwise (fruit, boxes, and the
containers, which are compounds of boxes so the engine sees them truly hollow). A mesh's collision
shape is its convex hull, as PyBullet makes it for a moving body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

import numpy as np
import pybullet as pb
import pybullet_data

from erarm.sim.shapes import FRICTION, compound, round_container_parts

ASSETS = Path(__file__).parent / "assets" / "household"
WALL_M = 0.006  # a container's wall and floor
DENSITY_KG_M3 = 400.0  # light, like packaging and fruit; a container is lighter per volume
MAX_GRASP_WIDTH_M = 0.075  # the jaws open to 81 mm: wider than this across is not taken


class Build(StrEnum):
    box = "box"
    cylinder = "cylinder"
    sphere = "sphere"
    rod = "rod"  # a capsule lying on the table: a banana, a marker
    mesh = "mesh"
    dish = "dish"  # round and hollow: a pan, a plate
    crate = "crate"  # rectangular and hollow: a basket, a tray, a bin


# a ball rolls a little; a banana's curve and a marker's clip rock, they do not roll away
ROLLING_FRICTION = {Build.sphere: 0.003, Build.rod: 0.05}


class Holds(StrEnum):
    nothing = "nothing"
    inside = "inside"  # things go in it
    on = "on"  # things go on it (a plate, a tray)


@dataclass(frozen=True)
class Mesh:
    file: str  # in sim/assets/household, or in pybullet_data with a "pybullet_data/" prefix
    up: str = "z"  # the mesh's up axis: "y" meshes are turned to stand on the table
    source: str = ""


@dataclass(frozen=True)
class HouseholdKind:
    """One kind of object: its name (the label the camera's model would give it), the words
    people use for it, what it is, its size and colour, and how it is built."""

    name: str
    words: tuple[str, ...]  # what a person may call it, most specific first
    category: str  # for groups: "fruit", "drink", "toy" ...
    size_mm: tuple[float, float, float]  # length, width (the narrow side), height
    rgb: tuple[float, float, float]
    build: Build
    holds: Holds = Holds.nothing
    mesh: Mesh | None = None

    @property
    def radius_m(self) -> float:
        """How much table it needs: the circle around its footprint."""
        length, width, _ = self.size_mm
        return math.hypot(length, width) / 2000 \
            if self.build in (Build.box, Build.crate, Build.rod, Build.mesh) else length / 2000

    @property
    def height_m(self) -> float:
        return self.size_mm[2] / 1000

    @property
    def graspable(self) -> str | None:
        """Why the gripper cannot take it, or None when it can (from above, across its narrow
        side)."""
        if self.holds is not Holds.nothing:
            return f"a {self.name} is a container: things go {self.holds.value} it"
        if self.size_mm[1] / 1000 > MAX_GRASP_WIDTH_M:
            return (f"a {self.name} is {self.size_mm[1]:.0f} mm across its narrow side, wider "
                    f"than the gripper takes ({MAX_GRASP_WIDTH_M * 1000:.0f} mm)")
        return None


def _kind(name: str, words: tuple[str, ...], category: str, size: tuple[float, float, float],
          rgb: tuple[float, float, float], build: Build, **extra) -> HouseholdKind:
    return HouseholdKind(name=name, words=(*words, name), category=category, size_mm=size,
                         rgb=rgb, build=build, **extra)


ROBOSUITE = "robosuite 1.5.2 (MIT)"
PYBULLET = "pybullet_data (zlib, Erwin Coumans)"

KINDS: dict[str, HouseholdKind] = {k.name: k for k in (
    # drinks and condiments
    _kind("ketchup bottle", ("ketchup", "tomato sauce", "sauce bottle"), "condiment",
          (52, 50, 125), (0.78, 0.08, 0.06), Build.mesh, mesh=Mesh("bottle.obj", source=ROBOSUITE)),
    _kind("mustard bottle", ("mustard",), "condiment", (50, 48, 120), (0.93, 0.78, 0.10),
          Build.mesh, mesh=Mesh("bottle.obj", source=ROBOSUITE)),
    _kind("water bottle", ("water", "bottle of water"), "drink", (56, 54, 140),
          (0.55, 0.75, 0.95), Build.mesh, mesh=Mesh("bottle.obj", source=ROBOSUITE)),
    _kind("soda can", ("soda", "coke", "can of soda", "drink can"), "drink",
          (54, 54, 90), (0.9, 0.9, 0.9), Build.mesh, mesh=Mesh("can.obj", source=ROBOSUITE)),
    _kind("milk carton", ("milk", "carton of milk"), "drink", (46, 46, 110), (0.96, 0.96, 0.94),
          Build.mesh, mesh=Mesh("milk.obj", source=ROBOSUITE)),
    _kind("juice box", ("juice", "box of juice"), "drink", (45, 30, 75), (1.0, 0.55, 0.10),
          Build.box),
    # food
    _kind("cereal box", ("cereal", "box of cereal"), "food", (95, 35, 130), (0.9, 0.9, 0.9),
          Build.mesh, mesh=Mesh("cereal.obj", source=ROBOSUITE)),
    _kind("bread roll", ("bread", "roll", "bun"), "food", (70, 50, 42), (0.9, 0.9, 0.9),
          Build.mesh, mesh=Mesh("bread.obj", source=ROBOSUITE)),
    _kind("soup can", ("soup", "tin of soup", "tin"), "food", (56, 56, 70), (0.85, 0.25, 0.15),
          Build.cylinder),
    # fruit
    _kind("lemon", ("lemon",), "fruit", (60, 48, 48), (0.9, 0.9, 0.9), Build.mesh,
          mesh=Mesh("lemon.obj", source=ROBOSUITE)),
    _kind("apple", ("apple", "red apple"), "fruit", (64, 64, 64), (0.80, 0.10, 0.12),
          Build.sphere),
    _kind("orange", ("orange", "tangerine"), "fruit", (66, 66, 66), (1.0, 0.50, 0.05),
          Build.sphere),
    _kind("lime", ("lime",), "fruit", (46, 46, 46), (0.35, 0.75, 0.15), Build.sphere),
    _kind("banana", ("banana",), "fruit", (150, 34, 34), (0.98, 0.85, 0.25), Build.rod),
    # toys and things around the house
    _kind("rubber duck", ("duck", "duckie", "toy duck"), "toy", (72, 62, 60),
          (1.0, 0.85, 0.15), Build.mesh, mesh=Mesh("pybullet_data/duck_vhacd.obj", up="y",
                                                   source=PYBULLET)),
    _kind("teddy bear", ("teddy", "bear", "stuffed animal", "plush toy"), "toy", (70, 60, 75),
          (0.60, 0.40, 0.22), Build.mesh, mesh=Mesh("pybullet_data/teddy2_VHACD_CHs.obj",
                                                    up="y", source=PYBULLET)),
    _kind("tennis ball", ("ball", "tennis ball"), "toy", (62, 62, 62), (0.80, 0.92, 0.20),
          Build.sphere),
    _kind("wooden block", ("jenga block", "wooden brick", "plank"), "toy", (75, 25, 15),
          (0.82, 0.65, 0.42), Build.box),
    _kind("sponge", ("sponge", "dish sponge"), "kitchen", (90, 60, 28), (0.95, 0.88, 0.20),
          Build.box),
    _kind("marker", ("marker", "pen", "felt pen"), "stationery", (130, 18, 18),
          (0.10, 0.10, 0.12), Build.rod),
    _kind("mug", ("mug", "coffee mug", "cup"), "kitchen", (88, 62, 72), (0.95, 0.95, 0.92),
          Build.mesh, mesh=Mesh("pybullet_data/objects/mug_col.obj", source=PYBULLET)),
    # containers
    _kind("basket", ("basket", "wicker basket"), "container", (210, 150, 70),
          (0.62, 0.42, 0.22), Build.crate, holds=Holds.inside),
    _kind("tray", ("tray", "serving tray"), "container", (190, 140, 20), (0.45, 0.47, 0.50),
          Build.crate, holds=Holds.on),
    _kind("storage bin", ("bin", "box", "storage box", "crate"), "container", (200, 150, 85),
          (0.15, 0.45, 0.80), Build.crate, holds=Holds.inside),
    _kind("plate", ("plate", "dinner plate", "dish"), "container", (160, 160, 16),
          (0.97, 0.97, 0.95), Build.dish, holds=Holds.on),
    _kind("frying pan", ("pan", "frying pan", "skillet"), "container", (150, 150, 38),
          (0.22, 0.22, 0.24), Build.dish, holds=Holds.inside),
)}


def holds_things(kind: str) -> bool:
    """Whether objects of this kind (a bowl's, or a household kind's) hold other things."""
    return kind == "bowl" or (kind in KINDS and KINDS[kind].holds is not Holds.nothing)


def kind_for(word: str) -> HouseholdKind | None:
    """The kind a name means ('ketchup', 'the tomato sauce', 'pan'), or None."""
    word = word.lower().strip()
    for kind in KINDS.values():
        if word in kind.words:
            return kind
    return None


@cache
def _mesh_file(mesh: Mesh) -> Path:
    if mesh.file.startswith("pybullet_data/"):
        return Path(pybullet_data.getDataPath()) / mesh.file.removeprefix("pybullet_data/")
    return ASSETS / mesh.file


@cache
def _mesh_bounds(path: Path) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.array([[float(v) for v in line.split()[1:4]]
                         for line in path.read_text().splitlines() if line.startswith("v ")])
    return vertices.min(axis=0), vertices.max(axis=0)


def _mesh_shapes(client: int, kind: HouseholdKind) -> tuple[int, int]:
    """A mesh scaled to the kind's size, its base centred on the body's origin and standing up."""
    assert kind.mesh is not None
    path = _mesh_file(kind.mesh)
    low, high = _mesh_bounds(path)
    turn = [0.0, 0.0, 0.0, 1.0]
    axes = (0, 1, 2)
    if kind.mesh.up == "y":  # turn +y up: a quarter turn about x
        turn = list(pb.getQuaternionFromEuler([math.pi / 2, 0, 0]))
        axes = (0, 2, 1)  # the mesh's x, z, y become the table's x, y, z
    extent = high - low
    length, width, height = (v / 1000 for v in kind.size_mm)
    # the longer of the mesh's two table axes takes the kind's length
    table = sorted(axes[:2], key=lambda a: -extent[a])
    scale = [1.0, 1.0, 1.0]
    scale[table[0]], scale[table[1]] = length / extent[table[0]], width / extent[table[1]]
    scale[axes[2]] = height / extent[axes[2]]
    centre = (low + high) / 2 * scale
    centre[axes[2]] = low[axes[2]] * scale[axes[2]]  # the base on the origin
    offset = np.array(pb.multiplyTransforms([0, 0, 0], turn, (-centre).tolist(),
                                            [0, 0, 0, 1])[0])
    shape = pb.createCollisionShape(pb.GEOM_MESH, fileName=str(path), meshScale=scale,
                                    collisionFramePosition=offset.tolist(),
                                    collisionFrameOrientation=turn, physicsClientId=client)
    visual = pb.createVisualShape(pb.GEOM_MESH, fileName=str(path), meshScale=scale,
                                  visualFramePosition=offset.tolist(),
                                  visualFrameOrientation=turn, rgbaColor=[*kind.rgb, 1.0],
                                  specularColor=[0.15] * 3, physicsClientId=client)
    return shape, visual


def _crate_parts(kind: HouseholdKind) -> list[tuple[list[float], list[float]]]:
    """A floor and four walls: (half extents, centre) per box, base on the origin."""
    length, width, height = (v / 1000 for v in kind.size_mm)
    wall = WALL_M
    return [([length / 2, width / 2, wall / 2], [0, 0, wall / 2]),
            ([wall / 2, width / 2, height / 2], [length / 2 - wall / 2, 0, height / 2]),
            ([wall / 2, width / 2, height / 2], [-length / 2 + wall / 2, 0, height / 2]),
            ([length / 2, wall / 2, height / 2], [0, width / 2 - wall / 2, height / 2]),
            ([length / 2, wall / 2, height / 2], [0, -width / 2 + wall / 2, height / 2])]


def _boxes(halves_and_centres: list[tuple[list[float], list[float]]]) -> dict[str, list]:
    count = len(halves_and_centres)
    return {"shapeTypes": [pb.GEOM_BOX] * count, "radii": [0.0] * count,
            "lengths": [0.0] * count, "halfExtents": [h for h, _ in halves_and_centres],
            "positions": [c for _, c in halves_and_centres],
            "orientations": [[0.0, 0.0, 0.0, 1.0]] * count}


def _shapes(client: int, kind: HouseholdKind) -> tuple[int, int, float]:
    """Collision and visual shapes, and the body's height above its base to spawn it at."""
    length, width, height = (v / 1000 for v in kind.size_mm)
    colour = {"rgbaColor": [*kind.rgb, 1.0], "specularColor": [0.1] * 3}
    if kind.build is Build.mesh:
        return (*_mesh_shapes(client, kind), 0.0)
    if kind.build is Build.crate:
        return (*compound(client, _boxes(_crate_parts(kind)), kind.rgb), 0.0)
    if kind.build is Build.dish:
        return (*compound(client, round_container_parts(length / 2, length / 2 * 0.72,
                                                         height, WALL_M), kind.rgb), 0.0)
    if kind.build is Build.box:
        half = [length / 2, width / 2, height / 2]
        return (pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=client),
                pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=client,
                                     **colour), height / 2)
    if kind.build is Build.cylinder:
        size = {"radius": length / 2, "height": height}
        return (pb.createCollisionShape(pb.GEOM_CYLINDER, physicsClientId=client, **size),
                pb.createVisualShape(pb.GEOM_CYLINDER, radius=length / 2, length=height,
                                     physicsClientId=client, **colour), height / 2)
    if kind.build is Build.sphere:
        return (pb.createCollisionShape(pb.GEOM_SPHERE, radius=height / 2,
                                        physicsClientId=client),
                pb.createVisualShape(pb.GEOM_SPHERE, radius=height / 2, physicsClientId=client,
                                     **colour), height / 2)
    lying = list(pb.getQuaternionFromEuler([0, math.pi / 2, 0]))  # a rod: along x
    rod = {"radius": width / 2, "physicsClientId": client}
    return (pb.createCollisionShape(pb.GEOM_CAPSULE, height=length - width,
                                    collisionFrameOrientation=lying, **rod),
            pb.createVisualShape(pb.GEOM_CAPSULE, length=length - width,
                                 visualFrameOrientation=lying, **rod, **colour), width / 2)


def spawn_household(client: int, kind_name: str, x: float, y: float, yaw: float,
                    z: float = 0.0) -> int:
    kind = KINDS[kind_name]
    shape, visual, lift = _shapes(client, kind)
    length, width, height = (v / 1000 for v in kind.size_mm)
    solid = length * width * height * (0.25 if kind.holds is not Holds.nothing else 0.6)
    body = pb.createMultiBody(DENSITY_KG_M3 * solid, shape, visual, [x, y, z + lift + 0.001],
                              pb.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=client)
    pb.changeDynamics(body, -1, lateralFriction=FRICTION, spinningFriction=0.002,
                      rollingFriction=ROLLING_FRICTION.get(kind.build, 0.0001), frictionAnchor=1,
                      physicsClientId=client)
    return body
