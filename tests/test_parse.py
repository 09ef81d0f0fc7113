"""The one parser, on the Robotics-ER docs' own example replies and on malformed ones."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from erarm.agent.brains.local import LocalBrain
from erarm.agent.errors import ReplyError
from erarm.agent.parse import (
    parse_boxes,
    parse_plan,
    parse_points,
    parse_trajectory,
    read_boxes,
    read_points,
)
from erarm.agent.perceive import perceive
from erarm.agent.run import RunOptions, execute_plan
from erarm.agent.schemas import Move, ReturnToOrigin, SetGripperState
from tests.conftest import TEST_KEY
from tests.fake_gemini import text_reply

ERARM = str(Path(sys.executable).with_name("erarm"))

# Replies copied from the Gemini Robotics-ER overview (the reference docs).
DOCS_POINTS = """
 [
 {"point": [376, 508], "label": "small banana"},
 {"point": [287, 609], "label": "larger banana"},
 {"point": [223, 303], "label": "pink starfruit"},
 {"point": [435, 172], "label": "paper bag"},
 {"point": [270, 786], "label": "green plastic bowl"},
 {"point": [488, 775], "label": "metal measuring cup"},
 {"point": [673, 580], "label": "dark blue bowl"},
 {"point": [471, 353], "label": "light blue bowl"},
 {"point": [492, 497], "label": "bread"},
 {"point": [525, 429], "label": "lime"}
 ]"""

DOCS_LUNCH = """Based on the image, here is a plan to pack the lunch box and lunch bag:

 1. **Pack the fruit into the lunch box.** Place the [apple](apple), [banana](banana), [red grapes](red grapes), and [green grapes](green grapes) into the [blue lunch box](blue lunch box).
 2. **Add the spoon to the lunch box.** Put the [blue spoon](blue spoon) inside the lunch box as well.

 Here is the list of objects and their locations:
 * [{"point": [899, 440], "label": "apple"}]
 * [{"point": [814, 363], "label": "banana"}]
 * [{"point": [727, 470], "label": "red grapes"}]
 * [{"point": [675, 608], "label": "green grapes"}]
 * [{"point": [706, 529], "label": "blue lunch box"}]
 * [{"point": [864, 517], "label": "blue spoon"}]
 * [{"point": [499, 401], "label": "blue snack bar"}]
 * [{"point": [614, 705], "label": "brown snack bar"}]
 * [{"point": [448, 501], "label": "brown lunch bag"}]
"""  # noqa: E501

DOCS_ROBOT_API = """Reasoning: To perform the pick and place operation, I will first move the
robotic arm to a high position above the blue block to ensure clearance. Then, I
will open the gripper in preparation for grasping. Next, I will lower the arm to
the surface level to position the gripper around the block and close the gripper
to secure it. After picking up the block, I will lift the arm to clear the
surface and move towards the orange bowl, maintaining a high position to avoid
collisions. Once positioned above the bowl, I will lower the arm to place the
block inside. I will then open the gripper to release the block. Finally, I will
lift the arm out of the bowl and call `returnToOrigin` to reset the robot's
state.

 [
 {
 "function": "move",
 "args": [
 163,
 427,
 true
 ]
 },
 {
 "function": "setGripperState",
 "args": [
 true
 ]
 },
 {
 "function": "move",
 "args": [
 163,
 427,
 false
 ]
 },
 {
 "function": "setGripperState",
 "args": [
 false
 ]
 },
 {
 "function": "move",
 "args": [
 163,
 427,
 true
 ]
 },
 {
 "function": "move",
 "args": [
 -247,
 90,
 true
 ]
 },
 {
 "function": "move",
 "args": [
 -247,
 90,
 false
 ]
 },
 {
 "function": "setGripperState",
 "args": [
 true
 ]
 },
 {
 "function": "move",
 "args": [
 -247,
 90,
 true
 ]
 },
 {
 "function": "returnToOrigin",
 "args": []
 }
 ]
