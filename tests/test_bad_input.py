"""Bad input files and paths, through the real `erarm` command: each is one `erarm: error:` line
and exit 2 before any work starts (no traceback, no internal error, no hang, nothing written),
and scene files are millimetres, finite, and on the table, in view and in reach."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from erarm.robots.errors import ConfigError
from erarm.sim.scene import load_scene

ERARM = str(Path(sys.executable).with_name("erarm"))
TASK = "pick the blue block into the orange bowl"


def erarm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "ERARM_DEBUG")}
    # a FIFO or device that erarm opened would hang or never end: the timeout fails the test
    return subprocess.run([ERARM, *map(str, args)], capture_output=True, text=True,
                          env=environment, timeout=120, check=False, cwd=cwd)


def assert_refused(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    assert "internal error" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("erarm:")]
    assert len(errors) == 1 and errors[0].startswith("erarm: error: "), done.stderr
    assert done.stderr.strip().splitlines()[-1] == errors[0]
    assert "[ WARN" not in done.stderr and "[ERROR" not in done.stderr
    for word in words:
        assert word in errors[0], errors[0]


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "table.png"
    cv2.imwrite(str(path), np.full((48, 64, 3), 200, np.uint8))
    return path


def _bad(tmp_path: Path, kind: str) -> Path:
    """A path that is no usable input file, of the given kind."""
    path = tmp_path / f"bad-{kind}"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink loop":
        os.symlink(path, path)
    elif kind == "not utf-8":
        path.write_bytes(b'model = "\xff\xfe"\n')
    elif kind == "device":
        return Path("/dev/zero")  # reading it never ends
    return path


KINDS = ["directory", "fifo", "symlink loop", "device"]


@pytest.mark.parametrize("kind", [*KINDS, "not utf-8"])
def test_a_config_that_is_no_text_file_is_refused(tmp_path, image, kind):
    done = erarm("point", image, "--brain", "local", "--config", _bad(tmp_path, kind))
    assert_refused(done, "config file")


@pytest.mark.parametrize("kind", KINDS)
def test_an_image_that_is_no_file_is_refused(tmp_path, kind):
    assert_refused(erarm("detect", _bad(tmp_path, kind), "--brain", "local"), "image")


@pytest.mark.parametrize(("content", "words"), [
    (b"", "not a PNG, JPEG or BMP"),
    (b"plain text, not pixels", "not a PNG, JPEG or BMP"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x40\x00\x00\x00\x30\x08\x02",
     "cannot decode"),  # a header and nothing more
])
def test_an_image_that_is_no_picture_is_refused(tmp_path, content, words):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    assert_refused(erarm("point", path, "--brain", "local"), words)


def _png(width: int, height: int) -> bytes:
    """A real grey PNG of any size from a few bytes of compressed rows."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    rows = zlib.compress(b"".join(b"\x00" + bytes(width) for _ in range(height)), 9)
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))


def test_a_small_file_with_huge_dimensions_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png(8000, 8000))  # 64 megapixels in about 60 kB
    assert path.stat().st_size < 200_000
    assert_refused(erarm("point", path, "--brain", "local"), "8000x8000", "megapixels")


def test_image_size_comes_from_the_header_alone():
    from erarm.agent.images import image_size

    assert image_size(_png(20000, 20000)[:33]) == (20000, 20000)
    ok, jpeg = cv2.imencode(".jpg", np.zeros((30, 70, 3), np.uint8))
    assert ok and image_size(jpeg.tobytes()) == (70, 30)
    ok, bmp = cv2.imencode(".bmp", np.zeros((30, 70, 3), np.uint8))
    assert ok and image_size(bmp.tobytes()) == (70, 30)
    assert image_size(b"GIF89a") is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_calibration_that_is_no_file_is_refused(tmp_path, image, kind):
    done = erarm("point", image, "--brain", "local", "--calibration", _bad(tmp_path, kind))
    assert_refused(done, "calibration file")


