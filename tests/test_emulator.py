"""The Robotics-ER emulator, through erarm's real Gemini client (google-genai over loopback)
against simulated cells that feed it their truth. The tests check replies against what they
staged and the simulator's referee, never against the emulator's own truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pybullet as pb
import pytest

from erarm.agent.brains.base import PlanRequest
from erarm.agent.brains.gemini import GeminiBrain
from erarm.agent.config import GeminiSettings
from erarm.agent.errors import BrainUnavailable, ReplyError
from erarm.agent.geometry import pixel_to_normalized
from erarm.agent.parse import (
    parse_plan,
    parse_trajectory,
    parse_verdict,
    read_boxes,
    read_points,
)
from erarm.agent.schemas import Move, SceneObject
from erarm.robots.registry import open_workcell
from erarm.sim.emulator import Emulator, EmulatorSettings
from erarm.sim.objects import BLOCK_SIZE_M

KEY = "emulator-test-key-0123456789"
EXACT = dict(pointing_sigma=0, box_jitter=0, confusion_rate=0, miss_rate=0,
             hallucination_rate=0, malformed_rate=0, prose_rate=0, max_tokens_rate=0,
             judge_error_rate=0, latency_median_s=0)


def settings(**changes) -> EmulatorSettings:
    return EmulatorSettings(**{**EXACT, **changes})


def brain_for(url: str, **options) -> GeminiBrain:
    return GeminiBrain(KEY, GeminiSettings(base_url=url, attempts=1, **options))


@pytest.fixture
def cell_and(request):
    """An emulator with the test's settings and a pick-into-bowl cell feeding session 'ep'."""
    cells, emulators = [], []

    def make(emulator_settings: EmulatorSettings, scenario="pick-into-bowl", seed=3, **opts):
        emulator = Emulator(emulator_settings)
        emulators.append(emulator)
        options = {"scenario": scenario} if scenario else {}
        cell = open_workcell("sim", seed=seed, emulator=emulator.session_url("ep"),
                             **options, **opts)
        cells.append(cell)
        return cell, emulator, brain_for(emulator.session_url("ep"))

    yield make
    for cell in cells:
        cell.close()
    for emulator in emulators:
        emulator.close()


def staged_labels(cell) -> dict[str, tuple[float, float, float]]:
    """What the test staged, from the simulator's referee (the scene's own truth)."""
    return {o["label"]: tuple(o["position_mm"]) for o in cell.referee.judge().objects}


def nearest_staged(cell, frame, y: float, x: float) -> str:
    """The staged object whose true centre the camera sees nearest a normalized point."""
    height, width = frame.rgb.shape[:2]
    calibration = cell.referee.true_calibration()

    def distance(item) -> float:
        u, v = calibration.project(np.array(item[1]) / 1000)[0]
        seen_y, seen_x = pixel_to_normalized(u, v, width, height)
        return math.hypot(seen_y - y, seen_x - x)

    return min(staged_labels(cell).items(), key=distance)[0]


def test_the_same_seed_gives_the_same_replies(cell_and):
    noisy = dict(pointing_sigma=20, box_jitter=10, miss_rate=0.2, confusion_rate=0.2,
                 malformed_rate=0.2, hallucination_rate=0.3, prose_rate=0.3)
    replies = []
    for seed in (0, 0, 1):
        cell, _, brain = cell_and(settings(seed=seed, **noisy))
        frame = cell.camera.capture()
        replies.append([brain.point(frame), brain.detect(frame), brain.point(frame)])
    assert replies[0] == replies[1]
    assert replies[0] != replies[2]
    assert replies[0][0] != replies[0][2]  # the second question of a kind draws anew