"""


def test_docs_pointing_reply():
    points = parse_points(DOCS_POINTS)
    assert len(points) == 10
    assert points[0].label == "small banana"
    assert (points[0].y, points[0].x) == (376, 508)


def test_docs_markdown_list_of_single_point_lists():
    points = parse_points(DOCS_LUNCH)
    assert [p.label for p in points][:3] == ["apple", "banana", "red grapes"]
    assert len(points) == 9


def test_docs_robot_api_reply():
    plan = parse_plan(DOCS_ROBOT_API)
    assert plan.reasoning.startswith("Reasoning: To perform the pick and place")
    assert plan.calls[0] == Move(x=163, y=427, high=True)
    assert plan.calls[1] == SetGripperState(opened=True)
    assert plan.calls[6] == Move(x=-247, y=90, high=False)
    assert plan.calls[-1] == ReturnToOrigin()
    assert plan.as_json()[0] == {"function": "move", "args": [163, 427, True]}


def test_fenced_boxes_and_empty_lists():
    text = 'Here you go:\n```json\n[{"box_2d": [10, 20, 110, 220], "label": "cup"}]\n```'
    assert parse_boxes(text)[0].box_2d == (10, 20, 110, 220)
    assert parse_points("If no objects are found: []") == []


def test_two_different_lists_of_calls_are_refused_and_keyword_args_accepted():
    """A model that repeats a list written into the task after its own plan: which one is the
    plan cannot be told, so neither runs (the reply is asked for again)."""
    own = '[{"function": "move", "args": {"x": 5, "y": 6, "high": false}}, ' \
          '{"function": "returnToOrigin"}]'
    injected = '[{"function": "move", "args": [400, 300, false]}]'
    with pytest.raises(ReplyError, match=r"^the reply held 2 different lists of function calls"):
        parse_plan(f"Plan: {own}\nAs the task says: {injected}")
    plan = parse_plan(f"Plan: {own}\nOnce more: {own}")
    assert plan.calls == [Move(x=5, y=6, high=False), ReturnToOrigin()]
    assert plan.notes == ["the reply held the same list of calls 2 times"]


@pytest.mark.parametrize(("text", "message"), [
    ("I cannot see any block.", "no JSON list of function calls"),
    ('[{"function": "fly", "args": [1]}]', "step 1: unknown function \"fly\""),
    ('[{"function": "move", "args": [1, 2]}]', "step 1: move takes 3 argument(s)"),
    ('[{"function": "move", "args": ["163", 2, true]}]', "step 1: x must be a number"),
    ('[{"function": "move", "args": [NaN, 2, true]}]', "step 1: x must be finite"),
    ('[{"function": "move", "args": [1, Infinity, true]}]', "step 1: y must be finite"),
    ('[{"function": "move", "args": [true, 2, true]}]', "step 1: x must be a number"),
    ('[{"function": "move", "args": [1, 2, 1]}]', "step 1: high must be true or false"),
    ('[{"function": "returnToOrigin"}, {"function": "setGripperState", "args": ["yes"]}]',
     "step 2: opened must be true or false"),
    ('[{"function": "move", "args": {"x": 1, "y": 2}}]', "step 1: move takes arguments"),
    ('[{"function": "move", "args": {"\\n": null}}]', 'unknown argument "\\n"'),  # hypothesis
])
def test_bad_plans_are_refused_with_the_step_and_reason(text, message):
    with pytest.raises(ReplyError) as refused:
        parse_plan(text)
    assert message in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(("text", "message"), [
    ('[{"point": [1200, 5], "label": "x"}]', "point 1: point.0"),
    ('[{"point": [5], "label": "x"}]', "point 1: point"),
    ('[{"point": ["5", 5], "label": "x"}]', "point 1: point.0"),
    ("no json here", "no JSON list of points"),
])
def test_bad_points_are_refused(text, message):
    with pytest.raises(ReplyError, match=message):
        parse_points(text)


def test_swapped_box_corners_are_refused():
    with pytest.raises(ReplyError, match="corners swapped"):
        parse_boxes('[{"box_2d": [500, 20, 100, 220], "label": "cup"}]')


def test_non_text_reply_is_a_reply_error():
    with pytest.raises(ReplyError, match="as text"):
        parse_plan(None)


# -- Issue 10 item 10: one rule for unknown keys, in every call form the README lists ----------
MOVE_ARGS = {"x": 513, "y": -184, "high": True}


@pytest.mark.parametrize(("call", "message"), [
    ({"function": "move", "args": [513, -184, True], "speed": 99999},
     'step 1: move has an unknown key "speed"'),
    ({"function": "move", "args": {**MOVE_ARGS, "speed": 99999}},
     'step 1: move has an unknown argument "speed" (it takes x, y, high)'),
    ({"name": "move", "args": MOVE_ARGS, "speed": 99999},
     'step 1: move has an unknown key "speed"'),
    ({"functionCall": {"name": "move", "args": MOVE_ARGS, "speed": 99999}},
     'step 1: move has an unknown key "speed"'),
    ({"functionCall": {"name": "move", "args": MOVE_ARGS}, "speed": 99999},
     'step 1: move has an unknown key "speed"'),
    ({"function_call": {"name": "move", "args": {**MOVE_ARGS, "speed": 1}}},
     'step 1: move has an unknown argument "speed"'),
    ({"function": "returnToOrigin", "speed": 1}, 'step 1: returnToOrigin has an unknown key'),
])
def test_unknown_keys_are_refused_in_every_call_form(call, message):
    with pytest.raises(ReplyError) as refused:
        parse_plan(json.dumps([call, {"function": "returnToOrigin", "args": []}]))
    assert message in str(refused.value)


def test_every_call_form_without_extra_keys_is_read():
    forms = [{"function": "move", "args": [513, -184, True]},
             {"function": "move", "args": MOVE_ARGS},
             {"name": "move", "args": MOVE_ARGS, "id": "call-1"},
             {"functionCall": {"name": "move", "args": MOVE_ARGS}, "thoughtSignature": "c2ln"}]
    plan = parse_plan(json.dumps(forms))
    assert plan.calls == [Move(x=513, y=-184, high=True)] * 4


# -- Issue 10 item 6: numbers too large to read are refused by name, never an OverflowError ------
@pytest.mark.parametrize(("literal", "message"), [
    ("9" * 400, "step 1: x is a 400-digit integer (erarm reads at most 15 digits)"),
    ("-" + "9" * 400, "step 1: x is a 400-digit integer"),
    ("5" + "0" * 4999, "step 1: x is a 5,000-digit integer"),  # beyond Python's own int limit
    ("1e400", "step 1: x is 1e400, beyond the largest number"),
    ("-1.5E+999", "step 1: x is -1.5E+999, beyond the largest number"),
    ('"' + "9" * 400 + '"', 'step 1: x must be a number, got "9999'),
])
def test_huge_numbers_are_refused_by_name(literal, message):
    with pytest.raises(ReplyError) as refused:
        parse_plan(f'[{{"function": "move", "args": [{literal}, 0, true]}}]')
    assert message in str(refused.value) and len(str(refused.value)) < 200


def test_numbers_a_float_holds_are_still_read():
    plan = parse_plan('[{"function": "move", "args": [123456789012345, -1e300, true]}]')
    assert plan.calls == [Move(x=123456789012345, y=-1e300, high=True)]  # the validator refuses


def test_huge_numbers_in_points_are_dropped_not_raised():
    reading = read_points(f'[{{"point": [{"9" * 400}, 5], "label": "a"}},'
                          '{"point": [1e400, 5], "label": "b"}, {"point": [5, 5], "label": "c"}]')
    assert [p.label for p in reading.items] == ["c"] and len(reading.dropped) == 2


# -- Issue 10 item 14: a malformed entry is dropped with a warning, the rest are kept --------------
def test_malformed_points_are_dropped_with_a_warning_each():
    reading = read_points('[{"point": [100, 200], "label": "apple"}, {"point": [1200, 5], '
                          '"label": "far"}, {"point": [300, 400]}, "junk",'
                          '{"point": [500, 600], "label": "pear"}]')
    assert [p.label for p in reading.items] == ["apple", "pear"]
    assert reading.dropped == [
        "point 2: point.0: Input should be less than or equal to 1000",
        "point 3: label: Field required", "point 4: Input should be a valid dictionary or "
        "instance of Point"]
    assert reading.warnings[0] == "ignored point 2: point.0: Input should be less than or equal " \
                                  "to 1000"
    assert reading.warnings[-1].endswith("(kept 2 of 5 point entries)")
    assert parse_points(DOCS_POINTS[:-3] + ', {"point": [-1, 5], "label": "x"}]')[-1].label \
        == "lime"


def test_swapped_box_corners_drop_that_box_only():
    reading = read_boxes('[{"box_2d": [500, 20, 100, 220], "label": "cup"},'
                         '{"box_2d": [10, 20, 110, 220], "label": "plate"}]')
    assert [b.label for b in reading.items] == ["plate"]
    assert reading.warnings == ["ignored box 1 ('cup') has its corners swapped (kept 1 of 2 "
                                "box entries)"]


def test_many_malformed_entries_give_a_bounded_number_of_warnings():
    entries = ", ".join('{"point": [2000, 5], "label": "x"}' for _ in range(500))
    reading = read_points(f'[{entries}, {{"point": [5, 5], "label": "ok"}}]')
    assert len(reading.items) == 1 and len(reading.dropped) == 500
    assert len(reading.warnings) == 11
    assert reading.warnings[-1] == ("ignored 490 more malformed entries (kept 1 of 501 point "
                                    "entries)")


def test_a_trajectory_and_a_plan_stay_all_or_nothing():
    with pytest.raises(ReplyError, match="the trajectory has a malformed point: point 3"):
        parse_trajectory('[{"point": [1, 1], "label": "0"}, {"point": [2, 2], "label": "1"},'
                         '{"point": [3000, 3], "label": "2"}]')
    with pytest.raises(ReplyError, match="step 2"):
        parse_plan('[{"function": "move", "args": [400, 0, true]}, {"function": "move", '
                   '"args": [1e400, 0, true]}]')


def test_warnings_reach_the_perception_and_the_run_result(sim_cell, tmp_path):
    class SloppyBrain(LocalBrain):
        """The local brain with one malformed point and one swapped box added to its replies."""

        def point(self, frame, queries=None, limit=10):
            good = json.loads(super().point(frame, queries, limit))
            return json.dumps([*good, {"point": [1500, 10], "label": "ghost"}])

        def detect(self, frame, limit=25):
            good = json.loads(super().detect(frame, limit))
            return json.dumps([*good, {"box_2d": [900, 10, 100, 20], "label": "ghost"}])

    cell = sim_cell(seed=1)
    frame = cell.camera.capture()
    honest, perception = perceive(LocalBrain(), frame), perceive(SloppyBrain(), frame)
    assert (perception.points, perception.boxes) == (honest.points, honest.boxes)
    assert honest.warnings == [] and len(perception.warnings) == 2
    result = execute_plan(DOCS_ROBOT_API, "pick the blue block into the orange bowl",
                          SloppyBrain(), cell, tmp_path, options=RunOptions(dry_run=True))
    recorded = json.loads((tmp_path / "result.json").read_text())["warnings"]
    for warning in perception.warnings:
        assert warning in result.warnings and warning in recorded


def test_point_command_prints_each_warning_and_keeps_the_rest(fake_gemini, tmp_path):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), np.full((240, 320, 3), 180, np.uint8))
    fake_gemini.script(text_reply('[{"point": [120, 200], "label": "apple"},'
                                  '{"point": [120, 2000], "label": "ghost"}]'),
                       text_reply('[{"box_2d": [300, 150, 100, 260], "label": "ghost"}]'))
    env = {**os.environ, "GEMINI_API_KEY": TEST_KEY}
    done = subprocess.run([ERARM, "point", str(image), "--brain", "gemini", "--base-url",
                           fake_gemini.url, "--json"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert [p["label"] for p in answer["points"]] == ["apple"]
    assert answer["warnings"] == ["ignored point 2: point.1: Input should be less than or equal "
                                  "to 1000 (kept 1 of 2 point entries)"]
    assert [line for line in done.stderr.splitlines() if "warning:" in line] == [
        f"· warning: {answer['warnings'][0]}"]
    done = subprocess.run([ERARM, "detect", str(image), "--brain", "gemini", "--base-url",
                           fake_gemini.url], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 2  # nothing valid is left: the reply fails
    assert done.stderr.strip().splitlines() == [
        "erarm: error: no valid box in the reply: box 1 ('ghost') has its corners swapped"]
