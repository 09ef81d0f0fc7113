"""erarm live: the real google-genai Live client against a Live-API-compatible WebSocket server on
loopback (WSS), the simulator as the workcell and the local brain perceiving. The tests assert
what erarm sent (frames, their rate and format, declarations, function responses) and what the
arm did."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest

from erarm.agent.brains.gemini_live import AUDIO_MIME, LiveLink
from erarm.agent.brains.local import LocalBrain
from erarm.agent.live_input import Lines, Microphone, Spoken, pcm_16k
from erarm.agent.orchestration.live import LiveOptions
from erarm.agent.results import CallOutcome, SessionEnd
from erarm.agent.run import run_live
from erarm.robots.errors import ConfigError
from tests.conftest import TEST_KEY, assert_key_absent
from tests.fake_live import FakeLive, Received, go_away, heard, text_turn, tool_call

TASK = "pick the blue block into the orange bowl"


@pytest.fixture
def fake_live(tmp_path, monkeypatch):
    server = FakeLive()
    monkeypatch.setenv("SSL_CERT_FILE", str(server.trust(tmp_path)))
    yield server
    server.close()


def _connect(server: FakeLive):
    def connect(instruction, watch, moves):
        return LiveLink(TEST_KEY, system_instruction=instruction, base_url=server.url,
                        watch=watch, moves=moves)
    return connect


def _live(server, cell, tmp_path, commands, **options):
    return run_live(LocalBrain(), cell, tmp_path / "run", _connect(server),
                    Lines(lambda: commands, "file"), record=True,
                    live=LiveOptions(**options))


def _move(o: dict, high: bool) -> dict:
    return {"name": "move", "args": {"x": o["x_mm"], "y": o["y_mm"], "high": high}}


def _grip(opened: bool) -> dict:
    return {"name": "setGripperState", "args": {"opened": opened}}


class PickIntoBowl:
    """Plays a streaming model that does the task one blocking call at a time: a look, then the
    docs' pick and place from what the look said, then a sentence."""

    def __init__(self, slow_s: float = 0.0, bad_first: bool = False):
        self.queue: list[dict] = []
        self.slow_s, self.bad_first = slow_s, bad_first

    def __call__(self, received: Received, server: FakeLive) -> list[dict]:
        if "text" in received.realtime:
            return [tool_call({"name": "look"})]
        if received.kind != "toolResponse":
            return []
        last = received.message["toolResponse"]["functionResponses"][-1]
        if last["name"] == "look" and not self.queue and "result" in last["response"]:
            objects = {o["label"]: o for o in last["response"]["result"]["objects"]}
            block, bowl = objects["blue block"], objects["orange bowl"]
            self.queue = [_move(block, True), _grip(True), _move(block, False), _grip(False),
                          _move(block, True), _move(bowl, True), _move(bowl, False),
                          _grip(True), _move(bowl, True), {"name": "returnToOrigin"}]
            if self.bad_first:  # far outside the workspace: refused, then said right
                self.queue.insert(0, {"name": "move", "args": {"x": 2000, "y": 0, "high": True}})
                self.bad_first = False
        time.sleep(self.slow_s)
        if self.queue:
            return [tool_call(self.queue.pop(0))]
        return [text_turn("The blue block is in the orange bowl.")]


