"""The local brain's planner: the instructions agent/instructions.py reads strictly, answered with
the same reasoning-then-JSON text a Gemini Robotics-ER model gives for the robot-API prompt.

It plans from what is seen now: work already done (a block already in its bowl, already stacked)
is left out, so after each pick and place the closed loop can ask again, and an empty list means
the task is done.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from erarm.agent.errors import TargetNotFound, TaskNotUnderstood
from erarm.agent.goals import TaskGoal, check_goal, goals_of, place_for
from erarm.agent.instructions import Goal, ObjectRef, narrow, parse_instruction
from erarm.agent.labels import canonical, matches
from erarm.agent.schemas import Move, ReturnToOrigin, SceneObject, SetGripperState

INSIDE_SHARE = 0.75  # an item within this share of a bowl's radius of its centre is inside it
INSIDE_MAX_RISE_MM = 62.0  # ...unless its top is this far above the floor: it rests on something
ON_RISE_MM = 20.0  # an item this much above a block, and near its centre, is on it
ON_NEAR_MM = 50.0  # near: a block under another is seen only by its sides, up to ~40 mm off
SLOT_RADIUS_MM = 30.0  # three blocks side by side in a bowl sit this far from its centre


@dataclass
class Transfer:
    item: SceneObject
    target: SceneObject
    relation: str  # "inside", "on", or a place beside the target ("left of" ...)
    spot: tuple[float, float]  # where to let go, mm


def _one(ref: ObjectRef, objects: list[SceneObject]) -> SceneObject:
    """The one seen object a task's reference means; several fit: its qualifier picks one."""
    fits = [o for o in objects if matches(ref.name, o.label)]
    hits = narrow(ref.which, fits, column=lambda o: o.point[1],
                  table_xy_mm=lambda o: o.position_mm[:2])
    if len(hits) == 1:
        return hits[0]
    seen = ", ".join(o.label for o in objects) or "nothing"
    if not hits:
        raise TargetNotFound(f"no {canonical(ref.name)} in view (I see: {seen})")
    colour = "" if ref.colour else "name its colour, or "
    raise TaskNotUnderstood(
        f"{len(hits)} objects could be the {canonical(ref.name)} "
        f"({', '.join(o.label for o in hits)}); {colour}say which one: 'the left {ref.name}' or "
        f"'the right {ref.name}' (as seen in camera.png), 'the nearest {ref.name}' or 'the "
        f"farthest {ref.name}' (from the robot)")


def _kind(thing: SceneObject) -> str:
    return canonical(thing.label).split()[1] if len(thing.label.split()) > 1 else ""


def _gap(a: SceneObject, b: SceneObject) -> float:
    return math.hypot(a.position_mm[0] - b.position_mm[0], a.position_mm[1] - b.position_mm[1])


def inside(item: SceneObject, bowl: SceneObject) -> bool:
    return (_gap(item, bowl) < INSIDE_SHARE * max(bowl.radius_mm, 40.0)
            and item.position_mm[2] - bowl.position_mm[2] <= INSIDE_MAX_RISE_MM)


def on(item: SceneObject, block: SceneObject) -> bool:
    return _gap(item, block) < ON_NEAR_MM and \
        item.position_mm[2] > block.position_mm[2] + ON_RISE_MM


def _free_spot(bowl: SceneObject, objects: list[SceneObject], moving: SceneObject,
               shared: bool) -> tuple[float, float]:
    """Where to let go in a bowl: its centre when it takes one object; when it takes several
    (`shared`), the free slot of three around the centre farthest from what is already in it,
    so blocks end up side by side rather than on each other."""
    bx, by = bowl.position_mm[:2]
    if not shared:
        return bx, by
    occupants = [o for o in objects if o is not moving and o is not bowl and _kind(o) == "block"
                 and inside(o, bowl)]
    slots = [(bx + SLOT_RADIUS_MM * math.cos(a), by + SLOT_RADIUS_MM * math.sin(a))
             for a in (math.pi / 2 + 2 * math.pi * k / 3 for k in range(3))]
    # the moving block's own spot counts as taken: the camera's view there is from before the pick
    # and still shows it (a block resting on another, or on the rim, goes beside where it was)
    taken = [*occupants, moving]
    return max(slots, key=lambda s: min(math.hypot(s[0] - o.position_mm[0],
                                                   s[1] - o.position_mm[1]) for o in taken))


def _into(item: SceneObject, bowl: SceneObject, objects: list[SceneObject],
          shared: bool = False) -> list[Transfer]:
    if inside(item, bowl):
        return []
    return [Transfer(item, bowl, "inside", _free_spot(bowl, objects, item, shared))]