@pytest.mark.parametrize("command", ["point", "detect", "trajectory"])
@pytest.mark.parametrize("name", ["overlay.txt", "overlay", "folder"])
def test_an_overlay_opencv_cannot_write_is_refused_before_asking(tmp_path, image, command,
                                                                 name):
    overlay = tmp_path / name
    if name == "folder":
        overlay.mkdir()
    extra = ["move the block left"] if command == "trajectory" else []
    done = erarm(command, image, *extra, "--brain", "local", "--overlay", overlay)
    assert_refused(done, "overlay")
    left = {image.name} | ({name} if name == "folder" else set())
    assert {p.name for p in tmp_path.iterdir()} == left


def test_an_overlay_in_a_folder_that_is_a_file_is_refused(tmp_path, image):
    done = erarm("point", image, "--brain", "local", "--overlay", image / "overlay.png")
    assert_refused(done, "overlay", "not a directory")


@pytest.mark.parametrize("kind", [*KINDS, "missing"])
def test_a_plan_file_that_is_no_file_is_refused_before_any_robot(tmp_path, kind):
    out = tmp_path / "run"
    done = erarm("execute", _bad(tmp_path, kind), "--out", out)
    assert_refused(done, "plan file")
    assert not out.exists()


@pytest.mark.parametrize("option", ["--scene", "--calibration", "--config"])
@pytest.mark.parametrize("kind", KINDS)
def test_run_refuses_bad_paths_before_the_simulator_starts(tmp_path, option, kind):
    out = tmp_path / "run"
    done = erarm("run", TASK, option, _bad(tmp_path, kind), "--dry-run", "--out", out)
    assert_refused(done)
    assert not out.exists()


def test_unreadable_files_are_refused(tmp_path, image):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    config = tmp_path / "erarm.toml"
    config.write_text("")
    config.chmod(0)
    assert_refused(erarm("point", image, "--brain", "local", "--config", config),
                   "permission denied")


def test_a_camera_without_calibration_is_refused_before_motion(tmp_path):
    video = tmp_path / "table.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for _ in range(10):
        writer.write(np.full((48, 64, 3), 120, np.uint8))
    writer.release()
    done = erarm("run", TASK, "--camera", "opencv", "--camera-opt", f"source={video}",
                 "--out", tmp_path / "run")
    assert_refused(done, "has no calibration", "--calibration")


def test_a_missing_camera_device_prints_no_opencv_log(tmp_path):
    done = erarm("run", TASK, "--camera", "opencv", "--camera-opt", "source=9",
                 "--out", tmp_path / "run")
    assert_refused(done, "cannot open camera source 9")


def _recording(tmp_path: Path) -> Path:
    run = tmp_path / "recorded"
    (run / "record").mkdir(parents=True)
    (run / "result.json").write_text(json.dumps({"task": TASK}))
    (run / "record" / "robot.jsonl").write_text("")
    return run


def test_replay_refuses_a_flight_record_that_is_not_utf8(tmp_path):
    run = _recording(tmp_path)
    (run / "record" / "robot.jsonl").write_bytes(b'{"command": "move_to"\xff}\n')
    assert_refused(erarm("replay", run, "--dry-run"), "not UTF-8")


def test_replay_refuses_a_result_that_is_a_directory(tmp_path):
    run = _recording(tmp_path)
    (run / "result.json").unlink()
    (run / "result.json").mkdir()
    assert_refused(erarm("replay", run, "--dry-run"), "result.json", "directory")


def test_calibrate_plane_refuses_a_pairs_fifo(tmp_path):
    done = erarm("calibrate", "plane", "--pairs", _bad(tmp_path, "fifo"), "--out",
                 tmp_path / "calibration.json")
    assert_refused(done, "pairs file", "FIFO")
    assert not (tmp_path / "calibration.json").exists()


# Scene files: millimetres, finite, on the table, in view and in reach.

def _scene(tmp_path: Path, *objects: dict, render: dict | None = None) -> Path:
    path = tmp_path / "scene.json"
    document = {"objects": list(objects)}
    if render is not None:
        document["render"] = render
    path.write_text(json.dumps(document))
    return path


BLUE = {"kind": "block", "colour": "blue", "x_mm": 400, "y_mm": 100}


