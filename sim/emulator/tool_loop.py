"""The tool-loop dialect (Robotics-ER 2's orchestration): a request that declares the robot's
functions is answered with function calls, one or a few per turn, as a capable model would: the
pick and place still to do, then a look to see how it went, then the next, until nothing is
left; then a sentence without a call.

Like a real model, the emulator keeps its intentions in its own turns: the calls it still means
to make travel in the thought signature of each turn's first call, which the client must send
back verbatim (a history whose calls lost their signatures is refused with a 400, as Gemini 3
models refuse it). It reads what came back: a refused or failed call makes it look again and
plan from the new look; a call it had garbled on purpose (the error model's `malformed_call_rate`)
is sent again, correctly.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass, field

from erarm.agent.schemas import SIGNATURES, function_call
from erarm.sim.emulator.truth import SceneTruth
from erarm.sim.emulator.whole_plan import NO_PLACE, Mistakes, nothing_to_do, transfers

LOOK = {"name": "look", "args": {}}


class HistoryError(ValueError):
    """The conversation sent back breaks the API's rules (the message is the 400's)."""


@dataclass
class Intent:
    """What the emulated model means to do next, kept in its thought signature."""

    queue: list[dict] = field(default_factory=list)  # calls still to make, in order
    garbled: dict | None = None  # the call sent garbled last turn, as it should have been
    calls_made: int = 0

    def signature(self) -> str:
        return base64.b64encode(json.dumps(asdict(self)).encode()).decode()

    @classmethod
    def of(cls, signature: str) -> Intent:
        try:
            return cls(**json.loads(base64.b64decode(signature, validate=True)))
        except (binascii.Error, ValueError, TypeError) as err:
            raise HistoryError("Corrupted thought signature.") from err


def declares_robot(body: dict) -> bool:
    """Whether a request declares the robot's functions: the tool-loop dialect."""
    names = {d.get("name") for tool in body.get("tools") or []
             for d in tool.get("functionDeclarations") or tool.get("function_declarations") or []}
    return set(SIGNATURES) <= names


def _listing(objects: list) -> str:
    """A look's objects in the plan prompt's words, which the planner reads."""
    lines = []
    for o in objects if isinstance(objects, list) else []:
        try:
            lines.append(f"- {o['label']}: {round(o['x_mm'])}, {round(o['y_mm'])} "
                         f"(top {round(o['top_mm'])} mm, {round(o['across_mm'])} mm across)")
        except (KeyError, TypeError, ValueError):
            continue
    return "\n".join(lines)


def _read_history(contents: list[dict]) -> tuple[Intent | None, list[dict]]:
    """The model's intent after its last turn, and the function responses sent since; refuses
    a history whose calls lost their signatures or whose responses do not answer them."""
    intent, last_calls = None, []
    for content in contents:
        parts = content.get("parts") or []
        if content.get("role") == "model":
            calls = [p for p in parts if "functionCall" in p]
            last_calls = []
            if calls:
                signature = calls[0].get("thoughtSignature")
                if not signature:
                    raise HistoryError(
                        "Function call is missing a thought_signature in functionCall parts. "
                        "This is required for tools to work correctly, and missing "
                        "thought_signature may lead to degraded model performance.")
                intent, last_calls = Intent.of(signature), [p["functionCall"] for p in calls]
    responses = [p["functionResponse"] for p in (contents[-1].get("parts") or [])
                 if "functionResponse" in p] if contents else []
    if last_calls and contents[-1].get("role", "user") == "user":
        if len(responses) != len(last_calls):
            raise HistoryError("Please ensure that the number of function response parts is "
                               "equal to the number of function call parts of the function "
                               "call turn.")
        for call, response in zip(last_calls, responses, strict=True):
            if response.get("name") != call.get("name") or (
                    call.get("id") and response.get("id") != call.get("id")):
                raise HistoryError(f"function response {response.get('name')!r} does not answer "
                                   f"the call {call.get('name')!r} (id {call.get('id')!r})")
    return intent, responses