def _onto(item: SceneObject, block: SceneObject) -> list[Transfer]:
    if on(item, block):
        return []
    return [Transfer(item, block, "on", tuple(block.position_mm[:2]))]


def transfers_for(task: str, objects: list[SceneObject]) -> list[Transfer]:
    """What still has to move where for the task, given what is seen now."""
    instruction = parse_instruction(task)
    if reason := instruction.impossibility():
        raise TaskNotUnderstood(f"impossible task: {reason}")
    blocks = [o for o in objects if _kind(o) == "block"]
    if instruction.goal is Goal.tower:
        bottom, middle, top = (_one(ref, objects) for ref in instruction.tower)
        if not on(middle, bottom):
            return [*_onto(middle, bottom), Transfer(top, middle, "on", tuple(
                bottom.position_mm[:2]))]  # the middle block will sit over the bottom one
        return _onto(top, middle)
    if instruction.goal is Goal.sort:
        pending = []
        for block in blocks:
            colour = canonical(block.label).split()[0]
            bowls = [o for o in objects if canonical(o.label) == f"{colour} bowl"]
            if len(bowls) == 1:
                pending += _into(block, bowls[0], objects)
        if not pending and not any(canonical(o.label).endswith("bowl") for o in objects):
            raise TargetNotFound("no bowls in view to sort the blocks into")
        return pending
    target = _one(instruction.target, objects)
    if instruction.goal is Goal.put_all:
        bowl = target
        pending = [t for block in sorted(blocks, key=lambda b: _gap(b, bowl))
                   for t in _into(block, bowl, objects, shared=True)]
        return pending[:1] + [Transfer(t.item, bowl, "inside", tuple(bowl.position_mm[:2]))
                              for t in pending[1:]]  # later spots are chosen when we get there
    item = _one(instruction.item, objects)
    if item is target:
        raise TaskNotUnderstood(f"impossible task: {instruction.item} and {instruction.target} "
                                f"are both the {item.label}")
    if instruction.goal is Goal.stack:
        return _onto(item, target)
    if instruction.goal is Goal.place:
        return _beside(goals_of(instruction, objects)[0], item, target, objects)
    return _into(item, target, objects)


def _beside(goal: TaskGoal, item: SceneObject, target: SceneObject,
            objects: list[SceneObject]) -> list[Transfer]:
    """Set the item down on free table where the goal holds, unless it already does."""
    if check_goal(goal, objects).holds:
        return []
    spot = place_for(goal, item, target, objects)
    if spot is None:
        raise TargetNotFound(f"no free spot on the table {goal.relation} the {target.label} for "
                             f"the {item.label}")
    return [Transfer(item, target, str(goal.relation), spot)]


def _mm(value: float) -> int:
    return round(value)


def pick_and_place_calls(pick_mm: tuple[float, float], place_mm: tuple[float, float]
                         ) -> list[Move | SetGripperState]:
    """The docs' pick-and-place sequence: above, open, down, close, up, carry, down, open, up."""
    (ix, iy), (tx, ty) = pick_mm, place_mm
    return [Move(x=ix, y=iy, high=True), SetGripperState(opened=True),
            Move(x=ix, y=iy, high=False), SetGripperState(opened=False),
            Move(x=ix, y=iy, high=True), Move(x=tx, y=ty, high=True),
            Move(x=tx, y=ty, high=False), SetGripperState(opened=True),
            Move(x=tx, y=ty, high=True)]


def plan_text(task: str, objects: list[SceneObject]) -> str:
    """Reasoning followed by the JSON list of calls: the docs' pick-and-place sequence for every
    transfer still to do, or an empty list when the task is done."""
    pending = transfers_for(task, objects)
    if not pending:
        return "Reasoning: everything the task asks for is already done.\n\n[]"
    calls: list = []
    steps = []
    for transfer in pending:
        ix, iy = _mm(transfer.item.position_mm[0]), _mm(transfer.item.position_mm[1])
        tx, ty = _mm(transfer.spot[0]), _mm(transfer.spot[1])
        calls += pick_and_place_calls((ix, iy), (tx, ty))
        where = {"inside": "into", "on": "onto"}.get(transfer.relation, transfer.relation)
        steps.append(f"the {transfer.item.label} at ({ix}, {iy}) mm {where} the "
                     f"{transfer.target.label} at ({tx}, {ty}) mm")
    calls.append(ReturnToOrigin())
    reasoning = ("Reasoning: I will move " + "; then ".join(steps) + ". For each, I move above "
                 "the object at travel height, open the gripper, lower to it, close the "
                 "gripper, lift it, carry it above its destination, lower it, open the gripper "
                 "to let go and lift clear; finally I return to the origin.")
    return reasoning + "\n\n" + json.dumps([call.call() for call in calls], indent=1)
