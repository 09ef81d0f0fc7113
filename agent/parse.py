"""One parser for every brain: model text in, typed points, boxes and plans out.

Replies come as the Robotics-ER docs show them: bare JSON, JSON in code fences, reasoning followed
by JSON, or a markdown list of one-element JSON arrays. Anything that does not fit raises
`ReplyError` with a one-line message; nothing else escapes.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from erarm.agent.errors import ReplyError
from erarm.agent.schemas import CALL_TYPES, SIGNATURES, Box, Call, Plan, Point, Verdict

_SYNTAX = re.compile(r'[\[{]+|[\]}"]')
_STRING_REST = re.compile(r'(?:[^"\\\n]++|\\[\s\S])*+(["\n])?')  # after a string's opening quote
MAX_REPLY_CHARS = 4_000_000  # a reply longer than this is refused unread
MAX_NESTING = 64  # JSON nested deeper than this is not a plan, points or boxes
MAX_PLAN_CALLS = 1000  # far beyond any robot's step limit; longer lists are not plans
MAX_INTEGER_DIGITS = 15  # every integer up to this many digits is exact as a float
MAX_DROP_WARNINGS = 10  # one warning per dropped entry up to this many, then a count
# The keys each call form may hold; any other key refuses the plan (a "speed" is never ignored).
CALL_KEYS = frozenset({"function", "args"})  # the docs' {"function": ..., "args": ...}
FUNCTION_CALL_KEYS = frozenset({"name", "args", "id"})  # Gemini's FunctionCall
PART_KEYS = frozenset({"functionCall", "function_call", "thoughtSignature", "thought_signature"})

Item = TypeVar("Item", Point, Box)


@dataclass(frozen=True)
class HugeNumber:
    """A number literal erarm will not read: an integer with more digits than a float keeps
    exactly, or a decimal beyond a float's range. It stands in the decoded JSON where the number
    was, so the check that expects a number refuses it by name (no OverflowError, no infinity)."""

    literal: str

    def __str__(self) -> str:
        digits = self.literal.lstrip("-")
        if digits.isdigit():
            return (f"a {len(digits):,}-digit integer (erarm reads at most {MAX_INTEGER_DIGITS} "
                    "digits)")
        return f"{_snippet(self.literal, 40)}, beyond the largest number (about 1.8e308)"


def _decode_int(literal: str) -> int | HugeNumber:
    if len(literal) <= MAX_INTEGER_DIGITS or len(literal.lstrip("-")) <= MAX_INTEGER_DIGITS:
        # (the first test is the fast path: this runs for every integer in every reply)
        return int(literal)
    return HugeNumber(literal)


def _decode_float(literal: str) -> float | HugeNumber:
    value = float(literal)
    return value if math.isfinite(value) else HugeNumber(literal)


_DECODER = json.JSONDecoder(parse_int=_decode_int, parse_float=_decode_float)


@dataclass(frozen=True)
class Reading(Generic[Item]):
    """The valid entries of a points or boxes reply, and what was wrong with each one dropped."""

    items: list[Item]
    dropped: list[str]  # "box 3 ('cup') has its corners swapped", ...
    what: str  # "point" or "box"

    @property
    def warnings(self) -> list[str]:
        """One line per dropped entry, the first MAX_DROP_WARNINGS of them, then a count."""
        lines = [f"ignored {problem}" for problem in self.dropped[:MAX_DROP_WARNINGS]]
        if len(self.dropped) > MAX_DROP_WARNINGS:
            lines.append(f"ignored {len(self.dropped) - MAX_DROP_WARNINGS:,} more malformed "
                         "entries")
        if lines:
            lines[-1] += (f" (kept {len(self.items)} of {len(self.items) + len(self.dropped)} "
                          f"{self.what} entries)")
        return lines


def _snippet(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _shown(value: Any, limit: int = 60) -> str:
    """A decoded JSON value as it would be written, cut to one short line."""
    return _snippet(json.dumps(value, default=str), limit)


def _bracket_spans(text: str) -> list[tuple[int, int]]:
    """Balanced [...] and {...} spans, in one pass: brackets inside JSON strings do not count,
    a string that meets a raw newline was prose (JSON strings never span lines), and a
    mismatched closer abandons what was open. A string inside brackets is skipped whole by one
    regex match, so each character is looked at once."""
    spans: list[tuple[int, int]] = []
    opened: list[str] = []  # the brackets open now, innermost last
    starts: list[int] = []  # where the outer MAX_NESTING of them opened (deeper make no span)
    pos: int | None = 0
    while pos is not None:
        resume, pos = pos, None
        for match in _SYNTAX.finditer(text, resume):
            token = match.group()  # a quote, a closer, or a run of openers
            if token == '"':
                if not opened:
                    continue  # a quote in prose
                string = _STRING_REST.match(text, match.end())
                if string.group(1) != '"':  # cut by a raw newline or the end of the text
                    opened.clear()
                    starts.clear()
                pos = string.end()
                break  # resume after the string
            if token[0] in "[{":  # a run of openers, taken at once
                start, room = match.start(), MAX_NESTING - len(opened)
                starts.extend(range(start, start + min(max(room, 0), len(token))))
                opened.extend(token)
            elif opened and opened[-1] == ("[" if token == "]" else "{"):
                opened.pop()
                if len(opened) < MAX_NESTING:
                    spans.append((starts.pop(), match.end()))
            else:
                opened.clear()
                starts.clear()
    return sorted(spans, key=lambda span: (span[0], -span[1]))


def json_values(text: str) -> list[tuple[int, int, Any]]:
    """Every outermost JSON array or object embedded in `text`, as (start, end, value).

    Linear in the text: one pass finds balanced bracket spans, and only those are decoded, in
    place and outermost first; a span that is not JSON gives way to the spans inside it (at most
    MAX_NESTING deep). Numbers too large to read decode as `HugeNumber`."""
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
            value, stop = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to decode
            continue
        if stop != end:
            continue
        found.append((start, end, value))
        taken_until = end
    return found


def _read(text: str, key: str, model: type[Item], what: str) -> Reading[Item]:
    """The entries of every JSON list holding objects that carry `key` (empty lists count),
    validated one by one: a malformed entry is dropped and described, the rest are kept."""
    lists = [value for _, _, value in json_values(text) if isinstance(value, list)
             and (not value or any(isinstance(item, dict) and key in item for item in value))]
    if not lists:
        raise ReplyError(f"no JSON list of {what}s in the reply: {_snippet(text)!r}")
    items: list[Item] = []
    dropped: list[str] = []
    for number, entry in enumerate((entry for entries in lists for entry in entries), 1):
        try:
            item = model.model_validate(entry)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            dropped.append(f"{what} {number}: {where + ': ' if where else ''}{first['msg']}")
            continue
        if isinstance(item, Box) and not item.ordered():
            dropped.append(f"{what} {number} ({_snippet(item.label, 40)!r}) has its corners "
                           "swapped")
            continue
        items.append(item)
    if dropped and not items:
        more = f" (and {len(dropped) - 1:,} more)" if len(dropped) > 1 else ""
        raise ReplyError(f"no valid {what} in the reply: {dropped[0]}{more}")
    return Reading(items=items, dropped=dropped, what=what)


def read_points(text: str) -> Reading[Point]:
    """`[{"point": [y, x], "label": ...}, ...]`, possibly split over several lists; malformed
    entries are dropped with a warning, and the reply fails only when none is valid."""
    return _read(text, "point", Point, "point")


def read_boxes(text: str) -> Reading[Box]:
    """`[{"box_2d": [ymin, xmin, ymax, xmax], "label": ...}, ...]`, malformed entries dropped
    with a warning as in `read_points`."""
    return _read(text, "box_2d", Box, "box")


def parse_points(text: str) -> list[Point]:
    """The valid points of a reply (`read_points` also says which entries it dropped)."""
    return read_points(text).items


def parse_boxes(text: str) -> list[Box]:
    """The valid boxes of a reply (`read_boxes` also says which entries it dropped)."""
    return read_boxes(text).items


def _check_number(step: int, name: str, value: Any) -> None:
    if isinstance(value, HugeNumber):
        raise ReplyError(f"step {step}: {name} is {value}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReplyError(f"step {step}: {name} must be a number, got {_shown(value)}")
    if not math.isfinite(value):
        raise ReplyError(f"step {step}: {name} must be finite, got {value}")


@dataclass(frozen=True)
class RawCall:
    """A call as written, in any form: its function, its args, and keys no call form holds."""

    function: Any
    args: Any
    unknown: tuple[str, ...] = ()


def parse_call(step: int, call: RawCall) -> Call:
    """One call into a typed call; every key, argument and value is checked."""
    name = call.function
    if not isinstance(name, str) or name not in SIGNATURES:
        known = ", ".join(SIGNATURES)
        raise ReplyError(f"step {step}: unknown function {_shown(name)} (known: {known})")
    if call.unknown:
        raise ReplyError(f"step {step}: {name} has an unknown key {_shown(call.unknown[0])} (a "
                         "call holds only its function and its args)")
    params = SIGNATURES[name]
    args = call.args
    if isinstance(args, list):
        if len(args) != len(params):
            raise ReplyError(f"step {step}: {name} takes {len(params)} argument(s) "
                             f"({', '.join(params) or 'none'}), got {len(args)}")
        named = dict(zip(params, args, strict=True))
    elif isinstance(args, dict):
        unknown = [key for key in args if key not in params]
        if unknown:
            raise ReplyError(f"step {step}: {name} has an unknown argument {_shown(unknown[0])} "
                             f"(it takes {', '.join(params) or 'none'})")
        if set(args) != set(params):
            given = _snippet(", ".join(_shown(key) for key in args))
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
                             f"got {_shown(value)}")
    return CALL_TYPES[name].model_validate(named)


def _as_call(item: Any) -> RawCall | None:
    """A call in any of the forms models use: the docs' `{"function", "args"}`, Gemini's
    FunctionCall `{"name", "args", "id"}` and its part `{"functionCall": {...}}`. None when the
    item is no call at all; keys beyond its form's are kept, so the plan is refused by name."""
    if not isinstance(item, dict):
        return None
    unknown: list[str] = []
    wrapped = False
    for wrapper in ("functionCall", "function_call"):
        if isinstance(item.get(wrapper), dict):
            unknown += [key for key in item if key not in PART_KEYS]
            item, wrapped = item[wrapper], True
            break
    if "function" in item:
        form = CALL_KEYS
        function = item["function"]
    elif isinstance(item.get("name"), str) and (wrapped or "args" in item
                                                or set(item) <= FUNCTION_CALL_KEYS):
        form = FUNCTION_CALL_KEYS
        function = item["name"]
    else:
        return None
    unknown += [key for key in item if key not in form]
    return RawCall(function=function, args=item.get("args", [] if form is CALL_KEYS else {}),
                   unknown=tuple(unknown))


