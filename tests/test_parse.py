"""The one parser, on the Robotics-ER docs' own example replies and on malformed ones."""

import pytest

from agent.errors import ReplyError
from agent.parse import parse_boxes, parse_plan, parse_points
from agent.schemas import Move, ReturnToOrigin, SetGripperState

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


def test_last_list_of_calls_wins_and_keyword_args_are_accepted():
    text = ('Draft: [{"function": "move", "args": [1, 2, true]}]\n'
            'Final: [{"function": "move", "args": {"x": 5, "y": 6, "high": false}},'
            ' {"function": "returnToOrigin"}]')
    plan = parse_plan(text)
    assert plan.calls == [Move(x=5, y=6, high=False), ReturnToOrigin()]


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
    ('[{"function": "move", "args": {"\\n": null}}]', 'got ("\\n")'),  # found by hypothesis
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
