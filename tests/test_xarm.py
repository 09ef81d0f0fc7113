"""The xArm driver against a recording fake of UFACTORY's SDK: the exact calls, units and limits
it sends, checked call by call against the real `XArmAPI` signatures, and how it fails."""

import inspect
import math
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from xarm.wrapper import XArmAPI

from erarm.robots.base import ToolPose, WorkspaceLimits
from erarm.robots.errors import RobotError
from erarm.robots.xarm import XArmOptions, XArmRobot
from tests.fake_xarm import RecordingXArmAPI

ERARM = str(Path(sys.executable).with_name("erarm"))


def xarm(**options) -> tuple[XArmRobot, RecordingXArmAPI]:
    fake = RecordingXArmAPI("10.0.0.9", do_not_open=True)
    arm = XArmRobot(XArmOptions(host="10.0.0.9", **options), api_factory=lambda host: fake)
    return arm, fake


def test_connecting_fences_the_controller_before_enabling_motion():
    arm, fake = xarm(table_z_mm=-100, collision_sensitivity=4)
    arm.connect()
    names = [name for name, _, _ in fake.calls]
    assert names[:3] == ["register_connect_changed_callback", "connect", "clean_warn"]
    assert names.index("set_fence_mode") < names.index("set_gripper_enable")
    assert fake.called("set_tcp_offset") == [(([0.0, 0.0, 172.0, 0.0, 0.0, 0.0],), {})]
    # [x_max, x_min, y_max, y_min, z_max, z_min] in mm, in the arm's frame (table 100 mm below)
    assert fake.boundary == [700, 150, 400, -400, 350, -100]
    assert fake.max_tcp_speed == 500.0 and fake.reduced_on and fake.fence_on
    assert fake.collision_sensitivity == 4
    assert fake.called("motion_enable") == [((), {"enable": True, "servo_id": None})]
    assert fake.state == 2 and fake.mode == 0


def test_moves_are_sent_in_millimetres_and_degrees_at_a_bounded_speed():
    arm, fake = xarm(speed_mm_s=800, table_z_mm=-100,
                     limits=WorkspaceLimits(max_speed_m_s=0.25))
    arm.connect()
    report = arm.move_to(ToolPose(x=0.4, y=0.1, z=0.05, yaw=math.radians(30)))
    (_, sent), = fake.called("set_position")
    assert sent["x"] == pytest.approx(400) and sent["y"] == pytest.approx(100)
    assert sent["z"] == pytest.approx(-50)  # 50 mm above a table 100 mm below the base
    assert (sent["roll"], sent["pitch"]) == (180.0, 0.0)  # pointing down
    assert sent["yaw"] == pytest.approx(30)
    assert sent["speed"] == 250.0  # the limit wins over the faster option
    assert sent["is_radian"] is False and sent["wait"] is True
    assert report.reached.z == pytest.approx(0.05) and report.position_error_m < 1e-6


def test_tilted_poses_map_roll_and_pitch():
    arm, fake = xarm()
    arm.connect()
    arm.move_to(ToolPose(x=0.4, y=0.0, z=0.2, roll=math.radians(20), pitch=math.radians(-15)))
    (_, sent), = fake.called("set_position")
    assert sent["roll"] == pytest.approx(-160) and sent["pitch"] == pytest.approx(-15)
    tool = arm.state().tool
    assert math.degrees(tool.roll) == pytest.approx(20) and \
        math.degrees(tool.pitch) == pytest.approx(-15)


def test_the_gripper_in_pulses_and_what_it_holds():
    arm, fake = xarm()
    arm.connect()
    fake.object_pulses = 400  # a 40 mm block between the fingers
    closed = arm.set_gripper(False)
    assert fake.called("set_gripper_position")[-1] == ((0,), {"wait": True, "speed": 3000,
                                                             "timeout": 10})
    assert closed.holding and closed.opening_m == pytest.approx(0.04)
    opened = arm.set_gripper(True)
    assert fake.called("set_gripper_position")[-1][0] == (850,)
    assert not opened.holding and opened.opening_m == pytest.approx(0.085)
    fake.object_pulses = None
    assert not arm.set_gripper(False).holding  # closed on nothing


