"""`erarm run --brain gemini` and the image commands, end to end against the loopback server.

The server's responder plays the model: it decodes the image the SDK uploaded and answers from
what it sees (local perception on that JPEG, with no depth), plans from the objects listed in the
prompt, and judges the result.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from erarm.agent.brains.gemini import GeminiBrain
from erarm.agent.config import GeminiSettings
from erarm.agent.run import run_task
from tests.conftest import TEST_KEY, assert_key_absent
from tests.fake_gemini import (
    Reply,
    blocked_prompt_reply,
    error_reply,
    model_like,
    rate_limit_reply,
    safety_reply,
    text_reply,
)

ERARM = str(Path(sys.executable).with_name("erarm"))


def erarm(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GEMINI_API_KEY": TEST_KEY}
    env.pop("GOOGLE_API_KEY", None)
    return subprocess.run([ERARM, *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


def test_run_with_gemini_end_to_end(fake_gemini, tmp_path):
    fake_gemini.responder = model_like
    done = erarm("run", "pick the blue block into the orange bowl", "--seed", "1", "--json",
                 "--orchestration", "plan",
                 "--out", str(tmp_path), "--base-url", fake_gemini.url)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["brain"] == "gemini"  # auto picked Gemini because a key is set
    assert result["success"] is True and result["verified"] is True
    assert result["model_verdict"] == {"done": True, "reason": "the block sits in the bowl",
                                       "progress": None}  # this fake gives no progress
    kinds = [("plan" if "robotic arm" in r.prompt else "judge" if "completed" in r.prompt
              else "locate" if "bounding box" in r.prompt else "point")
             for r in fake_gemini.requests]
    # closed loop: look (a point and a box per object in one reply), plan, pick and place, look
    # again with the judgement beside it: done, no second plan (three round trips)
    assert kinds[:2] == ["locate", "plan"] and sorted(kinds[2:]) == ["judge", "locate"]
    assert (result["model_calls"], result["model_round_trips"]) == (4, 3)
    plan_request = fake_gemini.requests[1]
    assert plan_request.image().shape == (480, 640, 3)
    assert "- blue block: " in plan_request.prompt
    assert len(fake_gemini.requests[2 + kinds[2:].index("judge")].images) == 2
    assert_key_absent(done.stdout, done.stderr, folder=tmp_path)


def test_run_can_carry_the_object_along_the_models_path(fake_gemini, tmp_path):
    fake_gemini.responder = model_like
    done = erarm("run", "pick the blue block into the orange bowl", "--seed", "1", "--json",
                 "--orchestration", "plan",
                 "--out", str(tmp_path), "--base-url", fake_gemini.url, "--trajectory", "6")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["success"] is True
    assert len(result["plan"]) == 10 + 5  # the docs' ten calls and the path's inner points
    via = result["plan"][5:10]
    assert all(call["function"] == "move" and call["args"][2] is True for call in via)


def _run_against(fake_gemini, sim_cell, tmp_path, **settings):
    """run_task with the Gemini brain in a fresh cell; checks nothing moved and no key leaked."""
    cell = sim_cell(seed=1)
    before = cell.robot.state().joint_positions_rad
    brain = GeminiBrain(TEST_KEY, GeminiSettings(base_url=fake_gemini.url, backoff_s=0.01,
                                                 orchestration="plan", **settings))
    result = run_task("pick the blue block into the orange bowl", brain, cell, tmp_path)
    assert result.steps_executed == 0
    assert cell.robot.state().joint_positions_rad == before  # no motion after a failed call
    assert_key_absent(result.model_dump_json(), folder=tmp_path)
    return result


def test_a_server_that_always_fails_moves_nothing(fake_gemini, sim_cell, tmp_path):
    fake_gemini.script(*[error_reply(500, "backend exploded")] * 2)
    result = _run_against(fake_gemini, sim_cell, tmp_path, attempts=2)
    assert result.exit_code == 2 and "after 2 attempts" in result.error


def test_a_plan_withheld_for_safety_moves_nothing(fake_gemini, sim_cell, tmp_path):
    def withhold_plans(request):
        if "You are a robotic arm" in request.prompt:
            return safety_reply("HARM_CATEGORY_DANGEROUS_CONTENT", "MEDIUM")
        return model_like(request)

    fake_gemini.responder = withhold_plans
    result = _run_against(fake_gemini, sim_cell, tmp_path)
    assert "HARM_CATEGORY_DANGEROUS_CONTENT (MEDIUM)" in result.error
    assert ["robotic arm" in r.prompt for r in fake_gemini.requests] == [False, True]


def test_a_plan_cut_off_at_the_token_limit_moves_nothing(fake_gemini, sim_cell, tmp_path):
    def cut_off_plans(request):
        reply = model_like(request)
        if "You are a robotic arm" in request.prompt:
            candidate = reply.body["candidates"][0]
            candidate["finishReason"] = "MAX_TOKENS"  # a plan that happens to parse, yet is cut
        return reply

    fake_gemini.responder = cut_off_plans
    result = _run_against(fake_gemini, sim_cell, tmp_path)
    assert result.exit_code == 2
    assert "cut off at its output token limit (MAX_TOKENS), so its plan may be incomplete" in (
        result.error)


def _escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if i % 2 else c for i, c in enumerate(text))


def _labels_echoing(key: str) -> Reply:
    return text_reply(json.dumps([{"point": [120, 200], "label": key.upper()},
                                  {"point": [130, 210], "label": f"not {key.title()}"}])
                      [:-1] + f', {{"point": [140, 220], "label": "{_escaped(key)}"}}]')


# replies of a server that echoes the key it was sent, in other cases and spellings
ECHOES = {
    "blocked prompt": (lambda key, n: blocked_prompt_reply(key, key.upper(), "HIGH"), 2),
    "withheld reply": (lambda key, n: safety_reply(key.swapcase(), "MEDIUM"), 2),
    "refused key": (lambda key, n: error_reply(400, f"API key not valid: {key.upper()}"), 2),
    "labels": (lambda key, n: _labels_echoing(key), 0),
    "retried 500": (lambda key, n: error_reply(500, f"backend for {key.title()} exploded")
                    if n == 1 else _labels_echoing(key), 0),
    "cut-off labels": (lambda key, n: text_reply(_labels_echoing(key).body["candidates"][0][
        "content"]["parts"][0]["text"], finish="MAX_TOKENS"), 0),
}


@pytest.mark.parametrize("echo", ECHOES)
def test_a_server_echoing_the_key_leaks_it_nowhere(fake_gemini, tmp_path, echo):
    reply_for, code = ECHOES[echo]
    fake_gemini.responder = lambda request: reply_for(request.key, len(fake_gemini.requests))
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), np.full((240, 320, 3), 180, np.uint8))
    done = erarm("point", str(image), "fruit", "--brain", "gemini", "--base-url", fake_gemini.url,
                 "--json", "--overlay", str(tmp_path / "points.png"))
    assert done.returncode == code, done.stderr
    assert fake_gemini.requests[0].key == TEST_KEY  # it did have the key to echo
    assert_key_absent(done.stdout, done.stderr, folder=tmp_path)
    assert "Warning" not in done.stderr  # the SDK's own warnings are not printed
    if code:
        assert done.stderr.startswith("erarm: error: ") and "***" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    else:
        labels = [p["label"] for p in json.loads(done.stdout)["points"]]
        assert labels == ["***", "not ***", "***"]
    if echo == "cut-off labels":  # said on stderr, through erarm's log
        assert ("· the Gemini reply was cut off at its output token limit (MAX_TOKENS): the "
                "points may be incomplete") in done.stderr


def test_a_run_against_an_echoing_server_keeps_the_key_out_of_everything(fake_gemini, tmp_path):
    def echo_in_reasoning(request):
        reply = model_like(request)
        if "You are a robotic arm" in request.prompt:
            part = reply.body["candidates"][0]["content"]["parts"][0]
            answer = json.loads(part["text"])
            answer["reasoning"] += f" My key is {request.key.upper()}."
            part["text"] = json.dumps(answer)[:-1].replace(
                '"reasoning": "', f'"reasoning": "{_escaped(request.key)} ', 1) + "}"
        return reply

    fake_gemini.responder = echo_in_reasoning
    done = erarm("run", "pick the blue block into the orange bowl", "--seed", "1", "--json",
                 "--orchestration", "plan",
                 "--record", "--out", str(tmp_path / "ok"), "--base-url", fake_gemini.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reasoning"].startswith("*** ")
    exchanges = (tmp_path / "ok" / "record" / "exchanges.jsonl").read_text()
    assert "My key is ***." in exchanges  # the upper-cased echo, redacted in the record too
    assert_key_absent(done.stdout, done.stderr, folder=tmp_path)

    def block_plans(request):
        if "You are a robotic arm" in request.prompt:
            return blocked_prompt_reply(request.key, request.key.upper(), "HIGH")
        return model_like(request)

    fake_gemini.responder = block_plans
    done = erarm("run", "pick the blue block into the orange bowl", "--seed", "1", "--json",
                 "--orchestration", "plan",
                 "--out", str(tmp_path / "blocked"), "--base-url", fake_gemini.url)
    assert done.returncode == 2, done.stderr
    assert "blocked the prompt (***): *** (HIGH)" in json.loads(done.stdout)["error"]
    result = json.loads((tmp_path / "blocked" / "result.json").read_text())
    assert "blocked the prompt (***)" in result["error"] and result["steps_executed"] == 0
    assert_key_absent(done.stdout, done.stderr, folder=tmp_path)


def test_a_key_pasted_into_the_task_stays_out_of_output_and_records(tmp_path):
    """The key can reach erarm other than through the brain: pasted into the task by mistake. What
    erarm writes (result.json, plan.json, --json, the error line) is redacted all the same."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"function": "returnToOrigin", "args": []}]))
    done = erarm("execute", str(plan), "--task", f"pick the blue block {TEST_KEY.upper()}",
                 "--brain", "local", "--json", "--out", str(tmp_path / "run"))
    assert done.returncode in (0, 1), done.stderr
    assert json.loads(done.stdout)["task"] == "pick the blue block ***"
    refused = erarm("run", f"pick the {TEST_KEY} block into the orange bowl", "--brain", "local",
                    "--out", str(tmp_path / "refused"))
    assert refused.returncode == 2 and "***" in refused.stderr
    assert_key_absent(done.stdout, done.stderr, refused.stdout, refused.stderr, folder=tmp_path)


