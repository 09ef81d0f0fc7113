"""The whole-plan dialect: erarm's point, detect, locate, plan, judge and trajectory questions, each
answered in one reply as a capable Robotics-ER model would, from the scene's truth, with the
error model's mistakes drawn from the answer's own random stream."""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass

from erarm.agent.brains.local.rule_planner import SLOT_RADIUS_MM, pick_and_place_calls
from erarm.agent.goals import Relation, TaskGoal, Viewpoint, place_for
from erarm.agent.labels import matches
from erarm.agent.schemas import Move, ReturnToOrigin, SceneObject, SetGripperState, response_schema
from erarm.robots.base import WorkspaceLimits
from erarm.sim.emulator.settings import EmulatorSettings
from erarm.sim.emulator.truth import GoalTruth, ObjectTruth, SceneTruth
from erarm.sim.household import KINDS, holds_things
from erarm.sim.objects import COLOURS

MM_PER_GRID = 0.6  # the table's ~600 mm across the image's 1000: noise for an object not listed

# how each prompt in prompts/ says what it asks, for requests without a response schema
_PROMPT_MARKS = (("Has the task been completed", "judge"), ("You are a robotic arm", "plan"),
                 ("Return bounding boxes", "detect"), ("give each one's bounding box", "locate"),
                 ("points for the trajectory", "trajectory"), ("Turn the task into goals", "goals"))


def question_kind(prompt: str, schema: dict | None) -> str:
    """Which question a request asks: from its response schema when it has one (point and
    trajectory share theirs), else from the prompt's words."""
    if schema is not None:
        for kind in ("detect", "locate", "plan", "judge", "goals"):
            if schema == response_schema(kind):
                return kind
    return next((kind for mark, kind in _PROMPT_MARKS if mark in prompt), "point")


@dataclass
class Answer:
    text: str
    finish: str = "STOP"


class Mistakes:
    """Counts the errors injected into one answer, by kind."""

    def __init__(self, rng: random.Random, settings: EmulatorSettings):
        self.rng = rng
        self.settings = settings
        self.made: Counter[str] = Counter()

    def happens(self, kind: str, rate: float) -> bool:
        if rate > 0 and self.rng.random() < rate:
            self.made[kind] += 1
            return True
        return False


def _grid(value: float) -> int:
    return round(min(1000.0, max(0.0, value)))


def _confused(obj: ObjectTruth, rng: random.Random) -> str:
    """Another name for what the model sees: a block's or bowl's colour or kind mixed up, a
    household thing taken for another of its category ('lemon' for 'lime')."""
    if obj.colour is None:
        alike = [k.name for k in KINDS.values()
                 if k.category == KINDS[obj.kind].category and k.name != obj.kind]
        return rng.choice(alike or [k for k in KINDS if k != obj.kind])
    if rng.random() < 0.5:
        return f"{rng.choice([c for c in COLOURS if c != obj.colour])} {obj.kind}"
    return f"{obj.colour} {'bowl' if obj.kind == 'block' else 'block'}"


def _absent_label(truth: SceneTruth, rng: random.Random) -> str:
    present = {o.label for o in truth.objects}
    household = any(o.colour is None for o in truth.objects)
    names = list(KINDS) if household else \
        [f"{c} {k}" for c in COLOURS for k in ("block", "bowl")]
    return rng.choice(sorted(n for n in names if n not in present))


def _seen(truth: SceneTruth, mistakes: Mistakes) -> list[ObjectTruth]:
    """The visible objects the model reports (some missed)."""
    return [o for o in truth.objects
            if o.point is not None and not mistakes.happens("miss", mistakes.settings.miss_rate)]


def _label(obj: ObjectTruth, mistakes: Mistakes) -> str:
    if mistakes.happens("confusion", mistakes.settings.confusion_rate):
        return _confused(obj, mistakes.rng)
    return obj.label


