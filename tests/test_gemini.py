"""The Gemini brain through the real google-genai SDK, against a scripted server on loopback.

Each test checks both sides: what the SDK put on the wire, and what erarm made of the answer.
"""

import json
import logging
import time
import warnings

import numpy as np
import pytest

from erarm.agent.brains.base import PlanRequest
from erarm.agent.config import DEFAULT_THINKING_BUDGET
from erarm.agent.errors import BrainUnavailable, ReplyError
from erarm.agent.parse import parse_boxes, parse_plan, parse_points, parse_trajectory, parse_verdict
from erarm.agent.perceive import perceive
from erarm.agent.schemas import Move, ReturnToOrigin, SceneObject, response_schema
from erarm.robots.base import Frame, WorkspaceLimits
from tests.conftest import TEST_KEY, assert_key_absent
from tests.fake_gemini import (
    Reply,
    blocked_prompt_reply,
    error_reply,
    rate_limit_reply,
    safety_reply,
    text_reply,
)

POINTS = '[{"point": [376, 508], "label": "small banana"}, {"point": [287, 609], "label": "lime"}]'


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return Frame(rgb=rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))


def test_a_point_request_carries_the_image_prompt_and_settings(gemini, fake_gemini, frame):
    fake_gemini.script(text_reply(POINTS))
    brain = gemini(safety={"dangerous_content": "BLOCK_ONLY_HIGH", "harassment": "block_none"})
    points = parse_points(brain.point(frame, ["banana", "lime"]))
    assert [p.label for p in points] == ["small banana", "lime"]
    sent = fake_gemini.requests[0]
    assert sent.path == "/v1beta/models/gemini-robotics-er-2-preview:generateContent"
    assert sent.headers["x-goog-api-key"] == TEST_KEY
    (mime, _), = sent.images
    assert mime == "image/jpeg" and sent.image().shape == (480, 640, 3)
    assert "Get all points matching the following objects: banana, lime" in sent.prompt
    config = sent.generation_config
    assert config["temperature"] == 1.0  # the Gemini 3 family's advice, which ER 2 builds on
    assert sent.thinking == {"thinkingLevel": "MINIMAL"}  # ER 2 takes a level, never a budget
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == response_schema("point")
    assert {(s["category"], s["threshold"]) for s in sent.body["safetySettings"]} == {
        ("HARM_CATEGORY_DANGEROUS_CONTENT", "BLOCK_ONLY_HIGH"),
        ("HARM_CATEGORY_HARASSMENT", "BLOCK_NONE")}


def test_a_look_asks_for_a_point_and_a_box_per_object_in_one_request(gemini, fake_gemini, frame):
    located = [{"point": [376, 508], "box_2d": [340, 470, 410, 550], "label": "small banana"},
               {"point": [287, 609], "box_2d": [250, 580, 320, 640], "label": "lime"}]
    fake_gemini.script(text_reply(json.dumps(located)))
    perception = perceive(gemini(), frame)
    assert [p.label for p in perception.points] == [b.label for b in perception.boxes] == [
        "small banana", "lime"]
    assert all(b.contains(p) for p, b in zip(perception.points, perception.boxes, strict=True))
    (sent,) = fake_gemini.requests
    assert "Point to no more than 25 items" in sent.prompt and "bounding box" in sent.prompt
    schema = sent.generation_config["responseJsonSchema"]
    assert schema == response_schema("locate")
    assert schema["items"]["required"] == ["point", "box_2d", "label"]
    assert perception.replies == {"locate": json.dumps(located)}


@pytest.mark.parametrize(("model", "kind", "expected"), [
    ("gemini-robotics-er-1.5-preview", "point", {"thinkingBudget": 0}),
    ("gemini-robotics-er-1.5-preview", "plan", {"thinkingBudget": DEFAULT_THINKING_BUDGET["plan"]}),
    ("gemini-robotics-er-1.6-preview", "detect", {"thinkingBudget": 0}),
    ("gemini-robotics-er-2-preview", "locate", {"thinkingLevel": "MINIMAL"}),
    ("gemini-robotics-er-2-preview", "plan", {"thinkingLevel": "MEDIUM"}),
    ("gemini-robotics-er-2-preview", "judge", {"thinkingLevel": "LOW"}),
])
def test_every_model_family_gets_its_own_thinking_config(gemini, fake_gemini, frame, model, kind,
                                                         expected):
    fake_gemini.script(text_reply('{"reasoning": "", "calls": []}' if kind == "plan" else "[]"))
    brain = gemini(model=model)
    if kind == "plan":
        brain.plan(PlanRequest(task="t", objects=[], limits=WorkspaceLimits()), frame)
    elif kind == "judge":
        brain.judge(frame, frame, "t")
    else:
        getattr(brain, kind)(frame)
    assert fake_gemini.requests[0].model == model
    assert fake_gemini.requests[0].thinking == expected


