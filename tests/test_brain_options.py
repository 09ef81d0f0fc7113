"""Consensus, zoom and face blurring: wrappers and filters that work for any brain."""

import json

import cv2
import numpy as np
import pytest

from erarm.agent.brains.consensus import ConsensusBrain
from erarm.agent.brains.local import LocalBrain
from erarm.agent.brains.zoom import ZoomBrain
from erarm.agent.parse import parse_boxes, parse_points
from erarm.agent.privacy import FaceBlurringCamera, blur_faces, find_faces
from erarm.robots.base import Frame
from tests.fake_gemini import text_reply


@pytest.fixture
def frame():
    return Frame(rgb=np.full((480, 640, 3), 200, np.uint8))


def points_reply(*points):
    return text_reply(json.dumps([{"point": list(p), "label": label} for label, p in points]))


def test_consensus_keeps_the_majority_at_its_robust_median(gemini, fake_gemini, frame):
    fake_gemini.script(
        points_reply(("blue block", (500, 300)), ("bowl", (200, 700)), ("ghost", (10, 10))),
        points_reply(("blue block", (504, 296)), ("bowl", (204, 700))),
        points_reply(("blue block", (900, 900))),  # a wild answer
        points_reply(("blue block", (498, 302)), ("bowl", (198, 702))),
        points_reply(("blue block", (502, 304)), ("cup", (600, 100))))
    points = parse_points(ConsensusBrain(gemini(), 5).point(frame))
    assert len(fake_gemini.requests) == 5
    found = {p.label: (p.y, p.x) for p in points}
    assert found == {"blue block": (501, 301), "bowl": (200, 700)}  # ghost, cup, wild: dropped


def test_consensus_of_boxes_and_a_tolerated_bad_answer(gemini, fake_gemini, frame):
    box = '[{"box_2d": [%d, 100, 200, 300], "label": "cup"}]'
    fake_gemini.script(text_reply(box % 100), text_reply("sorry, no idea"), text_reply(box % 110))
    boxes = parse_boxes(ConsensusBrain(gemini(), 3).detect(frame))
    assert [(b.label, b.box_2d) for b in boxes] == [("cup", (105, 100, 200, 300))]


def test_zoom_queries_a_crop_and_maps_points_back(gemini, fake_gemini, frame):
    fake_gemini.script(points_reply(("screw", (500, 500))),
                       text_reply('[{"box_2d": [450, 450, 550, 550], "label": "screw"}]'),
                       points_reply(("screw", (250, 750))))
    zoomed = parse_points(ZoomBrain(gemini()).point(frame, ["screw"]))
    crop_request = fake_gemini.requests[2]
    assert crop_request.image().shape == (144, 192, 3)  # 1.5 box sizes each side of the box
    assert "screw" in crop_request.prompt
    (screw,) = zoomed
    assert (screw.y, screw.x) == (425, 575)  # crop [250, 750] is that in the full frame


def test_zoom_with_the_local_brain_agrees_with_looking_once(sim_cell):
    cell = sim_cell(seed=6)
    frame = cell.camera.capture()
    plain = {p.label: np.array(p.point) for p in parse_points(LocalBrain().point(frame))}
    zoomed = {p.label: np.array(p.point) for p in parse_points(ZoomBrain(LocalBrain())
                                                               .point(frame))}
    assert set(zoomed) == set(plain)
    for label, point in zoomed.items():
        assert np.abs(point - plain[label]).max() <= 3, label


def _portrait() -> np.ndarray:
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    portrait = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return cv2.resize(portrait, (256, 300))


def test_faces_are_blurred_and_nothing_else_changes(frame):
    rgb = frame.rgb.copy()
    rgb[100:400, 300:556] = _portrait()
    original = Frame(rgb=rgb)
    assert len(find_faces(rgb)) >= 1
    blurred, count = blur_faces(original)
    assert count >= 1 and find_faces(blurred.rgb) == []
    changed = np.any(blurred.rgb != rgb, axis=2)
    rows, cols = np.nonzero(changed)
    assert rows.min() >= 100 and cols.min() >= 300  # only inside the portrait
    assert blur_faces(Frame(rgb=frame.rgb))[1] == 0


def test_a_face_never_reaches_the_api(gemini, fake_gemini, frame):
    rgb = frame.rgb.copy()
    rgb[100:400, 300:556] = _portrait()

    class StillCamera:
        name = "still"

        def capture(self):
            return Frame(rgb=rgb)

    fake_gemini.script(text_reply("[]"))
    gemini().point(FaceBlurringCamera(StillCamera()).capture())
    uploaded = fake_gemini.requests[0].image()
    assert find_faces(rgb) and find_faces(uploaded) == []