def _pointed(obj: ObjectTruth, mistakes: Mistakes) -> list[int]:
    """Where the model points at an object: its visible centroid plus pointing noise."""
    rng, sigma = mistakes.rng, mistakes.settings.pointing_sigma
    return [_grid(obj.point[0] + rng.gauss(0, sigma)), _grid(obj.point[1] + rng.gauss(0, sigma))]


def _boxed(obj: ObjectTruth, mistakes: Mistakes) -> list[int]:
    """The model's box around an object: the visible box, each edge jittered."""
    rng, jitter = mistakes.rng, mistakes.settings.box_jitter
    ymin, xmin, ymax, xmax = (v + rng.gauss(0, jitter) for v in obj.box_2d)
    ymin, ymax = sorted((_grid(ymin), _grid(ymax)))
    xmin, xmax = sorted((_grid(xmin), _grid(xmax)))
    return [ymin, xmin, max(ymax, ymin + 1), max(xmax, xmin + 1)]


def _imagined(truth: SceneTruth, mistakes: Mistakes, point: bool, box: bool) -> list[dict]:
    """A hallucinated entry (an absent object somewhere on the table), at the error rate."""
    rng = mistakes.rng
    if not mistakes.happens("hallucination", mistakes.settings.hallucination_rate):
        return []
    y, x = rng.randint(300, 900), rng.randint(50, 900)
    entry: dict = {"point": [y, x]} if point else {}
    if box:
        entry["box_2d"] = [y - rng.randint(15, 45), x - rng.randint(15, 45),
                           y + rng.randint(15, 45), x + rng.randint(15, 45)]
    return [{**entry, "label": _absent_label(truth, rng)}]


def _malformed(entries: list[dict], mistakes: Mistakes) -> list[dict]:
    """Now and then an entry goes wrong: a point off the grid, or a box's corners swapped."""
    rng = mistakes.rng
    for entry in entries:
        if mistakes.happens("malformed", mistakes.settings.malformed_rate):
            if "box_2d" in entry and ("point" not in entry or rng.random() < 0.5):
                ymin, xmin, ymax, xmax = entry["box_2d"]
                entry["box_2d"] = [ymax, xmin, ymin, xmax]
            else:
                entry["point"][rng.randrange(2)] = 1000 + rng.randint(5, 300)
    return entries


def points(truth: SceneTruth, prompt: str, mistakes: Mistakes) -> list[dict]:
    """Named queries ('Get all points matching ...') or every object, each at its visible
    centroid plus pointing noise."""
    asked = re.search(r"matching the following objects: (.*?)\. The label", prompt)
    limit = re.search(r"no more than (\d+) items", prompt)
    seen = _seen(truth, mistakes)
    if asked:
        queries = [q.strip() for q in asked[1].split(",") if q.strip()]
        seen = [o for o in seen if any(matches(q, o.label) for q in queries)]
    if limit:
        seen = seen[:int(limit[1])]
    entries = [{"point": _pointed(o, mistakes), "label": _label(o, mistakes)} for o in seen]
    return _malformed(entries + _imagined(truth, mistakes, point=True, box=False), mistakes)


def boxes(truth: SceneTruth, prompt: str, mistakes: Mistakes) -> list[dict]:
    """Every visible object's box, each edge jittered."""
    limit = re.search(r"Limit to (\d+) objects", prompt)
    entries = [{"box_2d": _boxed(o, mistakes), "label": _label(o, mistakes)}
               for o in _seen(truth, mistakes)[:int(limit[1]) if limit else None]]
    return _malformed(entries + _imagined(truth, mistakes, point=False, box=True), mistakes)


def located(truth: SceneTruth, prompt: str, mistakes: Mistakes) -> list[dict]:
    """A point and a box per visible object in one reply, under one label per object."""
    limit = re.search(r"no more than (\d+) items", prompt)
    entries = [{"point": _pointed(o, mistakes), "box_2d": _boxed(o, mistakes),
                "label": _label(o, mistakes)}
               for o in _seen(truth, mistakes)[:int(limit[1]) if limit else None]]
    return _malformed(entries + _imagined(truth, mistakes, point=True, box=True), mistakes)


