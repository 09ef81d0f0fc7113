"""Goals: what a tabletop task asks, as typed relations erarm can check from what it perceives.

A task becomes goals ("the blue block inside the orange bowl", "the mug left of the plate, as the
camera sees it"), each a relation between a named object and a target. After a run erarm checks
every goal against the objects it sees, from their positions (millimetres in the robot's base
frame: a block's top-face centre at its top, a container's opening centre at its floor) and
sizes, and from where the camera saw them (left and right as in the camera image). A goal it
cannot check, because an object it names is not seen, or several fit the name and they
disagree, is said to be unverifiable, never taken as met.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ValidationError

from erarm.agent.instructions import (
    RELATION_WORDS,
    RELATIVE,
    Instruction,
    ObjectRef,
    mentions,
    narrow,
    read_instruction,
)
from erarm.agent.instructions import Goal as Family
from erarm.agent.labels import in_group, is_container, matches
from erarm.agent.parse import json_values
from erarm.agent.schemas import SceneObject, StatedGoal
from erarm.agent.validate import GraspPolicy
from erarm.robots.base import WorkspaceLimits

NEAR_MM = 60.0  # edge to edge, at most this far apart is next to
BESIDE_MM = 150.0  # a relative place (left of, behind...) is at most this far edge to edge
AWAY_MM = 100.0  # edge to edge, at least this far apart is away from
SIDE_MARGIN = 25.0  # left of means this much further left on the 0-1000 image grid (or mm)
INSIDE_MARGIN_MM = 10.0  # an object inside keeps its centre this far within the rim
OUT_OVERLAP_MM = 15.0  # an object out of a container may reach this far under its flared rim
VERIFY_MARGIN_MM = 12.0  # erarm's own verdict reads each distance this much tighter than the
# relation's threshold, as its measurement errs by about this much
ANGLE_MARGIN = 0.84  # and a direction within 40 degrees rather than 45 (tan 40 degrees)
ON_RISE_MM = (10.0, 160.0)  # an object on another has its top this much above the other's


class Relation(StrEnum):
    inside = "inside"  # in a container
    on = "on"  # on top of another object (stacked, on a plate)
    next_to = "next to"
    left_of = "left of"
    right_of = "right of"
    in_front_of = "in front of"
    behind = "behind"
    away_from = "away from"
    out_of = "out of"  # no longer in the container


class Viewpoint(StrEnum):
    """Whose left and right, front and back: the camera image's (left is the image's left,
    in front is nearer the camera) or the robot's (left is +y, in front is nearer its base)."""

    camera = "camera"
    robot = "robot"


class TaskGoal(BaseModel, frozen=True):
    relation: Relation
    item: str  # the object's name as perception labels it: "blue block", "mug"
    target: str
    viewpoint: Viewpoint = Viewpoint.camera  # for the directional relations

    def __str__(self) -> str:
        seen = (f" (as the {self.viewpoint} sees it)"
                if self.relation in DIRECTIONAL else "")
        return f"the {self.item} {self.relation} the {self.target}{seen}"


DIRECTIONAL = (Relation.left_of, Relation.right_of, Relation.in_front_of, Relation.behind)


class GoalCheck(BaseModel):
    goal: TaskGoal
    holds: bool | None  # None: erarm cannot tell
    reason: str


class TaskCheck(BaseModel):
    """Every goal of a task checked: `holds` is True only when each goal was measured and
    holds; None when one could not be measured."""

    checks: list[GoalCheck]

    @property
    def holds(self) -> bool | None:
        if not self.checks:
            return None
        if any(c.holds is False for c in self.checks):
            return False
        return None if any(c.holds is None for c in self.checks) else True

    @property
    def reason(self) -> str:
        if not self.checks:
            return "unverifiable: no goal erarm can measure for this task"
        failed = [c for c in self.checks if c.holds is False] or \
            [c for c in self.checks if c.holds is None]
        shown = failed[:1] if failed else self.checks
        text = "; ".join(c.reason for c in shown)
        return ("unverifiable: " + text) if self.holds is None else text


