"""One parser for every brain: model text in, typed points, boxes and plans out.

Replies come as the Robotics-ER docs show them: bare JSON, JSON in code fences, reasoning followed
by JSON, or a markdown list of one-element JSON arrays. Anything that does not fit raises
`ReplyError` with a one-line message; nothing else escapes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.errors import ReplyError
from agent.schemas import CALL_TYPES, SIGNATURES, Box, Call, Plan, Point, Verdict

_SYNTAX = re.compile(r'[\[\]{}"\n\\]')
MAX_REPLY_CHARS = 4_000_000  # a reply longer than this is refused unread
MAX_NESTING = 64  # JSON nested deeper than this is not a plan, points or boxes
MAX_PLAN_CALLS = 1000  # far beyond any robot's step limit; longer lists are not plans


def _snippet(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _bracket_spans(text: str) -> list[tuple[int, int]]:
    """Balanced [...] and {...} spans, in one pass: brackets inside JSON strings do not count,
    a string that meets a raw newline was prose (JSON strings never span lines), and a
    mismatched closer abandons what was open."""
    spans: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    in_string, skip = False, -1
    for match in _SYNTAX.finditer(text):
        char, pos = match.group(), match.start()
        if pos == skip:
            continue
        if in_string:
            if char == "\\":
                skip = pos + 1
            elif char == '"':
                in_string = False
            elif char == "\n":
                in_string = False
                stack.clear()
        elif char == '"':
            in_string = bool(stack)
        elif char in "[{":
            stack.append((char, pos))
        elif char in "]}":
            if stack and stack[-1][0] == ("[" if char == "]" else "{"):
                _, start = stack.pop()
                if len(stack) < MAX_NESTING:
                    spans.append((start, pos + 1))
            else:
                stack.clear()
    return sorted(spans, key=lambda span: (span[0], -span[1]))


def json_values(text: str) -> list[tuple[int, int, Any]]:
    """Every outermost JSON array or object embedded in `text`, as (start, end, value).

    Linear in the text: one pass finds balanced bracket spans, and only those are decoded,
    outermost first; a span that is not JSON gives way to the spans inside it."""
    if not isinstance(text, str):
        raise ReplyError(f"expected the model's reply as text, got {type(text).__name__}")
    if len(text) > MAX_REPLY_CHARS:
        raise ReplyError(f"the reply is {len(text):,} characters long; erarm reads at most "
                         f"{MAX_REPLY_CHARS:,}")
    found: list[tuple[int, int, Any]] = []
    taken_until = 0
    for start, end in _bracket_spans(text):
        if start < taken_until:
            continue  # inside a value already found
        try:
            value = json.loads(text[start:end])
        except (ValueError, RecursionError):  # not JSON, or nested too deep to decode
            continue
        found.append((start, end, value))
        taken_until = end
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
            given = ", ".join(json.dumps(key) for key in args)
            raise ReplyError(f"step {step}: {name} takes arguments ({', '.join(params)}), "
                             f"got ({given})")
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


def _as_call(item: Any) -> dict | None:
    """A call in any of the forms models use, as {"function": ..., "args": ...}: the docs'
    `{"function", "args"}`, Gemini's `{"name", "args"}` and its `{"functionCall": {...}}` part."""
    if not isinstance(item, dict):
        return None
    for wrapper in ("functionCall", "function_call"):
        if isinstance(item.get(wrapper), dict):
            item = item[wrapper]
    if "function" in item:
        return item
    if isinstance(item.get("name"), str) and set(item) <= {"name", "args", "id"}:
        return {"function": item["name"], "args": item.get("args", {})}
    return None


def _calls_in(value: Any) -> list[dict] | None:
    """The calls a JSON value holds: a list of calls, or an object with one under "calls" (the
    structured-output answer) or "plan" (erarm's own plan.json)."""
    if isinstance(value, dict):
        value = next((value[key] for key in ("calls", "plan") if isinstance(value.get(key), list)),
                     None)
    if not isinstance(value, list) or not value:
        return None
    calls = [_as_call(item) for item in value]
    return None if any(call is None for call in calls) else calls


def parse_plan(text: str) -> Plan:
    """Reasoning text followed by a JSON list of robot calls, or the structured-output object
    `{"reasoning": ..., "calls": [...]}`. When several lists of calls appear, the last one is the
    plan (models often draft, then answer), and the plan's notes say so. An empty list, with no
    calls anywhere, is a plan with no calls: the brain says the task is already done."""
    values = json_values(text)
    candidates: list[tuple[int, str, list[dict]]] = []
    finished: str | None = None  # the reasoning before an empty list: nothing left to do
    for block, (start, _, value) in enumerate(values, 1):
        reasoning = value.get("reasoning") if isinstance(value, dict) else text[:start].strip()
        reasoning = reasoning if isinstance(reasoning, str) else ""
        if value == [] or (isinstance(value, dict) and value.get("calls") == []):
            finished = reasoning
            continue
        calls = _calls_in(value)
        if calls is not None:
            candidates.append((block, reasoning, calls))
    if not candidates:
        if finished is not None:
            return Plan(reasoning=finished, calls=[])
        raise ReplyError(f"no JSON list of function calls in the reply: {_snippet(text)!r}")
    block, reasoning, items = candidates[-1]
    if len(items) > MAX_PLAN_CALLS:
        raise ReplyError(f"the plan has {len(items):,} calls; erarm reads at most "
                         f"{MAX_PLAN_CALLS:,}")
    notes = []
    if len(candidates) > 1:
        notes.append(f"the reply held {len(candidates)} lists of calls; erarm used the last "
                     f"(JSON block {block} of {len(values)})")
    calls = [parse_call(step, item) for step, item in enumerate(items, 1)]
    return Plan(reasoning=reasoning, calls=calls, notes=notes)


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
