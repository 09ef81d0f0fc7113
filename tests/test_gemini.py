"""The Gemini brain through the real google-genai SDK, against a scripted server on loopback.

Each test checks both sides: what the SDK put on the wire, and what erarm made of the answer.
"""

import json
import time

import numpy as np
import pytest

from agent.brains.base import PlanRequest
from agent.config import DEFAULT_THINKING_BUDGET
from agent.errors import BrainUnavailable, ReplyError
from agent.parse import parse_boxes, parse_plan, parse_points, parse_trajectory, parse_verdict
from agent.schemas import Move, ReturnToOrigin, SceneObject, response_schema
from robots.base import Frame, WorkspaceLimits
from tests.conftest import TEST_KEY
from tests.fake_gemini import (
    Reply,
    blocked_prompt_reply,
    error_reply,
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
    assert config["temperature"] == 0.5
    assert sent.thinking == {"thinkingLevel": "MINIMAL"}  # ER 2 takes a level, never a budget
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == response_schema("point")
    assert {(s["category"], s["threshold"]) for s in sent.body["safetySettings"]} == {
        ("HARM_CATEGORY_DANGEROUS_CONTENT", "BLOCK_ONLY_HIGH"),
        ("HARM_CATEGORY_HARASSMENT", "BLOCK_NONE")}


@pytest.mark.parametrize(("model", "kind", "expected"), [
    ("gemini-robotics-er-1.5-preview", "point", {"thinkingBudget": 0}),
    ("gemini-robotics-er-1.5-preview", "plan", {"thinkingBudget": DEFAULT_THINKING_BUDGET["plan"]}),
    ("gemini-robotics-er-1.6-preview", "detect", {"thinkingBudget": 0}),
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
    assert "The operator's task: pick the blue block into the bowl" in prompt
    schema = fake_gemini.requests[0].generation_config["responseJsonSchema"]
    assert schema["propertyOrdering"] == ["reasoning", "calls"]


def test_429_then_success_is_retried(gemini, fake_gemini, frame):
    fake_gemini.script(error_reply(429, "Resource has been exhausted"), text_reply(POINTS))
    brain = gemini()
    assert len(parse_points(brain.point(frame))) == 2
    assert brain.attempts_made == 2 and len(fake_gemini.requests) == 2


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


def test_the_sdks_base_url_variable_is_honoured(fake_gemini, frame, monkeypatch):
    from agent.brains.gemini import GeminiBrain
    from agent.config import GeminiSettings

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


def test_plans_as_native_function_calls(gemini, fake_gemini, frame):
    fake_gemini.script(Reply(body={"candidates": [{"finishReason": "STOP", "content": {
        "role": "model", "parts": [
            {"text": "Reasoning: up, then home."},
            {"functionCall": {"name": "move", "args": {"x": 412, "y": 87, "high": True}}},
            {"functionCall": {"name": "returnToOrigin", "args": {}}}]}}]}))
    request = PlanRequest(task="t", objects=[], limits=WorkspaceLimits())
    plan = parse_plan(gemini(plan_with_tools=True).plan(request, frame))
    assert plan.calls == [Move(x=412, y=87, high=True), ReturnToOrigin()]
    assert plan.reasoning == "Reasoning: up, then home."
    sent = fake_gemini.requests[0].body
    declared = {d["name"]: d for d in sent["tools"][0]["functionDeclarations"]}
    assert set(declared) == {"move", "setGripperState", "returnToOrigin"}
    schema = declared["move"].get("parametersJsonSchema") or declared["move"][
        "parameters_json_schema"]
    assert schema["required"] == ["x", "y", "high"]
    assert schema["properties"]["high"]["type"] == "boolean"
    assert "responseJsonSchema" not in sent["generationConfig"]