# -- from the task -----------------------------------------------------------------------------

def goals_of(instruction: Instruction | None, objects: Sequence[SceneObject]) -> list[TaskGoal]:
    """The goals an understood task states over the objects seen at the start (a group, "all
    the blocks", becomes one goal per object in it); none for a task not understood."""
    if instruction is None:
        return []
    labels = [o.label for o in objects]
    if instruction.goal is Family.into:
        return [TaskGoal(relation=Relation.inside, item=_name(instruction.item, objects),
                         target=_name(instruction.target, objects))]
    if instruction.goal is Family.place:
        return [TaskGoal(relation=Relation(instruction.relation),
                         item=_name(instruction.item, objects),
                         target=_name(instruction.target, objects),
                         viewpoint=Viewpoint.robot if instruction.robot_view else
                         Viewpoint.camera)]
    if instruction.goal is Family.stack:
        return [TaskGoal(relation=Relation.on, item=_name(instruction.item, objects),
                         target=_name(instruction.target, objects))]
    if instruction.goal is Family.tower:
        names = [_name(ref, objects) for ref in instruction.tower]
        return [TaskGoal(relation=Relation.on, item=top, target=bottom)
                for bottom, top in itertools.pairwise(names)]
    blocks = list(dict.fromkeys(label for label in labels if matches("block", label)))
    if instruction.goal is Family.put_all:
        target = _name(instruction.target, objects)
        return [TaskGoal(relation=Relation.inside, item=block, target=target)
                for block in blocks]
    return [TaskGoal(relation=Relation.inside, item=block,  # sort: each in its colour's bowl
                     target=block.replace("block", "bowl"))
            for block in blocks if block.replace("block", "bowl") in labels]


def relational_goal(task: str, objects: Sequence[SceneObject]) -> TaskGoal | None:
    """'move the blue block to the left of the orange bowl', 'take the red block out of the
    bowl': two objects named and a relation between them, read loosely; None otherwise."""
    found = RELATIVE.search(task)
    named = mentions(task)
    if found is None or len(named) != 2:
        return None
    relation = Relation(list(RELATION_WORDS)[int(found.lastgroup[1:])])
    viewpoint = Viewpoint.robot if re.search(r"\brobot'?s?\b", task, re.I) else \
        Viewpoint.camera
    return TaskGoal(relation=relation, item=_name(named[0], objects),
                    target=_name(named[1], objects), viewpoint=viewpoint)


_ONTO = re.compile(r"\b(?:on|onto|upon)\b", re.IGNORECASE)
_INTO = re.compile(r"\b(?:in|into|inside|within)\b", re.IGNORECASE)
_FROM = re.compile(r"\bfrom\b", re.IGNORECASE)


def stated_relation(between: str) -> tuple[Relation, Viewpoint] | None:
    """The relation the words between an object and its target state ('to the left of' ->
    left of; 'in', 'into' -> inside; 'on', 'onto' -> on; 'from' -> out of), and whose view
    ("the robot's left"), or None when they state none of them."""
    viewpoint = Viewpoint.robot if re.search(r"\brobot'?s?\b", between, re.I) else \
        Viewpoint.camera
    found = RELATIVE.search(between)
    if found is not None:
        return Relation(list(RELATION_WORDS)[int(found.lastgroup[1:])]), viewpoint
    for words, relation in ((_ONTO, Relation.on), (_INTO, Relation.inside),
                            (_FROM, Relation.out_of)):
        if words.search(between):
            return relation, viewpoint
    return None


def _said_at(label: str, labels: Sequence[str], task: str) -> tuple[int, int] | None:
    """Where the task names a perceived object: the first place it says a word of the object's
    label that no other object's label has ('ketchup' for the 'ketchup bottle' beside a
    'mustard bottle'), or None when it says none."""
    others = {word for other in labels if other != label for word in other.lower().split()}
    places = [found.span() for word in label.lower().split()
              if word not in others and word.isalpha()
              for found in re.finditer(rf"\b{re.escape(word)}(?:e?s)?\b", task, re.IGNORECASE)]
    return min(places, default=None)


