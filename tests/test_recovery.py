"""The closed loop recovers as a careful operator would: a descent that meets something backs off
and tries again, and a model that plans a finished move again does not cause another pick."""

import json
import re

import pybullet as pb

from erarm.agent.brains.gemini import GeminiBrain
from erarm.agent.brains.local import LocalBrain
from erarm.agent.config import GeminiSettings
from erarm.agent.results import Outcome
from erarm.agent.run import run_task
from erarm.agent.session import RunOptions
from erarm.robots.base import ToolPose, Workcell
from erarm.robots.errors import MotionBlocked
from tests.fake_gemini import model_like, text_reply

TASK = "pick the blue block into the orange bowl"


class BlockedOnce:
    """The cell's arm, except that its first descent to grasp height meets something and stops
    short, as a driver that can still move reports it."""

    def __init__(self, arm):
        self.arm = arm
        self.name, self.limits, self.physical = arm.name, arm.limits, arm.physical
        self.blocked = 0

    def move_to(self, pose: ToolPose):
        if pose.z < 0.1 and not self.blocked:
            self.blocked += 1
            self.arm.move_to(ToolPose(x=pose.x, y=pose.y, z=pose.z + 0.05, yaw=pose.yaw))
            raise MotionBlocked("the arm stopped 50 mm short of the target")
        return self.arm.move_to(pose)

    def __getattr__(self, name):
        return getattr(self.arm, name)


def _blocked_cell(sim_cell) -> tuple[Workcell, BlockedOnce]:
    cell = sim_cell(task=TASK, seed=1)
    arm = BlockedOnce(cell.robot)
    return Workcell(robot=arm, camera=cell.camera, referee=cell.referee), arm


def test_a_blocked_descent_backs_off_looks_again_and_tries_again(sim_cell, tmp_path):
    cell, arm = _blocked_cell(sim_cell)
    result = run_task(TASK, LocalBrain(), cell, tmp_path)
    assert arm.blocked == 1
    assert [a.outcome for a in result.attempts][:2] == [Outcome.blocked, Outcome.placed]
    assert "stopped 50 mm short" in result.attempts[0].detail
    assert result.success is True and result.exit_code == 0
    assert not cell.robot.state().holding


def test_in_the_open_loop_a_blocked_descent_still_ends_the_run(sim_cell, tmp_path):
    cell, arm = _blocked_cell(sim_cell)
    result = run_task(TASK, LocalBrain(), cell, tmp_path, options=RunOptions(closed_loop=False))
    assert arm.blocked == 1
    assert result.exit_code == 1 and "stopped 50 mm short" in result.error
    assert len(result.attempts) == 0


class CaughtOnRelease:
    """The cell's arm, except that what it lets go comes home with it: after the first release
    the blue block hangs under the open fingers, as when they stay caught in a bowl's rim (held
    there in the air; no gripper sensor notices)."""

    def __init__(self, arm):
        self.arm = arm
        self.name, self.limits, self.physical = arm.name, arm.limits, arm.physical
        self.released = self.caught = False

    def set_gripper(self, opened: bool):
        report = self.arm.set_gripper(opened)
        self.released = self.released or (opened and self.arm.state().tool.z < 0.1)
        return report

    def return_to_origin(self):
        report = self.arm.return_to_origin()
        if self.released and not self.caught:
            self.caught = True
            world, tool = self.arm.world, self.arm.state().tool
            block = world.bodies[world.labels.index("blue block")]
            pb.changeDynamics(block, -1, mass=0, physicsClientId=world.client)
            pb.resetBasePositionAndOrientation(block, (tool.x, tool.y, tool.z - 0.03),
                                               (0, 0, 0, 1), physicsClientId=world.client)
        return report

    def __getattr__(self, name):
        return getattr(self.arm, name)


