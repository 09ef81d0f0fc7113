"""Goals: what a task asks, as relations erarm checks itself from what it perceives; each
relation's geometry, the reading of tasks into goals, and what cannot be told."""

from __future__ import annotations

import math

import numpy as np
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


def test_erarm_reads_on_with_a_margin_for_its_measurement():
    """A can 34 mm off the middle of a sponge seen 40 mm across at most: within what the
    referee's half width might allow, but erarm's own verdict, reading 12 mm tighter, does not
    call it on (the sponge's true narrow half is 30 mm: the can hangs over its edge)."""
    goal = TaskGoal(relation=Relation.on, item="soda can", target="sponge")
    sponge = seen("sponge", 346, 67, 28, radius=40)
    can = seen("soda can", 345, 33, 117)
    assert check_goal(goal, [sponge, can]).holds is True
    tight = check_goal(goal, [sponge, can], margin_mm=12.0)
    assert tight.holds is False and tight.reason == "the soda can is 34 mm off the sponge's " \
                                                    "centre"
    assert check_goal(goal, [sponge, seen("soda can", 350, 60, 117)], margin_mm=12.0).holds


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
    """The simulator's staging, its referee and the emulator read tasks this way too: a place
    beside the target, or (out of, not yet a family) nothing."""
    from erarm.agent.instructions import Goal

    for task in ("move the blue block to the left of the orange bowl",
                 "put the blue block on the table next to the red bowl"):
        assert read_instruction(task).goal is Goal.place
    assert read_instruction("take the blue block out of the orange bowl") is None
    assert read_instruction("put the blue block in the orange bowl").goal is Goal.into


def _yes_saying(request):
    """A model that does nothing and, asked, says the task is done whatever it sees."""
    from tests.fake_gemini import model_like, text_reply

    if request.declares_tools:
        return text_reply("Done: the blue block is in the orange bowl.")
    if "Has the task been completed" in request.prompt:
        return text_reply('{"done": true, "reason": "it looks done", "progress": 100}')
    return model_like(request)


@pytest.mark.parametrize(("task", "says"), [
    ("pick the blue block into the orange bowl", "the blue block is "),  # measured: not inside
    ("wave at the camera", "unverifiable: no goal erarm can measure for this task"),
])
def test_a_yes_saying_model_cannot_make_an_unfinished_task_verified(gemini, fake_gemini,
                                                                    sim_cell, tmp_path, task,
                                                                    says):
    from erarm.agent.config import Orchestration
    from erarm.agent.run import RunOptions, run_task

    fake_gemini.responder = _yes_saying
    cell = sim_cell("pick the blue block into the orange bowl", seed=1)
    result = run_task(task, gemini(), cell, tmp_path / "run",
                      options=RunOptions(orchestration=Orchestration.tools, reasks=0))
    assert result.model_verdict is not None and result.model_verdict.done  # the model's word
    assert result.verified is False and result.exit_code == 1
    assert result.verification.startswith(says), result.verification


def test_a_place_beside_a_target_is_free_and_makes_the_goal_hold():
    from erarm.agent.goals import place_for

    item = seen("blue block", 370, -200, 40)
    neighbour = seen("red block", 480, -190, 40)  # right where "left of" would first go
    objects = [BOWL, item, neighbour, seen("green block", 600, 150, 40)]
    goal = TaskGoal(relation=Relation.left_of, item="blue block", target="orange bowl")
    spot = place_for(goal, item, BOWL, objects)
    assert spot is not None
    assert math.dist(spot, neighbour.position_mm[:2]) >= 2 * 20 + 12  # around it, not on it
    moved = item.model_copy(update={"position_mm": (*spot, 40.0),
                                    "point": (500 + (spot[0] - 450) * 0.8, 500 + spot[1] * 0.8)})
    assert check_goal(goal, [BOWL, moved, neighbour]).holds
    walled = [BOWL, item, *(seen(f"{c} bowl", 480 + 150 * math.cos(a), -100 + 150 * math.sin(a),
                                 6, radius=65)
                            for c, a in zip(("red", "cyan", "pink", "green", "yellow",
                                             "purple", "blue"),
                                            (math.pi * k / 4 for k in range(1, 8)), strict=True))]
    assert place_for(goal, item, BOWL, walled) is None  # no room: nowhere, rather than a guess


def test_with_two_objects_the_image_axes_mirror_the_table():
    from erarm.agent.goals import image_axes

    axes = image_axes([BOWL, seen("blue block", 370, -200, 40)])
    full = image_axes([BOWL, seen("blue block", 370, -200, 40), seen("red block", 600, 150, 40)])
    assert np.linalg.det(axes) < 0 and np.allclose(axes, full, atol=1e-6)


@pytest.mark.parametrize(("task", "relation", "robot_view"), [
    ("move the blue block to the left of the orange bowl", "left of", False),
    ("put the blue block on the table beside the red bowl", "next to", False),
    ("place the red cube behind the green bowl, as seen from the robot", "behind", True),
    ("set the yellow block down in front of the blue block", "in front of", False),
])
def test_the_local_grammar_reads_places_beside_a_target(task, relation, robot_view):
    from erarm.agent.instructions import Goal, parse_instruction

    read = parse_instruction(task)
    assert (read.goal, read.relation, read.robot_view) == (Goal.place, relation, robot_view)


@pytest.mark.parametrize("flags", [[], ["--emulate"]], ids=["local", "emulated"])
def test_left_of_the_bowl_ends_left_of_the_bowl_and_the_referee_says_so(tmp_path, flags):
    import json
    import subprocess
    import sys
    from pathlib import Path

    erarm = str(Path(sys.executable).with_name("erarm"))
    done = subprocess.run([erarm, "run", "move the blue block to the left of the orange bowl",
                           "--seed", "3", *flags, "--json", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    result = json.loads(done.stdout)
    assert done.returncode == 0 and result["success"] and result["verified"], done.stderr
    assert result["goals"] == ["the blue block left of the orange bowl (as the camera sees it)"]
    assert result["ground_truth"]["reason"].startswith("the blue block left of the orange bowl")
