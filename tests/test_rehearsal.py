"""Rehearsal in a twin: the tool loop runs first in a simulated twin of the perceived scene, and
the real arm moves only through the twin's calls, validated as one plan against the real look,
stopping where it parts from the twin. Through the real SDK against the loopback server (and
the emulator), on the simulator standing in for the real cell."""

import json

import numpy as np
import pybullet as pb
import pytest

from erarm.agent.config import Orchestration
from erarm.agent.run import RunOptions, orchestrator_for, run_task
from erarm.robots.registry import open_workcell
from erarm.robots.twin import TwinObject, TwinScene
from tests.fake_gemini import model_like

TASK = "pick the blue block into the orange bowl"


def _rehearsed(gemini, cell, tmp_path, **options):
    return run_task(TASK, gemini(), cell, tmp_path / "run", options=RunOptions(
        orchestration=Orchestration.tools, rehearse=True, **options))


def test_the_real_arm_moves_through_the_twins_calls_as_one_plan(gemini, fake_gemini, sim_cell,
                                                               tmp_path):
    fake_gemini.responder = model_like
    cell = sim_cell(TASK, seed=1)
    result = _rehearsed(gemini, cell, tmp_path)
    assert result.success is True and result.exit_code == 0, result.error
    rehearsal = result.rehearsal
    assert rehearsal.attempts == 1 and rehearsal.verified and rehearsal.collisions == 0
    assert rehearsal.diverged is None and not rehearsal.resumed_live
    twin = json.loads((tmp_path / "run" / "rehearsal-1" / "result.json").read_text())
    twin_calls = [c for c in twin["tool_calls"] if c["outcome"] == "ran"]
    # the real arm ran exactly the calls the model made in the twin (and the trip home)
    real = [a.call.call() for a in result.actions if not a.added]
    assert [c["function"] for c in real][:len(twin_calls)] == [c["name"] for c in twin_calls]
    assert result.steps_executed == len(result.actions) == rehearsal.steps
    assert result.tool_calls == []  # no call was made live
    scene = json.loads((tmp_path / "run" / "rehearsal-1" / "twin.json").read_text())
    assert sorted(o["label"] for o in scene["objects"]) == sorted(o.label for o in
                                                                   result.objects)


def test_a_dry_run_rehearses_and_validates_but_moves_nothing(gemini, fake_gemini, sim_cell,
                                                             tmp_path):
    fake_gemini.responder = model_like
    cell = sim_cell(TASK, seed=1)
    joints = cell.robot.state().joint_positions_rad
    result = _rehearsed(gemini, cell, tmp_path, dry_run=True)
    assert result.exit_code == 0 and result.steps_executed == 0
    assert result.rehearsal.steps == len(result.actions) > 0
    assert cell.robot.state().joint_positions_rad == joints
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan["plan"][0]["function"] == "move"


class TakenAway:
    """A camera over a table where someone takes the blue block away right after the first
    look: the twin was built from a scene that is no longer there."""

    name = "sim"

    def __init__(self, cell):
        self.camera, self.world = cell.camera, cell.robot.world
        self.looks = 0

    def capture(self):
        frame = self.camera.capture()
        self.looks += 1
        if self.looks == 1:
            body = self.world.bodies[self.world.labels.index("blue block")]
            pb.resetBasePositionAndOrientation(body, [0.50, 0.15, 0.02], [0, 0, 0, 1],
                                               physicsClientId=self.world.client)
        return frame

    def close(self):
        self.camera.close()


class Operator:
    """Confirms every plan, and answers `going_on` when asked whether to go on live."""

    def __init__(self, going_on: bool):
        self.going_on, self.asked = going_on, []

    def __call__(self, validated) -> bool:
        return True

    def go_on_live(self, divergence: str) -> bool:
        self.asked.append(divergence)
        return self.going_on


@pytest.mark.parametrize(("resume_live", "operator"), [
    (False, None), (True, None), (False, Operator(going_on=False)),
    (False, Operator(going_on=True))], ids=["stop", "flag", "operator-no", "operator-yes"])
def test_a_grasp_that_holds_nothing_unlike_the_twin_stops_the_arm(gemini, fake_gemini, sim_cell,
                                                                  tmp_path, resume_live,
                                                                  operator):
    """The arm stops and goes home; the model goes on live only with --resume-live or the
    operator's yes when asked then."""
    fake_gemini.responder = model_like
    cell = sim_cell(TASK, seed=1)
    cell.camera = TakenAway(cell)
    result = run_task(TASK, gemini(), cell, tmp_path / "run", confirm=operator,
                      options=RunOptions(orchestration=Orchestration.tools, rehearse=True,
                                         resume_live=resume_live))
    rehearsal = result.rehearsal
    assert "holds nothing; in the twin it held something" in rehearsal.diverged
    if operator is not None:
        assert operator.asked == [rehearsal.diverged]
    close = next(a.step for a in result.actions if a.call.call() == {
        "function": "setGripperState", "args": [False]})
    if not (resume_live or (operator and operator.going_on)):
        assert result.exit_code == 1 and "parted from its rehearsal" in result.error
        assert result.steps_executed == close  # nothing after the empty grasp but backing off
        assert result.tool_calls == [] and not rehearsal.resumed_live
        state = cell.robot.state()
        assert state.gripper_open and abs(state.tool.z - cell.robot.limits.z_max) < 0.2
    else:  # the model goes on live from a new look, and finds the block where it is now
        assert rehearsal.resumed_live and result.tool_calls
        assert any(c.outcome == "ran" and c.name == "setGripperState"
                   for c in result.tool_calls)
        assert result.success is True, result.error


