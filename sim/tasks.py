"""Tasks as the simulator sees them: families of scenes, their instructions, and whether they are
done (ravens-style: the task owns its scene and its success check).

A family phrases an instruction (in several ways, in any of the simulator's colours or with any of
its household objects), stages a scene for it from a seed, and states its goal over the scene's
objects: a block inside a bowl, the ketchup in the basket, the mug left of the plate. The referee
(`erarm.sim.referee`) judges those goals from the simulator's state. What a block-and-bowl task
says is read by the agent's task grammar (agent/instructions.py), so the simulator and the local
planner understand it alike; a household task by the names people use for each kind
(`erarm.sim.household`) and the relation words the agent's goals read.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel

from erarm.agent.geometry import pixel_to_normalized
from erarm.agent.goals import (
    Relation,
    TaskGoal,
    Viewpoint,
    named_groups,
    place_for,
    stated_relation,
)
from erarm.agent.instructions import Goal as Asked
from erarm.agent.instructions import Instruction, ObjectRef, narrow, read_instruction
from erarm.agent.instructions import mentions as named_objects
from erarm.agent.labels import GROUP_WORDS
from erarm.agent.schemas import SceneObject as Seen
from erarm.robots.base import WorkspaceLimits
from erarm.robots.errors import ConfigError
from erarm.sim.household import KINDS, WALL_M, Build, Holds, kind_for
from erarm.sim.objects import COLOURS, footprint
from erarm.sim.scene import Kind, RenderConditions, SceneObject, SceneSpec, Wanted, place

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
    spare = 0  # distractors listed last that staging leaves out when the table is too full

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

    def arrange(self, objects: list[SceneObject]) -> list[SceneObject]:
        """The placed layout as the task starts it (an object already in a container)."""
        return objects

    def doable(self, task: str, layout: list[SceneObject]) -> bool:
        """Whether the task can be done in this layout (a place the task asks for lies within
        the arm's reach); staging draws another layout when not."""
        return True


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


# -- household objects ------------------------------------------------------------------------

_HOUSEHOLD_WORDS = sorted({w for kind in KINDS.values() for w in kind.words}, key=len,
                          reverse=True)
_HOUSEHOLD = re.compile(r"\b(" + "|".join(re.escape(w) for w in _HOUSEHOLD_WORDS) + r")(?:e?s)?\b",
                        re.IGNORECASE)


def household_mentions(task: str) -> list[tuple[str, re.Match]]:
    """The household kinds a task names, in order, each with where it is said ('the ketchup' ->
    ketchup bottle): the longest name people use for a kind wins."""
    return [(kind.name, match) for match in _HOUSEHOLD.finditer(task)
            if (kind := kind_for(match[1])) is not None]


def household_goal(task: str) -> tuple[str, str, Relation, Viewpoint] | None:
    """(item kind, target kind, relation, viewpoint) for a task naming two household objects
    and a relation between them, or None (a task about a group among them too)."""
    named = household_mentions(task)
    if len(named) != 2 or named[0][0] == named[1][0] or named_groups(task):
        return None
    (item, first), (target, second) = named
    stated = stated_relation(task[first.end():second.start()])
    if stated is None:
        return None
    return item, target, *stated


def _say(kind: str, rng: random.Random) -> str:
    """What a person calls a kind this time: its name or one of its everyday words."""
    return rng.choice(KINDS[kind].words)


def _kinds(holds: tuple[Holds, ...]) -> list[str]:
    return [name for name, kind in KINDS.items() if kind.holds in holds]


GRASPABLE = [name for name, kind in KINDS.items() if kind.graspable is None]


BIG_CONTAINER_M = 0.1  # a container wider than this leaves room for fewer other things


class _Household(Family):
    """A task about one household object and another: phrased as people say it, staged among
    two to four other household things (at most one more container)."""

    name = ""
    spare = 2
    relations: tuple[Relation, ...] = ()
    targets: tuple[Holds, ...] = ()
    phrasings: tuple[str, ...] = ()

    def matches(self, task: str) -> bool:
        read = household_goal(task)
        return read is not None and read[2] in self.relations and \
            KINDS[read[1]].holds in self.targets

    def instruction(self, rng: random.Random) -> str:
        target = rng.choice(_kinds(self.targets))
        item = rng.choice(GRASPABLE)
        return rng.choice(self.phrasings).format(item=_say(item, rng), target=_say(target, rng))

    def objects(self, task: str, rng: random.Random) -> list[tuple]:
        item, target, *_ = household_goal(task)
        others = [k for k in GRASPABLE if k not in (item, target)]
        big = KINDS[target].radius_m > BIG_CONTAINER_M  # a bin takes much of the table
        containers = [k for k in _kinds((Holds.inside, Holds.on)) if k not in (item, target)
                      and not (big and KINDS[k].radius_m > BIG_CONTAINER_M)]
        extra = rng.sample(others, rng.randint(2, 3 if big else 4))
        if rng.random() < 0.5:
            extra[0] = rng.choice(containers)
            if KINDS[extra[0]].radius_m > BIG_CONTAINER_M:
                extra = extra[:3]
        return [(None, item), (None, target), *[(None, k) for k in extra]]

    def goals(self, task: str, labels: list[str],
              placed: list[Placed] | None = None) -> list[Goal] | None:
        read = household_goal(task)
        if read is None or read[0] not in labels or read[1] not in labels:
            return None
        item, target, relation, viewpoint = read
        return [Goal(relation=relation.value, item=labels.index(item),
                     target=labels.index(target), viewpoint=viewpoint.value)]


class IntoContainer(_Household):
    name = "into-container"
    relations = (Relation.inside,)
    targets = (Holds.inside,)
    phrasings = ("put the {item} in the {target}", "place the {item} into the {target}",
                 "drop the {item} in the {target}", "can you put the {item} in the {target}?",
                 "the {item} goes in the {target}", "pop the {item} into the {target} please",
                 "pick up the {item} and put it inside the {target}")


class OnPlate(_Household):
    name = "on-plate"
    relations = (Relation.on, Relation.inside)
    targets = (Holds.on,)
    phrasings = ("put the {item} on the {target}", "set the {item} onto the {target}",
                 "place the {item} on the {target}", "serve the {item} on the {target}",
                 "could you put the {item} on the {target}?", "the {item} belongs on the "
                 "{target}")


def _fits_in(item: str, container: str) -> bool:
    """Whether the item stands inside the container with room to take it out."""
    inner = KINDS[container].size_mm[1] - 2 * WALL_M * 1000
    return KINDS[item].size_mm[0] <= 0.75 * inner


class OutOfContainer(_Household):
    """An object staged in a container, to be taken out onto the table."""

    name = "out-of-container"
    relations = (Relation.out_of,)
    targets = (Holds.inside, Holds.on)
    phrasings = ("take the {item} out of the {target}", "get the {item} out of the {target}",
                 "remove the {item} from the {target}", "lift the {item} out of the {target} "
                 "and put it on the table", "please take the {item} out of the {target}")

    def instruction(self, rng: random.Random) -> str:
        target = rng.choice(_kinds(self.targets))
        item = rng.choice([k for k in GRASPABLE if _fits_in(k, target)])
        return rng.choice(self.phrasings).format(item=_say(item, rng), target=_say(target, rng))

    def arrange(self, objects: list[SceneObject]) -> list[SceneObject]:
        item, container = objects[0], objects[1]
        inside = item.model_copy(update={"x": container.x, "y": container.y, "z": WALL_M})
        return [inside, *objects[1:]]


class NextToThing(_Household):
    name = "household-beside"
    relations = (Relation.left_of, Relation.right_of, Relation.next_to, Relation.in_front_of,
                 Relation.behind)
    targets = (Holds.nothing, Holds.inside, Holds.on)
    phrasings = ("move the {item} to the left of the {target}",
                 "put the {item} next to the {target}", "place the {item} right of the {target}",
                 "set the {item} down in front of the {target}",
                 "move the {item} behind the {target}", "put the {item} beside the {target}",
                 "I'd like the {item} to the right of the {target}")

    def instruction(self, rng: random.Random) -> str:
        item = rng.choice(GRASPABLE)
        target = rng.choice([k for k in KINDS if k != item])
        return rng.choice(self.phrasings).format(item=_say(item, rng), target=_say(target, rng))

    def doable(self, task: str, layout: list[SceneObject]) -> bool:
        """Some free spot on the target's named side lies well within the arm's reach, as a
        model that sees the table would find one (in front of the target as the camera sees
        it is towards the camera, at the table's far edge from the arm)."""
        item, target, relation, viewpoint = household_goal(task)
        goal = TaskGoal(relation=relation, item=item, target=target, viewpoint=viewpoint)
        seen = _as_seen(layout)
        return place_for(goal, seen[0], seen[1], seen, ROOMY) is not None


# the arm's workspace less a margin: a model that sees the table a little off still finds room
ROOMY = WorkspaceLimits(x_max=0.66, y_min=-0.36, y_max=0.36, max_reach_m=0.67)


def _as_seen(layout: list[SceneObject]) -> list[Seen]:
    """The staged objects as the default camera would show them to a perfect perception: where
    they stand, how much table they cover, where in the image."""
    from erarm.sim.camera import CameraSetup, calibration

    camera = calibration(CameraSetup())
    standing = np.array([[o.x, o.y, 0.0] for o in layout])
    seen = []
    for o, (u, v) in zip(layout, camera.project(standing), strict=True):
        height = KINDS[o.kind].height_m if o.kind in KINDS else 0.0
        seen.append(Seen(label=o.label, position_mm=(o.x * 1000, o.y * 1000, height * 1000),
                         radius_mm=footprint(o.kind, o.size).radius_m * 1000,
                         point=pixel_to_normalized(float(u), float(v), camera.width,
                                                   camera.height)))
    return seen


class StackHousehold(_Household):
    """One household thing set on top of another whose flat top carries it."""

    name = "stack-household"
    relations = (Relation.on,)
    targets = (Holds.nothing,)
    phrasings = ("put the {item} on the {target}", "stack the {item} on top of the {target}",
                 "set the {item} on top of the {target}", "place the {item} onto the {target}",
                 "can you stack the {item} on the {target}?")

    def instruction(self, rng: random.Random) -> str:
        target = rng.choice(CARRIERS)
        item = rng.choice([k for k in STACKED if k != target])
        return rng.choice(self.phrasings).format(item=_say(item, rng), target=_say(target, rng))


# flat tops that carry another thing, and things with a flat bottom that stand on one
CARRIERS = ["sponge", "soup can"]
STACKED = ["wooden block", "soup can", "soda can", "sponge", "juice box"]


# the group words people use for each category of household things (the agent's words)
SAID_GROUPS = {"fruit": ("fruit",), "toy": ("toys",), "drink": ("drinks",),
               "food": ("groceries",), "condiment": ("condiments", "sauces")}
BINS = [k for k in _kinds((Holds.inside,)) if KINDS[k].build is Build.crate]  # to collect in
SMALL_HOLDERS = [k for k in _kinds((Holds.inside, Holds.on)) if k not in BINS and k != "tray"]
GROUP_SIZE = 2  # things of a group set in one container: side by side along its length
SMALL_MM = 75.0  # what goes in a container with another: at most this long


def group_task(task: str) -> list[tuple[str | None, str, Relation]] | None:
    """For each group a task names: the category (None: everything on the table), the holder
    named after it, and the relation ('put the fruit on the plate and the toys in the bin');
    None when a group has no category the simulator knows or no holder it goes in or on."""
    read = []
    for word, after in named_groups(task):
        category = None if word is None else GROUP_WORDS.get(word.lower())
        holders = [(kind, found) for kind, found in household_mentions(after)
                   if KINDS[kind].holds is not Holds.nothing]
        if (word is not None and category is None) or not holders:
            return None
        target, found = holders[0]
        stated = stated_relation(after[:found.start()])
        if stated is None or stated[0] not in (Relation.inside, Relation.on):
            return None
        # what the holder is for decides: "in" a plate is on it
        read.append((category, target, Relation.inside if KINDS[target].holds is Holds.inside
                     else Relation.on))
    return read or None


def _small(category: str | None) -> list[str]:
    return [k for k in GRASPABLE if KINDS[k].size_mm[0] <= SMALL_MM
            and (category is None or KINDS[k].category == category)]


class GroupInto(Family):
    """Every thing of a category into a container, among things of other categories."""

    name = "group-into"
    spare = 1
    phrasings = ("put all the {group} in the {target}", "put the {group} into the {target} "
                 "please", "can you put all of the {group} in the {target}?", "collect all the "
                 "{group} in the {target}", "each of the {group} goes in the {target}")

    def matches(self, task: str) -> bool:
        read = group_task(task)
        return read is not None and len(read) == 1 and read[0][0] is not None

    def instruction(self, rng: random.Random) -> str:
        category = rng.choice([c for c in SAID_GROUPS if len(_small(c)) >= GROUP_SIZE])
        return rng.choice(self.phrasings).format(group=rng.choice(SAID_GROUPS[category]),
                                                 target=_say(rng.choice(BINS), rng))

    def objects(self, task: str, rng: random.Random) -> list[tuple]:
        ((category, target, _),) = group_task(task)
        members = rng.sample(_small(category), GROUP_SIZE)
        others = [k for k in GRASPABLE if KINDS[k].category != category]
        return [(None, target), *[(None, k) for k in members],
                *[(None, k) for k in rng.sample(others, rng.randint(1, 2))]]

    def goals(self, task: str, labels: list[str],
              placed: list[Placed] | None = None) -> list[Goal] | None:
        """Each thing of each group on the table in or on its holder."""
        read = group_task(task)
        if read is None or any(target not in labels for _, target, _ in read):
            return None
        return [Goal(relation=relation.value, item=i, target=labels.index(target))
                for category, target, relation in read
                for i, label in enumerate(labels) if label in GRASPABLE and
                (category is None or KINDS[label].category == category)] or None


class ClearTable(GroupInto):
    """Everything on the table into the one container there."""

    name = "clear-table"
    spare = 0
    phrasings = ("clear the table into the {target}", "put everything in the {target}",
                 "tidy up: put everything into the {target}", "clear off the table into the "
                 "{target} please", "put all the things on the table in the {target}")

    def matches(self, task: str) -> bool:
        read = group_task(task)
        return read is not None and read[0][0] is None

    def instruction(self, rng: random.Random) -> str:
        return rng.choice(self.phrasings).format(target=_say(rng.choice(BINS), rng))

    def objects(self, task: str, rng: random.Random) -> list[tuple]:
        ((_, target, _),) = group_task(task)
        return [(None, target), *[(None, k) for k in rng.sample(_small(None), GROUP_SIZE)]]


class SortByCategory(GroupInto):
    """Two groups, each to its own holder: a bin and a plate, pan or tray."""

    name = "sort-by-category"
    spare = 1
    phrasings = ("put the {group} {into} the {target} and the {other} {into2} the {target2}",
                 "tidy up: all the {group} {into} the {target}, all the {other} {into2} the "
                 "{target2}", "sort the {group} into the {target} and the {other} {into2} the "
                 "{target2}", "the {group} go {into} the {target} and the {other} {into2} the "
                 "{target2} please")

    def matches(self, task: str) -> bool:
        read = group_task(task)
        return read is not None and len(read) == 2 and None not in (c for c, _, _ in read)

    def instruction(self, rng: random.Random) -> str:
        first, second = rng.sample([c for c in SAID_GROUPS if _small(c)], 2)
        bin_, other = rng.choice(BINS), rng.choice(SMALL_HOLDERS)
        into = {Holds.inside: "in", Holds.on: "on"}
        return rng.choice(self.phrasings).format(
            group=rng.choice(SAID_GROUPS[first]), into="in", target=_say(bin_, rng),
            other=rng.choice(SAID_GROUPS[second]), into2=into[KINDS[other].holds],
            target2=_say(other, rng))

    def objects(self, task: str, rng: random.Random) -> list[tuple]:
        read = group_task(task)
        members = []
        for category, _, _ in read:
            kinds = _small(category)
            count = min(len(kinds), rng.randint(1, 2))
            members += rng.sample(kinds, count)
        others = [k for k in _small(None) if KINDS[k].category not in {c for c, _, _ in read}]
        return [*[(None, target) for _, target, _ in read], *[(None, k) for k in members],
                (None, rng.choice(others))]


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
FAMILIES: list[Family] = [SortByCategory(), GroupInto(), ClearTable(), TowerThree(), Sort(),
                          PutAll(), StackTwo(), PlaceBeside(), PickIntoBowl(), IntoContainer(),
                          OnPlate(), OutOfContainer(), StackHousehold(), NextToThing()]
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
    offline: bool = True  # the local brain can do it (blocks and bowls); else a model must

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
    Scenario("into-container", FAMILY["into-container"], 0.95, offline=False),
    Scenario("on-plate", FAMILY["on-plate"], 0.95, offline=False),
    Scenario("household-beside", FAMILY["household-beside"], 0.95, offline=False),
    Scenario("out-of-container", FAMILY["out-of-container"], 0.95, offline=False),
    Scenario("group-into", FAMILY["group-into"], 0.95, offline=False),
    Scenario("clear-table", FAMILY["clear-table"], 0.95, offline=False),
    Scenario("sort-by-category", FAMILY["sort-by-category"], 0.95, offline=False),
    Scenario("stack-household", FAMILY["stack-household"], 0.95, offline=False),
)}


