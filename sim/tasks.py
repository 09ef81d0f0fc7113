"""Tasks as the simulator sees them: families of scenes, their instructions, and whether they are
done (ravens-style: the task owns its scene and its success check).

A family phrases an instruction (in several ways, in any of the simulator's colours), stages a
scene for it from a seed, and states its goal as ground-truth predicates: a block inside a bowl,
or a block resting on another. These read the simulator's state; they score runs, and the agent
never sees them. What a task says is read by the agent's task grammar (agent/instructions.py),
so the simulator and the local planner understand a task alike.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pybullet as pb
from pydantic import BaseModel

from erarm.agent.geometry import pixel_to_normalized
from erarm.agent.goals import Relation, TaskGoal, Viewpoint, check_goal
from erarm.agent.instructions import Goal as Asked
from erarm.agent.instructions import Instruction, ObjectRef, narrow, read_instruction
from erarm.agent.instructions import mentions as named_objects
from erarm.agent.schemas import SceneObject
from erarm.robots.base import CameraCalibration, GroundTruth
from erarm.sim.objects import (
    BLOCK_SIZE_M,
    BOWL_FLOOR_M,
    BOWL_HEIGHT_M,
    BOWL_RIM_RADIUS_M,
    COLOURS,
)
from erarm.sim.scene import Kind, RenderConditions, SceneSpec, Wanted, place

if TYPE_CHECKING:
    from erarm.sim.camera import CameraSetup
    from erarm.sim.world import World

ALL_COLOURS = list(COLOURS)
BIG_BOWL = 1.25  # room for three blocks side by side


def mentions(task: str) -> list[tuple[str | None, str]]:
    """(colour or None, kind) for every block/cube/bowl the task names, in order."""
    return [(ref.colour, ref.kind) for ref in named_objects(task)]


class Goal(BaseModel):
    """Scene object `item` must rest inside, or on, scene object `target`, or on the table in
    another relation to it ("left of" ..., as `viewpoint` sees it: erarm.agent.goals)."""

    relation: str
    item: int
    target: int
    viewpoint: Literal["camera", "robot"] = "camera"


@dataclass(frozen=True)
class Placed:
    """Where a scene object is, for picking one of several by 'left', 'nearest' ...: its image
    column in the camera's view, and its place on the table."""

    column_px: float
    xy_mm: tuple[float, float]


def _index(labels: list[str], ref: ObjectRef, placed: list[Placed] | None = None) -> int | None:
    """The scene object a reference means, or None when it is not uniquely in the scene."""
    hits = [i for i, label in enumerate(labels)
            if label.endswith(ref.kind) and (ref.colour is None or label == ref.name)]
    if placed is not None:
        hits = narrow(ref.which, hits, column=lambda i: placed[i].column_px,
                      table_xy_mm=lambda i: placed[i].xy_mm)
    return hits[0] if len(hits) == 1 else None


def _one_goal(relation: str, labels: list[str], item: ObjectRef,
              target: ObjectRef, placed: list[Placed] | None) -> list[Goal] | None:
    """One object inside or on another, or None when either is not uniquely in the scene."""
    found, where = _index(labels, item, placed), _index(labels, target, placed)
    if found is None or where is None or found == where:
        return None
    return [Goal(relation=relation, item=found, target=where)]


def _other_colours(rng: random.Random, used: set[str], count: int) -> list[str]:
    return rng.sample(sorted(set(ALL_COLOURS) - used), count)


def _distractors(rng: random.Random, used: set[str], low: int, high: int,
                 kinds: tuple[Kind, ...] = ("block", "bowl"), max_bowls: int = 2) -> list:
    """Objects of colours the task does not use: the agent must tell them apart."""
    wanted, bowls = [], 0
    pairs = [(c, k) for c in sorted(set(ALL_COLOURS) - used) for k in kinds]
    rng.shuffle(pairs)
    for colour, kind in pairs:
        if len(wanted) >= rng.randint(low, high):
            break
        if kind == "bowl":
            if bowls >= max_bowls:
                continue
            bowls += 1
        wanted.append((colour, kind))
    return wanted


