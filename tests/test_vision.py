"""Local perception against the simulator's ground truth (read here only to score it), what it
says of images that are not its table, and the flags it has no use for."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from erarm.agent.brains import BrainChoice, build_brain
from erarm.agent.brains.local import LocalBrain
from erarm.agent.brains.local.vision import detect_objects
from erarm.agent.locate import locate_objects
from erarm.agent.parse import parse_boxes, parse_points
from erarm.agent.perceive import perceive
from erarm.robots.base import Frame
from erarm.robots.errors import ConfigError


@pytest.mark.parametrize("seed", [0, 4, 11, 23])
def test_finds_every_object_with_its_colour_and_kind(sim_cell, seed):
    cell = sim_cell(task="pick the green block into the purple bowl", seed=seed)
    frame = cell.camera.capture()
    objects = locate_objects(perceive(LocalBrain(), frame), frame)
    truth = {o["label"]: np.array(o["position_mm"]) for o in cell.referee.judge().objects}
    assert sorted(o.label for o in objects) == sorted(truth)
    for seen in objects:
        error = np.hypot(*(np.array(seen.position_mm[:2]) - truth[seen.label][:2]))
        assert error < 6.0, f"{seen.label} is {error:.1f} mm off"


def test_answers_in_the_robotics_er_formats(sim_cell):
    cell = sim_cell(seed=5)
    frame = cell.camera.capture()
    brain = LocalBrain()
    points = json.loads(brain.point(frame))
    assert all(set(p) == {"point", "label"} and all(isinstance(v, int) for v in p["point"])
               for p in points)
    assert len(parse_boxes(brain.detect(frame, limit=2))) == 2
    blue = parse_points(brain.point(frame, ["blue cube"]))
    assert [p.label for p in blue] == ["blue block"]
    assert parse_points(brain.point(frame, ["fruit"])) == []  # honest: no fruit here


def test_repeated_objects_get_unique_labels(tmp_path, sim_cell):
    scene = tmp_path / "twins.json"
    scene.write_text(json.dumps({"objects": [
        {"kind": "block", "colour": "red", "x_mm": 400, "y_mm": 150},
        {"kind": "block", "colour": "red", "x_mm": 400, "y_mm": -150},
        {"kind": "bowl", "colour": "blue", "x_mm": 520, "y_mm": 0}]}))
    cell = sim_cell(task="", scene=scene)
    frame = cell.camera.capture()
    labels = sorted(p.label for p in parse_points(LocalBrain().point(frame)))
    assert labels == ["blue bowl", "red block 1", "red block 2"]


def _portrait() -> np.ndarray:
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _hue_sweep() -> np.ndarray:
    """A rainbow gradient: every colour, none of them an object."""
    hsv = np.full((480, 640, 3), 255, np.uint8)
    hsv[:, :, 0] = np.linspace(0, 179, 640).astype(np.uint8)[None, :]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def test_a_portrait_is_said_not_to_be_a_table_scene(caplog):
    frame = Frame(rgb=_portrait())
    with caplog.at_level(logging.WARNING):
        assert parse_boxes(LocalBrain().detect(frame)) == []  # not 57 "blocks" and "bowls"
    warning = caplog.messages[0]
    assert len(caplog.messages) == 1 and "not a calibrated table scene" in warning
    assert "no calibration" in warning and "of it is saturated colour" in warning
    assert "finds only solid-coloured blocks and bowls in eight colours" in warning


def test_a_gradient_holds_no_objects(caplog):
    with caplog.at_level(logging.WARNING):
        assert parse_points(LocalBrain().point(Frame(rgb=_hue_sweep()))) == []
    assert "nothing in it was taken for an object" in caplog.text


def test_regions_unlike_solid_blocks_are_left_out_and_counted(caplog):
    """On a grey table: a solid red square is a block; a ragged blue comb, a green patch of
    scattered hues and a wall-to-wall yellow stripe are not."""
    rgb = np.full((480, 640, 3), 128, np.uint8)
    rgb[100:130, 100:130] = (220, 30, 30)
    for tooth in range(6):
        rgb[300:360, 300 + 12 * tooth:304 + 12 * tooth] = (30, 60, 220)
    rgb[295:300, 300:372] = (30, 60, 220)
    hues = np.random.default_rng(1).integers(45, 78, (40, 40)).astype(np.uint8)
    patch = np.dstack([hues, np.full_like(hues, 200), np.full_like(hues, 200)])
    rgb[100:140, 400:440] = cv2.cvtColor(patch, cv2.COLOR_HSV2RGB)
    rgb[:, 600:612] = (230, 220, 40)
    sight = detect_objects(Frame(rgb=rgb))
    assert [d.label for d in sight.detections] == ["red block"]
    assert sight.implausible == 3
    with caplog.at_level(logging.WARNING):
        LocalBrain().point(Frame(rgb=rgb))
    assert "3 coloured region(s) were left out as unlike solid blocks or bowls" in caplog.text


def test_a_calibrated_table_scene_gets_no_warning_and_an_unknown_thing_does(sim_cell, caplog):
    frame = sim_cell(seed=2).camera.capture()
    with caplog.at_level(logging.WARNING):
        assert parse_points(LocalBrain().point(frame))
    assert caplog.messages == []
    with caplog.at_level(logging.WARNING):
        assert parse_points(LocalBrain().point(frame, ["fruit"])) == []
    assert "'fruit' is not a block or a bowl" in caplog.text


def test_a_region_left_out_of_a_calibrated_table_scene_is_named_as_such(sim_cell, caplog):
    """A calibrated RGB-D table view with one unevenly coloured region is still a table scene:
    the warning says what was left out, not that the scene is wrong."""
    frame = sim_cell(seed=2).camera.capture()
    rgb = frame.rgb.copy()
    hues = np.random.default_rng(1).integers(45, 78, (40, 40)).astype(np.uint8)
    patch = np.dstack([hues, np.full_like(hues, 200), np.full_like(hues, 200)])
    rgb[420:460, 40:80] = cv2.cvtColor(patch, cv2.COLOR_HSV2RGB)  # a green of scattered hues
    with caplog.at_level(logging.WARNING):
        LocalBrain().point(Frame(rgb=rgb, calibration=frame.calibration, depth_m=frame.depth_m))
    assert "1 coloured region(s) were left out as unlike solid blocks or bowls" in caplog.text
    assert "not a calibrated table scene" not in caplog.text


@pytest.mark.parametrize(("flags", "named"), [
    ({"model": "gemini-robotics-er-1.5-preview"}, "--model"),
    ({"base_url": "http://127.0.0.1:9"}, "--base-url"),
    ({"safety": ["dangerous_content=BLOCK_ONLY_HIGH"]}, "--safety"),
    ({"thinking": ["plan=100"]}, "--thinking-budget"),
    ({"consensus": 3}, "--consensus"),
    ({"zoom": True}, "--zoom"),
    ({"trajectory": 5}, "--trajectory"),
])
def test_gemini_only_flags_are_refused_with_the_local_brain(monkeypatch, flags, named):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    for choice in (BrainChoice.local, BrainChoice.auto):
        with pytest.raises(ConfigError, match=f"^{named} needs the Gemini brain"):
            build_brain(choice, **flags)
    assert build_brain(BrainChoice.local).name == "local"  # no such flag: no complaint


def test_the_cli_names_the_gemini_only_flag(tmp_path):
    image = tmp_path / "portrait.png"
    cv2.imwrite(str(image), cv2.cvtColor(_portrait(), cv2.COLOR_RGB2BGR))
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    erarm = str(Path(sys.executable).with_name("erarm"))
    done = subprocess.run([erarm, "point", str(image), "--zoom"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("erarm: error: --zoom needs the Gemini brain (--brain "
                                   "gemini, or set GEMINI_API_KEY for --brain auto); the local "
                                   "brain has no use for it")
    out = tmp_path / "run"
    done = subprocess.run([erarm, "run", "pick the blue block into the orange bowl",
                           "--brain", "local", "--trajectory", "5", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "--trajectory needs the Gemini brain" in done.stderr
    assert not out.exists()