def test_every_call_matches_the_real_sdk_signature():
    """The fake could drift from the SDK; each call the driver made must bind to UFACTORY's own
    `XArmAPI` method of that name."""
    arm, fake = xarm()
    arm.connect()
    arm.reachable(ToolPose(x=0.4, y=0.0, z=0.1))
    arm.move_to(ToolPose(x=0.4, y=0.0, z=0.1))
    arm.set_gripper(False)
    arm.state()
    arm.return_to_origin()
    arm.stop()
    arm.close()
    names = set()
    for name, args, kwargs in fake.calls:
        real = getattr(XArmAPI, name)
        inspect.signature(real).bind(None, *args, **kwargs)  # raises TypeError on a mismatch
        names.add(name)
    assert {"set_position", "set_reduced_tcp_boundary", "emergency_stop"} <= names


def test_a_controller_error_is_one_clear_line():
    arm, fake = xarm()
    arm.connect()
    fake.fail_next_move = 31
    with pytest.raises(RobotError) as caught:
        arm.move_to(ToolPose(x=0.4, y=0.0, z=0.1))
    assert str(caught.value) == ("xArm moving to (400, 0, 100) mm failed: the controller has an "
                                 "error (1); controller error 31: Collision Caused Abnormal "
                                 "Current")
    with pytest.raises(RobotError, match="controller error 31"):  # until someone clears it
        arm.move_to(ToolPose(x=0.4, y=0.0, z=0.2))


def test_the_controller_fence_holds_even_past_the_driver():
    arm, fake = xarm()
    arm.connect()
    fake.set_position(x=800, y=0, z=100, wait=True)  # as if someone else commanded it
    assert fake.error_code == 35
    with pytest.raises(RobotError, match="controller error 35: Safety Boundary Limit"):
        arm.move_to(ToolPose(x=0.4, y=0.0, z=0.2))


def test_a_lost_connection_stops_the_run():
    arm, fake = xarm()
    arm.connect()
    fake.moves_before_link_drops = 1
    arm.move_to(ToolPose(x=0.4, y=0.0, z=0.2))
    with pytest.raises(RobotError, match=r"lost the connection to the xArm at 10\.0\.0\.9 "
                                         "while moving to"):
        arm.move_to(ToolPose(x=0.4, y=0.1, z=0.2))
    with pytest.raises(RobotError, match="lost the connection"):
        arm.state()
    arm.stop()  # harmless with no link
    assert not fake.called("emergency_stop")


def test_no_arm_at_the_address_is_one_line_with_the_real_sdk(tmp_path):
    """UFACTORY's SDK itself, pointed at a loopback port where nothing listens."""
    plan = tmp_path / "plan.json"
    plan.write_text('[{"function": "returnToOrigin", "args": []}]')
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    done = subprocess.run([ERARM, "execute", str(plan), "--robot", "xarm", "--robot-opt",
                           "host=127.0.0.1", "--camera", "sim", "--json"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        "erarm: error: cannot connect to the xArm at 127.0.0.1")
    assert "Traceback" not in done.stderr and done.stdout == ""  # not even the SDK's banner


def test_options_are_checked_before_connecting(tmp_path):
    done = subprocess.run([ERARM, "run", "pick the blue block into the orange bowl", "--robot",
                           "xarm", "--robot-opt", "host=10.0.0.9", "--robot-opt",
                           "collision_sensitivity=9"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == ("erarm: error: xarm robot option collision_sensitivity: Input "
                                   "should be less than or equal to 5")


def test_the_readme_cell_file_configures_the_xarm():
    """The deployment guide's config file, as printed, gives a valid xArm and camera choice."""
    from erarm.agent.config import ErarmConfig

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split('```toml\n[robot]\nname = "xarm"\n', 1)[1].split("```", 1)[0]
    config = ErarmConfig.model_validate(tomllib.loads('[robot]\nname = "xarm"\n' + block))
    options = XArmOptions.model_validate(config.robot.options)
    assert options.host == "192.168.1.200" and options.limits.x_max == 0.55
    assert config.camera.name == "realsense"
