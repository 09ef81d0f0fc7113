"""Tasks about groups of household things ("put all the fruit in the basket", "clear the table
into the bin"): erarm's own reading over what it sees, the simulator's families and referee, the
emulated model's places in a container, and whether a named side of a target has room."""

from __future__ import annotations

import math
import random

import pytest

from erarm.agent.goals import Relation, group_goals, task_goals
from erarm.agent.labels import in_group
from erarm.agent.schemas import SceneObject
from erarm.sim.household import KINDS
from erarm.sim.scene import SceneObject as Placed
from erarm.sim.tasks import FAMILY, SCENARIOS, family_for, group_task


def _seen(*labels: str) -> list[SceneObject]:
    return [SceneObject(label=label, point=(500.0, 100.0 * i), position_mm=(400.0, 0.0, 50.0))
            for i, label in enumerate(labels)]


KITCHEN = _seen("lemon", "apple", "soda can", "soup can", "teddy bear", "basket", "storage bin")


@pytest.mark.parametrize("task, wanted", [
    ("put all the fruit in the basket", [("lemon", "basket"), ("apple", "basket")]),
    ("every toy goes in the bin", [("teddy bear", "storage bin")]),
    ("put all the cans into the storage box", [("soda can", "storage bin"),
                                               ("soup can", "storage bin")]),
    ("put the drinks in the basket please", [("soda can", "basket")]),
    ("put the fruit in the basket and the toys in the bin", [
        ("lemon", "basket"), ("apple", "basket"), ("teddy bear", "storage bin")]),
    ("clear the table into the basket", [(label, "basket") for label in
                                         ("lemon", "apple", "soda can", "soup can",
                                          "teddy bear")]),
    ("put all the things on the table in the bin", [
        (label, "storage bin") for label in ("lemon", "apple", "soda can", "soup can",
                                             "teddy bear")]),
])
def test_a_group_becomes_one_goal_per_thing_seen_in_it(task, wanted):
    goals = task_goals(task, KITCHEN)
    assert [(g.item, g.target) for g in goals] == wanted
    assert {g.relation for g in goals} == {Relation.inside}


@pytest.mark.parametrize("task", [
    "put all the fruit in the fridge",  # no container seen after the group
    "put the lemon in the basket",  # no group
    "juggle all the fruit",  # no relation to anything
    "put all the vegetables in the basket",  # a group none of what is seen belongs to
])
def test_a_group_task_erarm_cannot_read_gives_no_group_goals(task):
    assert group_goals(task, KITCHEN) == []


def test_what_belongs_to_a_group():
    assert in_group("fruit", "lemon") and in_group("fruits", "green apple")
    assert not in_group("fruit", "soda can") and not in_group("toys", "lemon")
    assert in_group("cans", "soup can") and in_group("red", "red block")
    assert not in_group("red", "red bowl")  # a container holds the group, it is not in it


@pytest.mark.parametrize("name", ["group-into", "clear-table"])
def test_group_scenes_are_reproducible_and_their_goals_cover_the_group(name):
    for seed in range(20):
        task, scene = SCENARIOS[name].episode(seed)
        assert SCENARIOS[name].episode(seed) == (task, scene)
        assert family_for(task) is FAMILY[name], task
        labels = [o.label for o in scene.objects]
        ((category, target, relation),) = group_task(task)
        goals = FAMILY[name].goals(task, labels)
        assert relation is Relation.inside and {g.target for g in goals} == \
            {labels.index(target)}
        members = {labels[g.item] for g in goals}
        assert len(members) == 2 and target not in members
        others = set(labels) - members - {target}
        if category is None:
            assert not others  # everything on the table goes
        else:  # everything of the category goes, nothing else
            assert {KINDS[m].category for m in members} == {category}
            assert others and all(KINDS[o].category != category for o in others)


