"""Tasks as the simulator sees them: families of scenes, their instructions, and whether they are
done (ravens-style: the task owns its scene and its success check).

A family phrases an instruction (in several ways, in any of the simulator's colours), stages a
scene for it from a seed, and states its goal as ground-truth predicates: a block inside a bowl,
or a block resting on another. These read the simulator's state; they score runs, and the agent
never sees them.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pybullet as pb
from pydantic import BaseModel

from robots.base import CameraCalibration, GroundTruth
from sim.objects import BLOCK_SIZE_M, BOWL_HEIGHT_M, BOWL_RIM_RADIUS_M, COLOURS
from sim.scene import Kind, RenderConditions, SceneSpec, Wanted, place

if TYPE_CHECKING:
    from sim.camera import CameraSetup
    from sim.world import World

ALL_COLOURS = list(COLOURS)
BIG_BOWL = 1.25  # room for three blocks side by side
_COLOUR = "|".join(COLOURS)
_MENTION = re.compile(rf"\b(?:(?P<colour>{_COLOUR})\s+)?(?P<kind>block|cube|bowl)s?\b",
                      re.IGNORECASE)


def mentions(task: str) -> list[tuple[str | None, str]]:
    """(colour or None, kind) for every block/cube/bowl the task names, in order."""
    found = []
    for match in _MENTION.finditer(task):
        colour = match["colour"].lower() if match["colour"] else None
        kind = "block" if match["kind"].lower() in ("block", "cube") else "bowl"
        found.append((colour, kind))
    return found


class Goal(BaseModel):
    """Scene object `item` must rest inside, or on, scene object `target`."""

    relation: Literal["inside", "on"]
    item: int
    target: int


def _index(labels: list[str], colour: str | None, kind: str) -> int | None:
    hits = [i for i, label in enumerate(labels)
            if label.endswith(kind) and (colour is None or label == f"{colour} {kind}")]
    return hits[0] if len(hits) == 1 else None


def _one_goal(relation: Literal["inside", "on"], labels: list[str],
              item: tuple[str | None, str], target: tuple[str | None, str]) -> list[Goal] | None:
    """One object inside or on another, or None when either is not uniquely in the scene."""
    found, where = _index(labels, *item), _index(labels, *target)
    if found is None or where is None:
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
    pattern: re.Pattern

    def instruction(self, rng: random.Random) -> str:
        raise NotImplementedError

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        """The (colour, kind) pairs the scene needs, distractors included."""
        raise NotImplementedError

    def goals(self, task: str, labels: list[str]) -> list[Goal] | None:
        raise NotImplementedError

    def matches(self, task: str) -> bool:
        return bool(self.pattern.search(task))


class PickIntoBowl(Family):
    name = "pick-into-bowl"
    pattern = re.compile(r".")  # the fallback: one block and one bowl, however said
    phrasings = (
        "pick the {a} {blk} into the {b} bowl", "put the {a} {blk} in the {b} bowl",
        "place the {a} {blk} inside the {b} bowl", "move the {a} {blk} to the {b} bowl",
        "drop the {a} {blk} into the {b} bowl", "put the {a} {blk} inside the {b} bowl",
        "pick up the {a} {blk} and put it in the {b} bowl")

    def instruction(self, rng: random.Random) -> str:
        a, b = rng.sample(ALL_COLOURS, 2)
        return rng.choice(self.phrasings).format(a=a, b=b, blk=rng.choice(["block", "cube"]))

    def matches(self, task: str) -> bool:
        kinds = [kind for _, kind in mentions(task)]
        return kinds.count("block") == 1 and kinds.count("bowl") == 1

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        named = _named(task, rng)
        used = {c for c, _ in named}
        # a kind named without a colour ("the bowl") must stay unambiguous
        kinds = tuple(k for k in ("block", "bowl") if (None, k) not in mentions(task))
        return named + _distractors(rng, used, 2, 8, kinds)

    def goals(self, task: str, labels: list[str]) -> list[Goal] | None:
        (block, _), (bowl, _) = sorted(mentions(task), key=lambda m: m[1] != "block")
        return _one_goal("inside", labels, (block, "block"), (bowl, "bowl"))


class PutAll(Family):
    name = "put-all"
    pattern = re.compile(r"\b(all|every)\b.*\b(blocks?|cubes?)\b.*\bbowl\b", re.IGNORECASE)
    phrasings = ("put all the blocks into the {b} bowl", "place every cube in the {b} bowl",
                 "move all blocks inside the {b} bowl", "drop all the cubes into the {b} bowl")

    def instruction(self, rng: random.Random) -> str:
        return rng.choice(self.phrasings).format(b=rng.choice(ALL_COLOURS))

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        bowl = next((c for c, k in mentions(task) if k == "bowl" and c), None)
        bowl = bowl or rng.choice(ALL_COLOURS)
        blocks = _other_colours(rng, {bowl}, rng.randint(2, 3))
        others = _distractors(rng, {bowl, *blocks}, 0, 1, kinds=("bowl",))
        return [(bowl, "bowl", BIG_BOWL), *[(c, "block") for c in blocks], *others]

    def goals(self, task: str, labels: list[str]) -> list[Goal] | None:
        bowl = next((c for c, k in mentions(task) if k == "bowl"), None)
        target = _index(labels, bowl, "bowl")
        if target is None:
            return None
        return [Goal(relation="inside", item=i, target=target)
                for i, label in enumerate(labels) if label.endswith("block")]


class Sort(Family):
    name = "sort"
    pattern = re.compile(r"\bsort\b|\bmatch(es|ing)?\b.*colou?r|\bsame colou?r\b", re.IGNORECASE)
    phrasings = ("sort the blocks into the bowls of matching colour",
                 "put each block in the bowl of the same colour",
                 "place every cube into the bowl that matches its colour")

    def instruction(self, rng: random.Random) -> str:
        return rng.choice(self.phrasings)

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        colours = rng.sample(ALL_COLOURS, rng.randint(2, 3))
        return [(c, kind) for c in colours for kind in ("block", "bowl")]

    def goals(self, task: str, labels: list[str]) -> list[Goal] | None:
        goals = []
        for i, label in enumerate(labels):
            if label.endswith("block"):
                target = _index(labels, label.split()[0], "bowl")
                if target is not None:
                    goals.append(Goal(relation="inside", item=i, target=target))
        return goals or None


class StackTwo(Family):
    name = "stack-two"
    pattern = re.compile(r"\b(stack|on top of|onto|on)\b", re.IGNORECASE)
    phrasings = ("stack the {a} block on the {b} block", "put the {a} cube on top of the {b} cube",
                 "place the {a} block onto the {b} block",
                 "move the {a} block on top of the {b} block")

    def matches(self, task: str) -> bool:
        kinds = [kind for _, kind in mentions(task)]
        return (bool(self.pattern.search(task)) and kinds == ["block", "block"]
                and "tower" not in task.lower())

    def instruction(self, rng: random.Random) -> str:
        a, b = rng.sample(ALL_COLOURS, 2)
        return rng.choice(self.phrasings).format(a=a, b=b)

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        named = _named(task, rng)
        return named + _distractors(rng, {c for c, _ in named}, 1, 3)

    def goals(self, task: str, labels: list[str]) -> list[Goal] | None:
        (top, _), (bottom, _) = mentions(task)
        return _one_goal("on", labels, (top, "block"), (bottom, "block"))


class TowerThree(Family):
    name = "tower-three"
    pattern = re.compile(r"\btower\b", re.IGNORECASE)
    phrasings = (
        "build a tower with the {a} block at the bottom, the {b} block in the middle and the "
        "{c} block on top", "stack the {a}, {b} and {c} blocks into a tower, bottom to top",
        "make a tower of the {a} cube, the {b} cube and the {c} cube, from the bottom up")

    def matches(self, task: str) -> bool:
        return bool(self.pattern.search(task)) and len(self._colours(task)) == 3

    @staticmethod
    def _colours(task: str) -> list[str]:
        """The tower's colours bottom to top: in the order the task says them."""
        return re.findall(rf"\b({_COLOUR})\b", task.lower())

    def instruction(self, rng: random.Random) -> str:
        a, b, c = rng.sample(ALL_COLOURS, 3)
        return rng.choice(self.phrasings).format(a=a, b=b, c=c)

    def objects(self, task: str, rng: random.Random) -> list[tuple[str, Kind]]:
        colours = self._colours(task)
        return [(c, "block") for c in colours] + _distractors(rng, set(colours), 1, 3)

    def goals(self, task: str, labels: list[str]) -> list[Goal] | None:
        stack = [_index(labels, c, "block") for c in self._colours(task)]
        if None in stack:
            return None
        return [Goal(relation="on", item=stack[1], target=stack[0]),
                Goal(relation="on", item=stack[2], target=stack[1])]


