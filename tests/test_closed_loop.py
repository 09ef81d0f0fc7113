"""The closed loop in the simulator: faults injected into a real arm, and the agent recovering by
looking again, or giving up with a clear reason."""

import math

import pybullet as pb

from erarm.agent.brains.local import LocalBrain
from erarm.agent.run import run_task
from tests.conftest import FaultyGripper


class LetsGoInTransit:
    """The simulated arm, except that the first carry opens the gripper at travel height, so
    the object falls onto the table somewhere along the way."""

    def __init__(self, inner):
        self.inner, self.closed, self.done = inner, False, False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def set_gripper(self, opened: bool):
        self.closed = not opened
        return self.inner.set_gripper(opened)

    def move_to(self, pose):
        report = self.inner.move_to(pose)
        if self.closed and not self.done and pose.z >= self.inner.limits.travel_z - 1e-6:
            self.done = True
            self.inner.set_gripper(True)
            self.inner.world.settle_objects()
        return report


class PersonMovesABlock:
    """The simulated arm, except that after the first pick and place, while the arm is at home,
    a person moves `label` to a free spot."""

    def __init__(self, inner, label: str):
        self.inner, self.label, self.moved_to = inner, label, None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def return_to_origin(self):
        report = self.inner.return_to_origin()
        if self.moved_to is None:
            world = self.inner.world
            body = world.bodies[world.labels.index(self.label)]
            taken = [obj["position_mm"][:2] for obj in world.object_report()]
            self.moved_to = next(
                (x, y) for x in range(250, 600, 30) for y in range(-300, 301, 30)
                if all(math.dist((x, y), spot) > 110 for spot in taken))
            _, orientation = pb.getBasePositionAndOrientation(body, physicsClientId=world.client)
            pb.resetBasePositionAndOrientation(
                body, (self.moved_to[0] / 1000, self.moved_to[1] / 1000, 0.03), orientation,
                physicsClientId=world.client)
            world.settle_objects()
        return report


def scenario_cell(sim_cell, name: str, seed: int):
    cell = sim_cell(scenario=name, seed=seed)
    return cell, cell.instruction


def test_a_missed_grasp_is_seen_and_retried_from_a_new_look(sim_cell, tmp_path):
    cell, task = scenario_cell(sim_cell, "pick-into-bowl", 4)
    cell.robot = FaultyGripper(cell.robot, misses=1)
    result = run_task(task, LocalBrain(), cell, tmp_path)
    assert result.success, result.ground_truth
    outcomes = [a.outcome for a in result.attempts]
    assert outcomes == ["missed grasp", "placed", "done"]
    assert result.attempts[0].item == result.attempts[1].item
    assert "closed on nothing" in result.attempts[0].detail


def test_after_three_missed_grasps_it_gives_up_with_the_reason(sim_cell, tmp_path):
    cell, task = scenario_cell(sim_cell, "pick-into-bowl", 4)
    cell.robot = FaultyGripper(cell.robot, misses=99)
    result = run_task(task, LocalBrain(), cell, tmp_path)
    assert result.exit_code == 1 and result.success is False
    assert [a.outcome for a in result.attempts] == ["missed grasp"] * 3
    assert result.error.startswith("gave up after 3 attempts on the ")
    assert result.error.endswith("missed grasp: the gripper closed on nothing")


def test_a_dropped_object_is_picked_up_again_where_it_fell(sim_cell, tmp_path):
    cell, task = scenario_cell(sim_cell, "pick-into-bowl", 5)
    cell.robot = LetsGoInTransit(cell.robot)
    result = run_task(task, LocalBrain(), cell, tmp_path)
    assert cell.robot.done
    assert result.success, result.ground_truth
    assert [a.outcome for a in result.attempts] == ["dropped", "placed", "done"]


def test_a_block_moved_between_rounds_is_found_where_it_now_is(sim_cell, tmp_path):
    cell, task = scenario_cell(sim_cell, "put-all", 2)
    blocks = [label for label in cell.robot.world.labels if label.endswith("block")]
    assert len(blocks) >= 2
    cell.robot = PersonMovesABlock(cell.robot, blocks[-1])
    result = run_task(task, LocalBrain(), cell, tmp_path)
    assert cell.robot.moved_to is not None
    assert result.success, result.ground_truth
    assert result.attempts[-1].outcome == "done"
    assert all(a.outcome == "placed" for a in result.attempts[:-1])
    assert blocks[-1] in [a.item for a in result.attempts[1:]]  # picked where it was moved to
