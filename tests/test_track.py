"""erarm track: the docs' tracking prompt through the real SDK (loopback server), the local brain
on a flight record's video, tracks joined per object, and bad input."""

from __future__ import annotations

import json
import subprocess
import threading

import av
import cv2
import numpy as np
import pytest

from erarm.agent.brains.local import LocalBrain
from erarm.agent.track import track
from tests.conftest import RECORDED_TASK
from tests.fake_gemini import text_reply
from tests.test_live import ERARM

TASK = RECORDED_TASK


def _video(path, frames: int = 12, size=(160, 120)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i % 255, np.uint8))
    writer.release()


def test_the_local_brain_tracks_the_block_into_the_bowl(recorded_run, tmp_path):
    tracks, sampled = track(LocalBrain(), recorded_run / "record" / "run.mp4",
                            ["blue block", "orange bowl"], every=5, overlay=tmp_path / "o.mp4")
    found = {t.label: t for t in tracks}
    assert set(found) == {"blue block", "orange bowl"}
    block, bowl = found["blue block"].points, found["orange bowl"].points
    assert len(block) >= 0.8 * len(sampled)
    start, end = np.array(block[0].point), np.array(block[-1].point)
    assert np.linalg.norm(end - start) > 100  # it moved
    assert np.linalg.norm(end - np.array(bowl[-1].point)) < 80  # into the bowl
    assert [p.frame for p in block] == sorted(p.frame for p in block)
    with av.open(str(tmp_path / "o.mp4")) as container:  # H.264: it plays in a browser
        assert container.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in container.decode(video=0)) == len(sampled)


def test_gemini_tracks_with_the_docs_prompt_frames_asked_together(gemini, fake_gemini,
                                                                 tmp_path):
    _video(tmp_path / "clip.mp4", frames=12)
    answers = iter([
        '[{"point": [500, 100], "label": "pen"}]', '[{"point": [500, 200], "label": "pen"}]',
        "[]", "not json at all"])
    lock = threading.Lock()

    def respond(request):
        with lock:
            return text_reply(next(answers))

    fake_gemini.responder = respond
    tracks, sampled = track(gemini(), tmp_path / "clip.mp4", ["pen"], every=3, batch=4)
    assert len(fake_gemini.requests) == 4 and len(sampled) == 4  # frames 0, 3, 6, 9
    assert [s.frame for s in sampled] == [0, 3, 6, 9]
    prompt = fake_gemini.requests[0].prompt
    assert "pen" in prompt and "If no objects are found, return an empty JSON list []" in prompt
    assert all(len(r.images) == 1 for r in fake_gemini.requests)
    (pen,) = tracks
    assert pen.label == "pen" and len(pen.points) == 2  # an empty frame and a garbled one: gaps
    assert any("no JSON list" in w for s in sampled for w in s.warnings)


def test_erarm_track_on_a_run_folder_writes_the_overlay_and_one_track_per_object(
        recorded_run, tmp_path):
    done = subprocess.run([ERARM, "track", str(recorded_run), "blue block", "orange bowl",
                           "--every", "8", "--brain", "local", "--json", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["video"].endswith("record/run.mp4")
    assert {t["label"] for t in document["tracks"]} == {"blue block", "orange bowl"}
    for name in ("overlay.mp4", "tracks.json", "track-blue-block.json",
                 "track-orange-bowl.json"):
        assert (tmp_path / "out" / name).is_file(), name


@pytest.mark.parametrize(("make", "words"), [
    (lambda d: (d / "notes.mp4").write_text("hello") and d / "notes.mp4", "not a video"),
    (lambda d: d, "no flight-record video"),
    (lambda d: d / "missing.mp4", "missing.mp4"),
], ids=["not-a-video", "folder-without-record", "missing"])
def test_erarm_track_refuses_bad_input_in_one_line(tmp_path, make, words):
    from tests.test_bad_input import assert_refused, erarm

    source = make(tmp_path)
    done = erarm("track", str(source), "blue block", "--brain", "local", "--out",
                 str(tmp_path / "out"))
    assert_refused(done, words)
    assert not (tmp_path / "out").exists()