def _named(task: str, rng: random.Random) -> list[tuple[str, Kind]]:
    """What the task names; a kind named without a colour gets an unused one."""
    named, used = [], {c for c, _ in mentions(task) if c}
    for colour, kind in mentions(task):
        if colour is None:
            colour = rng.choice(sorted(set(ALL_COLOURS) - used))
            used.add(colour)
        if (colour, kind) not in named:
            named.append((colour, kind))
    return named


# Most specific first: the first family that matches an instruction owns it.
FAMILIES: list[Family] = [TowerThree(), Sort(), PutAll(), StackTwo(), PickIntoBowl()]
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


PREDICATES = {"inside": rests_inside, "on": rests_on}


class SimReferee:
    """Judges a task from the simulator's ground truth."""

    def __init__(self, world: World, task: str, camera: CameraSetup):
        self._world = world
        self._camera = camera
        self._family = family_for(task)
        self._goals = self._family.goals(task, world.labels) if self._family else None
        self._start = world.object_report()

    def true_calibration(self) -> CameraCalibration:
        from sim.camera import calibration

        return calibration(self._camera)

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
            ok, reason = PREDICATES[goal.relation](self._world, goal.item, goal.target)
            if not ok:
                return GroundTruth(success=False, reason=reason, **verdict)
            reasons.append(reason)
        return GroundTruth(success=True, reason="; ".join(reasons), **verdict)