class Family:
    """A kind of task: how it is said, what scene it needs, what done means."""

    name = ""
    asks: Asked

    def instruction(self, rng: random.Random) -> str:
        raise NotImplementedError

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        """The (colour, kind) pairs the scene needs, distractors included."""
        raise NotImplementedError

    def goals(self, task: str, labels: list[str],
              placed: list[Placed] | None = None) -> list[Goal] | None:
        """The ground-truth goals over the scene's objects (`labels`, and `placed` to resolve
        'the left ...' among several), or None when the scene cannot tell."""
        raise NotImplementedError

    def matches(self, task: str) -> bool:
        read = read_instruction(task)
        return read is not None and read.goal is self.asks


def _read(task: str) -> Instruction:
    read = read_instruction(task)
    assert read is not None, f"a family was chosen for a task it cannot read: {task!r}"
    return read


class PickIntoBowl(Family):
    name = "pick-into-bowl"
    asks = Asked.into
    phrasings = (
        "pick the {a} {blk} into the {b} bowl", "put the {a} {blk} in the {b} bowl",
        "place the {a} {blk} inside the {b} bowl", "move the {a} {blk} to the {b} bowl",
        "drop the {a} {blk} into the {b} bowl", "put the {a} {blk} inside the {b} bowl",
        "pick up the {a} {blk} and put it in the {b} bowl")

    def instruction(self, rng: random.Random) -> str:
        a, b = rng.sample(ALL_COLOURS, 2)
        return rng.choice(self.phrasings).format(a=a, b=b, blk=rng.choice(["block", "cube"]))

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        named = _named(task, rng)
        used = {c for c, _ in named}
        # a kind named without a colour ("the bowl") must stay unambiguous
        kinds = tuple(k for k in ("block", "bowl") if (None, k) not in mentions(task))
        return named + _distractors(rng, used, 2, 8, kinds)

    def goals(self, task: str, labels: list[str],
              placed: list[Placed] | None = None) -> list[Goal] | None:
        read = _read(task)
        return _one_goal("inside", labels, read.item, read.target, placed)


class PutAll(Family):
    name = "put-all"
    asks = Asked.put_all
    phrasings = ("put all the blocks into the {b} bowl", "place every cube in the {b} bowl",
                 "move all blocks inside the {b} bowl", "drop all the cubes into the {b} bowl")

    def instruction(self, rng: random.Random) -> str:
        return rng.choice(self.phrasings).format(b=rng.choice(ALL_COLOURS))

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        bowl = _read(task).target.colour or rng.choice(ALL_COLOURS)
        blocks = _other_colours(rng, {bowl}, rng.randint(2, 3))
        others = _distractors(rng, {bowl, *blocks}, 0, 1, kinds=("bowl",))
        return [(bowl, "bowl", BIG_BOWL), *[(c, "block") for c in blocks], *others]

    def goals(self, task: str, labels: list[str],
              placed: list[Placed] | None = None) -> list[Goal] | None:
        target = _index(labels, _read(task).target, placed)
        if target is None:
            return None
        return [Goal(relation="inside", item=i, target=target)
                for i, label in enumerate(labels) if label.endswith("block")]


class Sort(Family):
    name = "sort"
    asks = Asked.sort
    phrasings = ("sort the blocks into the bowls of matching colour",
                 "put each block in the bowl of the same colour",
                 "place every cube into the bowl that matches its colour")

    def instruction(self, rng: random.Random) -> str:
        return rng.choice(self.phrasings)

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        colours = rng.sample(ALL_COLOURS, rng.randint(2, 3))
        return [(c, kind) for c in colours for kind in ("block", "bowl")]

    def goals(self, task: str, labels: list[str],
              placed: list[Placed] | None = None) -> list[Goal] | None:
        goals = []
        for i, label in enumerate(labels):
            if label.endswith("block"):
                target = _index(labels, ObjectRef(colour=label.split()[0], kind="bowl"))
                if target is not None:
                    goals.append(Goal(relation="inside", item=i, target=target))
        return goals or None


