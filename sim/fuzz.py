"""A fuzzer of plans, judged by the simulator's truth: whatever plan erarm accepts, nothing on the
table moves except the object the plan carries.

Each case is a pick and place of a random object to a random spot, then mutated as a careless or
hostile model would write it (a `high` flipped, a call dropped or repeated, a spot shifted, an
extra move, a gripper opened early). erarm validates it against what its camera sees, as any plan
is, and runs it when it passes; the referee compares every object's true position before and
after. A case fails when an accepted plan moved an object it did not carry.
"""

from __future__ import annotations

import math
import random
import tempfile
from pathlib import Path

from pydantic import BaseModel

TASK = "pick the blue block into the orange bowl"
MOVED_MM = 15.0  # an object that ends this far from where it was has been moved
CARRIED_MM = 30.0  # the carried object is the one this close to where the gripper closed


class FuzzCase(BaseModel):
    seed: int
    calls: list[dict]
    accepted: bool
    refusal: str | None = None  # why erarm refused it
    carried: list[str] = []  # the objects at the spots where the gripper closed down low
    moved: dict[str, float] = {}  # objects that moved, and how far (mm)
    error: str | None = None  # how an accepted plan ended, when it did not finish

    @property
    def ok(self) -> bool:
        """Nothing moved that the plan did not carry."""
        return all(label in self.carried for label in self.moved)


def _call(function: str, *args) -> dict:
    return {"function": function, "args": list(args)}


def pick_and_place(grasp: tuple[float, float], place: tuple[float, float]) -> list[dict]:
    """The docs' pick and place, in millimetres."""
    return [_call("move", *grasp, True), _call("setGripperState", True),
            _call("move", *grasp, False), _call("setGripperState", False),
            _call("move", *grasp, True), _call("move", *place, True),
            _call("move", *place, False), _call("setGripperState", True),
            _call("move", *place, True), _call("returnToOrigin")]


def mutate(calls: list[dict], rng: random.Random, spots: list[tuple[float, float]]
           ) -> list[dict]:
    """One to three careless or hostile edits of a plan."""
    calls = [dict(c, args=list(c["args"])) for c in calls]
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(calls))
        call, kind = calls[index], rng.choice(["flip", "drop", "repeat", "shift", "insert",
                                               "open", "swap"])
        if kind == "flip" and call["function"] == "move":
            call["args"][2] = not call["args"][2]
        elif kind == "drop" and len(calls) > 2:
            calls.pop(index)
        elif kind == "repeat":
            calls.insert(index, dict(call, args=list(call["args"])))
        elif kind == "shift" and call["function"] == "move":
            call["args"][:2] = [round(v + rng.uniform(-60, 60)) for v in call["args"][:2]]
        elif kind == "insert":
            x, y = rng.choice(spots)
            calls.insert(index, _call("move", round(x + rng.uniform(-30, 30)),
                                      round(y + rng.uniform(-30, 30)), rng.random() < 0.5))
        elif kind == "open":
            calls.insert(index, _call("setGripperState", rng.random() < 0.7))
        elif kind == "swap" and index + 1 < len(calls):
            calls[index], calls[index + 1] = calls[index + 1], calls[index]
    return calls


def _grasp_spots(calls: list[dict]) -> list[tuple[float, float]]:
    """Where the calls close the gripper with the tool down low."""
    spots, low_at = [], None
    for call in calls:
        if call["function"] == "move":
            low_at = None if call["args"][2] else tuple(call["args"][:2])
        elif call["function"] == "setGripperState" and call["args"][0] is False and low_at:
            spots.append(low_at)
        elif call["function"] == "returnToOrigin":
            low_at = None
    return spots


def run_case(seed: int, out: Path | None = None) -> FuzzCase:
    """One seeded case on a fresh simulated table."""
    from erarm.agent.api import execute_plan
    from erarm.robots.registry import open_workcell

    rng = random.Random(seed)
    cell = open_workcell("sim", task=TASK, seed=seed % 50)
    try:
        cell.robot.connect()
        truth = {o["label"]: o["position_mm"] for o in cell.robot.world.object_report()}
        spots = [tuple(p[:2]) for p in truth.values()]
        grasp = rng.choice([s for label, s in zip(truth, spots, strict=True)
                            if label.endswith("block")])
        place = rng.choice([*spots, (rng.uniform(250, 600), rng.uniform(-300, 300))])
        calls = mutate(pick_and_place(grasp, place), rng, spots)
        with tempfile.TemporaryDirectory() as scratch:
            result = execute_plan(calls, cell, task=TASK, out=(out or Path(scratch)) / "run")
        after = {o["label"]: o["position_mm"] for o in cell.robot.world.object_report()}
    finally:
        cell.close()
    moved = {label: round(math.dist(truth[label], after[label]), 1) for label in truth
             if math.dist(truth[label], after[label]) > MOVED_MM}
    carried = sorted({label for label, p in truth.items() for x, y in _grasp_spots(calls)
                      if math.dist(p[:2], (x, y)) <= CARRIED_MM})
    accepted = result.steps_executed > 0
    return FuzzCase(seed=seed, calls=calls, accepted=accepted,
                    refusal=None if accepted else result.error, carried=carried, moved=moved,
                    error=result.error if accepted else None)