def test_without_noise_points_land_on_the_objects(cell_and):
    cell, emulator, brain = cell_and(settings())
    frame = cell.camera.capture()
    reading = read_points(brain.point(frame))
    staged = staged_labels(cell)
    calibration = cell.referee.true_calibration()
    assert sorted(p.label for p in reading.items) == sorted(staged)
    height, width = frame.rgb.shape[:2]
    for point in reading.items:
        u, v = calibration.project(np.array(staged[point.label]) / 1000)[0]
        y, x = pixel_to_normalized(u, v, width, height)
        assert math.hypot(point.y - y, point.x - x) < 40, point.label
        row, col = round(point.y / 1000 * height), round(point.x / 1000 * width)
        assert np.isfinite(frame.depth_m[row, col])
    asked = read_points(brain.point(frame, ["blue block"])).items
    assert [p.label for p in asked] == ["blue block"]
    boxes = read_boxes(brain.detect(frame))
    assert not boxes.dropped and all(b.contains(p) for b, p in zip(
        sorted(boxes.items, key=lambda b: b.label),
        sorted(reading.items, key=lambda p: p.label), strict=True))
    path = parse_trajectory(brain.trajectory(frame, cell.instruction, points=6))
    assert [p.label for p in path] == [str(i) for i in range(7)]
    assert nearest_staged(cell, frame, path[0].y, path[0].x) == "blue block"
    assert nearest_staged(cell, frame, path[-1].y, path[-1].x) == "green bowl"
    located = brain.locate(frame)
    located_points, located_boxes = read_points(located), read_boxes(located)
    assert sorted(p.label for p in located_points.items) == sorted(staged)
    for point, box in zip(located_points.items, located_boxes.items, strict=True):
        assert box.label == point.label and box.contains(point)  # one entry per object
    assert emulator.stats().requests == {"point": 2, "detect": 1, "locate": 1, "trajectory": 1}


def test_a_malformed_located_entry_loses_its_point_or_its_box_not_both(cell_and):
    cell, _, brain = cell_and(settings(malformed_rate=1.0))
    text = brain.locate(cell.camera.capture())
    entries = json.loads(text)
    points, boxes = read_points(text), read_boxes(text)
    assert len(points.dropped) + len(boxes.dropped) == len(entries) == len(staged_labels(cell))
    assert points.dropped and boxes.dropped  # both kinds of mistake are made


def _exchanges(brain: GeminiBrain) -> list[dict]:
    records: list[dict] = []
    brain.on_exchange = records.append
    return records


@pytest.mark.parametrize("error", ["malformed", "prose", "max_tokens", "miss", "hallucination",
                                   "confusion"])
def test_each_error_kind_shows_up_at_rate_one(cell_and, error):
    cell, emulator, brain = cell_and(settings(**{f"{error}_rate": 1.0}))
    records = _exchanges(brain)
    frame = cell.camera.capture()
    staged = set(staged_labels(cell))
    points_text, boxes_text = brain.point(frame), brain.detect(frame)
    if error in ("malformed", "max_tokens"):
        with pytest.raises(ReplyError, match="less than or equal to 1000" if error == "malformed"
                           else "no JSON list"):
            read_points(points_text)
        with pytest.raises(ReplyError, match="corners swapped" if error == "malformed"
                           else "no JSON list"):
            read_boxes(boxes_text)
        if error == "max_tokens":
            assert [r["finish_reason"] for r in records] == ["MAX_TOKENS", "MAX_TOKENS"]
        assert emulator.stats().errors[error] >= 2
        return
    points, boxes = read_points(points_text), read_boxes(boxes_text)
    if error == "prose":
        assert all(not t.lstrip().startswith("[") for t in (points_text, boxes_text))
        assert {p.label for p in points.items} == staged  # the parser still finds the JSON
    elif error == "miss":
        assert points.items == [] and boxes.items == []
    elif error == "hallucination":
        extra = {p.label for p in points.items} - staged
        assert len(extra) == 1 and len(points.items) == len(staged) + 1
        assert len({b.label for b in boxes.items} - staged) == 1
    else:  # every label names another colour or kind, at the right object's place
        assert len(points.items) == len(staged)
        for point in points.items:
            assert point.label != nearest_staged(cell, frame, point.y, point.x)
    assert emulator.stats().errors[error] >= 2


class FakeClock:
    """The rate budget's clock and the client's sleep: waiting moves time on, instantly."""

    def __init__(self) -> None:
        self.time, self.waited = 1000.0, []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.waited.append(seconds)
        self.time += seconds