@dataclass
class Turn:
    text: str
    calls: list[dict]  # {"name", "args", "id"}
    signature: str = ""


PICK_CALLS = 5  # of the docs' pick and place: above, open, down, close, up; then the place


def _replan(truth: SceneTruth, listing: str, mistakes: Mistakes, judging: bool,
            holding: bool = False) -> tuple[str, list[dict]]:
    """The next pick and place (and a look after it), or nothing when the task is done; while
    `holding` an object, only its place. When `judging` what a look shows after a move, a false
    "done" at the judge error rate."""
    done = nothing_to_do(truth)
    if done is None and judging and (mistakes.settings.judge_always_done or mistakes.happens(
            "judge", mistakes.settings.judge_error_rate)):
        done = "The task is done."
    if done is not None:
        return done, []
    moves = transfers(truth, listing, mistakes)
    if not moves:
        return NO_PLACE, []
    if holding:  # the object up in the gripper is the one held: the highest
        held = max(truth.objects, key=lambda o: o.position_mm[2]).label
        move = next((m for m in moves if m.item == held), moves[0])
        return (f"I am holding the {move.item}; I will put it {move.goes()}, then look at the "
                "result.",
                [function_call(c) for c in move.calls()[PICK_CALLS:]] + [LOOK])
    move = moves[0]
    return (f"I will move {move.reads()}, then look at the result.",
            [function_call(c) for c in move.calls()] + [LOOK])


def _failed(response: dict) -> bool:
    return "error" in (response.get("response") or {})


def answer(truth: SceneTruth, body: dict, mistakes: Mistakes) -> Turn:
    """The model's next turn for this conversation."""
    contents = body.get("contents") or []
    intent, responses = _read_history(contents)
    text, correcting = "", False
    if intent is None:  # the task: plan from the objects the prompt lists
        prompt = "\n".join(p["text"] for c in contents for p in c.get("parts") or []
                           if "text" in p)
        intent = Intent()
        text, intent.queue = _replan(truth, prompt, mistakes, judging=False)
    elif intent.garbled is not None and [_failed(r) for r in responses][-1:] == [True] \
            and not any(_failed(r) for r in responses[:-1]):
        # the garbled call (always its turn's last) is all that failed: say it right
        intent.queue.insert(0, intent.garbled)
        correcting = True
    elif any(_failed(r) for r in responses):
        text, intent.queue = "That did not work; I will look again.", [LOOK]
    elif not responses:  # told after a last answer: plan again from what it is told
        told = "\n".join(p["text"] for p in contents[-1].get("parts") or [] if "text" in p)
        text, intent.queue = _replan(truth, told, mistakes, judging=False)
    elif responses[-1].get("name") == "look":
        seen = responses[-1].get("response", {}).get("result", {})
        holding = bool((seen.get("gripper") or {}).get("holding"))
        text, intent.queue = _replan(truth, _listing(seen.get("objects")), mistakes,
                                     judging=True, holding=holding)
    intent.garbled = None
    if not intent.queue:
        return Turn(text=text or "The task is done.", calls=[])
    per_turn = mistakes.rng.randint(1, max(1, mistakes.settings.tool_calls_per_turn))
    calls = []
    while intent.queue and len(calls) < per_turn:
        call = intent.queue.pop(0)
        calls.append(call)
        if call["name"] == "look":
            break  # what it sees decides what comes next
    sent = []
    for index, call in enumerate(calls):
        intent.calls_made += 1
        made = {**call, "id": f"call-{intent.calls_made}"}
        if correcting:
            correcting = False  # said right this time
        elif call["name"] == "move" and intent.garbled is None and mistakes.happens(
                "malformed_call", mistakes.settings.malformed_call_rate):
            intent.garbled = call
            made["args"] = {**call["args"], "x": f"{call['args']['x']} mm"}
        sent.append(made)
        if intent.garbled is not None:
            intent.queue = calls[index + 1:] + intent.queue
            break  # wait for the answer to the garbled call
    return Turn(text=text, calls=sent, signature=intent.signature())
