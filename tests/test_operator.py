"""Operator controls: dry runs, confirmation, interrupting a moving arm, executing plan files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pybullet as pb
import pytest

from erarm.agent.brains.local import LocalBrain
from erarm.agent.errors import Interrupted
from erarm.agent.execute import execute
from erarm.agent.run import RunOptions, run_task
from erarm.agent.validate import Action
from erarm.robots.base import ToolPose
from tests.conftest import FaultyGripper

ERARM = str(Path(sys.executable).with_name("erarm"))
TASK = "pick the blue block into the orange bowl"


def erarm(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    return subprocess.run([ERARM, *args], capture_output=True, text=True, input=stdin, env=env,
                          timeout=120, check=False)


def test_a_dry_run_resolves_and_checks_everything_and_moves_nothing(sim_cell, tmp_path):
    cell = sim_cell(seed=1)
    before = cell.robot.state().joint_positions_rad
    result = run_task(TASK, LocalBrain(), cell, tmp_path, options=RunOptions(dry_run=True))
    assert result.exit_code == 0 and result.dry_run and result.steps_executed == 0
    assert cell.robot.state().joint_positions_rad == before
    grasp = result.actions[2]
    assert grasp.call.function == "move" and grasp.call.high is False
    assert grasp.target.z_mm == pytest.approx(18, abs=2)
    assert "at the blue block" in " ".join(grasp.checks)
    assert "joint limits (IK)" in grasp.checks
    assert result.ground_truth is None  # nothing happened to score
    assert not (tmp_path / "final.png").exists()


def test_dry_run_on_the_command_line_prints_the_resolved_plan(tmp_path):
    done = erarm("run", TASK, "--seed", "1", "--dry-run", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "the plan is valid" in done.stdout and "nothing moved" in done.stdout
    assert "at the blue block" in done.stdout and "travel height" in done.stdout


@pytest.mark.parametrize(("answer", "code", "executed"), [
    ("n\n", 1, 0), ("y\n", 0, 10), ("", 1, 0),  # end of input: no answer is a no
    ("yes", 0, 10)])
def test_confirm_asks_before_any_motion(tmp_path, answer, code, executed):
    done = erarm("run", TASK, "--seed", "1", "--confirm", "--json", "--out", str(tmp_path),
                 stdin=answer)
    assert done.returncode == code, done.stderr
    assert "Move the arm through these 10 steps? [y/N]: \n" in done.stderr  # on stderr
    assert done.stdout.startswith("{")  # stdout holds the JSON document and nothing else
    result = json.loads(done.stdout)
    assert result["steps_executed"] == executed and result["exit_code"] == code
    if code:
        assert result["error"] == "the operator declined the plan; nothing moved"
        # the error starts a line of its own, not the prompt's
        assert "erarm: error: the operator declined the plan; nothing moved" in \
            done.stderr.splitlines()


@pytest.mark.parametrize(("answer", "going_on"), [("y\n", True), ("no\n", False), ("", False)])
def test_the_operator_is_asked_whether_a_run_that_parted_from_its_rehearsal_goes_on(
        monkeypatch, answer, going_on):
    import io

    from rich.console import Console

    from erarm.agent.cli.run import _OperatorPrompt
    from erarm.agent.session import AsksToGoOnLive

    told = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    prompt = _OperatorPrompt(Console(file=told, width=200))
    assert isinstance(prompt, AsksToGoOnLive)  # what the rehearsal asks
    assert prompt.go_on_live("step 4 holds nothing") is going_on
    assert "parted from its rehearsal: step 4 holds nothing" in told.getvalue()
    assert "Let the model go on live, each call checked? [y/N]: " in told.getvalue()


def test_an_interrupt_mid_motion_stops_the_arm_where_it_is(sim_cell):
    cell = sim_cell(seed=1)
    arm, world = cell.robot, cell.robot.world
    original_step = world.step
    stepped = 0

    def step_then_interrupt(count=1):
        nonlocal stepped
        original_step(count)
        stepped += count
        if stepped == 121:  # one Ctrl-C, half a second into the move
            raise KeyboardInterrupt

    world.step = step_then_interrupt
    far = Action(step=1, call={"function": "move", "args": [550, 250, True]},
                 pose=ToolPose(x=0.55, y=0.25, z=0.2))
    with pytest.raises(Interrupted, match="interrupted at step 1 move"):
        execute([far], arm)
    world.step = original_step
    stopped_at = np.array(arm.state().joint_positions_rad)
    world.step(480)  # two more seconds: the arm holds where it stopped
    held = np.array(arm.state().joint_positions_rad)
    assert np.abs(held - stopped_at).max() < 0.01
    tool = arm.state().tool
    assert np.hypot(tool.x - 0.55, tool.y - 0.25) > 0.05  # it did not carry on to the target
    speeds = [s[1] for s in pb.getJointStates(world.arm, arm._joints, physicsClientId=world.client)]
    assert max(abs(v) for v in speeds) < 0.01


@pytest.mark.parametrize("signal_to_send", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_during_a_run_exits_130(tmp_path, signal_to_send):
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    process = subprocess.Popen([ERARM, "run", TASK, "--seed", "1", "--realtime", "--json",
                                "--out", str(tmp_path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stderr:
        if "step 2/10" in line:  # moving, in real time: about five seconds to go
            process.send_signal(signal_to_send)
            break
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    result = json.loads(stdout)
    assert "interrupted at step" in result["error"] and "the arm was stopped" in result["error"]
    assert 2 <= result["steps_executed"] < 10
    assert json.loads((tmp_path / "result.json").read_text())["steps_executed"] == \
        result["steps_executed"]


def test_execute_replays_a_runs_plan_in_the_same_scene(tmp_path):
    first = erarm("run", TASK, "--seed", "3", "--dry-run", "--out", str(tmp_path / "planned"))
    assert first.returncode == 0, first.stderr
    done = erarm("execute", str(tmp_path / "planned" / "plan.json"), "--scene",
                 str(tmp_path / "planned" / "scene.json"), "--json", "--out",
                 str(tmp_path / "replayed"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["task"] == TASK  # read from the plan.json
    assert result["success"] is True and result["verified"] is True
    assert result["steps_executed"] == 10


def test_execute_takes_model_text_and_can_skip_the_target_rule(tmp_path):
    plan = tmp_path / "reply.txt"
    plan.write_text('Reasoning: wave over an empty spot.\n[{"function": "move", "args": '
                    '[250, -300, true]}, {"function": "move", "args": [250, -300, false]}]')
    strict = erarm("execute", str(plan), "--seed", "1", "--task", TASK, "--dry-run", "--out",
                   str(tmp_path / "strict"))
    assert strict.returncode == 2 and "goes down to nothing perceived" in strict.stderr
    relaxed = erarm("execute", str(plan), "--seed", "1", "--task", TASK, "--json",
                    "--no-strict-targets", "--out", str(tmp_path / "run"))
    assert relaxed.returncode == 1, relaxed.stderr  # it ran, and the task is not done
    result = json.loads(relaxed.stdout)
    assert result["steps_executed"] == 4  # the two moves, an added lift and returnToOrigin
    assert "did not end with returnToOrigin; erarm added a lift and it" in result["warnings"][0]


# -- signals at chosen moments: the toy plugin pauses where ERARM_TOY_PAUSE says ---------------

TOY_PLAN = [{"function": "move", "args": [400, 50, True]},
            {"function": "setGripperState", "args": [False]},
            {"function": "move", "args": [350, 0, True]},
            {"function": "returnToOrigin", "args": []}]


def _log_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _wait_for(process: subprocess.Popen, log: Path, record: dict) -> None:
    """Until the toy logs `record` (it is then paused there), or the process ends."""
    while record not in _log_lines(log):
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)


class ToyRun:
    """`erarm execute` of TOY_PLAN on the toy arm, paused where `pause` says."""

    def __init__(self, toy_plugin: Path, tmp_path: Path, pause: str, *args: str):
        self.log, self.release, self.out = (tmp_path / "toy.jsonl", tmp_path / "release",
                                            tmp_path / "run")
        plan = tmp_path / "plan.json"
        plan.write_text(json.dumps(TOY_PLAN))
        env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY",
                                                                 "GOOGLE_API_KEY")}
        env["PYTHONPATH"] = os.pathsep.join([str(toy_plugin), env.get("PYTHONPATH", "")])
        env.update(ERARM_TOY_PAUSE=pause, ERARM_TOY_RELEASE=str(self.release))
        self.process = subprocess.Popen(
            [ERARM, "execute", str(plan), "--robot", "toy", "--robot-opt", f"log={self.log}",
             "--no-strict-targets", "--json", "--out", str(self.out), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def wait_at(self, where: str) -> None:
        _wait_for(self.process, self.log, {"command": "pause", "at": where})

    def signal_at(self, where: str, signum: int = signal.SIGINT) -> None:
        self.wait_at(where)
        self.process.send_signal(signum)

    def finish(self) -> tuple[dict, str]:
        """The --json document (which must equal result.json) and stderr, after exit 130."""
        stdout, stderr = self.process.communicate(timeout=120)
        assert self.process.returncode == 130, stderr
        assert "Traceback" not in stderr
        result = json.loads(stdout)
        assert result == json.loads((self.out / "result.json").read_text())
        assert result["exit_code"] == 130
        assert [line for line in stderr.splitlines() if line.startswith("erarm:")] == \
            [f"erarm: {result['error']}"]
        return result, stderr


@pytest.mark.parametrize("signal_to_send", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_imports_is_one_line_and_exit_130(tmp_path, signal_to_send):
    shim = tmp_path / "shim"
    shim.mkdir()  # a "typer" that stands still: erarm is interrupted while importing it
    (shim / "typer.py").write_text(f"import pathlib, time\npathlib.Path({str(tmp_path)!r}, "
                                   "'importing').touch()\nwhile True:\n    time.sleep(0.01)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim),
                                                        os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([ERARM, "run", TASK], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    while not (tmp_path / "importing").exists():
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.send_signal(signal_to_send)
    stdout, stderr = process.communicate(timeout=60)
    assert (process.returncode, stdout, stderr) == (130, "", "erarm: interrupted\n")


@pytest.mark.parametrize("signal_to_send", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_workcell_opens_is_recorded(toy_plugin, tmp_path, signal_to_send):
    run = ToyRun(toy_plugin, tmp_path, "connect:1")
    run.signal_at("connect:1", signal_to_send)
    result, _ = run.finish()
    assert result["interrupted"] == "opening the workcell" and result["steps_executed"] == 0
    assert result["error"] == "interrupted while opening the workcell, before the arm moved"


def test_a_signal_while_the_video_starts_is_recorded(toy_plugin, tmp_path):
    run = ToyRun(toy_plugin, tmp_path, "video_start:1", "--record")
    run.signal_at("video_start:1")
    result, _ = run.finish()
    assert result["interrupted"] == "starting the run folder, recorder and video"
    assert result["steps_executed"] == 0 and "before the arm moved" in result["error"]
    assert not any(c["command"] == "move_to" for c in _log_lines(run.log))


def test_a_signal_mid_plan_stops_the_arm_and_counts_the_steps(toy_plugin, tmp_path):
    run = ToyRun(toy_plugin, tmp_path, "move_to:2")
    run.signal_at("move_to:2")
    result, _ = run.finish()
    assert result["interrupted"] == "moving" and result["steps_executed"] == 2
    assert result["error"].startswith("interrupted at step 3 move(350, 0, true)")
    assert [c["command"] for c in _log_lines(run.log)][-2:] == ["stop", "stopped"]


def test_a_second_signal_cannot_cut_the_stop_short(toy_plugin, tmp_path):
    run = ToyRun(toy_plugin, tmp_path, "move_to:2,stop:1")
    run.signal_at("move_to:2")
    run.signal_at("stop:1")  # a second Ctrl-C while the (slow) stop is under way
    run.release.touch()  # the stop may now end, after the second signal has been handled
    result, _ = run.finish()
    commands = [c["command"] for c in _log_lines(run.log)]
    assert commands[-3:] == ["pause", "resume", "stopped"]  # the stop ran to its end
    assert result["interrupted"] == "moving" and result["steps_executed"] == 2
    assert result["error"].startswith("interrupted at step 3")


def test_a_signal_during_the_look_after_motion_says_the_arm_moved(toy_plugin, tmp_path):
    run = ToyRun(toy_plugin, tmp_path, "capture:2")
    run.signal_at("capture:2")
    result, _ = run.finish()
    assert result["steps_executed"] == 4 and result["interrupted"] == "looking"
    assert result["error"] == "interrupted while looking, after 4 steps"


def test_a_signal_while_the_result_is_written_waits_for_it(toy_plugin, tmp_path):
    run = ToyRun(toy_plugin, tmp_path, "video_stop:1", "--record")
    run.signal_at("video_stop:1")
    run.release.touch()
    result, _ = run.finish()  # result.json written, and it says so
    assert result["interrupted"] == "writing the result" and result["steps_executed"] == 4
    assert result["verified"] is False  # the run's own outcome stands: no goal it can measure
    assert result["verification"].startswith("unverifiable:")
    assert result["error"] == "interrupted while writing the result, after 4 steps"


class InterruptedBackingOff(FaultyGripper):
    """The simulated arm, except that its gripper misses the first grasp and Ctrl-C lands while
    the arm backs off from it (a motion outside the plan); counts the stops."""

    def __init__(self, inner):
        super().__init__(inner)
        self.stops = 0

    def move_to(self, pose):
        if self.missed and self.inner.state().gripper_open and pose.z > 0.1:
            raise KeyboardInterrupt  # rising straight up after the miss
        return self.inner.move_to(pose)

    def stop(self):
        self.stops += 1
        self.inner.stop()


def test_an_interrupt_while_backing_off_stops_the_arm_and_says_so(sim_cell, tmp_path):
    cell = sim_cell(scenario="pick-into-bowl", seed=4)
    cell.robot = arm = InterruptedBackingOff(cell.robot)
    result = run_task(cell.instruction, LocalBrain(), cell, tmp_path)
    assert result.exit_code == 130 and arm.stops == 1
    assert result.interrupted == "moving" and result.steps_executed == 4
    assert result.error == "interrupted while moving, after 4 steps; the arm was stopped there"