def test_a_command_becomes_checked_blocking_calls_answered_by_id(fake_live, sim_cell, tmp_path):
    fake_live.responder = PickIntoBowl(bad_first=True)
    cell = sim_cell(TASK, seed=1)
    result = _live(fake_live, cell, tmp_path, [TASK])
    assert result.exit_code == 0, result.error
    assert result.success is True  # the simulator's referee: the block is in the bowl
    assert result.verified and "the blue block is on the orange bowl" in result.verification
    live = result.live
    assert live.ended is SessionEnd.commands_done and live.commands == [TASK]
    assert live.said == ["The blue block is in the orange bowl."]
    # the setup: the streaming model, text out, the robot's functions with physical ones blocking
    setup = fake_live.setup
    assert setup["model"] == "models/gemini-robotics-er-2-streaming-preview"
    assert setup["generationConfig"]["responseModalities"] == ["TEXT"]
    declared = {d["name"]: d for d in setup["tools"][0]["functionDeclarations"]}
    assert {declared[n].get("behavior") for n in ("move", "setGripperState",
                                                  "returnToOrigin")} == {"BLOCKING"}
    assert "behavior" not in declared["look"]
    assert "blue block" in setup["systemInstruction"]["parts"][0]["text"]
    assert fake_live.path.endswith("GenerativeService.BidiGenerateContent")
    assert fake_live.headers.get("x-goog-api-key") == TEST_KEY
    # the command as realtime text, and every call answered by name and id, in order
    assert [r.realtime["text"] for r in fake_live.sent("text")] == [TASK]
    calls = [c for r in fake_live.received if r.kind == "toolResponse"
             for c in r.message["toolResponse"]["functionResponses"]]
    made = [c for c in result.tool_calls]
    assert [(c["name"], c["id"]) for c in calls] == [(c.name, c.id) for c in made]
    refused = [c for c in made if c.outcome is CallOutcome.refused]
    assert len(refused) == 1 and "outside the workspace" in refused[0].response["error"]
    assert "error" in calls[1]["response"] and "result" in calls[2]["response"]
    assert sum(c.outcome is CallOutcome.ran for c in made) == 10
    # the record keeps the session; the key is nowhere in it
    lines = [json.loads(line) for line in
             (tmp_path / "run" / "record" / "live.jsonl").read_text().splitlines()]
    assert {"frame", "text", "results"} <= {m.get("sent") for m in lines}
    assert_key_absent(folder=tmp_path / "run")


def test_frames_stream_as_jpeg_at_most_once_a_second(fake_live, sim_cell, tmp_path):
    fake_live.responder = lambda received, server: (
        [text_turn("I am watching the orange bowl.")] if "text" in received.realtime else [])
    cell = sim_cell(TASK, seed=1)
    result = _live(fake_live, cell, tmp_path, ["tell me when a block is in the orange bowl"],
                   watch_s=3.2)
    assert result.exit_code == 0, result.error
    frames = fake_live.frames()
    assert len(frames) >= 3 and result.live.frames_sent == len(frames)
    # the docs' "JPEG <= 1 FPS": captures start a second apart (as recorded once each is sent;
    # arrival at the server adds the network's jitter)
    record = [json.loads(line) for line in
              (tmp_path / "run" / "record" / "live.jsonl").read_text().splitlines()]
    sent = [m["t"] for m in record if m.get("sent") == "frame"]
    assert len(sent) == len(frames) and min(np.diff(sent)) >= 0.8
    assert result.live.frames_per_s <= 1.0
    assert {mime for _, mime, _ in frames} == {"image/jpeg"}
    image = cv2.imdecode(np.frombuffer(frames[0][2], np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and max(image.shape[:2]) <= 768
    assert result.live.said == ["I am watching the orange bowl."]


def _halted_mid_task(fake_live, cell, tmp_path, trigger):
    """Run the pick slowly and fire `trigger(server)` once the arm has started to move."""
    fake_live.responder = PickIntoBowl(slow_s=0.3)
    fired = threading.Event()

    def fire() -> None:
        while not fake_live.function_responses() or len(fake_live.function_responses()) < 3:
            time.sleep(0.02)
        trigger(fake_live)
        fired.set()

    threading.Thread(target=fire, daemon=True).start()
    result = _live(fake_live, cell, tmp_path, [TASK])
    assert fired.is_set()
    return result


@pytest.mark.parametrize(("trigger", "ended", "code"), [
    (lambda server: server.push(go_away("3s")), SessionEnd.go_away, 1),
    (lambda server: server.drop(), SessionEnd.dropped, 1),
    (lambda server: server.push(heard("stop, now")), SessionEnd.operator_stop, 0),
], ids=["goAway", "dropped", "spoken-stop"])
def test_the_arm_halts_when_the_session_goes_away_drops_or_hears_stop(
        fake_live, sim_cell, tmp_path, trigger, ended, code):
    cell = sim_cell(TASK, seed=1)
    result = _halted_mid_task(fake_live, cell, tmp_path, trigger)
    assert result.live.ended is ended, result.live.reason
    assert result.exit_code == code, result.error
    ran = sum(c.outcome is CallOutcome.ran for c in result.tool_calls)
    assert 2 <= ran < 10  # it stopped part way (the trigger came after two), and did not go on
    state = cell.robot.state()
    time.sleep(0.3)
    assert cell.robot.state().tool == state.tool  # at rest where it stopped


def test_a_typed_stop_halts_the_arm_mid_task_and_ends_the_session(fake_live, sim_cell, tmp_path):
    """The operator types the task, then "stop" while the arm moves: nothing more runs, and
    "stop" itself never goes to the model."""
    fake_live.responder = PickIntoBowl(slow_s=0.3)
    read, write = os.pipe()
    typed = os.fdopen(read, "r")

    def type_stop() -> None:
        with os.fdopen(write, "w") as terminal:
            terminal.write(TASK + "\n")
            terminal.flush()
            while len(fake_live.function_responses()) < 3:
                time.sleep(0.02)
            terminal.write("stop\n")

    threading.Thread(target=type_stop, daemon=True).start()
    cell = sim_cell(TASK, seed=1)
    result = run_live(LocalBrain(), cell, tmp_path / "run", _connect(fake_live),
                      Lines.typed(typed), record=True)
    assert result.live.ended is SessionEnd.operator_stop and result.exit_code == 0
    assert result.live.reason == "the operator said 'stop'"
    assert [r.realtime["text"] for r in fake_live.sent("text")] == [TASK]
    assert 2 <= sum(c.outcome is CallOutcome.ran for c in result.tool_calls) < 10
    assert result.success is not True


def _wav(path, seconds: float, rate: int, channels: int) -> None:
    samples = (np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, int(rate * seconds)))
               * 8000).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.repeat(samples, channels).tobytes())