def test_sorting_by_category_sends_each_group_to_its_own_holder():
    for seed in range(20):
        task, scene = SCENARIOS["sort-by-category"].episode(seed)
        assert family_for(task) is FAMILY["sort-by-category"], task
        labels = [o.label for o in scene.objects]
        read = group_task(task)
        assert len(read) == 2 and read[0][0] != read[1][0]
        goals = FAMILY["sort-by-category"].goals(task, labels)
        for category, target, relation in read:
            mine = [g for g in goals if labels[g.target] == target]
            assert mine and all(KINDS[labels[g.item]].category == category and
                                g.relation == relation.value for g in mine)
        moved = {labels[g.item] for g in goals}
        assert len(moved) == len(goals)  # each thing to one holder
        assert set(labels) - moved - {t for _, t, _ in read}  # and something left where it is


def test_the_emulated_model_sets_things_side_by_side_along_a_bin():
    from erarm.sim.emulator.truth import GoalTruth, ObjectTruth, SceneTruth
    from erarm.sim.emulator.whole_plan import _release_spot
    from tests.conftest import synthetic_calibration

    def thing(kind, x, y, yaw=0.0):
        return ObjectTruth(label=kind, colour=None, kind=kind, position_mm=(x, y, 20.0),
                           size_mm=KINDS[kind].size_mm, yaw_deg=yaw)

    truth = SceneTruth(task="put all the fruit in the bin", calibration=synthetic_calibration(),
                       objects=[thing("storage bin", 450, 0, yaw=30), thing("lemon", 350, 150),
                                thing("apple", 350, -150)],
                       goals=[GoalTruth(relation="inside", item=i, target=0, done=False,
                                        reason="") for i in (1, 2)])
    where = [o.position_mm[:2] for o in truth.objects]
    first = _release_spot(truth, 0, where, [])
    second = _release_spot(truth, 0, where, [first])
    length = KINDS["storage bin"].size_mm[0]
    assert math.dist(first, second) == pytest.approx(length / 2)
    for spot in (first, second):  # along the bin's length, a quarter of it from its middle
        along = (spot[0] - 450) * math.cos(math.radians(30)) + spot[1] * math.sin(math.radians(30))
        assert abs(along) == pytest.approx(length / 4)


def test_a_side_of_the_target_out_of_reach_is_staged_again():
    beside = FAMILY["household-beside"]
    task = "set the lime down in front of the mug"
    # the camera looks from the far end of the table: in front of the mug is beyond the reach
    far = [Placed(kind="lime", x=0.35, y=0.0), Placed(kind="mug", x=0.58, y=0.0)]
    near = [Placed(kind="lime", x=0.35, y=0.15), Placed(kind="mug", x=0.38, y=0.0)]
    assert not beside.doable(task, far) and beside.doable(task, near)
    assert beside.doable("move the lime behind the mug", far)
    for seed in range(10):  # every staged scene leaves room where the task asks
        task, scene = SCENARIOS["household-beside"].episode(seed)
        assert beside.doable(task, scene.objects), (task, seed)


def test_staging_leaves_a_distractor_out_rather_than_fail_when_the_table_is_full():
    from erarm.sim.tasks import _layout

    wanted = [(None, "storage bin", 1.0), (None, "basket", 1.0), (None, "lemon", 1.0),
              *[(None, "cereal box", 1.0)] * 6]
    layout = _layout(wanted, random.Random(1), spare=6)
    assert [o.kind for o in layout[:3]] == ["storage bin", "basket", "lemon"]
    assert len(layout) < len(wanted)


def test_a_sorting_task_succeeds_through_the_emulated_gemini_path(tmp_path):
    import json

    from tests.test_bad_input import erarm

    task = "put the fruit on the plate and the toys in the bin"
    done = erarm("run", task, "--seed", "2", "--emulate", "--emulate-opt", "latency_median_s=0",
                 "--json", "--out", tmp_path / "run")
    result = json.loads(done.stdout)
    assert done.returncode == 0 and result["success"] is True, result.get("error") or \
        result["ground_truth"]
    assert len(result["goals"]) >= 2  # one per thing of each group seen