class _TwoNamed(Family):
    """A task about two named objects of two colours, among one to three distractors."""

    phrasings: tuple[str, ...] = ()

    def instruction(self, rng: random.Random) -> str:
        a, b = rng.sample(ALL_COLOURS, 2)
        return rng.choice(self.phrasings).format(a=a, b=b)

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        named = _named(task, rng)
        return named + _distractors(rng, {c for c, _ in named}, 1, 3)


class StackTwo(_TwoNamed):
    name = "stack-two"
    asks = Asked.stack
    phrasings = ("stack the {a} block on the {b} block", "put the {a} cube on top of the {b} cube",
                 "place the {a} block onto the {b} block",
                 "move the {a} block on top of the {b} block")

    def goals(self, task: str, labels: list[str],
              placed: list[Placed] | None = None) -> list[Goal] | None:
        read = _read(task)
        return _one_goal("on", labels, read.item, read.target, placed)


class PlaceBeside(_TwoNamed):
    name = "place-beside"
    asks = Asked.place
    phrasings = (
        "move the {a} block to the left of the {b} bowl", "put the {a} block right of the {b} bowl",
        "place the {a} cube next to the {b} bowl", "put the {a} block on the table beside the "
        "{b} bowl", "set the {a} block down in front of the {b} bowl",
        "move the {a} block behind the {b} bowl", "put the {a} block to the right of the {b} "
        "block", "place the {a} cube to the left of the {b} block")

    def goals(self, task: str, labels: list[str],
              placed: list[Placed] | None = None) -> list[Goal] | None:
        read = _read(task)
        found = _one_goal(read.relation, labels, read.item, read.target, placed)
        return [g.model_copy(update={"viewpoint": "robot" if read.robot_view else "camera"})
                for g in found] if found else None


class TowerThree(Family):
    name = "tower-three"
    asks = Asked.tower
    phrasings = (
        "build a tower with the {a} block at the bottom, the {b} block in the middle and the "
        "{c} block on top", "stack the {a}, {b} and {c} blocks into a tower, bottom to top",
        "make a tower of the {a} cube, the {b} cube and the {c} cube, from the bottom up")

    @staticmethod
    def _colours(task: str) -> list[str]:
        """The tower's colours bottom to top: in the order the task says them."""
        return [ref.colour for ref in _read(task).tower]

    def instruction(self, rng: random.Random) -> str:
        a, b, c = rng.sample(ALL_COLOURS, 3)
        return rng.choice(self.phrasings).format(a=a, b=b, c=c)

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        colours = self._colours(task)
        return [(c, "block") for c in colours] + _distractors(rng, set(colours), 1, 3)

    def goals(self, task: str, labels: list[str],
              placed: list[Placed] | None = None) -> list[Goal] | None:
        stack = [_index(labels, ref, placed) for ref in _read(task).tower]
        if None in stack or len(set(stack)) < len(stack):
            return None
        return [Goal(relation="on", item=stack[1], target=stack[0]),
                Goal(relation="on", item=stack[2], target=stack[1])]


def _named(task: str, rng: random.Random) -> list[tuple[str, Kind]]:
    """What the task names; a kind named without a colour gets an unused one. An object picked
    out by a qualifier ("the left blue block") gets a twin, so there is one to tell it from."""
    named, used = [], {c for c, _ in mentions(task) if c}
    for ref in named_objects(task):
        colour = ref.colour
        if colour is None:
            colour = rng.choice(sorted(set(ALL_COLOURS) - used))
            used.add(colour)
        wanted = 2 if ref.which else 1
        while named.count((colour, ref.kind)) < wanted:
            named.append((colour, ref.kind))
    return named


# Most specific first: the first family that matches an instruction owns it.
FAMILIES: list[Family] = [TowerThree(), Sort(), PutAll(), StackTwo(), PlaceBeside(),
                          PickIntoBowl()]
FAMILY = {family.name: family for family in FAMILIES}


def family_for(task: str) -> Family | None:
    return next((f for f in FAMILIES if f.matches(task)), None)