def test_a_rate_limit_longer_than_the_cap_is_one_line(fake_gemini, tmp_path):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), np.full((240, 320, 3), 180, np.uint8))
    config = tmp_path / "erarm.toml"
    config.write_text("[gemini]\nmax_retry_delay_s = 1\n")
    fake_gemini.script(rate_limit_reply("38s"))
    done = erarm("point", str(image), "--brain", "gemini", "--base-url", fake_gemini.url,
                 "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "erarm: error: the Gemini API is rate limiting this key (429); it asks to retry in 38 s, "
        "longer than erarm waits (gemini.max_retry_delay_s = 1 s)")
    assert len(fake_gemini.requests) == 1


def test_point_and_detect_commands_with_gemini(fake_gemini, tmp_path):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), np.full((240, 320, 3), 180, np.uint8))
    fake_gemini.script(text_reply('[{"point": [120, 200], "label": "apple"}]'),
                       text_reply('[{"box_2d": [100, 150, 300, 260], "label": "apple"}]'))
    done = erarm("point", str(image), "fruit", "--brain", "gemini", "--base-url", fake_gemini.url,
                 "--json", "--overlay", str(tmp_path / "points.png"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["points"] == [{"point": [120.0, 200.0], "label": "apple"}]
    assert "Get all points matching the following objects: fruit" in fake_gemini.requests[0].prompt
    assert cv2.imread(str(tmp_path / "points.png")).shape == (240, 320, 3)
    done = erarm("detect", str(image), "--brain", "gemini", "--base-url", fake_gemini.url)
    assert done.returncode == 0 and "apple" in done.stdout


def test_config_file_and_flags_shape_the_request(fake_gemini, tmp_path):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), np.full((240, 320, 3), 180, np.uint8))
    config = tmp_path / "erarm.toml"
    config.write_text('[gemini]\nmodel = "gemini-robotics-er-1.5-preview"\ntemperature = 0.2\n'
                      '[gemini.safety]\nhate_speech = "BLOCK_LOW_AND_ABOVE"\n')
    fake_gemini.script(text_reply("[]"))
    done = erarm("point", str(image), "--brain", "gemini", "--base-url", fake_gemini.url,
                 "--config", str(config), "--thinking-budget", "point=64",
                 "--safety", "dangerous_content=BLOCK_NONE")
    assert done.returncode == 0, done.stderr
    sent = fake_gemini.requests[0]
    assert sent.model == "gemini-robotics-er-1.5-preview"
    assert sent.generation_config["temperature"] == 0.2
    assert sent.thinking == {"thinkingBudget": 64}
    assert {s["category"]: s["threshold"] for s in sent.body["safetySettings"]} == {
        "HARM_CATEGORY_HATE_SPEECH": "BLOCK_LOW_AND_ABOVE",
        "HARM_CATEGORY_DANGEROUS_CONTENT": "BLOCK_NONE"}


@pytest.mark.parametrize(("args", "message"), [
    (["--safety", "violence=BLOCK_NONE"], "safety"),
    (["--safety", "dangerous_content=BLOCK_SOME"], "safety"),
    (["--thinking-budget", "dream=5"], "unknown question kind"),
    (["--thinking-budget", "plan"], "--thinking-budget takes KEY=VALUE"),
    (["--config", "/no/such.toml"], "config file not found"),
])
def test_bad_settings_are_one_line_errors(tmp_path, args, message):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), np.full((24, 32, 3), 180, np.uint8))
    done = erarm("point", str(image), "--brain", "gemini", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_local_brain_says_it_cannot_draw_trajectories(tmp_path):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), np.full((24, 32, 3), 180, np.uint8))
    done = erarm("trajectory", str(image), "move the pen", "--brain", "local")
    assert done.returncode == 2
    assert "the local brain cannot answer trajectory questions; use --brain gemini" in done.stderr