def test_speech_goes_as_16khz_pcm_and_the_servers_transcription_is_reported(
        fake_live, sim_cell, tmp_path):
    """A 1.5 s stereo 44.1 kHz WAV is sent as 16 kHz mono 16-bit PCM in short chunks, then the
    end of the audio stream; what the server heard is logged."""
    wav_path = tmp_path / "command.wav"
    _wav(wav_path, 1.5, 44100, 2)

    def respond(received: Received, server: FakeLive) -> list[dict]:
        if received.realtime.get("audioStreamEnd"):
            return [heard("what do you see"), text_turn("I see blocks and bowls.")]
        return []

    fake_live.responder = respond
    cell = sim_cell(TASK, seed=1)
    lines: list[str] = []
    result = run_live(LocalBrain(), cell, tmp_path / "run", _connect(fake_live),
                      Spoken([wav_path]), log=lines.append)
    assert result.exit_code == 0, result.error
    audio = fake_live.audio()
    assert audio and {mime for mime, _ in audio} == {AUDIO_MIME}
    assert len(b"".join(chunk for _, chunk in audio)) == 2 * 24000  # 1.5 s, 16 kHz, 16-bit mono
    assert max(len(chunk) for _, chunk in audio) == 3200  # 0.1 s a chunk
    assert fake_live.sent("audioStreamEnd")
    assert result.live.audio_s == pytest.approx(1.5)
    assert "heard: what do you see" in lines
    assert result.live.said == ["I see blocks and bowls."]


def test_pcm_16k_reads_what_wav_files_hold(tmp_path):
    for rate, channels in ((16000, 1), (8000, 1), (48000, 2)):
        path = tmp_path / f"{rate}-{channels}.wav"
        _wav(path, 0.5, rate, channels)
        pcm = np.frombuffer(pcm_16k(path), "<i2")
        assert len(pcm) == 8000 and 7000 < np.abs(pcm).max() <= 8000
    (tmp_path / "not.wav").write_text("hello")
    with pytest.raises(ConfigError, match="not a readable WAV file"):
        pcm_16k(tmp_path / "not.wav")


ERARM = str(Path(sys.executable).with_name("erarm"))