@pytest.mark.parametrize("reply", [
    POINTS,
    f"```json\n{POINTS}\n```",
    f"Here are the objects I found:\n{POINTS}\nLet me know if you need more.",
    "* [{\"point\": [376, 508], \"label\": \"small banana\"}]\n* [{\"point\": [287, 609], "
    "\"label\": \"lime\"}]",
])
def test_the_tolerant_parser_reads_every_reply_shape(gemini, fake_gemini, frame, reply):
    fake_gemini.script(text_reply(reply))
    brain = gemini(structured_output=False)
    assert [p.label for p in parse_points(brain.point(frame))] == ["small banana", "lime"]
    assert "responseJsonSchema" not in fake_gemini.requests[0].generation_config


def test_plans_come_as_structured_objects_or_reasoning_then_json(gemini, fake_gemini, frame):
    objects = [SceneObject(label="blue block", point=(500, 500), position_mm=(412, 87, 40))]
    request = PlanRequest(task="pick the blue block into the bowl", objects=objects,
                          limits=WorkspaceLimits())
    structured = {"reasoning": "Above the block first.",
                  "calls": [{"function": "move", "args": [412, 87, True]},
                            {"function": "returnToOrigin", "args": []}]}
    fake_gemini.script(text_reply(json.dumps(structured)),
                       text_reply("Reasoning: up and home.\n" + json.dumps(structured["calls"])))
    brain = gemini()
    first = parse_plan(brain.plan(request, frame))
    second = parse_plan(brain.plan(request, frame))
    assert first.calls == second.calls == [Move(x=412, y=87, high=True), ReturnToOrigin()]
    assert first.reasoning == "Above the block first."
    assert second.reasoning == "Reasoning: up and home."
    prompt = fake_gemini.requests[0].prompt
    assert "- blue block: 412, 87 (top 40 mm" in prompt and "x from 150 to 700" in prompt
    assert "<task>pick the blue block into the bowl</task>" in prompt
    schema = fake_gemini.requests[0].generation_config["responseJsonSchema"]
    assert schema["propertyOrdering"] == ["reasoning", "calls"]


def test_429_then_success_is_retried(gemini, fake_gemini, frame):
    fake_gemini.script(error_reply(429, "Resource has been exhausted"), text_reply(POINTS))
    brain = gemini()
    assert len(parse_points(brain.point(frame))) == 2
    assert brain.attempts_made == 2 and len(fake_gemini.requests) == 2


def test_a_429_waits_as_long_as_the_server_asks(gemini, fake_gemini, frame):
    waited = []

    def sleep(seconds):
        waited.append(seconds)
        time.sleep(seconds)

    fake_gemini.script(rate_limit_reply("0.4s"), text_reply(POINTS))
    brain = gemini(sleep=sleep, backoff_s=0.01)
    assert len(parse_points(brain.point(frame))) == 2
    assert waited == [0.4]  # the server's delay, not erarm's 0.01 s backoff
    first, second = fake_gemini.requests
    assert second.received - first.answered >= 0.4


def test_retry_after_headers_are_honoured_too(gemini, fake_gemini, frame):
    waited = []
    busy = error_reply(503, "The model is overloaded.", "UNAVAILABLE")
    busy.headers = {"Retry-After": "2"}
    fake_gemini.script(busy, text_reply(POINTS))
    gemini(sleep=waited.append).point(frame)
    assert waited == [2.0]