def named_goal(task: str, objects: Sequence[SceneObject]) -> TaskGoal | None:
    """A task that names two of the objects seen by their labels' own words, and a relation
    between them ('put the ketchup in the basket' over a 'ketchup bottle' and a 'basket');
    None otherwise (then the model's reading of the task is what erarm can check against)."""
    labels = list(dict.fromkeys(o.label for o in objects))
    said = sorted((at, label) for label in labels
                  if (at := _said_at(label, labels, task)) is not None)
    if len(said) != 2:
        return None
    ((_, end), item), ((start, _), target) = said
    stated = stated_relation(task[end:start])
    if stated is None:
        return None
    return TaskGoal(relation=stated[0], item=item, target=target, viewpoint=stated[1])


def task_goals(task: str, objects: Sequence[SceneObject]) -> list[TaskGoal]:
    """What erarm itself will check of a task, over the objects seen at its start: the
    grammar's families, one relation between two named blocks or bowls, or between two objects
    seen that the task names; nothing it cannot read."""
    relational = relational_goal(task, objects)
    if relational is not None:
        return [relational]
    goals = goals_of(read_instruction(task), objects)
    if goals:
        return goals
    grouped = group_goals(task, objects)
    if grouped:
        return grouped
    named = named_goal(task, objects)
    return [named] if named is not None else []


_GROUP = re.compile(r"\b(?:all|every|each)(?:\s+of)?(?:\s+the)?\s+([a-z]+)|\bthe\s+(fruits?|toys|"
                    r"drinks|beverages|groceries|condiments|sauces)\b", re.IGNORECASE)
_EVERYTHING = re.compile(r"\b(?:(?:everything|all\s+the\s+(?:things|objects|items)|every\s+"
                         r"(?:object|item))(?:\s+(?:that\s+is\s+)?on\s+the\s+table)?|clear\s+"
                         r"(?:off\s+)?the\s+table)\b", re.IGNORECASE)


def named_groups(task: str) -> list[tuple[str | None, str]]:
    """Each group a task names, with the words that follow it up to the next group: [('fruit',
    ' in the basket and '), ('toys', ' in the bin')] for 'put the fruit in the basket and the
    toys in the bin'; a group word None for everything on the table."""
    found = list(_EVERYTHING.finditer(task))[:1] or list(_GROUP.finditer(task))
    ends = [m.start() for m in found[1:]] + [len(task)] if found else []
    return [(next((g for g in m.groups() if g), None), task[m.end():end])
            for m, end in zip(found, ends, strict=True)]


def group_goals(task: str, objects: Sequence[SceneObject]) -> list[TaskGoal]:
    """A task about groups ('put all the fruit in the basket', 'every toy goes in the bin',
    'the fruit on the plate and the toys in the bin', 'clear the table into the crate'): one
    goal for each object seen in a group, toward the container named after it; none when the
    task names no group, names one without a container, or none of it is seen."""
    labels = list(dict.fromkeys(o.label for o in objects))
    goals: list[TaskGoal] = []
    for word, after in named_groups(task):
        said = sorted((at, label) for label in labels
                      if (at := _said_at(label, labels, after)) is not None)
        if not said:
            return []
        (start, _), target = said[0]
        stated = stated_relation(after[:start])
        if stated is None or stated[0] not in (Relation.inside, Relation.on):
            return []
        taken = {g.item for g in goals} | {g.target for g in goals}
        goals += [TaskGoal(relation=stated[0], item=label, target=target) for label in labels
                  if label != target and label not in taken and
                  (not is_container(label) if word is None else in_group(word, label))]
    return goals


class ModelGoals(BaseModel):
    """The model's reading of a task as goals, checked against what erarm sees: `goals` when
    every one of them names a known relation and objects that are seen, else none and `refused`
    saying why (then erarm has no goal it can check, and says so)."""

    goals: list[TaskGoal] = []
    refused: str | None = None