def _calls_in(value: Any) -> list[RawCall] | None:
    """The calls a JSON value holds: a list of calls, or an object with one under "calls" (the
    structured-output answer) or "plan" (erarm's own plan.json)."""
    if isinstance(value, dict):
        value = next((value[key] for key in ("calls", "plan") if isinstance(value.get(key), list)),
                     None)
    if not isinstance(value, list) or not value:
        return None
    calls = []
    for item in value:
        call = _as_call(item)
        if call is None:
            return None
        calls.append(call)
    return calls


def _reasoning(text: str, start: int, value: Any) -> str:
    """What the model said before its plan: the object's "reasoning", or the text before it."""
    reasoning = value.get("reasoning") if isinstance(value, dict) else text[:start].strip()
    return reasoning if isinstance(reasoning, str) else ""


def parse_plan(text: str) -> Plan:
    """Reasoning text followed by a JSON list of robot calls, or the structured-output object
    `{"reasoning": ..., "calls": [...]}`. Several different lists of calls are refused: which is
    the plan cannot be told, and one may have been injected through the task's text. An empty
    list, with no calls anywhere, is a plan with no calls: the task is already done."""
    values = json_values(text)
    candidates: list[tuple[int, int, Any, list[RawCall]]] = []
    finished: tuple[int, Any] | None = None  # an empty list: nothing left to do
    for block, (start, _, value) in enumerate(values, 1):
        if value == [] or (isinstance(value, dict) and value.get("calls") == []):
            finished = (start, value)
            continue
        calls = _calls_in(value)
        if calls is not None:
            candidates.append((block, start, value, calls))
    if not candidates:
        if finished is not None:
            return Plan(reasoning=_reasoning(text, *finished), calls=[])
        raise ReplyError(f"no JSON list of function calls in the reply: {_snippet(text)!r}")
    block, start, value, items = candidates[-1]
    if len(items) > MAX_PLAN_CALLS:
        raise ReplyError(f"the plan has {len(items):,} calls; erarm reads at most "
                         f"{MAX_PLAN_CALLS:,}")
    notes = []
    if len({repr(found[3]) for found in candidates}) > 1:
        raise ReplyError(f"the reply held {len(candidates)} different lists of function calls; "
                         "erarm runs one plan, never a choice between several (a list written "
                         "into the task can be one of them)")
    if len(candidates) > 1:
        notes.append(f"the reply held the same list of calls {len(candidates)} times")
    calls = [parse_call(step, item) for step, item in enumerate(items, 1)]
    return Plan(reasoning=_reasoning(text, start, value), calls=calls, notes=notes)


def parse_trajectory(text: str) -> list[Point]:
    """Points labelled "0".."n" in path order, as the docs' trajectory prompt asks. A path is
    whole or refused: one malformed point refuses it (dropping one would cut a corner)."""
    reading = read_points(text)
    if reading.dropped:
        raise ReplyError(f"the trajectory has a malformed point: {reading.dropped[0]}")
    points = reading.items
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
    try:
        return Verdict.model_validate(objects[-1])
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ReplyError(f"verdict: {where}: {first['msg']}") from None
