"""Typed forms of what brains say, in the Gemini Robotics-ER formats.

Image coordinates are normalized to 0-1000 and ordered [y, x] as the model gives them; robot
coordinates the model sees are millimetres in the robot base frame.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictFloat,
)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


# Strict: a bool or a string where a number belongs is an error, never a silent conversion.
Normalized = Annotated[StrictFloat, Field(ge=0, le=1000), AfterValidator(_finite)]
Millimetres = Annotated[StrictFloat, AfterValidator(_finite)]


class Point(BaseModel):
    """`{"point": [y, x], "label": ...}`"""

    model_config = ConfigDict(extra="ignore")

    point: tuple[Normalized, Normalized]
    label: str

    @property
    def y(self) -> float:
        return self.point[0]

    @property
    def x(self) -> float:
        return self.point[1]


class Box(BaseModel):
    """`{"box_2d": [ymin, xmin, ymax, xmax], "label": ...}`"""

    model_config = ConfigDict(extra="ignore")

    box_2d: tuple[Normalized, Normalized, Normalized, Normalized]
    label: str

    def ordered(self) -> bool:
        """Whether its corners are in [ymin, xmin, ymax, xmax] order."""
        ymin, xmin, ymax, xmax = self.box_2d
        return ymin <= ymax and xmin <= xmax

    def contains(self, point: Point) -> bool:
        ymin, xmin, ymax, xmax = self.box_2d
        return ymin <= point.y <= ymax and xmin <= point.x <= xmax


def box_for(point: Point, boxes: list[Box]) -> Box | None:
    """The box with the point's label (of several, the one around it or nearest it), else the
    smallest box around the point."""
    same = [b for b in boxes if b.label == point.label]
    if same:
        return min(same, key=lambda b: (not b.contains(point),
                                        ((b.box_2d[0] + b.box_2d[2]) / 2 - point.y) ** 2
                                        + ((b.box_2d[1] + b.box_2d[3]) / 2 - point.x) ** 2))
    around = [b for b in boxes if b.contains(point)]
    return min(around, key=lambda b: (b.box_2d[2] - b.box_2d[0]) * (b.box_2d[3] - b.box_2d[1]),
               default=None)


class Move(BaseModel):
    """move(x, y, high): x, y in millimetres in the robot base frame; high = travel height."""

    function: Literal["move"] = "move"
    x: Millimetres
    y: Millimetres
    high: StrictBool

    def call(self) -> dict:
        return {"function": "move", "args": [self.x, self.y, self.high]}


class SetGripperState(BaseModel):
    """setGripperState(opened)"""

    function: Literal["setGripperState"] = "setGripperState"
    opened: StrictBool

    def call(self) -> dict:
        return {"function": "setGripperState", "args": [self.opened]}


class ReturnToOrigin(BaseModel):
    """returnToOrigin()"""

    function: Literal["returnToOrigin"] = "returnToOrigin"

    def call(self) -> dict:
        return {"function": "returnToOrigin", "args": []}


Call = Move | SetGripperState | ReturnToOrigin


def describe(call: Call | dict) -> str:
    """A call as it would be written in code: move(412, 87, true)."""
    record = call if isinstance(call, dict) else call.call()
    args = ", ".join(str(a).lower() if isinstance(a, bool) else f"{a:g}" if isinstance(a, float)
                     else str(a) for a in record["args"])
    return f"{record['function']}({args})"

# Positional parameter names of each function in the robot API, in order.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "move": ("x", "y", "high"),
    "setGripperState": ("opened",),
    "returnToOrigin": (),
}
CALL_TYPES: dict[str, type[BaseModel]] = {
    "move": Move, "setGripperState": SetGripperState, "returnToOrigin": ReturnToOrigin}
def function_call(call: Call) -> dict:
    """A call as a model's function call makes it: `{"name", "args"}`, arguments by name."""
    return {"name": call.function, "args": call.model_dump(exclude={"function"})}


# Functions a model that orchestrates step by step may also call: they look, and move nothing.
OBSERVATIONS = ("look", "gripperState")


def _from_record(value: object) -> object:
    """`{"function": ..., "args": [...]}`, as records hold a call, to the call's fields."""
    if isinstance(value, dict) and "args" in value and value.get("function") in SIGNATURES:
        return {"function": value["function"],
                **dict(zip(SIGNATURES[value["function"]], value["args"], strict=False))}
    return value


# A typed call that records (plan.json, result.json) keep in the robot API's own form,
# {"function": "move", "args": [412, 87, true]}, and read back from it.
RecordedCall = Annotated[Call, BeforeValidator(_from_record),
                         PlainSerializer(lambda call: call.call(), return_type=dict)]


class Plan(BaseModel):
    reasoning: str = ""
    calls: list[Call]
    notes: list[str] = []  # how the plan was read, e.g. which of several JSON blocks

    def as_json(self) -> list[dict]:
        return [call.call() for call in self.calls]