def _erarm(*args, stdin: str = "", **kwargs) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "ERARM_DEBUG")}
    return subprocess.Popen([ERARM, *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment, **kwargs)


def test_erarm_live_with_the_emulator_does_the_task_from_a_commands_file(tmp_path):
    commands = tmp_path / "commands.txt"
    commands.write_text("# the operator's words\npick the blue block into the orange bowl\n")
    done = _erarm("live", "--emulate", "--emulate-opt", "latency_median_s=0", "--commands",
                  commands, "--seed", 1, "--record", "--json", "--out", tmp_path / "run")
    stdout, stderr = done.communicate(timeout=180)
    assert done.returncode == 0, stderr
    result = json.loads(stdout)
    assert result["success"] is True and result["live"]["ended"] == "commands_done"
    assert result["live"]["commands"] == ["pick the blue block into the orange bowl"]
    assert result["live"]["frames_sent"] >= 1 and result["live"]["said"]
    assert any(c["outcome"] == "ran" for c in result["tool_calls"])
    frames = sorted((tmp_path / "run" / "record" / "live").glob("*-frame.jpg"))
    assert len(frames) == result["live"]["frames_sent"]
    assert "command (file): pick the blue block into the orange bowl" in stderr


@pytest.mark.parametrize(("args", "words"), [
    ((), ("GEMINI_API_KEY", "--emulate")),
    (("--emulate", "--say", "missing.wav"), ("missing.wav",)),
    (("--emulate", "--say", "{text}"), ("not a readable WAV file",)),
    (("--emulate", "--commands", "{text}", "--say", "{text}"), ("one of --commands",)),
    (("--emulate", "--mic"), ("--mic",)),
    (("--emulate", "--robot", "xarm"), ("simulated robot",)),
], ids=["no-key", "missing-wav", "not-a-wav", "both-sources", "no-microphone",
        "emulate-on-hardware"])
def test_erarm_live_refuses_bad_input_in_one_line(tmp_path, args, words):
    from tests.test_bad_input import assert_refused

    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    done = _erarm("live", *[a.format(text=text) for a in args], cwd=tmp_path)
    stdout, stderr = done.communicate(timeout=60)
    assert_refused(subprocess.CompletedProcess(done.args, done.returncode, stdout, stderr),
                   *words)


def test_ctrl_c_in_a_live_session_stops_the_arm_and_records_it(tmp_path):
    done = _erarm("live", "--emulate", "--emulate-opt", "latency_median_s=0.2", "--seed", 1,
                  "--record", "--json", "--out", tmp_path / "run")
    done.stdin.write("pick the blue block into the orange bowl\n")
    done.stdin.flush()
    robot_log = tmp_path / "run" / "record" / "robot.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and done.poll() is None and not (
            robot_log.exists() and robot_log.read_text().count("\n") >= 2):
        time.sleep(0.1)  # until the arm has made two moves
    done.send_signal(signal.SIGINT)
    _, stderr = done.communicate(timeout=60)
    assert done.returncode == 130, stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["live"]["ended"] == "interrupted" and result["exit_code"] == 130
    assert result["success"] is not True
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("erarm:")


def test_a_physical_arm_does_each_command_as_rehearsed_in_a_twin(fake_live, sim_cell, tmp_path):
    """The model does the command in a live session with a twin (its camera streaming the
    twin); the real arm then moves only through the twin's calls, validated as one plan and
    confirmed."""
    fake_live.responder = PickIntoBowl()
    cell = sim_cell(TASK, seed=1)
    cell.robot.physical = True  # as a real arm's driver says of itself
    asked: list[int] = []
    result = run_live(LocalBrain(), cell, tmp_path / "run", _connect(fake_live),
                      Lines(lambda: [TASK], "file"),
                      confirm=lambda validated: asked.append(len(validated.actions)) or True)
    assert result.exit_code == 0 and result.success is True, result.error
    assert result.live.ended is SessionEnd.commands_done and result.live.commands == [TASK]
    assert result.live.said == ["The blue block is in the orange bowl."]
    rehearsal = result.rehearsal
    assert rehearsal.attempts == 1 and rehearsal.steps == asked[0] == result.steps_executed
    assert result.tool_calls == []  # no call reached the real arm unrehearsed
    twin = json.loads((tmp_path / "run" / "rehearsal-1" / "result.json").read_text())
    assert twin["live"]["ended"] == "commands_done" and twin["live"]["frames_sent"] >= 1
    ran = [c["name"] for c in twin["tool_calls"] if c["outcome"] == "ran"]
    real = [a.call.call()["function"] for a in result.actions if not a.added]
    assert real[:len(ran)] == ran