def test_a_429_carries_a_retry_delay_that_the_client_waits(cell_and):
    clock = FakeClock()
    emulator = Emulator(settings(requests_per_minute=1), clock=clock.now)
    try:
        cell = open_workcell("sim", scenario="pick-into-bowl", seed=3,
                             emulator=emulator.session_url("ep"))
        brain = GeminiBrain(KEY, GeminiSettings(base_url=emulator.session_url("ep")),
                            sleep=clock.sleep)
        frame = cell.camera.capture()
        first = brain.point(frame)
        clock.time += 15
        second = brain.point(frame)  # over the budget: 429, "45s", then allowed
        cell.close()
    finally:
        emulator.close()
    assert read_points(first).items and read_points(second).items
    assert clock.waited == [45.0]
    assert emulator.stats().rate_limited == 1 and emulator.stats().requests == {"point": 2}


def test_sessions_share_one_request_budget_like_one_key(cell_and):
    """Two episodes (sessions) of one emulator draw on one requests-per-minute budget, as bench
    workers sharing one API key would: the second session's request is over the first's."""
    clock = FakeClock()
    emulator = Emulator(settings(requests_per_minute=2), clock=clock.now)
    cells = []
    try:
        brains = {}
        for name in ("a", "b"):
            cells.append(open_workcell("sim", scenario="pick-into-bowl", seed=3,
                                       emulator=emulator.session_url(name)))
            brains[name] = GeminiBrain(KEY, GeminiSettings(base_url=emulator.session_url(name)),
                                       sleep=clock.sleep)
        frames = {name: cell.camera.capture() for name, cell in zip("ab", cells, strict=True)}
        brains["a"].point(frames["a"])
        clock.time += 10
        brains["a"].point(frames["a"])
        clock.time += 10
        assert not clock.waited  # two requests: the budget is used, not exceeded
        replies = read_points(brains["b"].point(frames["b"]))  # 429 "40s", then answered
    finally:
        for cell in cells:
            cell.close()
        emulator.close()
    assert replies.items
    assert clock.waited == [40.0]
    assert emulator.stats().rate_limited == 1 and emulator.stats().requests == {"point": 3}


def _scene(tmp_path, *objects: tuple) -> str:
    """A scene file of (kind, colour, x_mm, y_mm[, size]) objects."""
    path = tmp_path / f"scene{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps({"objects": [
        {"kind": kind, "colour": colour, "x_mm": x, "y_mm": y, "size": size}
        for kind, colour, x, y, size in ((*o, 1.0)[:5] for o in objects)]}))
    return str(path)


def _drop_into_bowl(cell, block: str, bowl: str) -> None:
    """Put a block in a bowl by hand (the simulator's stage, as a person would)."""
    world = cell.robot.world
    item, target = world.bodies[world.labels.index(block)], world.bodies[world.labels.index(bowl)]
    (x, y, _), _ = pb.getBasePositionAndOrientation(target, physicsClientId=world.client)
    pb.resetBasePositionAndOrientation(item, (x, y, 0.03), (0, 0, 0, 1),
                                       physicsClientId=world.client)
    world.settle_objects()


def _request(task: str, cell, offsets_mm=(0.0, 0.0)) -> PlanRequest:
    """A plan request listing the staged objects, shifted a little (as erarm sees them)."""
    objects = [SceneObject(label=label, point=(0, 0), radius_mm=20,
                           position_mm=(x + offsets_mm[0], y + offsets_mm[1], z))
               for label, (x, y, z) in staged_labels(cell).items()]
    return PlanRequest(task=task, objects=objects, limits=cell.robot.limits)


def test_a_plan_moves_what_is_left_and_is_empty_once_done(cell_and, tmp_path):
    task = "put the red block in the blue bowl"
    cell, _, brain = cell_and(settings(), scenario=None, task=task,
                              scene=_scene(tmp_path, ("block", "red", 400, 100),
                                           ("bowl", "blue", 420, -120)))
    frame = cell.camera.capture()
    plan = parse_plan(brain.plan(_request(task, cell, (8.0, -6.0)), frame))
    moves = [c for c in plan.calls if isinstance(c, Move)]
    assert (moves[0].x, moves[0].y) == (408, 94)  # the listed block, not the truth
    assert (moves[-1].x, moves[-1].y) == (428, -126)  # the listed bowl's centre
    assert not parse_verdict(brain.judge(frame, frame, task)).done

    _drop_into_bowl(cell, "red block", "blue bowl")
    assert cell.referee.judge().success
    frame = cell.camera.capture()
    plan = parse_plan(brain.plan(_request(task, cell), frame))
    assert plan.calls == [] and "already done" in plan.reasoning
    assert parse_verdict(brain.judge(frame, frame, task)).done