class SceneObject(BaseModel):
    """One perceived object: where the brain saw it and where it is for the robot."""

    label: str
    point: tuple[float, float]  # normalized [y, x]
    box_2d: tuple[float, float, float, float] | None = None  # normalized [ymin, xmin, ymax, xmax]
    position_mm: tuple[float, float, float]  # robot base frame
    radius_mm: float = 0.0  # half its width on the table, from its box (0: unknown)
    # a rectangular container (a basket, a bin): half its length and half its width, and the
    # direction of its length in the robot base frame; None for anything round or unmeasured
    extent_mm: tuple[float, float] | None = None
    yaw_deg: float = 0.0

    def rounded(self) -> SceneObject:
        """The same, to 0.1 mm: as records keep it."""
        return self.model_copy(update={
            "position_mm": tuple(round(v, 1) for v in self.position_mm),
            "radius_mm": round(self.radius_mm, 1),
            "extent_mm": self.extent_mm and tuple(round(v, 1) for v in self.extent_mm),
            "yaw_deg": round(self.yaw_deg, 1)})

    def local_mm(self, x: float, y: float) -> tuple[float, float]:
        """(x, y) in millimetres relative to its centre, along its length and across it."""
        dx, dy = x - self.position_mm[0], y - self.position_mm[1]
        turn = math.radians(self.yaw_deg)
        return (dx * math.cos(turn) + dy * math.sin(turn),
                -dx * math.sin(turn) + dy * math.cos(turn))

    def reach_mm(self, x: float, y: float) -> float:
        """How far it reaches from its centre towards (x, y): its radius, or for a rectangle
        the distance to its side that way."""
        if self.extent_mm is None:
            return self.radius_mm
        u, v = self.local_mm(x, y)
        length = math.hypot(u, v)
        if length == 0:
            return min(self.extent_mm)
        return min(self.extent_mm[0] * length / abs(u) if u else math.inf,
                   self.extent_mm[1] * length / abs(v) if v else math.inf)


def listing(objects: list[SceneObject]) -> str:
    """Located objects as the prompts list them: label, x, y in millimetres, top and width."""
    return "\n".join(f"- {o.label}: {o.position_mm[0]:.0f}, {o.position_mm[1]:.0f} "
                     f"(top {o.position_mm[2]:.0f} mm, {2 * o.radius_mm:.0f} mm across)"
                     for o in objects) or "- (none)"


class Verdict(BaseModel):
    """The model's judgement of whether a task is done, from before and after images."""

    done: StrictBool
    reason: str
    # how much of the task is done, in percent (Robotics-ER 2's progress understanding)
    progress: Annotated[int, Field(ge=0, le=100)] | None = None


class StatedGoal(BaseModel):
    """One goal as the model reads it from a task: `{"relation", "item", "target",
    "viewpoint"}` over the labels of what it sees (erarm checks it before using it)."""

    model_config = ConfigDict(extra="ignore")

    relation: str
    item: str
    target: str
    viewpoint: Literal["camera", "robot"] = "camera"


# -- Structured output ---------------------------------------------------------------------
# The JSON schemas erarm asks Gemini to answer in, generated from the same models the parser
# validates with. Gemini's structured output takes a subset of JSON Schema, so `const` becomes a
# one-value `enum` and keywords it does not know are dropped (the parser still checks them).

_GEMINI_SCHEMA_KEYS = {
    "$id", "$defs", "$ref", "$anchor", "type", "format", "title", "description", "enum", "items",
    "prefixItems", "minItems", "maxItems", "minimum", "maximum", "anyOf", "oneOf", "properties",
    "additionalProperties", "required", "propertyOrdering"}


def gemini_schema(schema: object) -> object:
    """A JSON schema rewritten into the subset Gemini's structured output accepts."""
    if isinstance(schema, list):
        return [gemini_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key == "const":
            result["enum"] = [value]
        elif key in ("properties", "$defs"):
            result[key] = {name: gemini_schema(sub) for name, sub in value.items()}
        elif key in _GEMINI_SCHEMA_KEYS:
            result[key] = gemini_schema(value)
    return result


def _call_schema(name: str) -> dict:
    """`{"function": name, "args": [...]}` with args typed from the call's model fields."""
    fields = CALL_TYPES[name].model_json_schema()["properties"]
    params = SIGNATURES[name]
    return {"type": "object",
            "properties": {"function": {"type": "string", "enum": [name]},
                           "args": {"type": "array", "prefixItems": [fields[p] for p in params],
                                    "minItems": len(params), "maxItems": len(params)}},
            "required": ["function", "args"], "propertyOrdering": ["function", "args"]}


def response_schema(kind: str) -> dict:
    """The structured-output schema for one kind of question."""
    if kind in ("point", "trajectory"):
        schema: dict = {"type": "array", "items": Point.model_json_schema()}
    elif kind == "detect":
        schema = {"type": "array", "items": Box.model_json_schema()}
    elif kind == "locate":  # a point and a box per object, in one reply
        point, box = Point.model_json_schema(), Box.model_json_schema()
        schema = {"type": "array", "items": {
            "type": "object", "properties": {**point["properties"], **box["properties"]},
            "required": ["point", "box_2d", "label"]}}
    elif kind == "plan":
        schema = {"type": "object",
                  "properties": {"reasoning": {"type": "string"},
                                 "calls": {"type": "array",
                                           "items": {"anyOf": [_call_schema(name)
                                                               for name in SIGNATURES]}}},
                  "required": ["reasoning", "calls"], "propertyOrdering": ["reasoning", "calls"]}
    elif kind == "judge":
        schema = Verdict.model_json_schema()
    elif kind == "goals":
        schema = {"type": "array", "items": StatedGoal.model_json_schema()}
    else:
        raise ValueError(f"no response schema for {kind!r}")
    return gemini_schema(schema)