def _layout(wanted: list[Wanted], rng: random.Random, spare: int) -> list[SceneObject]:
    """A layout of what is wanted, less up to `spare` of its last (distractors) if it must."""
    for left_out in range(spare):
        try:
            return place(wanted[:len(wanted) - left_out], rng)
        except ConfigError:
            continue
    return place(wanted[:len(wanted) - spare], rng)


STAGING_TRIES = 50  # layouts drawn for a task that is not doable in the first


def stage(task: str, seed: int, hard: bool = False, family: Family | None = None) -> SceneSpec:
    """A scene for the task, reproducibly from the seed: what it names (or its family needs)
    plus distractors; `hard` varies object sizes, the light and the camera's exact pose."""
    rng = random.Random(seed)
    family = family or family_for(task)
    wanted = family.objects(task, rng) if family else \
        (_named(task, rng) or list(dict.fromkeys((None, k) for k, _ in household_mentions(task))))
    sized: list[Wanted] = []
    for colour, kind, *size in wanted:  # a family may fix an object's size
        scale = size[0] if size else 1.0
        if hard and kind in ("block", "bowl"):  # a household kind has its own size
            scale *= rng.uniform(0.8, 1.2) if kind == "block" else rng.uniform(0.9, 1.15)
        sized.append((colour, kind, min(scale, 1.3)))
    render = RenderConditions.random(rng) if hard else None
    spare = family.spare if family else 0
    layout = _layout(sized, rng, spare)
    for _ in range(STAGING_TRIES):
        if family is None or family.doable(task, layout):
            break
        layout = _layout(sized, rng, spare)
    return SceneSpec(objects=family.arrange(layout) if family else layout, render=render)