# -- plans ------------------------------------------------------------------------------------

_LISTED = re.compile(r"^- (.+): (-?\d+), (-?\d+) \(top (-?\d+) mm, (\d+) mm across\)$",
                     re.MULTILINE)


LABEL_MISMATCH_MM = 20.0  # how much farther a listed entry whose label disagrees counts as


def _positions_mm(truth: SceneTruth, prompt: str, mistakes: Mistakes) -> list[tuple[float, float]]:
    """Where the model says each true object is: a listed entry of the plan prompt near its true
    position (a model looking at the image knows which listed object is which: each entry is one
    object, nearest first, a label that agrees breaking ties), else the truth with noise."""
    listed = [(m[1], float(m[2]), float(m[3])) for m in _LISTED.finditer(prompt)]
    settings = mistakes.settings
    pairs = []
    for i, obj in enumerate(truth.objects):
        for j, (label, x, y) in enumerate(listed):
            gap = math.hypot(x - obj.position_mm[0], y - obj.position_mm[1])
            if gap <= settings.match_mm:
                pairs.append((gap + (0 if label == obj.label else LABEL_MISMATCH_MM), i, j))
    chosen: dict[int, int] = {}
    for _, i, j in sorted(pairs):
        if i not in chosen and j not in chosen.values():
            chosen[i] = j
    sigma_mm = settings.pointing_sigma * MM_PER_GRID
    return [listed[chosen[i]][1:] if i in chosen else
            (obj.position_mm[0] + mistakes.rng.gauss(0, sigma_mm),
             obj.position_mm[1] + mistakes.rng.gauss(0, sigma_mm))
            for i, obj in enumerate(truth.objects)]


def _release_spot(truth: SceneTruth, target: int, where: list[tuple[float, float]],
                  taken: list[tuple[float, float]]) -> tuple[float, float]:
    """A container that takes one thing: its centre; a bowl that takes several: the free slot
    of three around its centre farthest from what is in it or planned there (as the local
    planner does); a basket or bin: the free one of as many slots along its length."""
    shares = sum(1 for g in truth.goals if g.target == target and g.relation in ("inside", "on"))
    cx, cy = where[target]
    if shares <= 1:
        return cx, cy
    container = truth.objects[target]
    if container.kind in KINDS:  # a basket or a bin: side by side along its length
        turn = math.radians(container.yaw_deg)
        step = KINDS[container.kind].size_mm[0] / (2 * shares)
        slots = [(cx + math.cos(turn) * step * k, cy + math.sin(turn) * step * k)
                 for k in range(1 - shares, shares, 2)]
    else:
        slots = [(cx + SLOT_RADIUS_MM * math.cos(a), cy + SLOT_RADIUS_MM * math.sin(a))
                 for a in (math.pi / 2 + 2 * math.pi * k / 3 for k in range(3))]
    if not taken:
        return slots[0]
    return max(slots, key=lambda s: min(math.hypot(s[0] - t[0], s[1] - t[1]) for t in taken))


def _spot_beside(truth: SceneTruth, goal: GoalTruth, where: list[tuple[float, float]]
                 ) -> tuple[float, float] | None:
    """Where the model would set the item down for a relation to the target (left of, next
    to ...), as erarm's own goals read it, from where it sees things."""
    def as_seen(i: int, o: ObjectTruth) -> SceneObject:
        turn = math.radians(o.yaw_deg)  # a turned block's bounding box is wider than it
        across = min(o.size_mm[:2]) / (abs(math.cos(turn)) + abs(math.sin(turn))
                                       if o.kind == "block" else 1.1)  # a bowl: wall slabs
        return SceneObject(label=o.label, point=o.point or (500.0, 500.0),
                           position_mm=(*where[i], o.position_mm[2] + o.size_mm[2] / 2),
                           radius_mm=across / 2)

    visible = {i: as_seen(i, o) for i, o in enumerate(truth.objects) if o.point is not None}
    if goal.target not in visible:
        return None
    item = visible.get(goal.item) or as_seen(goal.item, truth.objects[goal.item])  # held
    wanted = TaskGoal(relation=Relation(goal.relation), item=item.label,
                      target=visible[goal.target].label, viewpoint=Viewpoint(goal.viewpoint))
    # a capable model sees where the table ends and how far the arm goes
    return place_for(wanted, item, visible[goal.target], list(visible.values()),
                     WorkspaceLimits())


