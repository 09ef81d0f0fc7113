"""Driver plugins end to end: the sample package in tests/plugins/erarm_toy, installed by pip,
found through its entry points, listed, configured from flags and a config file, and driven by
`erarm execute` like any arm."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ERARM = str(Path(sys.executable).with_name("erarm"))
PLAN = [{"function": "move", "args": [400, 50, True]},
        {"function": "setGripperState", "args": [False]},
        {"function": "returnToOrigin", "args": []}]


def erarm(*args: str, plugin: Path | None = None, stdin: str | None = None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "PYTHONPATH")}
    if plugin is not None:
        env["PYTHONPATH"] = str(plugin)
    return subprocess.run([ERARM, *args], capture_output=True, text=True, env=env, input=stdin,
                          timeout=120, check=False)


def test_installed_plugins_are_listed_with_their_options(toy_plugin):
    robots = {d["name"]: d for d in json.loads(erarm("robots", "--json",
                                                     plugin=toy_plugin).stdout)}
    assert {"sim", "xarm", "toy"} <= set(robots)
    toy = robots["toy"]
    assert toy["package"] == "erarm-toy 0.1.0" and toy["entry_point"] == \
        "erarm_toy:open_toy_workcell"
    assert [o["name"] for o in toy["options"]] == ["log", "physical"]
    assert robots["xarm"]["options"][0] == {"name": "host", "type": "str", "default": None,
                                            "help": "the controller's IP address"}
    cameras = {d["name"] for d in json.loads(erarm("cameras", "--json",
                                                   plugin=toy_plugin).stdout)}
    assert {"sim", "opencv", "realsense", "toy"} <= cameras
    listing = erarm("robots", plugin=toy_plugin).stdout
    assert "toy  A kinematic toy arm" in listing and "(erarm-toy 0.1.0" in listing


def test_without_the_plugin_the_name_is_unknown(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    done = erarm("execute", str(tmp_path / "plan.json"), "--robot", "toy")
    assert done.returncode == 2
    assert done.stderr.strip() == "erarm: error: unknown robot 'toy'; installed: sim, ur, xarm"


def test_a_plan_runs_on_the_plugin_robot(toy_plugin, tmp_path):
    plan, log = tmp_path / "plan.json", tmp_path / "toy.jsonl"
    plan.write_text(json.dumps(PLAN))
    done = erarm("execute", str(plan), "--robot", "toy", "--robot-opt", f"log={log}",
                 "--no-strict-targets", "--json", "--out", str(tmp_path / "run"),
                 plugin=toy_plugin)
    result = json.loads(done.stdout)
    assert result["steps_executed"] == 3 and result["error"] is None, done.stderr
    # it ran; with no task erarm can measure, it is not called done: exit 1, and says why
    assert done.returncode == 1 and not result["verified"]
    assert result["verification"].startswith("unverifiable: no goal erarm can measure")
    commands = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["command"] for c in commands] == ["move_to", "set_gripper", "move_to"]
    assert (commands[0]["x"], commands[0]["y"], commands[0]["z"]) == \
        pytest.approx((0.4, 0.05, 0.2))


def test_a_physical_plugin_robot_asks_first_and_no_moves_nothing(toy_plugin, tmp_path):
    plan, log = tmp_path / "plan.json", tmp_path / "toy.jsonl"
    plan.write_text(json.dumps(PLAN))
    done = erarm("execute", str(plan), "--robot", "toy", "--robot-opt", f"log={log}",
                 "--robot-opt", "physical=true", "--no-strict-targets", "--out",
                 str(tmp_path / "run"), plugin=toy_plugin, stdin="n\n")
    assert done.returncode == 1
    assert "Move the arm through these 3 steps?" in done.stderr
    assert not log.exists()  # not one command reached the arm


def test_a_config_file_chooses_the_robot_and_camera(toy_plugin, tmp_path):
    plan, log, config = tmp_path / "plan.json", tmp_path / "toy.jsonl", tmp_path / "cell.toml"
    plan.write_text(json.dumps(PLAN))
    config.write_text(f'[robot]\nname = "toy"\noptions = {{ log = "{log}" }}\n'
                      '[camera]\nname = "toy"\n')
    done = erarm("execute", str(plan), "--config", str(config), "--no-strict-targets", "--json",
                 "--out", str(tmp_path / "run"), plugin=toy_plugin)
    assert done.returncode == 1 and json.loads(done.stdout)["error"] is None, done.stderr
    assert json.loads(done.stdout)["robot"] == "toy"
    assert len(log.read_text().splitlines()) == 3
    # a flag overrides the file
    done = erarm("execute", str(plan), "--config", str(config), "--robot", "sim", "--dry-run",
                 "--json", "--out", str(tmp_path / "run2"), plugin=toy_plugin)
    assert json.loads(done.stdout)["robot"] == "xarm6-sim"


def test_a_robot_without_a_camera_needs_one(tmp_path):
    done = erarm("execute", str(tmp_path / "plan.json"), "--robot", "xarm", "--robot-opt",
                 "host=10.0.0.9")
    assert done.returncode == 2
    assert done.stderr.strip() == f"erarm: error: plan file not found: {tmp_path / 'plan.json'}"
    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    done = erarm("execute", str(tmp_path / "plan.json"), "--robot", "xarm", "--robot-opt",
                 "host=10.0.0.9")
    assert done.returncode == 2
    assert done.stderr.strip() == ("erarm: error: the xarm robot has no camera of its own: "
                                   "choose one with --camera (erarm cameras lists them)")