def test_the_judge_flips_at_error_rate_one(cell_and, tmp_path):
    task = "put the green block in the yellow bowl"
    cell, emulator, brain = cell_and(settings(judge_error_rate=1.0), scenario=None, task=task,
                                     scene=_scene(tmp_path, ("block", "green", 400, 100),
                                                  ("bowl", "yellow", 420, -120)))
    frame = cell.camera.capture()
    wrong = parse_verdict(brain.judge(frame, frame, task))
    assert wrong.done and wrong.progress == 100  # not done, judged done
    _drop_into_bowl(cell, "green block", "yellow bowl")
    assert cell.referee.judge().success
    frame = cell.camera.capture()
    wrong = parse_verdict(brain.judge(frame, frame, task))
    assert not wrong.done and wrong.progress == 0
    assert emulator.stats().errors == {"judge": 2}


def test_progress_is_the_share_of_the_task_done(cell_and, tmp_path):
    task = "sort the blocks into the bowls of matching colour"
    cell, _, brain = cell_and(settings(), scenario=None, task=task,
                              scene=_scene(tmp_path, ("block", "green", 400, 100),
                                           ("bowl", "green", 420, -120),
                                           ("block", "red", 330, 160),
                                           ("bowl", "red", 480, 40)))
    frame = cell.camera.capture()
    assert parse_verdict(brain.judge(frame, frame, task)).progress == 0
    _drop_into_bowl(cell, "green block", "green bowl")
    frame = cell.camera.capture()
    half = parse_verdict(brain.judge(frame, frame, task))
    assert (half.done, half.progress) == (False, 50)


def test_put_all_releases_at_distinct_spots_in_the_bowl(cell_and, tmp_path):
    task = "put all the blocks into the blue bowl"
    cell, _, brain = cell_and(settings(), scenario=None, task=task, scene=_scene(
        tmp_path, ("block", "red", 380, 120), ("block", "green", 480, 120),
        ("bowl", "blue", 430, -100, 1.25)))
    frame = cell.camera.capture()
    plan = parse_plan(brain.plan(_request(task, cell), frame))
    moves = [c for c in plan.calls if isinstance(c, Move)]
    releases = {(m.x, m.y) for m in moves[3:6]} | {(m.x, m.y) for m in moves[9:12]}
    assert len(releases) == 2
    assert all(math.hypot(x - 430, y + 100) < 1.25 * 68 - BLOCK_SIZE_M * 500
               for x, y in releases)


def test_the_max_tokens_cut_plan_is_refused(cell_and):
    cell, _, brain = cell_and(settings(max_tokens_rate=1.0))
    frame = cell.camera.capture()
    with pytest.raises(ReplyError, match="MAX_TOKENS"):
        brain.plan(_request(cell.instruction, cell), frame)


def test_a_tower_goes_up_from_the_bottom(cell_and, tmp_path):
    task = ("build a tower with the red block at the bottom, the green block in the middle and "
            "the blue block on top")
    cell, _, brain = cell_and(settings(), scenario=None, task=task, scene=_scene(
        tmp_path, ("block", "red", 380, 120), ("block", "green", 480, 120),
        ("block", "blue", 430, -100)))
    frame = cell.camera.capture()
    moves = [c for c in parse_plan(brain.plan(_request(task, cell), frame)).calls
             if isinstance(c, Move)]
    staged = staged_labels(cell)
    green, red = staged["green block"], staged["red block"]
    assert len(moves) == 6  # one pick and place: the top block waits for the middle one
    assert (moves[0].x, moves[0].y) == (round(green[0]), round(green[1]))
    assert (moves[-1].x, moves[-1].y) == (round(red[0]), round(red[1]))