def test_what_comes_home_under_the_open_gripper_is_a_failed_attempt_not_a_placing(sim_cell,
                                                                                  tmp_path):
    sim = sim_cell(task=TASK, seed=1)
    arm = CaughtOnRelease(sim.robot)
    cell = Workcell(robot=arm, camera=sim.camera, referee=sim.referee)
    result = run_task(TASK, LocalBrain(), cell, tmp_path)
    assert arm.caught
    assert [a.outcome for a in result.attempts] == [Outcome.carried]
    assert "came up with the open gripper" in result.attempts[0].detail
    assert result.exit_code == 1 and "free the gripper" in result.error
    assert result.success is False  # the referee agrees: the block is up in the air
    truth = {o["label"]: o["position_mm"] for o in result.ground_truth.objects}
    assert truth["blue block"][2] > 200


def _seen(prompt: str, label: str) -> tuple[int, int]:
    """Where erarm's plan prompt says it saw an object, in millimetres."""
    found = re.search(rf"^- {label}: (-?\d+), (-?\d+)", prompt, re.MULTILINE)
    return int(found[1]), int(found[2])


def _repeating_model(judged_done: bool):
    """A model that plans the blue block into the orange bowl in every round, from wherever the
    block now is to where its first plan put it, and judges as told."""
    first: list = []

    def respond(request):
        prompt = request.prompt
        if "Has the task been completed" in prompt:
            return text_reply(json.dumps({"done": judged_done, "reason": "as the test says"}))
        if "You are a robotic arm" not in prompt:
            return model_like(request)
        if not first:
            first.append(model_like(request))
            return first[0]
        calls = json.loads(first[0].body["candidates"][0]["content"]["parts"][0]["text"])["calls"]
        bx, by = _seen(prompt, "blue block")
        for call in calls[:5]:  # the pick: at the block's new place
            if call["function"] == "move":
                call["args"][:2] = [bx, by]
        return text_reply(json.dumps({"reasoning": "blue block into the orange bowl",
                                      "calls": calls}))

    return respond


def _gemini(fake_gemini) -> GeminiBrain:
    return GeminiBrain("test-key", GeminiSettings(base_url=fake_gemini.url, backoff_s=0.01,
                                                  orchestration="plan"))


def test_a_model_that_plans_a_finished_move_again_does_not_pick_it_twice(fake_gemini, sim_cell,
                                                                          tmp_path):
    fake_gemini.responder = _repeating_model(judged_done=False)
    result = run_task(TASK, _gemini(fake_gemini), sim_cell(task=TASK, seed=1), tmp_path)
    assert [a.outcome for a in result.attempts] == [Outcome.placed, Outcome.done], result.error
    assert "repeats" in result.attempts[1].detail
    plans = [r for r in fake_gemini.requests if "You are a robotic arm" in r.prompt]
    assert len(plans) == 2  # the judge said not done, so erarm asked again, and saw a repeat
    assert result.success is True
    assert result.verified is False  # the model still says it is not done: the record says so
    assert "not done" in result.verification


def test_the_judgement_rides_with_the_look_and_ends_the_run_when_both_agree(fake_gemini,
                                                                             sim_cell, tmp_path):
    fake_gemini.responder = _repeating_model(judged_done=True)
    result = run_task(TASK, _gemini(fake_gemini), sim_cell(task=TASK, seed=1), tmp_path)
    assert [a.outcome for a in result.attempts] == [Outcome.placed]
    assert result.attempts[0].round_trips == 2  # the plan, then the look with the judgement
    assert (result.model_calls, result.model_round_trips) == (4, 3)
    assert result.verified is True and result.success is True
    judged = [r for r in fake_gemini.requests if "Has the task been completed" in r.prompt]
    assert len(judged) == 1 and len(judged[0].images) == 2
    # the judgement was asked about the same frame as the look's points and boxes
    after = [r for r in fake_gemini.requests[2:] if not re.search("robotic arm", r.prompt)]
    assert len({r.images[-1][1] for r in after}) == 1
