"""The local brain's planner: a small grammar of pick-and-place instructions, answered with the
same reasoning-then-JSON text a Gemini Robotics-ER model gives for the robot-API prompt."""

from __future__ import annotations

import json
import re

from agent.errors import TargetNotFound, TaskNotUnderstood
from agent.labels import COLOUR_HUES, matches
from agent.schemas import Move, ReturnToOrigin, SceneObject, SetGripperState

UNDERSTOOD = ("pick/put/place/move/drop the <colour> block (in)to/in/inside/on the "
              "[<colour>] bowl")

_COLOUR = "|".join(COLOUR_HUES)
_PICK_INTO = re.compile(
    rf"""^\s*(?:please\s+)?
    (?:pick(?:\s+up)?|put|place|move|drop|transfer|carry|bring|set|take|get)\s+
    (?:the\s+|a\s+)?(?P<item>(?:(?:{_COLOUR})\s+)?(?:block|cube))\s+
    (?:and\s+(?:put|place|drop|move|set)\s+it\s+)?
    (?:(?:into|in\s+to|inside(?:\s+of)?|in|onto|on\s+to|on(?:\s+top\s+of)?|to)\s+)
    (?:the\s+|a\s+)?(?P<target>(?:(?:{_COLOUR})\s+)?bowl)
    \s*[.!]?\s*$""",
    re.IGNORECASE | re.VERBOSE)


def _one(name: str, objects: list[SceneObject]) -> SceneObject:
    hits = [o for o in objects if matches(name, o.label)]
    if len(hits) == 1:
        return hits[0]
    seen = ", ".join(o.label for o in objects) or "nothing"
    if not hits:
        raise TargetNotFound(f"no {name} in view (I see: {seen})")
    raise TaskNotUnderstood(f"{len(hits)} objects could be the {name} "
                            f"({', '.join(o.label for o in hits)}); name its colour")


def _mm(value: float) -> int:
    return round(value)


def plan_text(task: str, objects: list[SceneObject]) -> str:
    """Reasoning followed by the JSON list of calls for a pick-into-bowl instruction."""
    match = _PICK_INTO.match(task)
    if not match:
        raise TaskNotUnderstood(f"the local brain cannot plan {task!r}: it understands "
                                f"'{UNDERSTOOD}'; for anything else use --brain gemini")
    item = _one(match["item"], objects)
    bowl = _one(match["target"], objects)
    ix, iy = _mm(item.position_mm[0]), _mm(item.position_mm[1])
    bx, by = _mm(bowl.position_mm[0]), _mm(bowl.position_mm[1])
    calls = [
        Move(x=ix, y=iy, high=True), SetGripperState(opened=True), Move(x=ix, y=iy, high=False),
        SetGripperState(opened=False), Move(x=ix, y=iy, high=True),
        Move(x=bx, y=by, high=True), Move(x=bx, y=by, high=False),
        SetGripperState(opened=True), Move(x=bx, y=by, high=True), ReturnToOrigin(),
    ]
    reasoning = (
        f"Reasoning: The {item.label} is at ({ix}, {iy}) mm and the {bowl.label} at ({bx}, {by}) "
        f"mm. I will move above the {item.label} at travel height, open the gripper, lower to "
        f"it, close the gripper, lift it, carry it above the {bowl.label}, lower it into the "
        "bowl, open the gripper to release it, lift clear and return to the origin.")
    return reasoning + "\n\n" + json.dumps([call.call() for call in calls], indent=1)