NO_PLACE = "I see no free place on the table where the task wants the object, so I plan nothing."


@dataclass
class Transfer:
    """One pick and place the model means to do, in millimetres as it would call them."""

    item: str
    target: str
    relation: str
    pick: tuple[int, int]
    place: tuple[int, int]

    def calls(self) -> list[Move | SetGripperState]:
        return pick_and_place_calls(self.pick, self.place)

    def reads(self) -> str:
        return f"the {self.item} at {self.pick} mm {self.goes()}"

    def goes(self) -> str:
        where_to = {"inside": "into", "on": "onto"}.get(self.relation, self.relation)
        return f"{where_to} the {self.target} at {self.place} mm"


def transfers(truth: SceneTruth, prompt: str, mistakes: Mistakes) -> list[Transfer]:
    """The picks and places still to do, where the model sees things (`prompt`'s list of
    located objects); a goal whose target is itself still to be moved waits (a tower goes up
    from the bottom)."""
    pending = [g for g in truth.goals if not g.done]
    moving = {g.item for g in pending}
    ready = [g for g in pending if g.target not in moving] or pending[:1]
    where = _positions_mm(truth, prompt, mistakes)
    taken = {g.target: [tuple(truth.objects[d.item].position_mm[:2]) for d in truth.goals
                        if d.done and d.target == g.target] for g in ready}
    found = []
    for goal in ready:
        if goal.relation == "inside" or (goal.relation == "on" and
                                         holds_things(truth.objects[goal.target].kind)):
            spot = _release_spot(truth, goal.target, where, taken[goal.target])
            taken[goal.target].append(spot)
        elif goal.relation == "on":  # stacked
            spot = where[goal.target]
        else:
            spot = _spot_beside(truth, goal, where)
            if spot is None:
                continue
        found.append(Transfer(
            item=truth.objects[goal.item].label, target=truth.objects[goal.target].label,
            relation=goal.relation, pick=tuple(round(v) for v in where[goal.item]),
            place=tuple(round(v) for v in spot)))
    return found


def nothing_to_do(truth: SceneTruth) -> str | None:
    """What the model says when it plans nothing, or None when there is something to do."""
    if not truth.goals:
        return "I cannot tell what the task asks of these objects, so I plan nothing."
    if all(g.done for g in truth.goals):
        return "Everything the task asks for is already done: " + "; ".join(
            g.reason for g in truth.goals) + "."
    return None


def plan(truth: SceneTruth, prompt: str, mistakes: Mistakes) -> tuple[str, list[dict]]:
    """Reasoning and the robot-API calls for the goals not yet done."""
    done = nothing_to_do(truth)
    if done is not None:
        return done, []
    moves = transfers(truth, prompt, mistakes)
    if not moves:
        return NO_PLACE, []
    calls = [call.call() for move in moves for call in move.calls()] + [ReturnToOrigin().call()]
    reasoning = ("I will move " + "; then ".join(m.reads() for m in moves) + ", each time "
                 "moving above it high, opening the gripper, lowering, closing, lifting, carrying "
                 "it over, lowering and letting go; then I return to the origin.")
    return reasoning, calls