WATCH_FOR = "tell me when the blue block is in the orange bowl"


class WatchingOnAPhysicalArm:
    """Plays the streaming model of a physical arm's sessions: in a twin (motions declared) it
    does the task, or only says it will watch; in the session watching the real camera it first
    errs (a motion it was not given), then watches the frames and says when the block is in the
    bowl, as the real world's truth (the referee) has it."""

    def __init__(self, cell):
        self.cell, self.doing = cell, PickIntoBowl()
        self.watching = self.fired = False
        self.frames_after: list[int] = []  # the watcher's frames after the block was in

    def __call__(self, received: Received, server: FakeLive) -> list[dict]:
        declared = {d["name"] for d in server.setups[received.session]["tools"][0][
            "functionDeclarations"]}
        text = received.realtime.get("text")
        if "move" in declared:  # a twin's session
            if text == WATCH_FOR:
                return [text_turn("I will watch for it.")]
            return self.doing(received, server)
        if text == WATCH_FOR:
            self.watching = True
            return [tool_call(_move({"x_mm": 300, "y_mm": 0}, True))]
        if received.kind == "toolResponse":
            return [text_turn("I am watching for the blue block in the orange bowl.")]
        if "video" in received.realtime and self.watching and self.cell.referee.judge().success:
            self.frames_after.append(received.session)
            if not self.fired:
                self.fired = True
                return [text_turn("The blue block is in the orange bowl now.")]
        return []


def test_a_physical_arm_watches_for_standing_instructions_on_its_real_camera(
        fake_live, sim_cell, tmp_path):
    """A command that moves nothing in the twin goes to the session on the real camera, whose
    model is given no motions and whose calls to one are refused; it watches the stream through
    the rehearsed command that follows, and erarm reports what it says."""
    cell = sim_cell(TASK, seed=1)
    cell.robot.physical = True
    fake_live.responder = model = WatchingOnAPhysicalArm(cell)
    result = run_live(LocalBrain(), cell, tmp_path / "run", _connect(fake_live),
                      Lines(lambda: [WATCH_FOR, TASK], "file"), confirm=lambda validated: True,
                      live=LiveOptions(watch_s=3.0))
    assert result.exit_code == 0 and result.success is True, result.error
    live = result.live
    assert live.ended is SessionEnd.commands_done and live.commands == [WATCH_FOR, TASK]
    assert "I am watching for the blue block in the orange bowl." in live.said
    assert "The blue block is in the orange bowl now." in live.said
    # the watching session: the first to connect, only observations declared, real frames
    watcher = fake_live.setups[1]
    assert {d["name"] for d in watcher["tools"][0]["functionDeclarations"]} == {
        "look", "gripperState"}
    assert "You do not move the arm" in watcher["systemInstruction"]["parts"][0]["text"]
    assert [r.realtime["text"] for r in fake_live.sent("text") if r.session == 1] == [WATCH_FOR]
    assert model.frames_after and set(model.frames_after) == {1}
    refused = [f for f in fake_live.function_responses() if f["name"] == "move"
               and "error" in f["response"]]
    assert refused and "this session watches" in refused[0]["response"]["error"]
    # the twins: one per command, the task's calls replayed on the arm, nothing else
    assert len(fake_live.setups) == 3
    assert result.rehearsal.steps == result.steps_executed > 0
    assert all(c.outcome is CallOutcome.refused for c in result.tool_calls)


def test_a_live_session_in_rerun_holds_each_frame_sent_and_what_the_model_said(
        fake_live, sim_cell, tmp_path):
    pytest.importorskip("rerun", reason="rerun-sdk is in the dev extra")
    from erarm.agent.recording.rerun_view import RerunOptions
    from erarm.agent.session import RunOptions
    from tests.rrd import Rrd

    fake_live.responder = PickIntoBowl()
    save = tmp_path / "live.rrd"
    result = run_live(LocalBrain(), sim_cell(TASK, seed=1), tmp_path / "run", _connect(fake_live),
                      Lines(lambda: [TASK], "file"),
                      options=RunOptions(rerun=RerunOptions(save=save)))
    assert result.exit_code == 0 and result.success, result.error
    rrd = Rrd(save)
    try:
        looks = (tmp_path / "run" / "record" / "looks.jsonl").read_text().splitlines()
        images = rrd.rows("/world/camera/image")
        assert len(images) == result.live.frames_sent + len(looks)
        said = [r["TextLog:text"][0] for r in rrd.rows("/live")]
        assert said[0] == f"the operator: {TASK}"
        assert "the model: The blue block is in the orange bowl." in said
        assert len(rrd.rows("/world/tool/commanded")) == sum(
            c.name == "move" and c.outcome is CallOutcome.ran for c in result.tool_calls)
    finally:
        rrd.close()