@pytest.mark.parametrize("error", [
    "quota",  # not an object
    {"code": 429, "details": "nope"},
    {"code": 429, "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                               "retryDelay": "-5s"}]},
])
def test_a_nonsense_retry_delay_falls_back_to_erarms_schedule(gemini, fake_gemini, frame, error):
    waited = []
    fake_gemini.script(Reply(status=429, body={"error": error}), text_reply(POINTS))
    gemini(sleep=waited.append, backoff_s=0.01).point(frame)
    assert len(waited) == 1 and waited[0] <= 0.01


def test_a_server_delay_beyond_the_cap_is_one_line_error(gemini, fake_gemini, frame):
    waited = []
    fake_gemini.script(rate_limit_reply("38s"))
    with pytest.raises(BrainUnavailable) as refused:
        gemini(sleep=waited.append, max_retry_delay_s=5).point(frame)
    assert str(refused.value) == (
        "the Gemini API is rate limiting this key (429); it asks to retry in 38 s, longer than "
        "erarm waits (gemini.max_retry_delay_s = 5 s)")
    assert waited == [] and len(fake_gemini.requests) == 1


def test_500_every_time_gives_up_after_the_attempts(gemini, fake_gemini, frame):
    fake_gemini.script(*[error_reply(500, "Internal error encountered.")] * 3)
    brain = gemini(attempts=3)
    with pytest.raises(BrainUnavailable, match=r"failed \(500 INTERNAL\).* after 3 attempts"):
        brain.point(frame)
    assert len(fake_gemini.requests) == 3


def test_a_slow_reply_times_out_and_is_retried_then_reported(gemini, fake_gemini, frame):
    fake_gemini.script(Reply(body={}, delay_s=2.0), Reply(body={}, delay_s=2.0))
    brain = gemini(timeout_s=0.3, attempts=2)
    started = time.perf_counter()
    with pytest.raises(BrainUnavailable, match=r"no answer from the Gemini API .* 2 attempts"):
        brain.point(frame)
    assert time.perf_counter() - started < 1.9  # it did not wait for the slow server
    assert len(fake_gemini.requests) == 2


def test_a_reply_withheld_for_safety_names_its_category(gemini, fake_gemini, frame):
    fake_gemini.script(safety_reply("HARM_CATEGORY_DANGEROUS_CONTENT", "HIGH"))
    with pytest.raises(ReplyError, match=r"withheld .* HARM_CATEGORY_DANGEROUS_CONTENT \(HIGH\)"):
        gemini().point(frame)


def test_a_blocked_prompt_names_its_reason_and_category(gemini, fake_gemini, frame):
    fake_gemini.script(blocked_prompt_reply("SAFETY", "HARM_CATEGORY_HARASSMENT", "MEDIUM"))
    with pytest.raises(ReplyError,
                       match=r"blocked the prompt \(SAFETY\): HARM_CATEGORY_HARASSMENT \(MEDIUM\)"):
        gemini().point(frame)


def test_malformed_replies_are_clear_errors(gemini, fake_gemini, frame):
    fake_gemini.script(text_reply('[{"point": [376, 508], "label": }]'),
                       Reply(body="<html>gateway says hi</html>"),
                       Reply(body={"candidates": []}),
                       text_reply("   "))
    brain = gemini()
    with pytest.raises(ReplyError, match="no JSON list of points"):
        parse_points(brain.point(frame))
    with pytest.raises(BrainUnavailable, match="malformed response"):
        brain.point(frame)
    with pytest.raises(ReplyError, match="no candidates"):
        brain.point(frame)
    with pytest.raises(ReplyError, match="empty reply"):
        brain.point(frame)


@pytest.mark.parametrize("body", [
    {"promptFeedback": {"blockReason": 5}},  # the SDK raises AttributeError on this
    "1e999",  # JSON, but not an object: TypeError
])
def test_bodies_the_sdk_chokes_on_are_one_line_errors(gemini, fake_gemini, frame, body):
    fake_gemini.script(Reply(body=body))
    with pytest.raises(BrainUnavailable, match="malformed response") as refused:
        gemini().point(frame)
    assert "\n" not in str(refused.value)


def test_an_unknown_model_names_the_model_flag(gemini, fake_gemini, frame):
    fake_gemini.script(error_reply(404, "models/gemini-robotics-er-9 is not found for API "
                                        "version v1beta"))
    with pytest.raises(BrainUnavailable, match=r"'gemini-robotics-er-9'; choose another with "
                                               r"--model"):
        gemini(model="gemini-robotics-er-9").point(frame)
    assert len(fake_gemini.requests) == 1  # a 404 is not retried


def test_the_api_key_never_appears_in_messages(gemini, fake_gemini, frame):
    fake_gemini.script(error_reply(400, f"API key not valid: {TEST_KEY}. Please pass a valid key."),
                       text_reply(f"[] my key is {TEST_KEY}"))
    brain = gemini()
    with pytest.raises(BrainUnavailable) as refused:
        brain.point(frame)
    assert TEST_KEY not in str(refused.value) and "***" in str(refused.value)
    assert TEST_KEY not in brain.point(frame)


def _escaped(text: str) -> str:
    """Every other character as a JSON \\u escape: the same string once decoded."""
    return "".join(f"\\u{ord(c):04X}" if i % 2 else c for i, c in enumerate(text))


def test_a_server_echoing_the_key_in_any_case_gets_it_redacted_everywhere(gemini, fake_gemini,
                                                                          frame, caplog):
    """Block reasons and categories are enums the SDK does not know when a server makes them up:
    it warns, quoting them. Replies may spell the key in other cases or as JSON escapes."""
    upper, title = TEST_KEY.upper(), TEST_KEY.title()
    fake_gemini.script(
        blocked_prompt_reply(TEST_KEY, upper, title),
        safety_reply(upper, TEST_KEY),
        error_reply(500, f"backend for {upper} exploded"),
        text_reply(f'[{{"point": [1, 2], "label": "{upper}"}}, '
                   f'{{"point": [3, 4], "label": "{_escaped(TEST_KEY)}"}}]'))
    brain = gemini()
    seen = []
    brain.on_exchange = seen.append
    errors = []
    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        for _ in range(2):
            with pytest.raises(ReplyError) as refused:
                brain.point(frame)
            errors.append(str(refused.value))
            # the exception chain (shown with ERARM_DEBUG) carries nothing from the SDK
            assert refused.value.__cause__ is None and refused.value.__suppress_context__
        points = parse_points(brain.point(frame))  # after a retried 500
    assert "blocked the prompt (***): *** (***)" in errors[0]
    assert "withheld the reply for safety: *** (***)" in errors[1]
    assert [p.label for p in points] == ["***", "***"]
    assert [str(w.message) for w in shown] == []  # the SDK's warnings went to the log
    assert any("google-genai: *** is not a valid" in r.getMessage() for r in caplog.records)
    assert any("retrying in" in r.getMessage() for r in caplog.records)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert_key_absent(*errors, logged, json.dumps(seen))


def test_redaction_is_one_shared_rule():
    from erarm.agent.redaction import guard, redact

    guard(TEST_KEY)
    assert redact(f"a {TEST_KEY.upper()} b {_escaped(TEST_KEY)} c") == "a *** b *** c"
    # an escaped backslash before "u" is text, not an escape: left alone, so JSON stays valid
    # (the rest of the key, in order, is a piece of it: masked)
    text = json.dumps({"x": "\\u0074" + TEST_KEY[1:]})
    assert json.loads(redact(text)) == {"x": "\\u0074***"}
    assert redact("nothing to hide") == "nothing to hide"


@pytest.mark.parametrize(("model", "temperature", "sent"), [
    ("gemini-robotics-er-2-preview", None, 1.0),  # Gemini 3 Developer Guide
    ("gemini-robotics-er-1.6-preview", None, 0.5),  # the Robotics-ER 1.5 overview's examples
    ("gemini-robotics-er-1.5-preview", None, 0.5),
    ("gemini-robotics-er-1.5-preview", 0.2, 0.2),
    ("gemini-robotics-er-2-preview", 0.3, 0.3),
])
def test_each_model_gets_its_advised_temperature_unless_told(gemini, fake_gemini, frame, caplog,
                                                              model, temperature, sent):
    fake_gemini.script(text_reply("[]"))
    with caplog.at_level(logging.WARNING):
        gemini(model=model, temperature=temperature).point(frame)
    assert fake_gemini.requests[0].generation_config["temperature"] == sent
    advised_against = [r for r in caplog.records if "below 1.0" in r.getMessage()]
    assert bool(advised_against) == (model.startswith("gemini-robotics-er-2") and sent < 1.0)


LUNCH = ["sandwich", "apple", "juice box", "napkin", "cookie", "carrot sticks", "cheese",
         "lunch box", "water bottle"]


def _cut_off_list_reply(count: int) -> Reply:
    """The docs' lunch-packing answer as a markdown list of JSON lines, cut off by the token limit
    partway through the entry after `count`: the complete lines still parse."""
    lines = [f'* [{{"point": [{300 + 40 * i}, {200 + 60 * i}], "label": "{label}"}}]'
             for i, label in enumerate(LUNCH)]
    return text_reply("\n".join(lines[:count]) + '\n* [{"point": [6', finish="MAX_TOKENS")


def test_a_list_cut_off_at_the_token_limit_is_kept_with_a_warning(gemini, fake_gemini, frame,
                                                                  caplog):
    fake_gemini.script(_cut_off_list_reply(5))
    seen = []
    brain = gemini()
    brain.on_exchange = seen.append
    with caplog.at_level(logging.WARNING):
        points = parse_points(brain.point(frame, LUNCH))
    assert [p.label for p in points] == LUNCH[:5]
    (warning,) = [r.getMessage() for r in caplog.records if "cut off" in r.getMessage()]
    assert "output token limit (MAX_TOKENS): the points may be incomplete" in warning
    assert seen[0]["finish_reason"] == "MAX_TOKENS"


@pytest.mark.parametrize("finish", ["MAX_TOKENS", "RECITATION", "MALFORMED_FUNCTION_CALL"])
def test_a_plan_or_path_that_stopped_early_is_refused(gemini, fake_gemini, frame, finish):
    plan = {"reasoning": "pick, then place", "calls": [{"function": "move",
                                                        "args": [412, 87, True]}]}
    path = [{"point": [500, 500], "label": "0"}, {"point": [450, 520], "label": "1"}]
    fake_gemini.script(text_reply(json.dumps(plan), finish=finish),
                       text_reply(json.dumps(path), finish=finish))
    brain = gemini()
    request = PlanRequest(task="t", objects=[], limits=WorkspaceLimits())
    with pytest.raises(ReplyError, match=r"its plan may be incomplete and is not used"):
        brain.plan(request, frame)
    with pytest.raises(ReplyError, match=r"its path may be incomplete") as refused:
        brain.trajectory(frame, "move the pen", 1)
    assert finish in str(refused.value)


def test_the_sdks_base_url_variable_is_honoured(fake_gemini, frame, monkeypatch):
    from erarm.agent.brains.gemini import GeminiBrain
    from erarm.agent.config import GeminiSettings

    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake_gemini.url)
    fake_gemini.script(text_reply(POINTS))
    GeminiBrain(TEST_KEY, GeminiSettings()).point(frame)
    assert len(fake_gemini.requests) == 1


