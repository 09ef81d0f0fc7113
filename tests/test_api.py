"""The Python API (`import erarm`): the README's example as written, each function on the
simulator and on an image, the same answers as the command line, and one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import erarm
from erarm.agent.overlay import save_png
from erarm.robots.errors import ConfigError
from tests.conftest import TEST_KEY, assert_key_absent

ROOT = Path(__file__).resolve().parents[1]
ERARM = str(Path(sys.executable).with_name("erarm"))
TASK = "pick the blue block into the orange bowl"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "ERARM_DEBUG")}


def readme_python_example() -> str:
    """The one ```python block of the README's "Python API" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_readme_example_runs_as_written(tmp_path):
    done = subprocess.run([sys.executable, "-c", readme_python_example()], cwd=tmp_path,
                          capture_output=True, text=True, env=_clean_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True 0\n['blue block']\n"
    runs = list((tmp_path / "runs").iterdir())  # out=None: a new folder under runs/, as the CLI
    assert len(runs) == 1 and runs[0].name.endswith("-pick-the-blue-block-into-the-orange-bowl")
    recorded = json.loads((runs[0] / "result.json").read_text())
    assert recorded["success"] is True and recorded["task"] == TASK


def test_import_erarm_alone_loads_nothing_heavy():
    probe = ("import sys, erarm; heavy = [m for m in ('numpy', 'cv2', 'typer', 'google.genai', "
             "'pybullet', 'erarm.agent.api') if m in sys.modules]; print(heavy, erarm.__version__)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    heavy, version = done.stdout.split("] ")
    assert heavy == "[" and version.strip() == erarm.__version__ != "0+unknown"


def test_every_exported_name_resolves_to_the_api():
    from erarm.agent import api

    for name in set(erarm.__all__) - {"__version__"}:
        assert getattr(erarm, name) is getattr(api, name), name
    assert set(erarm.__all__) - {"__version__"} == set(api.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        erarm.nope  # noqa: B018


@pytest.fixture
def cell():
    with erarm.open_workcell("sim", task=TASK, seed=1) as opened:
        yield opened


@pytest.fixture
def camera_png(tmp_path, cell) -> tuple[Path, erarm.Frame]:
    """The simulated camera's frame, and the same picture saved as a PNG."""
    frame = cell.camera.capture()
    path = tmp_path / "camera.png"
    save_png(path, frame.rgb)
    return path, frame


def test_run_task_does_the_task_in_the_simulator(tmp_path, cell):
    lines: list[str] = []
    result = erarm.run_task(TASK, cell, brain="local", out=tmp_path / "run", log=lines.append)
    assert isinstance(result, erarm.RunResult)
    assert result.success is True and result.verified and result.exit_code == 0
    assert result.steps_executed > 0 and result.brain == "local"
    assert "looking at the table" in lines
    stored = json.loads((tmp_path / "run" / "result.json").read_text())
    assert stored == json.loads(result.model_dump_json())
    assert (tmp_path / "run" / "final.png").is_file()


def test_a_dry_run_moves_nothing_and_asks_no_one(tmp_path, cell):
    asked = []
    start = cell.robot.state().joint_positions_rad
    result = erarm.run_task(TASK, cell, brain="local", out=tmp_path / "dry", dry_run=True,
                            confirm=asked.append)
    assert result.dry_run and result.exit_code == 0 and result.steps_executed == 0
    assert asked == [] and cell.robot.state().joint_positions_rad == start
    assert result.actions and result.ground_truth is None


def test_a_declined_plan_moves_nothing(tmp_path, cell):
    result = erarm.run_task(TASK, cell, brain="local", out=tmp_path / "no",
                            confirm=lambda validated: False)
    assert result.exit_code == 1 and result.steps_executed == 0 and "declined" in result.error


def test_a_task_the_local_brain_cannot_read_is_refused_before_a_run_folder(tmp_path, cell):
    with pytest.raises(erarm.ErarmError, match="did you mean 'blue'") as raised:
        erarm.run_task("pick the bleu block into the orange bowl", cell, brain="local",
                       out=tmp_path / "never")
    assert raised.value.exit_code == 2 and "\n" not in str(raised.value)
    assert not (tmp_path / "never").exists()


def test_execute_plan_takes_text_calls_or_a_plan_file(tmp_path, cell):
    first = erarm.run_task(TASK, cell, brain="local", out=tmp_path / "planned", dry_run=True)
    calls = [call.call() for call in first.plan]  # {"function": ..., "args": [...]}
    from_calls = erarm.execute_plan(calls, cell, task=TASK, out=tmp_path / "calls",
                                    dry_run=True)
    from_text = erarm.execute_plan(json.dumps(calls), cell, task=TASK, out=tmp_path / "text",
                                   dry_run=True)
    assert from_calls.exit_code == from_text.exit_code == 0
    assert from_calls.actions == from_text.actions == first.actions
    from_file = erarm.execute_plan(tmp_path / "planned" / "plan.json", cell,
                                   out=tmp_path / "file")
    assert from_file.task == TASK  # the one plan.json records
    assert from_file.success is True and from_file.steps_executed == len(first.actions)


def test_a_plan_that_does_not_parse_is_refused_before_a_run_folder(tmp_path, cell):
    with pytest.raises(erarm.ErarmError, match="unknown function") as raised:
        erarm.execute_plan([{"function": "fly", "args": []}], cell, out=tmp_path / "never")
    assert raised.value.exit_code == 2
    with pytest.raises(ConfigError, match="plan:"):
        erarm.execute_plan([{"function": object()}], cell, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_point_and_detect_take_a_path_an_array_or_a_frame(camera_png):
    path, frame = camera_png
    points = erarm.point(frame, "blue block", "orange bowl", brain="local")
    assert [type(p) for p in points] == [erarm.Point, erarm.Point]
    assert [p.label for p in points] == ["blue block", "orange bowl"]
    assert all(0 <= p.y <= 1000 and 0 <= p.x <= 1000 for p in points)
    boxes = erarm.detect(frame, brain="local")
    assert boxes and all(isinstance(b, erarm.Box) for b in boxes)
    assert {"blue block", "orange bowl"} <= {b.label for b in boxes}
    # a file and an array carry no calibration: the same picture, the same answer
    assert erarm.point(path, brain="local") == erarm.point(frame.rgb, brain="local")
    assert erarm.detect(path, brain="local", limit=2) == erarm.detect(frame.rgb, brain="local",
                                                                      limit=2)
    assert len(erarm.detect(path, brain="local", limit=2)) == 2


@pytest.mark.parametrize("command", ["point", "detect"])
def test_the_command_line_gives_the_same_answers(camera_png, command):
    path, _ = camera_png
    done = subprocess.run([ERARM, command, str(path), "--brain", "local", "--json"],
                          capture_output=True, text=True, env=_clean_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    key = {"point": "points", "detect": "boxes"}[command]
    answer = getattr(erarm, command)(path, brain="local")
    assert json.loads(done.stdout)[key] == [item.model_dump(mode="json") for item in answer]


def test_dropped_entries_are_warnings(camera_png):
    path, _ = camera_png

    class Sloppy:
        name, capabilities = "sloppy", frozenset({"point", "detect"})

        def point(self, frame, queries=None, limit=10):
            return '[{"point": [500, 400], "label": "cup"}, {"point": [2000], "label": "x"}]'

    with pytest.warns(erarm.ReplyWarning, match="ignored"):
        points = erarm.point(path, brain=Sloppy())
    assert [p.label for p in points] == ["cup"]
    said: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # with `warn`, nothing goes to Python's warnings
        erarm.point(path, brain=Sloppy(), warn=said.append)
    assert len(said) == 1 and said[0].startswith("ignored")


def test_trajectory_with_gemini_on_the_loopback_server(camera_png, fake_gemini, monkeypatch):
    from tests.fake_gemini import text_reply

    path, _ = camera_png
    monkeypatch.setenv("GEMINI_API_KEY", TEST_KEY)
    fake_gemini.script(text_reply(json.dumps(
        [{"point": [500, 100 * i], "label": str(i)} for i in range(4)])))
    steps = erarm.trajectory(path, "move the blue block to the right", points=3,
                             brain="gemini", base_url=fake_gemini.url,
                             model="gemini-robotics-er-1.5-preview",
                             thinking={"trajectory": 64})
    assert [type(p) for p in steps] == [erarm.Point] * 4
    assert [p.label for p in steps] == ["0", "1", "2", "3"] and steps[3].x == 300
    request = fake_gemini.requests[0]
    assert "then 3 points for the trajectory" in request.prompt
    assert request.model == "gemini-robotics-er-1.5-preview"
    assert request.thinking == {"thinkingBudget": 64}  # the settings reach the model
    assert request.image().shape == (480, 640, 3)
    with pytest.raises(erarm.ErarmError, match="cannot answer trajectory") as raised:
        erarm.trajectory(path, "move it", brain="local")
    assert_key_absent(str(raised.value))


@pytest.mark.parametrize(("call", "message"), [
    (lambda img: erarm.point(img, brain="bogus"), "brain must be auto, local or gemini"),
    (lambda img: erarm.point(img, limit=0), "limit must be at least 1, got 0"),
    (lambda img: erarm.point(img, ["a", "b"]), "each query is a string"),
    (lambda img: erarm.detect(img, consensus=99), "consensus must be from 1 to 15"),
    (lambda img: erarm.trajectory(img, "go", points=1, brain="gemini"), "points must be from 2"),
    (lambda img: erarm.point(img[:, :, 0]), "H x W x 3 of uint8, got shape 480x640 of uint8"),
    (lambda img: erarm.point(img.astype(float)), "got shape 480x640x3 of float64"),
    (lambda img: erarm.point(42), "image: a file path, an RGB array or a Frame, got int"),
    (lambda img: erarm.point("missing.png"), "missing.png"),
    (lambda img: erarm.point(img, brain="local", model="x"), "needs the Gemini brain"),
    (lambda img: erarm.open_workcell("nope"), "unknown robot 'nope'; installed: "),
    (lambda img: erarm.open_workcell("sim", sed=3), "sim robot option sed"),
    (lambda img: erarm.open_workcell("sim", calibration="missing.json"), "missing.json"),
])
def test_bad_input_is_a_one_line_config_error(camera_png, monkeypatch, call, message):
    monkeypatch.setenv("GEMINI_API_KEY", TEST_KEY)
    _, frame = camera_png
    with pytest.raises(ConfigError) as raised:
        call(frame.rgb)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert raised.value.exit_code == 2


def test_a_brain_object_takes_no_gemini_settings(camera_png):
    from erarm.agent.brains.local import LocalBrain

    _, frame = camera_png
    with pytest.raises(ConfigError, match="model= applies to a brain named by a string"):
        erarm.point(frame, brain=LocalBrain(), model="gemini-robotics-er-2-preview")
    assert erarm.point(frame, "blue block", brain=LocalBrain())[0].label == "blue block"


def test_a_calibration_that_does_not_fit_the_image_is_refused(camera_png, tmp_path):
    from tests.conftest import synthetic_calibration

    path, frame = camera_png
    small = synthetic_calibration(width=320, height=240)
    with pytest.raises(ConfigError, match=r"is for 320x240 images, .*camera\.png is 640x480"):
        erarm.point(path, calibration=small, brain="local")
    (tmp_path / "cal.json").write_text(frame.calibration.model_dump_json())
    calibrated = erarm.point(path, "blue block", calibration=tmp_path / "cal.json",
                             brain="local")
    without_depth = erarm.Frame(rgb=frame.rgb, calibration=frame.calibration)
    assert calibrated == erarm.point(without_depth, "blue block", brain="local")


def test_open_workcell_wraps_the_camera_as_asked(cell):
    from erarm.agent.privacy import blur_faces

    frame = cell.camera.capture()
    moved = frame.calibration.model_copy(update={"fx": frame.calibration.fx * 1.1})
    with erarm.open_workcell("sim", task=TASK, seed=1, calibration=moved,
                             blur_faces=True) as wrapped:
        seen = wrapped.camera.capture()
        assert seen.calibration == moved and seen.calibration != frame.calibration
        calibrated = wrapped.camera._camera  # under the blurring, the calibration file's camera
        assert type(calibrated).__name__ == "CalibratedCamera"
        blurred, count = blur_faces(calibrated.capture())
        assert (seen.rgb == blurred.rgb).all() and wrapped.camera.faces_blurred == count


def test_a_physical_arm_moves_only_with_confirm_given(toy_plugin, tmp_path):
    """As the command line asks by default on a physical arm, the API wants `confirm`: without
    it the run is refused before its run folder is made and nothing moves."""
    log = tmp_path / "toy.jsonl"
    code = f"""
import erarm
calls = [{{"function": "move", "args": [400, 50, True]}},
         {{"function": "returnToOrigin", "args": []}}]
with erarm.open_workcell("toy", physical=True, log={str(log)!r}) as cell:
    try:
        erarm.execute_plan(calls, cell, brain="local", out="refused", strict_targets=False)
    except erarm.ConfigError as err:
        print("refused:", err)
    asked = []
    result = erarm.execute_plan(calls, cell, brain="local", out="asked", strict_targets=False,
                                confirm=lambda plan: asked.append(plan) or True)
    print("asked", len(asked), "steps", result.steps_executed)
"""
    env = {**os.environ, "PYTHONPATH": str(toy_plugin)}
    env.pop("GEMINI_API_KEY", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "refused: the toy robot is a physical arm: pass confirm=" in done.stdout
    assert "asked 1 steps 2" in done.stdout
    assert not (tmp_path / "refused").exists()
    assert [json.loads(line)["command"] for line in log.read_text().splitlines()] == \
        ["move_to", "move_to"]  # only the confirmed run moved: out and home


class NoDetect:
    name, capabilities = "half", set()

    def point(self, *args):
        return "[]"


@pytest.mark.parametrize(("change", "message"), [
    ({"task": None}, "task must be a string, got NoneType"),
    ({"cell": "sim"}, "cell must be a Workcell (from erarm.open_workcell), got str"),
    ({"out": 5}, "out must be a folder's path, got 5"),
    ({"dry_run": "no"}, "dry_run must be True or False, got 'no'"),
    ({"record": "x"}, "record must be True or False, got 'x'"),
    ({"confirm": True}, "confirm must be a callable or None, got True"),
    ({"log": 5}, "log must be a callable or None, got 5"),
    ({"brain": NoDetect()}, "a Brain (with point, detect, plan), got NoDetect"),
    ({"task": "pick the yellow block into the purple bowl"},
     "this workcell was staged for 'pick the blue block into the orange bowl'"),
])
def test_what_a_run_is_given_is_checked_before_its_run_folder(cell, tmp_path, change, message):
    given = {"task": TASK, "cell": cell, "brain": "local", "out": tmp_path / "run", **change}
    with pytest.raises(ConfigError) as raised:
        erarm.run_task(given.pop("task"), given.pop("cell"), **given)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "run").exists() and cell.robot.state().gripper_open


def test_only_a_yes_moves_the_arm(cell, tmp_path):
    before = cell.robot.state().joint_positions_rad
    result = erarm.run_task(TASK, cell, brain="local", out=tmp_path / "run",
                            confirm=lambda plan: "n")  # truthy, but not a yes
    assert result.exit_code == 1 and "declined" in result.error
    assert result.steps_executed == 0 and cell.robot.state().joint_positions_rad == before


def test_a_closed_cell_is_refused_before_anything_is_written(tmp_path):
    with erarm.open_workcell("sim", task=TASK, seed=1) as cell:
        pass
    with pytest.raises(erarm.ErarmError, match="the simulated arm is closed"):
        erarm.run_task(TASK, cell, brain="local", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(erarm.ErarmError, match="the simulated camera is closed"):
        cell.camera.capture()


def test_a_callback_that_raises_mid_motion_stops_the_arm_and_is_recorded(cell, tmp_path):
    def log(line: str) -> None:
        if line.startswith("step 3/"):
            raise RuntimeError("the notebook's logger broke")

    with pytest.raises(RuntimeError, match="logger broke"):
        erarm.run_task(TASK, cell, brain="local", out=tmp_path / "run", log=log)
    recorded = json.loads((tmp_path / "run" / "result.json").read_text())
    assert recorded["exit_code"] == 3 and recorded["steps_executed"] == 0
    assert recorded["error"] == "RuntimeError: the notebook's logger broke"


def test_plans_from_numpy_and_the_usual_slips(cell, tmp_path):
    import numpy as np

    calls = [{"function": "move", "args": [np.int64(457), np.float32(202.0), True]},
             {"function": "returnToOrigin", "args": []}]
    result = erarm.execute_plan(calls, cell, out=tmp_path / "numpy", dry_run=True,
                                strict_targets=False)
    assert result.exit_code == 0 and result.plan[0].x == 457
    with pytest.raises(ConfigError, match="got one dict"):
        erarm.execute_plan(calls[0], cell, out=tmp_path / "dict")
    (tmp_path / "plan.json").write_text(json.dumps([calls[1]]))
    with pytest.raises(ConfigError, match=r"names a file: pass Path\("):
        erarm.execute_plan(str(tmp_path / "plan.json"), cell, out=tmp_path / "str")
    with pytest.raises(ConfigError, match="camera_options need a camera="):
        erarm.open_workcell("sim", camera_options={"seed": 1})


def test_dir_shows_the_api():
    assert {"run_task", "open_workcell", "point", "__version__"} <= set(dir(erarm))
