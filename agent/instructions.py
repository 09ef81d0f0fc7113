"""The task grammar: what a tabletop instruction asks, as one typed `Instruction`.

One home for reading tasks. The local brain's planner reads them strictly (`parse_instruction`:
its phrasings, every word known, a suggestion for a typo); the simulator's staging and its
referee, and the check made for free-form brains, read them loosely (`read_instruction`: which
objects are named, and the family of the goal). Both give the same `Instruction`, and both refuse
a goal impossible by construction (`impossibility`): a block on or into itself, a tower naming
one block twice, a bowl to be carried.

An object may be picked out among several of its colour by a word before it: "the left blue
block", "the right ...", as seen in the camera image (camera.png), or "the nearest" /
"the farthest" from the robot's base.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Literal, TypeVar

from pydantic import BaseModel

from erarm.agent.errors import TaskNotUnderstood
from erarm.agent.labels import COLOUR_HUES

UNDERSTOOD = (
    "pick/put/place/move/drop the COLOUR block (in)to/in/inside/on the [COLOUR] bowl; "
    "put all the blocks into the COLOUR bowl; sort the blocks into the bowls of matching "
    "colour; stack the COLOUR block on the COLOUR block; build a tower of the COLOUR, "
    "COLOUR and COLOUR blocks (bottom to top); put the COLOUR block to the left of / right "
    "of / next to / in front of / behind the COLOUR bowl or block (as the camera sees it; add "
    "'as seen from the robot' for the robot's); with several blocks of one colour, say "
    "which: the left/right (in the camera image) or nearest/farthest (from the robot) "
    "COLOUR block")
EXAMPLE = "pick the blue block into the orange bowl"
MAX_TASK_CHARS = 1000  # the grammar's longest phrasing is under 150; longer is read free-form


class Which(StrEnum):
    """How one object is picked out among several that fit its name."""

    left = "left"  # smallest image column, as seen in camera.png
    right = "right"
    nearest = "nearest"  # closest to the robot's base, on the table
    farthest = "farthest"


_WHICH_WORDS = {"left": Which.left, "leftmost": Which.left, "right": Which.right,
                "rightmost": Which.right, "nearest": Which.nearest, "closest": Which.nearest,
                "farthest": Which.farthest, "furthest": Which.farthest}


class ObjectRef(BaseModel, frozen=True):
    """An object as a task names it: 'the left blue block' is (blue, block, left)."""

    colour: str | None = None
    kind: Literal["block", "bowl"]
    which: Which | None = None

    @property
    def name(self) -> str:
        """The name perception labels answer to: 'blue block', or just 'bowl'."""
        return f"{self.colour} {self.kind}" if self.colour else self.kind

    def __str__(self) -> str:
        return "the " + (f"{self.which} " if self.which else "") + self.name


class Goal(StrEnum):
    into = "into"  # the item inside the target bowl
    stack = "stack"  # the item on the target block
    put_all = "put-all"  # every block inside the target bowl
    sort = "sort"  # every block inside the bowl of its colour
    tower = "tower"  # tower[1] on tower[0], tower[2] on tower[1]
    place = "place"  # the item set down on the table in `relation` to the target


class Instruction(BaseModel, frozen=True):
    goal: Goal
    item: ObjectRef | None = None
    target: ObjectRef | None = None
    tower: tuple[ObjectRef, ...] = ()  # bottom to top
    relation: str | None = None  # with place: one of RELATION_WORDS ("left of" ...)
    robot_view: bool = False  # with place: left and front as the robot sees them, not the camera

    def impossibility(self) -> str | None:
        """Why this goal cannot be reached by construction, or None."""
        if self.goal is Goal.tower:
            colours = [ref.colour for ref in self.tower]
            twice = next((c for c in colours if colours.count(c) > 1), None)
            if twice:
                return (f"a tower of the {', '.join(colours)} blocks names the {twice} block "
                        "twice: each block can be in it only once")
            return None
        if self.item is None or self.target is None:
            return None
        relation = {Goal.into: "into", Goal.place: self.relation}.get(self.goal, "on")
        if self.item.kind == "bowl":
            return (f"{self.item} cannot be moved: erarm's gripper picks blocks, not bowls "
                    f"(e.g. '{EXAMPLE}')")
        if self.item == self.target and (self.item.colour or self.item.which):
            return f"{self.item} cannot go {relation} itself: name two different objects"
        if self.goal is Goal.place:
            return None
        if self.goal is Goal.into and self.target.kind == "block":
            return (f"a block cannot go into a block: stack {self.item} on {self.target}, or "
                    "put it into a bowl")
        return None


# where one object should end up relative to another, as people say it (`erarm.agent.goals`
# reads these as its relations): never to be read as "into"
RELATION_WORDS = {
    "left of": r"(?:to\s+the\s+)?left\s+(?:side\s+)?of",
    "right of": r"(?:to\s+the\s+)?right\s+(?:side\s+)?of",
    "next to": r"next\s+to|beside|near",
    "in front of": r"in\s+front\s+of",
    "behind": r"behind|in\s+back\s+of",
    "away from": r"away\s+from|far\s+from",
    "out of": r"out\s+of",
}
RELATIVE = re.compile("|".join(rf"\b(?P<r{i}>{words})\b" for i, words
                               in enumerate(RELATION_WORDS.values())), re.IGNORECASE)

# -- the strict grammar (the local brain's) ----------------------------------------------------

_COLOUR = "|".join(COLOUR_HUES)
_WHICH = "|".join(_WHICH_WORDS)
_ART = r"(?:the\s+|a\s+|an\s+)?"


def _ref_pattern(name: str, kinds: str) -> str:
    return (rf"{_ART}(?:(?P<{name}_which>{_WHICH})\s+)?(?:(?P<{name}_colour>{_COLOUR})\s+)?"
            rf"(?P<{name}_kind>{kinds})")


_ITEM = _ref_pattern("item", "block|cube|bowl")
_TARGET = _ref_pattern("target", "block|cube|bowl")
_PICK_INTO = re.compile(
    rf"""^\s*(?:please\s+)?
    (?:pick(?:\s+up)?|put|place|move|drop|transfer|carry|bring|set|take|get|stack)\s+
    {_ITEM}\s+
    (?:and\s+(?:put|place|drop|move|set)\s+it\s+)?
    (?P<prep>into|in\s+to|inside(?:\s+of)?|in|onto|on\s+to|on(?:\s+top\s+of)?|to)\s+
    {_TARGET}
    \s*[.!]?\s*$""", re.IGNORECASE | re.VERBOSE)
_SORT = re.compile(r"\bsort\b|\bmatch(?:es|ing)?\b.*\bcolou?r\b|\bsame\s+colou?r\b", re.I)
_ALL = re.compile(r"\b(?:all|every|each)\b", re.IGNORECASE)
_BLOCKS = re.compile(r"\b(?:blocks?|cubes?)\b", re.IGNORECASE)
_BOWL = re.compile(rf"{_ref_pattern('target', 'bowl')}\b", re.IGNORECASE)
_TOWER = re.compile(r"\btower\b", re.IGNORECASE)
_COLOURS = re.compile(rf"\b({_COLOUR})\b", re.IGNORECASE)
_STACK_WORDS = re.compile(r"\b(?:stack|on\s+top\s+of|onto|on)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")

# Every word the strict grammar reads, to tell a typo ("bleu") from an unsupported request.
VOCABULARY = frozenset(
    [*COLOUR_HUES, *_WHICH_WORDS, "block", "blocks", "cube", "cubes", "bowl", "bowls", "the",
     "a", "an", "please", "pick", "up", "put", "place", "move", "drop", "transfer", "carry",
     "bring", "set", "take", "get", "and", "it", "into", "in", "to", "inside", "of", "onto",
     "on", "top", "all", "every", "each", "sort", "match", "matches", "matching", "same",
     "colour", "color", "colours", "colors", "its", "their", "that", "stack", "build", "make",
     "tower", "with", "at", "bottom", "middle", "from", "then", "first", "left", "of", "next",
     "beside", "near", "front", "behind", "back", "side", "table", "robot", "robots"])


def _ref(match: re.Match, name: str) -> ObjectRef:
    which = match[f"{name}_which"]
    colour = match[f"{name}_colour"]
    kind = match[f"{name}_kind"].lower()
    return ObjectRef(colour=colour.lower() if colour else None,
                     kind="bowl" if kind == "bowl" else "block",
                     which=_WHICH_WORDS[which.lower()] if which else None)


# "put the blue block to the left of the orange bowl": set down beside a target, as the camera
# sees it (or the robot: "...of the orange bowl, from the robot's side")
_PLACEABLE = ("left of", "right of", "next to", "in front of", "behind")
_PLACE = re.compile(
    rf"""^\s*(?:please\s+)?
    (?:put|place|move|set|drop|bring|take|carry)\s+{_ITEM}\s+
    (?:down\s+)?(?:on\s+the\s+table\s+)?
    (?P<rel>{"|".join(RELATION_WORDS[name] for name in _PLACEABLE)})\s+
    {_TARGET}(?:\s*,?\s*(?:as\s+seen\s+)?(?:from|by)\s+the\s+(?P<view>robot|camera)(?:'?s)?
    (?:\s+side)?)?
    \s*[.!]?\s*$""", re.IGNORECASE | re.VERBOSE)


def _not_understood(task: str) -> TaskNotUnderstood:
    words = _WORD.findall(task.lower())
    unknown = [w for w in dict.fromkeys(words) if w not in VOCABULARY]
    hints = []
    for word in unknown[:3]:
        close = difflib.get_close_matches(word, VOCABULARY, n=1, cutoff=0.75)
        hints.append(f"'{word}' (did you mean '{close[0]}'?)" if close else f"'{word}'")
    unknown_words = f" (it does not know the word {', '.join(hints)})" if hints else ""
    return TaskNotUnderstood(f"the local brain cannot plan {task!r}{unknown_words}: offline it "
                             "understands blocks put into bowls, stacked, sorted, built into "
                             "a tower or set beside another (erarm run --help lists how); "
                             "--emulate plays any task "
                             "with the emulated Gemini model, --brain gemini with a key")


def _put_all(task: str) -> re.Match | None:
    """'all/every/each', then 'blocks', then the bowl, in that order: three linear searches."""
    every = _ALL.search(task)
    blocks = every and _BLOCKS.search(task, every.end())
    return blocks and _BOWL.search(task, blocks.end())


def parse_instruction(task: str) -> Instruction:
    """The local brain's reading of a task, or TaskNotUnderstood saying what it understands
    (and, for an unknown word, the nearest one it knows)."""
    if len(task) > MAX_TASK_CHARS:
        raise TaskNotUnderstood(f"the task is {len(task)} characters long; the local brain reads "
                                f"tasks of at most {MAX_TASK_CHARS}")
    if _TOWER.search(task):
        colours = [c.lower() for c in _COLOURS.findall(task)]
        if len(colours) != 3:
            raise TaskNotUnderstood("a tower needs three block colours, bottom to top")
        return Instruction(goal=Goal.tower,
                           tower=tuple(ObjectRef(colour=c, kind="block") for c in colours))
    if _SORT.search(task):
        return Instruction(goal=Goal.sort)
    if match := _put_all(task):
        return Instruction(goal=Goal.put_all, target=_ref(match, "target"))
    if match := _PLACE.match(task):
        words = match["rel"].lower()
        relation = next(name for name in _PLACEABLE if re.fullmatch(
            RELATION_WORDS[name], words, re.IGNORECASE))
        return Instruction(goal=Goal.place, item=_ref(match, "item"),
                           target=_ref(match, "target"), relation=relation,
                           robot_view=bool(match["view"] and match["view"].lower() == "robot"))
    if match := _PICK_INTO.match(task):
        item, target = _ref(match, "item"), _ref(match, "target")
        # onto a bowl means into it; into a block is read as said, and refused as impossible
        into = target.kind == "bowl" or match["prep"].lower().startswith("in")
        goal = Goal.into if into else Goal.stack
        return Instruction(goal=goal, item=item, target=target)
    raise _not_understood(task)


# -- the loose reading (the simulator's, and the check for free-form brains) -------------------


_MENTION = re.compile(rf"\b{_ref_pattern('m', 'block|cube|bowl')}s?\b", re.IGNORECASE)


def mentions(task: str) -> list[ObjectRef]:
    """Every block/cube/bowl the task names, in order."""
    return [_ref(match, "m") for match in _MENTION.finditer(task)]


def read_instruction(task: str) -> Instruction | None:
    """The goal a free-form task states, read from the objects it names, or None when it fits
    none of the families: the strict reading when it applies, else the same families found by
    their key words."""
    if len(task) > MAX_TASK_CHARS:
        return None
    try:
        return parse_instruction(task)
    except TaskNotUnderstood:
        pass
    if RELATIVE.search(task):  # next to, left of, out of ...: none of these families
        return None
    named = mentions(task)
    kinds = [ref.kind for ref in named]
    if _TOWER.search(task):
        colours = [c.lower() for c in _COLOURS.findall(task)]
        return Instruction(goal=Goal.tower, tower=tuple(
            ObjectRef(colour=c, kind="block") for c in colours)) if len(colours) == 3 else None
    if kinds == ["block", "block"] and _STACK_WORDS.search(task):
        return Instruction(goal=Goal.stack, item=named[0], target=named[1])
    if kinds.count("block") == 1 and kinds.count("bowl") == 1:
        item, target = sorted(named, key=lambda ref: ref.kind != "block")
        return Instruction(goal=Goal.into, item=item, target=target)
    return None


def refuse_unplannable(task: str, *, strict: bool) -> Instruction | None:
    """Before anything starts: refuse an empty task, a goal impossible by construction, and
    (`strict`, for the local brain) a task outside its grammar. Returns what was read."""
    if not task.strip():
        raise TaskNotUnderstood(f"the task is empty: say what to do, e.g. '{EXAMPLE}'")
    instruction = parse_instruction(task) if strict else read_instruction(task)
    reason = instruction.impossibility() if instruction else None
    if reason:
        raise TaskNotUnderstood(f"impossible task: {reason}")
    return instruction


# -- picking one of several --------------------------------------------------------------------

T = TypeVar("T")


def narrow(which: Which | None, candidates: Sequence[T], column: Callable[[T], float],
           table_xy_mm: Callable[[T], tuple[float, float]]) -> list[T]:
    """The candidates a qualifier leaves: the one farthest left or right in the image
    (`column`: its image column) or nearest to or farthest from the robot's base; all of them
    without a qualifier."""
    if which is None or len(candidates) < 2:
        return list(candidates)
    if which in (Which.left, Which.right):
        key = column
    else:
        def key(candidate: T) -> float:
            return math.hypot(*table_xy_mm(candidate))
    chosen = min(candidates, key=key) if which in (Which.left, Which.nearest) else \
        max(candidates, key=key)
    return [chosen]