def test_a_physical_arm_takes_no_typed_commands(fake_live, sim_cell, tmp_path):
    cell = sim_cell(TASK, seed=1)
    cell.robot.physical = True
    joints = cell.robot.state().joint_positions_rad
    result = run_live(LocalBrain(), cell, tmp_path / "run", _connect(fake_live),
                      Lines.typed(io.StringIO(TASK + "\n")), confirm=lambda validated: True)
    assert result.exit_code == 2 and "--commands FILE or --say" in result.error
    assert not fake_live.connected.is_set()
    assert cell.robot.state().joint_positions_rad == joints


def test_an_interrupted_sentence_is_dropped_and_the_session_goes_on(fake_live, sim_cell,
                                                                    tmp_path):
    def respond(received: Received, server: FakeLive) -> list[dict]:
        if "text" not in received.realtime:
            return []
        if received.realtime["text"] == "describe the table":
            return [{"serverContent": {"modelTurn": {"parts": [{"text": "I see a bl"}]}}},
                    {"serverContent": {"interrupted": True}},
                    {"serverContent": {"turnComplete": True}}]
        return [text_turn("Two bowls and three blocks.")]

    fake_live.responder = respond
    lines: list[str] = []
    cell = sim_cell(TASK, seed=1)
    result = run_live(LocalBrain(), cell, tmp_path / "run", _connect(fake_live),
                      Lines(lambda: ["describe the table", "how many bowls?"], "file"),
                      log=lines.append)
    assert result.exit_code == 0, result.error
    assert result.live.said == ["Two bowls and three blocks."]
    assert "the model was interrupted" in lines
    assert [r.realtime["text"] for r in fake_live.sent("text")] == ["describe the table",
                                                                    "how many bowls?"]


def test_the_microphone_streams_as_it_comes_and_a_spoken_stop_ends_it(fake_live, sim_cell,
                                                                      tmp_path, monkeypatch):
    """With a stand-in for sounddevice (there is no microphone here): 0.1 s chunks go out while
    the model works, and the server hearing "stop" in them halts the session."""
    import types

    class InputStream:
        def __init__(self, **settings):
            assert settings["samplerate"] == 16000 and settings["dtype"] == "int16"
            self.blocks = settings["blocksize"]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, frames):
            time.sleep(frames / 16000)
            return np.zeros((frames, 1), np.int16), False

    fake = types.SimpleNamespace(check_input_settings=lambda **_: None, InputStream=InputStream)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)

    def respond(received: Received, server: FakeLive) -> list[dict]:
        return [heard("stop")] if len(server.audio()) == 10 and "audio" in received.realtime \
            else []

    fake_live.responder = respond
    cell = sim_cell(TASK, seed=1)
    result = run_live(LocalBrain(), cell, tmp_path / "run", _connect(fake_live), Microphone())
    assert result.live.ended is SessionEnd.operator_stop, result.live.reason
    chunks = fake_live.audio()
    assert len(chunks) >= 10 and {len(c) for _, c in chunks} == {3200}
    assert {mime for mime, _ in chunks} == {AUDIO_MIME}
    assert not fake_live.sent("audioStreamEnd")  # a stream, not one utterance


def test_a_stop_line_in_a_commands_file_ends_the_session_in_its_turn(fake_live, sim_cell,
                                                                     tmp_path):
    fake_live.responder = PickIntoBowl()
    cell = sim_cell(TASK, seed=1)
    result = _live(fake_live, cell, tmp_path, [TASK, "stop", "pick the red block"])
    assert result.success is True  # the command before it ran to its end
    assert result.live.ended is SessionEnd.operator_stop and result.exit_code == 0
    assert [r.realtime["text"] for r in fake_live.sent("text")] == [TASK]