def read_model_goals(text: str, objects: Sequence[SceneObject]) -> ModelGoals:
    """Validate the model's goals (`[{"relation", "item", "target", "viewpoint"}]`): an unknown
    relation is refused, never guessed; each object named must be one seen (a label, or words
    that pick out one label); a goal of an object to itself is refused."""
    found = [value for _, _, value in json_values(text) if isinstance(value, list)]
    if not found:
        return ModelGoals(refused="the model's reading of the task holds no list of goals")
    labels = list(dict.fromkeys(o.label for o in objects))
    goals = []
    for entry in found[-1]:
        try:
            stated = StatedGoal.model_validate(entry)
        except ValidationError:
            return ModelGoals(refused=f"the model stated a goal erarm cannot read: {entry!r:.80}")
        if stated.relation not in {r.value for r in Relation}:
            return ModelGoals(refused=f"the model's goal relation {stated.relation!r:.40} is "
                                      "not one erarm knows")
        names = []
        for said in (stated.item, stated.target):
            fitting = [label for label in labels if matches(said, label)]
            if len({*fitting}) != 1 and said not in labels:
                what = "is not seen" if not fitting else "fits several objects"
                return ModelGoals(refused=f"the model's goal names the {said!r:.40}, which "
                                          f"{what}")
            names.append(said if said in labels else fitting[0])
        if names[0] == names[1]:
            return ModelGoals(refused=f"the model's goal relates the {names[0]} to itself")
        goals.append(TaskGoal(relation=Relation(stated.relation), item=names[0],
                              target=names[1], viewpoint=Viewpoint(stated.viewpoint)))
    if not goals:
        return ModelGoals(refused="the model reads no goal erarm can check in the task")
    return ModelGoals(goals=goals)


def _name(ref: ObjectRef | None, objects: Sequence[SceneObject]) -> str:
    """The perceived label a task's object answers to ('the left blue block' picks one)."""
    if ref is None:
        return ""
    fitting = [o for o in objects if matches(ref.name, o.label)]
    chosen = narrow(ref.which, fitting, lambda o: o.point[1],
                    lambda o: (o.position_mm[0], o.position_mm[1]))
    return chosen[0].label if len(chosen) == 1 else ref.name


# -- against what is seen ----------------------------------------------------------------------

def check_task(goals: Sequence[TaskGoal], objects: Sequence[SceneObject],
               margin_mm: float = 0.0) -> TaskCheck:
    return TaskCheck(checks=[check_goal(goal, objects, margin_mm) for goal in goals])


def check_goal(goal: TaskGoal, objects: Sequence[SceneObject],
               margin_mm: float = 0.0) -> GoalCheck:
    """Whether the goal holds among the objects seen: for every pairing of the objects that fit
    its names, the same answer, or it cannot be told."""
    items = [o for o in objects if matches(goal.item, o.label)]
    targets = [o for o in objects if matches(goal.target, o.label) and o not in items]
    missing = goal.item if not items else goal.target if not targets else None
    if missing:
        return GoalCheck(goal=goal, holds=None, reason=f"the {missing} is not seen")
    # erarm's own verdict reads directions from where things stand, through the image axes
    # fitted over everything seen, rather than from single points a model may place far off
    axes = image_axes(objects) if margin_mm and goal.relation in DIRECTIONAL else None
    answers = {_holds(goal, item, target, margin_mm, axes) for item in items
               for target in targets}
    if len({ok for ok, _ in answers}) > 1:
        if goal.relation in (Relation.inside, Relation.on) and len(items) == 1:
            ok, reason = max(answers)  # into (or onto) any of them
            return GoalCheck(goal=goal, holds=ok, reason=reason)
        return GoalCheck(goal=goal, holds=None, reason=f"several objects fit '{goal.item}' or "
                                                       f"'{goal.target}', and they differ")
    ok, reason = min(answers)
    return GoalCheck(goal=goal, holds=ok, reason=reason)


