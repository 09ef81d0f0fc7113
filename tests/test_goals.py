"""Goals: what a task asks, as relations erarm checks itself from what it perceives; each
relation's geometry, the reading of tasks into goals, and what cannot be told."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from erarm.agent.goals import (
    Relation,
    TaskGoal,
    Viewpoint,
    check_goal,
    check_task,
    task_goals,
)
from erarm.agent.instructions import read_instruction
from erarm.agent.schemas import SceneObject


def seen(label: str, x: float, y: float, z: float, radius: float = 20.0) -> SceneObject:
    """An object as perception reports it, with its [y, x] image point as the simulator's
    camera sees it: across the table from the robot, looking back at it, so the image's right
    is the robot's left (+y) and nearer the camera (larger x) is lower in the image."""
    return SceneObject(label=label, position_mm=(x, y, z), radius_mm=radius,
                       point=(500 + (x - 450) * 0.8, 500 + y * 0.8))


BOWL = seen("orange bowl", 480, -100, 6, radius=65)
SCENE = [BOWL, seen("red block", 370, 50, 40)]


@pytest.mark.parametrize(("relation", "item", "holds"), [
    (Relation.inside, seen("blue block", 485, -95, 46), True),
    (Relation.inside, seen("blue block", 480, -20, 40), False),  # on the table beside it
    (Relation.out_of, seen("blue block", 480, -20, 40), True),
    (Relation.out_of, seen("blue block", 470, -105, 46), False),
    (Relation.next_to, seen("blue block", 480, 0, 40), True),  # 15 mm edge to edge
    (Relation.next_to, seen("blue block", 480, 150, 40), False),
    (Relation.next_to, seen("blue block", 480, -100, 46), False),  # inside is not next to
    (Relation.left_of, seen("blue block", 480, -210, 40), True),  # the image's left: -y
    (Relation.left_of, seen("blue block", 480, 10, 40), False),  # that is its right
    (Relation.right_of, seen("blue block", 480, 10, 40), True),
    (Relation.left_of, seen("blue block", 480, -420, 40), False),  # 255 mm apart: not beside
    (Relation.in_front_of, seen("blue block", 600, -100, 40), True),  # nearer the camera
    (Relation.behind, seen("blue block", 360, -100, 40), True),
    (Relation.away_from, seen("blue block", 480, 150, 40), True),
    (Relation.away_from, seen("blue block", 480, 0, 40), False),
])
def test_each_relation_is_measured_from_positions_and_sizes(relation, item, holds):
    goal = TaskGoal(relation=relation, item="blue block", target="orange bowl")
    check = check_goal(goal, [BOWL, item])
    assert check.holds is holds, check.reason


def test_on_means_centred_and_one_object_higher():
    base = seen("green block", 400, 0, 40)
    assert check_goal(TaskGoal(relation=Relation.on, item="red block", target="green block"),
                      [base, seen("red block", 405, 3, 80)]).holds
    off = check_goal(TaskGoal(relation=Relation.on, item="red block", target="green block"),
                     [base, seen("red block", 460, 0, 40)])
    assert off.holds is False and off.reason == "the red block is 60 mm off the green block's " \
                                                "centre"


def test_the_robots_left_is_its_plus_y_and_its_front_its_base_side():
    goal = TaskGoal(relation=Relation.left_of, item="blue block", target="orange bowl",
                    viewpoint=Viewpoint.robot)
    assert check_goal(goal, [BOWL, seen("blue block", 480, 10, 40)]).holds  # the camera's right
    assert not check_goal(goal, [BOWL, seen("blue block", 480, -210, 40)]).holds
    front = goal.model_copy(update={"relation": Relation.in_front_of})
    assert check_goal(front, [BOWL, seen("blue block", 360, -100, 40)]).holds
    assert str(front) == "the blue block in front of the orange bowl (as the robot sees it)"


def test_an_unknown_relation_is_refused_not_guessed():
    with pytest.raises(ValidationError):
        TaskGoal(relation="under", item="blue block", target="orange bowl")


def test_what_cannot_be_seen_or_told_apart_is_unverifiable_never_met():
    goal = TaskGoal(relation=Relation.inside, item="blue block", target="orange bowl")
    unseen = check_task([goal], [BOWL])
    assert unseen.holds is None
    assert unseen.reason == "unverifiable: the blue block is not seen"
    twins = [BOWL, seen("blue block", 480, 10, 40), seen("blue block", 480, -210, 40)]
    left = check_goal(goal.model_copy(update={"relation": Relation.left_of}), twins)
    assert left.holds is None and "several objects fit" in left.reason
    assert check_task([], SCENE).holds is None
    assert check_task([], SCENE).reason == ("unverifiable: no goal erarm can measure for this "
                                            "task")


@pytest.mark.parametrize(("task", "goals"), [
    ("pick the blue block into the orange bowl", ["the blue block inside the orange bowl"]),
    ("stack the red block on the green block", ["the red block on the green block"]),
    ("move the blue block to the left of the orange bowl",
     ["the blue block left of the orange bowl (as the camera sees it)"]),
    ("put the blue block on the table next to the orange bowl",
     ["the blue block next to the orange bowl"]),
    ("take the blue block out of the orange bowl", ["the blue block out of the orange bowl"]),
    ("put all the blocks into the orange bowl", ["the blue block inside the orange bowl",
                                                 "the red block inside the orange bowl",
                                                 "the green block inside the orange bowl"]),
    ("sort the blocks into the bowls of matching colour", []),  # no red, blue or green bowl
    ("put the apple in the basket", []),  # not understood: erarm checks nothing of it
])
def test_tasks_become_goals_over_what_was_seen(task, goals):
    objects = [BOWL, seen("blue block", 370, -200, 40), seen("red block", 370, 50, 40),
               seen("green block", 500, 150, 40)]
    assert [str(g) for g in task_goals(task, objects)] == goals


def test_a_relative_place_is_never_read_as_into():
    """The simulator's staging, its referee and the emulator read tasks this way too."""
    for task in ("move the blue block to the left of the orange bowl",
                 "put the blue block on the table next to the red bowl",
                 "take the blue block out of the orange bowl"):
        assert read_instruction(task) is None
    assert read_instruction("put the blue block in the orange bowl") is not None