@dataclass(frozen=True)
class Scenario:
    """A benchmark task: a family, the success rate it should reach, and how hard the renders."""

    name: str
    family: Family
    target: float
    hard: bool = False

    def episode(self, seed: int) -> tuple[str, SceneSpec]:
        rng = random.Random(f"{self.name}/{seed}")
        task = self.family.instruction(rng)
        return task, stage(task, seed, hard=self.hard, family=self.family)


SCENARIOS = {s.name: s for s in (
    Scenario("pick-into-bowl", FAMILY["pick-into-bowl"], 0.98),
    Scenario("put-all", FAMILY["put-all"], 0.95),
    Scenario("sort", FAMILY["sort"], 0.95),
    Scenario("stack-two", FAMILY["stack-two"], 0.95),
    Scenario("tower-three", FAMILY["tower-three"], 0.85),
    Scenario("place-beside", FAMILY["place-beside"], 0.95),
    Scenario("pick-into-bowl-hard", FAMILY["pick-into-bowl"], 0.95, hard=True),
)}


def stage(task: str, seed: int, hard: bool = False, family: Family | None = None) -> SceneSpec:
    """A scene for the task, reproducibly from the seed: what it names (or its family needs)
    plus distractors; `hard` varies object sizes, the light and the camera's exact pose."""
    rng = random.Random(seed)
    family = family or family_for(task)
    wanted = family.objects(task, rng) if family else _named(task, rng)
    sized: list[Wanted] = []
    for colour, kind, *size in wanted:  # a family may fix an object's size
        scale = size[0] if size else 1.0
        if hard:
            scale *= rng.uniform(0.8, 1.2) if kind == "block" else rng.uniform(0.9, 1.15)
        sized.append((colour, kind, min(scale, 1.3)))
    render = RenderConditions.random(rng) if hard else None
    return SceneSpec(objects=place(sized, rng), render=render)


# -- ground truth -----------------------------------------------------------------------------

def _pose(world: World, index: int) -> tuple[float, float, float]:
    position, _ = pb.getBasePositionAndOrientation(world.bodies[index],
                                                   physicsClientId=world.client)
    return position


def rests_inside(world: World, item: int, bowl: int) -> tuple[bool, str]:
    """The item's centre within the bowl's walls and below its rim, touching the bowl, and not
    held by the gripper."""
    (ix, iy, iz), (bx, by, bz) = _pose(world, item), _pose(world, bowl)
    size, scale = world.objects[item].size, world.objects[bowl].size
    label, bowl_label = world.labels[item], world.labels[bowl]
    offset = math.hypot(ix - bx, iy - by)
    if offset > BOWL_RIM_RADIUS_M * scale - BLOCK_SIZE_M * size / 2:
        return False, f"the {label} is {offset * 1000:.0f} mm from the {bowl_label}'s centre"
    if iz - bz > BOWL_HEIGHT_M * scale:
        return False, f"the {label} is above the {bowl_label}'s rim"
    if not pb.getContactPoints(world.bodies[item], world.bodies[bowl],
                               physicsClientId=world.client):
        return False, f"the {label} does not touch the {bowl_label}"
    if world.arm_touches(world.bodies[item]):
        return False, f"the gripper still holds the {label}"
    return True, f"the {label} rests inside the {bowl_label}"


def rests_on(world: World, top: int, bottom: int) -> tuple[bool, str]:
    """The top block centred over the bottom one (within half its size), one block higher,
    touching it, and not held by the gripper."""
    (tx, ty, tz), (bx, by, bz) = _pose(world, top), _pose(world, bottom)
    top_size = BLOCK_SIZE_M * world.objects[top].size
    bottom_size = BLOCK_SIZE_M * world.objects[bottom].size
    label, below = world.labels[top], world.labels[bottom]
    offset = math.hypot(tx - bx, ty - by)
    if offset > bottom_size / 2:
        return False, f"the {label} is {offset * 1000:.0f} mm off the {below}'s centre"
    rise = tz - bz
    if abs(rise - (top_size + bottom_size) / 2) > 0.25 * bottom_size:
        return False, f"the {label} is not on the {below} ({rise * 1000:.0f} mm above it)"
    if not pb.getContactPoints(world.bodies[top], world.bodies[bottom],
                               physicsClientId=world.client):
        return False, f"the {label} does not touch the {below}"
    if world.arm_touches(world.bodies[top]):
        return False, f"the gripper still holds the {label}"
    return True, f"the {label} rests on the {below}"