def test_a_session_without_a_scene_says_how_to_feed_it(cell_and):
    cell, emulator, brain = cell_and(settings())
    frame = cell.camera.capture()
    with pytest.raises(BrainUnavailable, match=r"no scene for session 'default'.*emulator=http"):
        brain_for(emulator.url).point(frame)  # no /s/ prefix: the session "default"
    assert read_points(brain.point(frame)).items
    with pytest.raises(ValueError, match="session name"):
        emulator.session_url("a/b")


def test_erarm_emulate_serves_until_interrupted():
    import os
    import signal
    import subprocess
    import sys

    command = [sys.executable, "-m", "erarm", "emulate", "--port", "0", "--latency-s", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(urllib.request.Request(
                f"{url}/v1beta/models/m:generateContent", data=b"{}", method="POST"))
        assert caught.value.code == 409
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "Traceback" not in stderr and f"--base-url {url}/s/NAME" in stderr


def test_erarm_emulate_refuses_a_bad_rate():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "erarm", "emulate", "--miss", "2"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("erarm: error: ")


def test_without_a_response_schema_the_prompt_says_the_kind(cell_and, tmp_path):
    task = "put the red block in the blue bowl"
    cell, emulator, _ = cell_and(settings(), scenario=None, task=task,
                                 scene=_scene(tmp_path, ("block", "red", 400, 100),
                                              ("bowl", "blue", 420, -120)))
    brain = brain_for(emulator.session_url("ep"), structured_output=False)
    frame = cell.camera.capture()
    text = brain.plan(_request(task, cell), frame)
    assert text.startswith("Reasoning: ") and parse_plan(text).calls
    assert read_boxes(brain.detect(frame)).items
    assert parse_verdict(brain.judge(frame, frame, task)).done is False
    assert emulator.stats().requests == {"plan": 1, "detect": 1, "judge": 1}


# -- the tool-loop dialect ---------------------------------------------------------------------

def _tool_request(brain, cell, frame):
    """The first request of a tool-loop conversation, as erarm sends it."""
    from erarm.agent.locate import locate_objects
    from erarm.agent.perceive import perceive

    objects = locate_objects(perceive(brain, frame), frame)
    return brain.converse(PlanRequest(task=cell.instruction, objects=objects,
                                      limits=cell.robot.limits), frame)


def test_the_tool_loop_calls_the_docs_sequence_then_looks(cell_and):
    cell, emulator, brain = cell_and(settings(tool_calls_per_turn=20))
    conversation = _tool_request(brain, cell, cell.camera.capture())
    turn = conversation.start()
    assert [c.name for c in turn.calls] == ["move", "setGripperState", "move", "setGripperState",
                                            "move", "move", "move", "setGripperState", "move",
                                            "look"]
    assert turn.calls[0].args["high"] is True and len({c.id for c in turn.calls}) == 10
    block = staged_labels(cell)[next(label for label in staged_labels(cell)
                                     if label in cell.instruction and "bowl" not in label)]
    assert math.hypot(turn.calls[0].args["x"] - block[0], turn.calls[0].args["y"] - block[1]) < 5
    assert emulator.stats().requests == {"locate": 1, "tools": 1}


def test_a_history_that_lost_its_signatures_is_refused_like_gemini_3(cell_and):
    import urllib.error
    import urllib.request

    cell, emulator, _ = cell_and(settings())
    cell.camera.capture()  # the scene, fed to the session
    body = {"tools": [{"functionDeclarations": [{"name": n} for n in
                                                ("move", "setGripperState", "returnToOrigin")]}],
            "contents": [{"role": "user", "parts": [{"text": "do it"}]},
                         {"role": "model", "parts": [{"functionCall": {"name": "look"}}]},
                         {"role": "user", "parts": [{"functionResponse": {
                             "name": "look", "response": {}}}]}]}
    request = urllib.request.Request(
        f"{emulator.session_url('ep')}/v1beta/models/m:generateContent",
        data=json.dumps(body).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400
    assert "missing a thought_signature" in json.loads(refused.value.read())["error"]["message"]


def test_a_garbled_call_is_sent_again_correctly(cell_and, tmp_path):
    from erarm.agent.config import Orchestration
    from erarm.agent.results import CallOutcome
    from erarm.agent.run import RunOptions, run_task

    cell, _, brain = cell_and(settings(malformed_call_rate=1.0, tool_calls_per_turn=20))
    cell.robot.connect()
    result = run_task(cell.instruction, brain, cell, tmp_path / "run",
                      options=RunOptions(orchestration=Orchestration.tools))
    assert result.success is True, result.error
    refused = [c for c in result.tool_calls if c.outcome is CallOutcome.refused]
    assert refused and all("must be a number" in c.response["error"] for c in refused)
    for bad in refused:  # the next call is the same move, said right
        again = result.tool_calls[result.tool_calls.index(bad) + 1]
        assert again.name == "move" and again.outcome is CallOutcome.ran
        assert f"{again.args['x']} mm" == bad.args["x"]


def test_a_garbled_call_after_a_refused_one_looks_again_rather_than_repeat_it():
    import random

    from erarm.sim.camera import CameraSetup, calibration
    from erarm.sim.emulator import tool_loop
    from erarm.sim.emulator.truth import SceneTruth
    from erarm.sim.emulator.whole_plan import Mistakes

    garbled = {"name": "move", "args": {"x": 374, "y": -108, "high": True}}
    intent = tool_loop.Intent(queue=[{"name": "look", "args": {}}], garbled=garbled)
    truth = SceneTruth(task="t", objects=[], goals=[], calibration=calibration(CameraSetup()))

    def body(*errors: bool) -> dict:
        calls = [{"functionCall": {"name": "move", "id": str(i)}} for i in range(len(errors))]
        calls[0]["thoughtSignature"] = intent.signature()
        return {"contents": [
            {"role": "user", "parts": [{"text": "the task"}]},
            {"role": "model", "parts": calls},
            {"role": "user", "parts": [{"functionResponse": {
                "name": "move", "id": str(i), "response": {"error": "no"} if bad else {}}}
                for i, bad in enumerate(errors)]}]}

    def first_call(*errors: bool) -> dict:
        mistakes = Mistakes(random.Random(0), EmulatorSettings(**EXACT))
        call = tool_loop.answer(truth, body(*errors), mistakes).calls[0]
        return {"name": call["name"], "args": call["args"]}

    assert first_call(False, True) == garbled  # only the garbled call failed: said right
    assert first_call(True, True) == {"name": "look", "args": {}}  # an earlier one failed


def test_a_garbled_call_leaves_only_the_calls_after_it_to_be_made():
    """A turn that moves above a bowl, opens, and moves above it again, the second move garbled:
    the corrected move and then the look are all that is left, not the calls after the first of
    the two identical moves."""
    import random

    from erarm.sim.camera import CameraSetup, calibration
    from erarm.sim.emulator import tool_loop
    from erarm.sim.emulator.truth import SceneTruth
    from erarm.sim.emulator.whole_plan import Mistakes

    class SecondMoveGarbled(Mistakes):
        asked = 0

        def happens(self, kind: str, rate: float) -> bool:
            self.asked += kind == "malformed_call"
            return kind == "malformed_call" and self.asked == 2

    class MostCalls(random.Random):
        def randint(self, a: int, b: int) -> int:
            return b

    above = {"name": "move", "args": {"x": 536, "y": 157, "high": True}}
    look = {"name": "look", "args": {}}
    intent = tool_loop.Intent(queue=[above, {"name": "setGripperState",
                                             "args": {"opened": True}}, above, look])
    truth = SceneTruth(task="t", objects=[], goals=[], calibration=calibration(CameraSetup()))
    body = {"contents": [
        {"role": "user", "parts": [{"text": "the task"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "move", "args": {}},
                                     "thoughtSignature": intent.signature()}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "move", "response": {}}}]}]}
    mistakes = SecondMoveGarbled(MostCalls(0), EmulatorSettings(**EXACT))
    turn = tool_loop.answer(truth, body, mistakes)
    assert [c["name"] for c in turn.calls] == ["move", "setGripperState", "move"]
    assert turn.calls[2]["args"]["x"] == "536 mm"
    left = tool_loop.Intent.of(turn.signature)
    assert left.queue == [look] and left.garbled == above