def test_a_twin_stands_in_what_it_knows_as_seen_and_boxes_what_it_does_not(tmp_path, sim_cell):
    real = sim_cell(TASK, seed=1).camera.capture().calibration
    twin = TwinScene(calibration=real, objects=[
        TwinObject(label="orange bowl", x_mm=450, y_mm=-100, top_mm=45, across_mm=130,
                   rgb=(250, 120, 10)),
        TwinObject(label="coffee mug", x_mm=420, y_mm=120, top_mm=90, across_mm=80,
                   rgb=(30, 30, 30)),
        # misread as green, seen red (and in shade): the twin shows what the camera saw
        TwinObject(label="green block", x_mm=350, y_mm=-150, top_mm=40, across_mm=52,
                   rgb=(110, 14, 12))])
    with open_workcell("sim", task=TASK, twin=twin) as cell:
        world = cell.robot.world
        assert world.labels == ["orange bowl", "red block"] and len(world.solids) == 1
        assert [o.size for o in world.objects] == pytest.approx([1.0, 1.0], abs=0.05)
        frame = cell.camera.capture()
        assert np.allclose(frame.calibration.camera_to_base, real.camera_to_base)
        low, high = pb.getAABB(world.solids[0], physicsClientId=world.client)
        assert high[2] == pytest.approx(0.090, abs=0.003)  # the mug's measured height
        assert high[0] - low[0] == pytest.approx(0.080, abs=0.002)
        u, v = (int(c) for c in np.round(frame.calibration.project(
            np.array([[0.42, 0.12, 0.09]]))[0]))
        assert frame.rgb[v + 3, u].max() < 90  # the mug is seen, dark, where it was


def test_a_physical_arm_rehearses_a_step_by_step_model(gemini):
    from erarm.agent.orchestration import check_options
    from erarm.agent.orchestration.rehearsal import Rehearsed
    from erarm.agent.orchestration.tool_loop import ToolLoop
    from erarm.robots.errors import ConfigError

    brain = gemini()  # Robotics-ER 2: the tool loop by default
    assert isinstance(orchestrator_for(RunOptions(), brain, physical=True), Rehearsed)
    assert isinstance(orchestrator_for(RunOptions(), brain, physical=False), ToolLoop)
    assert isinstance(orchestrator_for(RunOptions(rehearse=True), brain, physical=False),
                      Rehearsed)
    with pytest.raises(ConfigError, match="--rehearse rehearses a model's function calls"):
        check_options(RunOptions(orchestration=Orchestration.plan, rehearse=True), brain)


def test_erarm_run_rehearse_with_the_emulator(tmp_path):
    from tests.test_bad_input import erarm

    done = erarm("run", TASK, "--seed", "2", "--emulate", "--emulate-opt", "latency_median_s=0",
                 "--rehearse", "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert "rehearsed in a simulated twin 1x" in done.stdout
    assert "the model made" not in done.stdout  # no call was made live
    assert (tmp_path / "run" / "rehearsal-1" / "twin.json").is_file()


class InterruptedWhileRehearsing:
    """A brain whose conversation is cut by Ctrl-C on its second turn (in the twin)."""

    def __init__(self, brain):
        self.brain = brain

    def __getattr__(self, name):
        return getattr(self.brain, name)

    def converse(self, request, frame):
        conversation = self.brain.converse(request, frame)

        def reply(results):
            raise KeyboardInterrupt

        conversation.reply = reply
        return conversation


def test_ctrl_c_while_rehearsing_moves_nothing_and_says_so(gemini, fake_gemini, sim_cell,
                                                          tmp_path):
    fake_gemini.responder = model_like
    cell = sim_cell(TASK, seed=1)
    joints = cell.robot.state().joint_positions_rad
    result = run_task(TASK, InterruptedWhileRehearsing(gemini()), cell, tmp_path / "run",
                      options=RunOptions(orchestration=Orchestration.tools, rehearse=True))
    assert result.exit_code == 130 and result.interrupted == "rehearsing in a simulated twin"
    assert "before the arm moved" in result.error and result.steps_executed == 0
    assert cell.robot.state().joint_positions_rad == joints
    twin = json.loads((tmp_path / "run" / "rehearsal-1" / "result.json").read_text())
    assert twin["exit_code"] == 130