@pytest.mark.parametrize(("changed", "words"), [
    ({"x_mm": float("nan")}, ["objects.0.x_mm", "finite"]),
    ({"y_mm": float("inf")}, ["finite"]),
    ({"yaw_deg": float("-inf")}, ["finite"]),
    ({"x_mm": 50_000}, ["blue block at 50000, 100 mm", "off the table"]),
    ({"x_mm": 0, "y_mm": 0}, ["blue block at 0, 0 mm", "workspace"]),
    ({"x_mm": 650, "y_mm": 350}, ["beyond the arm's reach of 700 mm"]),
    ({"z_mm": 20}, ["blue block", "in no container"]),
    ({"height_mm": 20}, ["height_mm", "Extra inputs"]),
])
def test_scene_objects_must_be_finite_on_the_table_and_in_reach(tmp_path, changed, words):
    path = _scene(tmp_path, {**BLUE, **changed})
    with pytest.raises(ConfigError) as raised:
        load_scene(path)
    for word in words:
        assert word in str(raised.value)


def test_a_scene_object_out_of_the_cameras_view_is_refused(tmp_path):
    path = _scene(tmp_path, {**BLUE, "y_mm": 200}, render={"camera_rotation_deg": [0, 0, 40]})
    with pytest.raises(ConfigError, match=r"objects.0 \(blue block at 400, 200 mm\) is outside "
                                          "the camera's view"):
        load_scene(path)


def test_an_old_scene_in_metres_says_how_to_convert(tmp_path):
    path = _scene(tmp_path, {"kind": "block", "colour": "blue", "x": 400, "y": 0.1})
    done = erarm("run", TASK, "--scene", path, "--dry-run", "--out", tmp_path / "run")
    assert_refused(done, "x_mm", "millimetres", "multiply by 1000")
    assert not (tmp_path / "run").exists()


def test_a_scene_in_millimetres_places_the_objects_there(tmp_path):
    path = _scene(tmp_path, {**BLUE, "yaw_deg": 20},
                  {"kind": "bowl", "colour": "orange", "x_mm": 500, "y_mm": -150})
    scene = load_scene(path)
    assert [(o.label, o.x, o.y, o.yaw_deg) for o in scene.objects] == [
        ("blue block", 0.4, 0.1, 20), ("orange bowl", 0.5, -0.15, 0)]


def test_the_scene_document_round_trips_every_staged_layout(tmp_path):
    from erarm.sim.scene import scene_document
    from erarm.sim.tasks import SCENARIOS

    path = tmp_path / "scene.json"
    for scenario in SCENARIOS.values():
        for seed in range(3):
            _, layout = scenario.episode(seed)
            document = scene_document(layout)
            path.write_text(json.dumps(document))
            loaded = load_scene(path)
            assert scene_document(loaded) == document
            for a, b in zip(loaded.objects, layout.objects, strict=True):
                assert (a.label, a.size, a.yaw_deg) == (b.label, b.size, b.yaw_deg)
                assert (a.x, a.y) == pytest.approx((b.x, b.y), abs=1e-9)
            assert (loaded.render is None) == (layout.render is None)
            if layout.render is not None:
                assert loaded.render.camera_offset_m == pytest.approx(layout.render.camera_offset_m)


def test_a_runs_scene_json_is_in_millimetres_and_replays(tmp_path):
    planned = tmp_path / "planned"
    first = erarm("run", TASK, "--seed", "2", "--dry-run", "--json", "--out", planned)
    assert first.returncode == 0, first.stderr
    objects = json.loads((planned / "scene.json").read_text())["objects"]
    assert all({"x_mm", "y_mm"} <= o.keys() and "x" not in o for o in objects)
    again = erarm("execute", planned / "plan.json", "--scene", planned / "scene.json",
                  "--dry-run", "--json", "--out", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["actions"] == json.loads(first.stdout)["actions"]


def test_calibrate_refuses_a_picture_opencv_cannot_write_before_calibrating(tmp_path):
    pairs = tmp_path / "pairs.json"
    pairs.write_text("[]")
    done = erarm("calibrate", "plane", "--pairs", pairs, "--picture", tmp_path / "picture.txt",
                 "--out", tmp_path / "calibration.json")
    assert_refused(done, "picture", ".txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.json"]