def test_images_are_downscaled_and_encoded_as_configured(gemini, fake_gemini, frame):
    fake_gemini.script(text_reply("[]"), text_reply("[]"))
    gemini(image_max_side=320).point(frame)
    gemini(image_format="png").point(frame)
    small, png = fake_gemini.requests
    assert small.image().shape == (240, 320, 3)
    assert png.images[0][0] == "image/png"
    assert np.array_equal(png.image(), frame.rgb)  # PNG is lossless


def test_trajectories_and_judgements(gemini, fake_gemini, frame):
    path = [{"point": [550 - 50 * i, 610 - 10 * i], "label": str(i)} for i in range(4)]
    fake_gemini.script(text_reply(json.dumps(list(reversed(path)))),
                       text_reply('{"done": false, "reason": "the pen is still on the desk"}'))
    brain = gemini()
    trajectory = parse_trajectory(brain.trajectory(frame, "move the red pen to the organizer", 3))
    assert [p.label for p in trajectory] == ["0", "1", "2", "3"]  # put in path order
    assert "then 3 points for the trajectory" in fake_gemini.requests[0].prompt
    verdict = parse_verdict(brain.judge(frame, frame, "move the red pen to the organizer"))
    assert verdict.done is False and "still on the desk" in verdict.reason
    assert len(fake_gemini.requests[1].images) == 2  # before and after


def test_exchanges_are_reported_without_images_or_key(gemini, fake_gemini, frame):
    fake_gemini.script(text_reply(POINTS))
    seen = []
    brain = gemini()
    brain.on_exchange = seen.append
    brain.point(frame)
    (exchange,) = seen
    assert exchange["kind"] == "point" and exchange["reply"] == POINTS
    assert exchange["image_bytes"][0] > 1000
    assert TEST_KEY not in json.dumps(exchange)


def test_detect_asks_for_unique_labels(gemini, fake_gemini, frame):
    fake_gemini.script(text_reply('[{"box_2d": [10, 20, 110, 220], "label": "left cup"}]'))
    boxes = parse_boxes(gemini().detect(frame, limit=7))
    assert boxes[0].label == "left cup"
    assert "Limit to 7 objects" in fake_gemini.requests[0].prompt
    assert "name them according to their unique characteristic" in fake_gemini.requests[0].prompt