def _gap_mm(a: SceneObject, b: SceneObject) -> float:
    """Edge to edge on the table, from their centres and how far each reaches towards the
    other."""
    return (math.dist(a.position_mm[:2], b.position_mm[:2]) - a.reach_mm(*b.position_mm[:2])
            - b.reach_mm(*a.position_mm[:2]))


def _within(item: SceneObject, holder: SceneObject, margin_mm: float) -> bool:
    """Whether the item's centre lies over the holder, `margin_mm` within its edge."""
    if holder.extent_mm is None:
        offset = math.dist(item.position_mm[:2], holder.position_mm[:2])
        return offset <= holder.radius_mm - margin_mm
    u, v = holder.local_mm(*item.position_mm[:2])
    return (abs(u) <= holder.extent_mm[0] - margin_mm
            and abs(v) <= holder.extent_mm[1] - margin_mm)


def _inside(item: SceneObject, container: SceneObject) -> tuple[bool, str]:
    offset = math.dist(item.position_mm[:2], container.position_mm[:2])
    if not _within(item, container, INSIDE_MARGIN_MM):
        return False, f"the {item.label} is {offset:.0f} mm from the {container.label}'s centre"
    if item.position_mm[2] < container.position_mm[2]:
        return False, f"the {item.label} is below the {container.label}'s floor"
    return True, f"the {item.label} is inside the {container.label}"


def _on(item: SceneObject, base: SceneObject, margin_mm: float = 0.0) -> tuple[bool, str]:
    """Centred over the base (within its half width, less `margin_mm`) and above its top."""
    offset = math.dist(item.position_mm[:2], base.position_mm[:2])
    rise = item.position_mm[2] - base.position_mm[2]
    if offset > 15.0 and not _within(item, base, margin_mm):
        return False, f"the {item.label} is {offset:.0f} mm off the {base.label}'s centre"
    if not ON_RISE_MM[0] <= rise <= ON_RISE_MM[1]:
        return False, f"the {item.label} is not on the {base.label} ({rise:.0f} mm above it)"
    return True, f"the {item.label} is on the {base.label}"


def _side(goal: TaskGoal, item: SceneObject, target: SceneObject, margin_mm: float,
          axes: np.ndarray | None) -> tuple[bool, str]:
    """A directional relation: the item lies that way from the target, mostly that way (within
    45 degrees; with a margin, 40), and near it. As the camera sees it: from their image points,
    or (`axes`) from their table positions mapped onto the image."""
    if goal.viewpoint is Viewpoint.camera:  # image grid: x right, y down (nearer the camera)
        if axes is not None:
            dx, dy = axes @ (np.array(item.position_mm[:2]) - np.array(target.position_mm[:2]))
        else:
            dx, dy = item.point[1] - target.point[1], item.point[0] - target.point[0]
        along = {Relation.left_of: -dx, Relation.right_of: dx, Relation.in_front_of: dy,
                 Relation.behind: -dy}[goal.relation]
        across = abs(dy) if goal.relation in (Relation.left_of, Relation.right_of) else abs(dx)
    else:  # robot base frame, mm: +y its left, smaller x nearer its base (in front)
        dx = item.position_mm[0] - target.position_mm[0]
        dy = item.position_mm[1] - target.position_mm[1]
        along = {Relation.left_of: dy, Relation.right_of: -dy, Relation.in_front_of: -dx,
                 Relation.behind: dx}[goal.relation]
        across = abs(dx) if goal.relation in (Relation.left_of, Relation.right_of) else abs(dy)
    gap = _gap_mm(item, target)
    where = f"the {item.label} {goal.relation} the {target.label}"
    if along < SIDE_MARGIN or across > along * (ANGLE_MARGIN if margin_mm else 1.0):
        return False, f"not {where} (as the {goal.viewpoint} sees it)"
    if gap > BESIDE_MM - margin_mm:
        return False, f"the {item.label} is {gap:.0f} mm from the {target.label}: too far to be " \
                      f"{goal.relation} it"
    if _inside(item, target)[0] or _on(item, target)[0]:
        return False, f"the {item.label} is in or on the {target.label}, not {goal.relation} it"
    return True, f"{where} (as the {goal.viewpoint} sees it), {max(gap, 0):.0f} mm apart"


