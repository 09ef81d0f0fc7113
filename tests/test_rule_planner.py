"""The local brain's rule planner: which phrasings it takes, and what it answers."""

import pytest

from agent.errors import TargetNotFound, TaskNotUnderstood
from agent.parse import parse_plan
from agent.rule_planner import plan_text
from agent.schemas import Move, ReturnToOrigin, SceneObject, SetGripperState


def obj(label: str, x: float, y: float) -> SceneObject:
    return SceneObject(label=label, point=(500, 500), position_mm=(x, y, 20))


SCENE = [obj("blue block", 412.4, 87.6), obj("orange bowl", 466.0, -179.0),
         obj("red block", 350.0, 60.0), obj("green bowl", 380.0, 200.0)]


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
    assert plan.reasoning.startswith("Reasoning: The blue block is at (412, 88) mm")


def test_uncoloured_bowl_means_the_only_bowl():
    scene = [obj("blue block", 400, 0), obj("purple bowl", 500, 100), obj("red block", 300, 0)]
    plan = parse_plan(plan_text("pick the blue block into the bowl", scene))
    assert plan.calls[6] == Move(x=500, y=100, high=False)


def test_ambiguous_bowl_asks_for_a_colour():
    with pytest.raises(TaskNotUnderstood, match="2 objects could be the bowl"):
        plan_text("pick the blue block into the bowl", SCENE)


def test_missing_object_names_what_was_seen():
    with pytest.raises(TargetNotFound, match=r"no yellow block in view \(I see: blue block"):
        plan_text("pick the yellow block into the orange bowl", SCENE)


@pytest.mark.parametrize("task", [
    "stack the red block on the blue block",
    "make me a coffee",
    "pick the blue block",
    "pick the wooden block into the orange bowl",
    "",
])
def test_other_instructions_are_refused_with_what_is_understood(task):
    with pytest.raises(TaskNotUnderstood) as refused:
        plan_text(task, SCENE)
    message = str(refused.value)
    assert "it understands" in message and "--brain gemini" in message
    assert "\n" not in message