def seen_truly(world: World, index: int, calibration: CameraCalibration) -> SceneObject:
    """A scene object as perception would report it if it were perfect: a block's top-face
    centre, a bowl's floor, half its width, and where the true camera sees it."""
    x, y, z = _pose(world, index)
    spec = world.objects[index]
    if spec.kind == "bowl":
        top, radius = z + BOWL_FLOOR_M * spec.size, BOWL_RIM_RADIUS_M * spec.size
    else:
        top, radius = z + BLOCK_SIZE_M * spec.size / 2, BLOCK_SIZE_M * spec.size / 2
    u, v = calibration.project(np.array([[x, y, top]]))[0]
    return SceneObject(label=world.labels[index], position_mm=(x * 1000, y * 1000, top * 1000),
                       radius_mm=radius * 1000,
                       point=pixel_to_normalized(float(u), float(v), calibration.width,
                                                 calibration.height))


def rests_beside(world: World, goal: Goal, calibration: CameraCalibration) -> tuple[bool, str]:
    """The item at rest on the table, not held, in the goal's relation to the target (the
    agent's own geometry, on the truth)."""
    label = world.labels[goal.item]
    _, _, z = _pose(world, goal.item)
    if abs(z - BLOCK_SIZE_M * world.objects[goal.item].size / 2) > 0.01:
        return False, f"the {label} is not on the table"
    if world.arm_touches(world.bodies[goal.item]):
        return False, f"the gripper still holds the {label}"
    wanted = TaskGoal(relation=Relation(goal.relation), item=label,
                      target=world.labels[goal.target], viewpoint=Viewpoint(goal.viewpoint))
    check = check_goal(wanted, [seen_truly(world, goal.item, calibration),
                                seen_truly(world, goal.target, calibration)])
    return bool(check.holds), check.reason


PREDICATES = {"inside": rests_inside, "on": rests_on}


class SimReferee:
    """Judges a task from the simulator's ground truth."""

    def __init__(self, world: World, task: str, camera: CameraSetup):
        self._world = world
        self.task = task
        self._camera = camera
        self._family = family_for(task)
        self._goals = (self._family.goals(task, world.labels, self._placed())
                       if self._family else None)
        self._start = world.object_report()

    def _placed(self) -> list[Placed]:
        centres = [_pose(self._world, i) for i in range(len(self._world.labels))]
        if not centres:
            return []
        columns = self.true_calibration().project(np.array(centres))[:, 0]
        return [Placed(column_px=float(u), xy_mm=(x * 1000, y * 1000))
                for u, (x, y, _) in zip(columns, centres, strict=True)]

    def true_calibration(self) -> CameraCalibration:
        from erarm.sim.camera import calibration

        return calibration(self._camera)

    def progress(self) -> list[tuple[Goal, bool, str]]:
        """Each goal of the task with whether its predicate holds now, and why (empty: no
        success check for the task)."""
        return [(goal, *self._holds(goal)) for goal in self._goals or []]

    def _holds(self, goal: Goal) -> tuple[bool, str]:
        if goal.relation in PREDICATES:
            return PREDICATES[goal.relation](self._world, goal.item, goal.target)
        return rests_beside(self._world, goal, self.true_calibration())

    def judge(self) -> GroundTruth:
        objects = self._world.object_report()
        verdict = {"objects": objects, "objects_at_start": self._start}
        if self._family is not None and self._goals is None:  # the task is known, not done
            return GroundTruth(success=False, reason="the table lacks an object the task names",
                               **verdict)
        if not self._goals:
            return GroundTruth(success=None, reason="the simulator has no success check for "
                               "this task", **verdict)
        reasons = []
        for goal in self._goals:
            ok, reason = self._holds(goal)
            if not ok:
                return GroundTruth(success=False, reason=reason, **verdict)
            reasons.append(reason)
        return GroundTruth(success=True, reason="; ".join(reasons), **verdict)