def _holds(goal: TaskGoal, item: SceneObject, target: SceneObject, margin_mm: float = 0.0,
           axes: np.ndarray | None = None) -> tuple[bool, str]:
    """Whether the goal holds between these two; `margin_mm` tightens each distance it reads
    (erarm's own verdict keeps a margin for its measurement's error, the referee none)."""
    relation = goal.relation
    if relation is Relation.inside:
        return _inside(item, target)
    if relation is Relation.on:
        return _on(item, target, margin_mm)
    if relation is Relation.out_of:  # all of it beside the container, not just off its middle
        inside, _ = _inside(item, target)
        if inside or _gap_mm(item, target) < margin_mm - OUT_OVERLAP_MM:
            return False, f"the {item.label} is still " + ("inside" if inside else "over") + \
                f" the {target.label}"
        return True, f"the {item.label} is out of the {target.label}"
    gap = _gap_mm(item, target)
    if relation is Relation.next_to:
        if _inside(item, target)[0] or _on(item, target)[0]:
            return False, f"the {item.label} is in or on the {target.label}, not next to it"
        near = gap <= NEAR_MM - margin_mm
        return (near, f"the {item.label} is {max(gap, 0):.0f} mm from the {target.label}"
                + ("" if near else ", not next to it" + (" (by erarm's measure)" if margin_mm
                                                         and gap <= NEAR_MM else "")))
    if relation is Relation.away_from:
        return (gap >= AWAY_MM + margin_mm, f"the {item.label} is {max(gap, 0):.0f} mm from "
                                            f"the {target.label}")
    return _side(goal, item, target, margin_mm, axes)


# -- where to put an object so that a goal holds -----------------------------------------------

CLEARANCE_MM = 12.0  # a spot to set an object down keeps this much free table around it
GAPS_MM = (35.0, 50.0, 70.0, 100.0, 130.0)  # edge to edge from the target, nearest first
TURNS_DEG = (0.0, 15.0, -15.0, 30.0, -30.0, 42.0, -42.0)  # directions tried around its own
# a held object covers at least this around where it was taken; a spot to set it down keeps
# AWAY_FROM_ITSELF_MM beyond that
HELD_MM = GraspPolicy().held_radius_m * 1000
AWAY_FROM_ITSELF_MM = 20.0
REACH_MARGIN_M = 0.06  # a spot to set down lies this well within the arm's reach


def image_axes(objects: Sequence[SceneObject]) -> np.ndarray | None:
    """The 2 x 2 map from a step on the table (mm) to a step on the image grid (column, row),
    fitted over the objects seen (their table positions and image points): affine from three
    that span the table; from two, a similarity that mirrors, as every camera looking down on
    a table does (the image's x right and y down against the table's x, y and its normal up).
    None with fewer."""
    table = np.array([o.position_mm[:2] for o in objects], dtype=float)
    image = np.array([[o.point[1], o.point[0]] for o in objects], dtype=float)
    lifted = np.column_stack([table, np.ones(len(table))])
    if len(objects) >= 3 and np.linalg.matrix_rank(lifted) == 3:
        fitted, *_ = np.linalg.lstsq(lifted, image, rcond=None)
        return fitted[:2].T  # image = axes @ table
    if len(objects) < 2:
        return None
    dz = complex(*(table[0] - table[1]))
    if abs(dz) < 1e-6:
        return None
    a = complex(*(image[0] - image[1])) / dz.conjugate()  # image = a * conj(table) + b
    return np.array([[a.real, a.imag], [a.imag, -a.real]])


