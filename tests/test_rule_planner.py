"""The local brain's rule planner: which phrasings it takes, and what it plans from what it sees."""

import math

import pytest

from erarm.agent.brains.local.rule_planner import plan_text
from erarm.agent.errors import TargetNotFound, TaskNotUnderstood
from erarm.agent.parse import parse_plan
from erarm.agent.schemas import Move, ReturnToOrigin, SceneObject, SetGripperState


def obj(label: str, x: float, y: float, z: float = 40, radius: float = 0.0) -> SceneObject:
    radius = radius or (66.0 if label.endswith("bowl") else 28.0)
    return SceneObject(label=label, point=(500, 500), position_mm=(x, y, z), radius_mm=radius)


SCENE = [obj("blue block", 412.4, 87.6), obj("orange bowl", 466.0, -179.0, 8),
         obj("red block", 350.0, 60.0), obj("green bowl", 380.0, 200.0, 8)]


def transfers(plan) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """(grasp spot, release spot) of each pick and place in a plan."""
    lows = [(c.x, c.y) for c in plan.calls if isinstance(c, Move) and not c.high]
    return list(zip(lows[0::2], lows[1::2], strict=True))


@pytest.mark.parametrize("task", [
    "pick the blue block into the orange bowl",
    "Put the blue cube in the orange bowl.",
    "place blue block inside the orange bowl",
    "drop the blue block into the orange bowl",
    "move the blue block to the orange bowl",
    "pick up the blue block and put it in the orange bowl",
    "please put the blue cube inside of the orange bowl!",
    "place the blue block on the orange bowl",
])
def test_phrasings_give_the_docs_pick_and_place_sequence(task):
    plan = parse_plan(plan_text(task, SCENE))
    assert plan.calls == [
        Move(x=412, y=88, high=True), SetGripperState(opened=True), Move(x=412, y=88, high=False),
        SetGripperState(opened=False), Move(x=412, y=88, high=True),
        Move(x=466, y=-179, high=True), Move(x=466, y=-179, high=False),
        SetGripperState(opened=True), Move(x=466, y=-179, high=True), ReturnToOrigin()]
    assert "the blue block at (412, 88) mm into the orange bowl" in plan.reasoning


def test_a_done_task_is_an_empty_plan():
    done = [obj("blue block", 470, -175, 47), obj("orange bowl", 466, -179, 8)]
    plan = parse_plan(plan_text("pick the blue block into the orange bowl", done))
    assert plan.calls == [] and "already done" in plan.reasoning


def test_put_all_plans_what_is_not_in_the_bowl_yet_and_finds_room():
    scene = [obj("pink bowl", 450, 0, 8), obj("red block", 455, 5, 47),  # already inside
             obj("blue block", 350, 150), obj("cyan block", 380, -200)]
    plan = parse_plan(plan_text("put all the blocks into the pink bowl", scene))
    moves = transfers(plan)
    assert [grasp for grasp, _ in moves] == [(350, 150), (380, -200)]  # nearest first
    first_release = moves[0][1]
    assert math.hypot(first_release[0] - 455, first_release[1] - 5) > 20  # not on the red block
    assert math.hypot(first_release[0] - 450, first_release[1]) <= 31  # but in the bowl


def test_a_block_resting_on_another_in_the_bowl_is_set_down_away_from_where_it_lay():
    """The view of its own spot is from before the pick and still shows it: the validator would
    refuse a release there, so the planner picks the slot farthest from it too."""
    for spot in ((450, 30), (476, -15), (424, -15)):  # over each of the three slots in turn
        scene = [obj("pink bowl", 450, 0, 8), obj("red block", 450, 0, 47),
                 obj("blue block", *spot, 87)]  # on top of the red block's edge
        (grasp, release), = transfers(parse_plan(plan_text("put all the blocks into the pink bowl",
                                                           scene)))
        assert grasp == spot
        assert math.dist(release, spot) > 42  # beyond its footprint and the height read around it


def test_sort_matches_colours_and_skips_sorted_blocks():
    scene = [obj("red block", 350, 100), obj("red bowl", 500, -150, 8),
             obj("cyan block", 505, 150, 47), obj("cyan bowl", 500, 150, 8),
             obj("yellow block", 360, -100), obj("yellow bowl", 380, 200, 8)]
    for task in ("sort the blocks into the bowls of matching colour",
                 "put each block in the bowl of the same colour"):
        moves = transfers(parse_plan(plan_text(task, scene)))
        assert moves == [((350, 100), (500, -150)), ((360, -100), (380, 200))]


@pytest.mark.parametrize("task", ["stack the red block on the blue block",
                                  "put the red cube on top of the blue cube",
                                  "place the red block onto the blue block"])
def test_stacking_puts_one_block_on_the_other(task):
    moves = transfers(parse_plan(plan_text(task, SCENE)))
    assert moves == [((350, 60), (412, 88))]
    stacked = [obj("red block", 413, 90, 80), obj("blue block", 412, 88, 40)]
    assert parse_plan(plan_text(task, stacked)).calls == []


def test_a_tower_is_built_bottom_up_and_resumed_where_it_stands():
    task = "build a tower with the red block at the bottom, the green block in the middle and " \
           "the blue block on top"
    apart = [obj("red block", 400, 0), obj("green block", 350, 150), obj("blue block", 500, -150)]
    assert transfers(parse_plan(plan_text(task, apart))) == [
        ((350, 150), (400, 0)), ((500, -150), (400, 0))]
    half = [obj("red block", 400, 0), obj("green block", 401, 2, 80),
            obj("blue block", 500, -150)]
    assert transfers(parse_plan(plan_text(task, half))) == [((500, -150), (401, 2))]
    built = [obj("red block", 400, 0), obj("green block", 401, 2, 80),
             obj("blue block", 402, 1, 120)]
    assert parse_plan(plan_text(task, built)).calls == []


def test_uncoloured_bowl_means_the_only_bowl():
    scene = [obj("blue block", 400, 0), obj("purple bowl", 500, 100, 8), obj("red block", 300, 0)]
    plan = parse_plan(plan_text("pick the blue block into the bowl", scene))
    assert transfers(plan) == [((400, 0), (500, 100))]


def test_ambiguous_bowl_asks_for_a_colour():
    with pytest.raises(TaskNotUnderstood, match="2 objects could be the bowl"):
        plan_text("pick the blue block into the bowl", SCENE)


def test_missing_object_names_what_was_seen():
    with pytest.raises(TargetNotFound, match=r"no yellow block in view \(I see: blue block"):
        plan_text("pick the yellow block into the orange bowl", SCENE)


@pytest.mark.parametrize("task", [
    "make me a coffee",
    "pick the blue block",
    "pick the wooden block into the orange bowl",
    "",
])
def test_other_instructions_are_refused_with_what_is_understood(task):
    with pytest.raises(TaskNotUnderstood) as refused:
        plan_text(task, SCENE)
    message = str(refused.value)
    assert "offline it understands" in message and "--emulate plays any task" in message
    assert "\n" not in message and len(message) < 330
