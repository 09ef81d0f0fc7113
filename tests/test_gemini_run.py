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

from agent.brains.gemini import GeminiBrain
from agent.config import GeminiSettings
from agent.run import run_task
from tests.conftest import TEST_KEY, assert_key_absent
from tests.fake_gemini import error_reply, model_like, safety_reply, text_reply

ERARM = str(Path(sys.executable).with_name("erarm"))


def erarm(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GEMINI_API_KEY": TEST_KEY}
    env.pop("GOOGLE_API_KEY", None)
    return subprocess.run([ERARM, *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


def test_run_with_gemini_end_to_end(fake_gemini, tmp_path):
    fake_gemini.responder = model_like
    done = erarm("run", "pick the blue block into the orange bowl", "--seed", "1", "--json",
                 "--out", str(tmp_path), "--base-url", fake_gemini.url)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["brain"] == "gemini"  # auto picked Gemini because a key is set
    assert result["success"] is True and result["verified"] is True
    assert result["model_verdict"] == {"done": True, "reason": "the block sits in the bowl"}
    kinds = [("plan" if "robotic arm" in r.prompt else "judge" if "completed" in r.prompt
              else "detect" if "bounding boxes" in r.prompt else "point")
             for r in fake_gemini.requests]
    # closed loop: look, plan, pick and place, look again, plan again (done), judge
    assert kinds == ["point", "detect", "plan", "point", "detect", "plan", "judge"]
    plan_request = fake_gemini.requests[2]
    assert plan_request.image().shape == (480, 640, 3)
    assert "- blue block: " in plan_request.prompt
    assert len(fake_gemini.requests[6].images) == 2
    assert_key_absent(done.stdout, done.stderr, folder=tmp_path)


def test_run_can_carry_the_object_along_the_models_path(fake_gemini, tmp_path):
    fake_gemini.responder = model_like
    done = erarm("run", "pick the blue block into the orange bowl", "--seed", "1", "--json",
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
                                                 **settings))
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
    assert ["robotic arm" in r.prompt for r in fake_gemini.requests] == [False, False, True]


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