def direction_mm(goal: TaskGoal, axes: np.ndarray | None) -> np.ndarray | None:
    """The unit step on the table (mm) that goes the goal's way from its target, as its viewpoint
    sees it (`axes`: `image_axes`); None for a relation with no one way (next to, away from) or
    no image to read."""
    if goal.relation not in DIRECTIONAL:
        return None
    if goal.viewpoint is Viewpoint.robot:
        step = {Relation.left_of: (0, 1), Relation.right_of: (0, -1),
                Relation.in_front_of: (-1, 0), Relation.behind: (1, 0)}[goal.relation]
        return np.array(step, dtype=float)
    if axes is None or abs(np.linalg.det(axes)) < 1e-9:
        return None
    wanted = {Relation.left_of: (-1, 0), Relation.right_of: (1, 0),
              Relation.in_front_of: (0, 1), Relation.behind: (0, -1)}[goal.relation]
    step = np.linalg.solve(axes, np.array(wanted, dtype=float))
    return step / np.linalg.norm(step)


def place_for(goal: TaskGoal, item: SceneObject, target: SceneObject,
              objects: Sequence[SceneObject], limits: WorkspaceLimits | None = None
              ) -> tuple[float, float] | None:
    """A free spot on the table (mm) where the item, set down, makes the goal hold: the
    relation's way from the target (next to: the side nearest the item), as near as leaves
    room, turning a little where something is in the way, clear of where the item stands now
    (the camera's view there still shows it) and, given the arm's `limits`, with the whole item
    inside its workspace and well within its reach; None when there is no such spot."""
    centre = np.array(target.position_mm[:2], dtype=float)
    axes = image_axes(objects)
    ahead = direction_mm(goal, axes)
    if ahead is None:
        toward = np.array(item.position_mm[:2], dtype=float) - centre
        ahead = toward / np.linalg.norm(toward) if np.linalg.norm(toward) > 1e-6 else \
            np.array([-1.0, 0.0])
    turns = TURNS_DEG if goal.relation in DIRECTIONAL else sorted(range(-180, 180, 30), key=abs)
    others = [o for o in objects if o is not item]
    for gap in GAPS_MM:
        for turn in turns:
            angle = math.radians(turn)
            way = np.array([ahead[0] * math.cos(angle) - ahead[1] * math.sin(angle),
                            ahead[0] * math.sin(angle) + ahead[1] * math.cos(angle)])
            reach = target.reach_mm(*(centre + way * 1000))
            spot = centre + way * (reach + item.radius_mm + gap)
            if any(math.dist(spot, o.position_mm[:2]) < o.reach_mm(*spot) + item.radius_mm
                   + CLEARANCE_MM for o in others) or not _room_for(item, spot, limits):
                continue
            moved = _moved_to(item, spot, target, axes)
            if _holds(goal, moved, target, VERIFY_MARGIN_MM)[0]:  # as erarm will check it
                return float(spot[0]), float(spot[1])
    return None


def _room_for(item: SceneObject, spot: np.ndarray, limits: WorkspaceLimits | None) -> bool:
    """Whether the item may be set down at `spot` (mm): away from where it stands now, and
    (given limits) all of it in the workspace with the arm reaching it comfortably."""
    if math.dist(spot, item.position_mm[:2]) < max(item.radius_mm, HELD_MM) + AWAY_FROM_ITSELF_MM:
        return False
    if limits is None:
        return True
    x, y, radius = spot[0] / 1000, spot[1] / 1000, item.radius_mm / 1000
    return limits.reach_m(x, y) + radius <= limits.max_reach_m - REACH_MARGIN_M and all(
        limits.check_spot(x + dx, y + dy) is None
        for dx, dy in ((radius, 0), (-radius, 0), (0, radius), (0, -radius)))


def _moved_to(item: SceneObject, spot: np.ndarray, target: SceneObject,
              axes: np.ndarray | None) -> SceneObject:
    """The item as it would be seen set down on the table at `spot` (in the image, that far
    from the target: the item's own point may be stale, or hidden in the gripper)."""
    point = item.point
    if axes is not None:
        column, row = axes @ (spot - np.array(target.position_mm[:2]))
        point = (target.point[0] + row, target.point[1] + column)
    return item.model_copy(update={"position_mm": (float(spot[0]), float(spot[1]),
                                                   item.position_mm[2]), "point": point})