def judge(truth: SceneTruth, mistakes: Mistakes) -> dict:
    """Done or not, why, and how far (the share of goals done); a wrong verdict claims all or
    nothing."""
    done = bool(truth.goals) and all(g.done for g in truth.goals)
    reason = "; ".join(g.reason for g in truth.goals) or "I cannot tell"
    progress = round(100 * sum(g.done for g in truth.goals) / len(truth.goals)) if truth.goals \
        else 0
    if mistakes.settings.judge_always_done:
        done, progress = True, 100
    elif mistakes.happens("judge", mistakes.settings.judge_error_rate):
        done = not done
        progress = 100 if done else 0
    return {"done": done, "reason": reason, "progress": progress}


def goal_reading(truth: SceneTruth, mistakes: Mistakes) -> list[dict]:
    """The task as goals over the objects' labels, as a model reads it: the task's own goals,
    each now and then misread (item and target swapped, or another relation)."""
    rng, read = mistakes.rng, []
    for goal in truth.goals:
        entry = {"relation": goal.relation, "item": truth.objects[goal.item].label,
                 "target": truth.objects[goal.target].label, "viewpoint": goal.viewpoint}
        if mistakes.happens("misread", mistakes.settings.misread_rate):
            if rng.random() < 0.5:
                entry["item"], entry["target"] = entry["target"], entry["item"]
            else:
                entry["relation"] = rng.choice([r.value for r in Relation
                                                if r.value != goal.relation])
        read.append(entry)
    return read


def trajectory(truth: SceneTruth, prompt: str, mistakes: Mistakes) -> list[dict]:
    """From the object to move to its target, in a gentle arc (up the image), with pointing
    noise on every point."""
    count = int(m[1]) if (m := re.search(r"then (\d+) points", prompt)) else 15
    rng, sigma = mistakes.rng, mistakes.settings.pointing_sigma
    goal = next((g for g in truth.goals if not g.done), truth.goals[0] if truth.goals else None)
    visible = [o for o in truth.objects if o.point is not None]
    if goal is None or truth.objects[goal.item].point is None or \
            truth.objects[goal.target].point is None:
        return [{"point": [_grid(o.point[0]), _grid(o.point[1])], "label": "0"}
                for o in visible[:1]]
    (y0, x0), (y1, x1) = truth.objects[goal.item].point, truth.objects[goal.target].point
    path = []
    for i in range(count + 1):
        share = i / count
        y = y0 + (y1 - y0) * share - 120 * math.sin(math.pi * share)
        x = x0 + (x1 - x0) * share
        path.append({"point": [_grid(y + rng.gauss(0, sigma)), _grid(x + rng.gauss(0, sigma))],
                     "label": str(i)})
    return path


def answer(kind: str, truth: SceneTruth, prompt: str, structured: bool,
           mistakes: Mistakes) -> Answer:
    """One reply's text, wrapped in prose or cut off as the error model says."""
    if kind == "plan":
        reasoning, calls = plan(truth, prompt, mistakes)
        text = (json.dumps({"reasoning": reasoning, "calls": calls}) if structured
                else f"Reasoning: {reasoning}\n\n{json.dumps(calls, indent=1)}")
    elif kind == "judge":
        text = json.dumps(judge(truth, mistakes))
    elif kind == "goals":
        text = json.dumps(goal_reading(truth, mistakes))
    elif kind == "detect":
        text = json.dumps(boxes(truth, prompt, mistakes))
    elif kind == "locate":
        text = json.dumps(located(truth, prompt, mistakes))
    elif kind == "trajectory":
        text = json.dumps(trajectory(truth, prompt, mistakes))
    else:
        text = json.dumps(points(truth, prompt, mistakes))
    settings, rng = mistakes.settings, mistakes.rng
    if mistakes.happens("prose", settings.prose_rate):
        text = (f"```json\n{text}\n```" if rng.random() < 0.5
                else f"Here is what I found in the image:\n{text}\nLet me know if you need more.")
    if mistakes.happens("max_tokens", settings.max_tokens_rate):
        return Answer(text=text[:max(1, int(len(text) * rng.uniform(0.3, 0.8)))],
                      finish="MAX_TOKENS")
    return Answer(text=text)
