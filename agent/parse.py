"""One parser for every brain: model text in, typed points, boxes and plans out.

Replies come as the Robotics-ER docs show them: bare JSON, JSON in code fences, reasoning followed
by JSON, or a markdown list of one-element JSON arrays. Anything that does not fit raises
`ReplyError` with a one-line message; nothing else escapes.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.errors import ReplyError
from agent.schemas import CALL_TYPES, SIGNATURES, Box, Call, Plan, Point, Verdict

_DECODER = json.JSONDecoder()
MAX_DECODE_ATTEMPTS = 5000


def _snippet(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def json_values(text: str) -> list[tuple[int, int, Any]]:
    """Every top-level JSON array or object embedded in `text`, as (start, end, value)."""
    if not isinstance(text, str):
        raise ReplyError(f"expected the model's reply as text, got {type(text).__name__}")
    found: list[tuple[int, int, Any]] = []
    index, attempts = 0, 0
    while attempts < MAX_DECODE_ATTEMPTS:
        starts = [i for i in (text.find("[", index), text.find("{", index)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        attempts += 1
        try:
            value, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            index = start + 1
            continue
        found.append((start, end, value))
        index = end
    return found


def _lists_of(text: str, key: str) -> list[tuple[int, list[dict]]]:
    """JSON lists whose items are all objects carrying `key` (empty lists count)."""
    return [(start, value) for start, _, value in json_values(text)
            if isinstance(value, list)
            and all(isinstance(item, dict) and key in item for item in value)]


def _validate_items(model: type[BaseModel], items: list[dict], what: str) -> list:
    parsed = []
    for number, item in enumerate(items, 1):
        try:
            parsed.append(model.model_validate(item))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ReplyError(f"{what} {number}: {where}: {first['msg']}") from None
    return parsed


def parse_points(text: str) -> list[Point]:
    """`[{"point": [y, x], "label": ...}, ...]`, possibly split over several lists."""
    lists = _lists_of(text, "point")
    if not lists:
        raise ReplyError(f"no JSON list of points in the reply: {_snippet(text)!r}")
    return _validate_items(Point, [item for _, items in lists for item in items], "point")


def parse_boxes(text: str) -> list[Box]:
    """`[{"box_2d": [ymin, xmin, ymax, xmax], "label": ...}, ...]`"""
    lists = _lists_of(text, "box_2d")
    if not lists:
        raise ReplyError(f"no JSON list of boxes in the reply: {_snippet(text)!r}")
    boxes = _validate_items(Box, [item for _, items in lists for item in items], "box")
    for number, box in enumerate(boxes, 1):
        ymin, xmin, ymax, xmax = box.box_2d
        if ymin > ymax or xmin > xmax:
            raise ReplyError(f"box {number} ({box.label!r}) has its corners swapped")
    return boxes


def _check_number(step: int, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReplyError(f"step {step}: {name} must be a number, got {json.dumps(value)}")
    if not math.isfinite(value):
        raise ReplyError(f"step {step}: {name} must be finite, got {value}")


def parse_call(step: int, item: dict) -> Call:
    """One `{"function": name, "args": [...] or {...}}` into a typed call."""
    name = item.get("function")
    if not isinstance(name, str) or name not in SIGNATURES:
        known = ", ".join(SIGNATURES)
        raise ReplyError(f"step {step}: unknown function {json.dumps(name)} (known: {known})")
    params = SIGNATURES[name]
    args = item.get("args", [])
    if isinstance(args, list):
        if len(args) != len(params):
            raise ReplyError(f"step {step}: {name} takes {len(params)} argument(s) "
                             f"({', '.join(params) or 'none'}), got {len(args)}")
        named = dict(zip(params, args, strict=True))
    elif isinstance(args, dict):
        if set(args) != set(params):
            raise ReplyError(f"step {step}: {name} takes arguments ({', '.join(params)}), "
                             f"got ({', '.join(map(str, args))})")
        named = args
    else:
        raise ReplyError(f"step {step}: args of {name} must be a list or an object")
    for param, value in named.items():
        if param in ("x", "y"):
            _check_number(step, param, value)
        elif not isinstance(value, bool):
            raise ReplyError(f"step {step}: {param} must be true or false, "
                             f"got {json.dumps(value)}")
    return CALL_TYPES[name].model_validate(named)


def parse_plan(text: str) -> Plan:
    """Reasoning text followed by a JSON list of robot calls, or the structured-output object
    `{"reasoning": ..., "calls": [...]}`. When several lists of calls appear, the last one is the
    plan (models often draft, then answer)."""
    candidates: list[tuple[str, list[dict]]] = []
    for start, _, value in json_values(text):
        if isinstance(value, dict) and isinstance(value.get("calls"), list):
            reasoning = value.get("reasoning")
            candidates.append((reasoning if isinstance(reasoning, str) else "", value["calls"]))
        elif (isinstance(value, list) and value
              and all(isinstance(item, dict) and "function" in item for item in value)):
            candidates.append((text[:start].strip(), value))
    if not candidates:
        raise ReplyError(f"no JSON list of function calls in the reply: {_snippet(text)!r}")
    reasoning, items = candidates[-1]
    if not all(isinstance(item, dict) for item in items):
        raise ReplyError("the plan's calls must be JSON objects")
    calls = [parse_call(step, item) for step, item in enumerate(items, 1)]
    return Plan(reasoning=reasoning, calls=calls)


def parse_trajectory(text: str) -> list[Point]:
    """Points labelled "0".."n" in path order, as the docs' trajectory prompt asks."""
    points = parse_points(text)
    if len(points) < 2:
        raise ReplyError(f"a trajectory needs at least 2 points, got {len(points)}")
    try:
        order = [int(p.label) for p in points]
    except ValueError:
        raise ReplyError("trajectory points must be labelled by their order: '0', '1', ...") \
            from None
    if sorted(order) != list(range(len(points))):
        raise ReplyError(f"trajectory labels must run 0..{len(points) - 1}, got {sorted(order)}")
    return [p for _, p in sorted(zip(order, points, strict=True), key=lambda pair: pair[0])]


def parse_verdict(text: str) -> Verdict:
    """`{"done": true|false, "reason": "..."}`"""
    objects = [value for _, _, value in json_values(text)
               if isinstance(value, dict) and "done" in value]
    if not objects:
        raise ReplyError(f"no JSON verdict with \"done\" in the reply: {_snippet(text)!r}")
    return _validate_items(Verdict, objects[-1:], "verdict")[0]
