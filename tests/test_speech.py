"""Spoken narration: the TTS request erarm sends through the real SDK (to the loopback Gemini
server) and the WAV it writes; espeak-ng, the offline engine, when installed (CI installs it);
and a missing engine or audio device as one warning, never a failure."""

from __future__ import annotations

import base64
import re
import subprocess
import wave

import numpy as np
import pytest

from erarm.agent.api import run_task
from erarm.agent.speech import EspeakVoice, GeminiVoice, Narrator, Speech, SpeechError
from tests.conftest import TEST_KEY, assert_key_absent
from tests.fake_gemini import Reply
from tests.test_live import ERARM

TASK = "pick the blue block into the orange bowl"


def _audio_reply(seconds: float, rate: int = 24000) -> Reply:
    pcm = (np.sin(np.arange(int(rate * seconds)) / 8) * 3000).astype("<i2").tobytes()
    return Reply(body={"candidates": [{"content": {"role": "model", "parts": [{"inlineData": {
        "mimeType": f"audio/L16;codec=pcm;rate={rate}",
        "data": base64.b64encode(pcm).decode()}}]}, "finishReason": "STOP"}]})


def _camel(value):
    if not isinstance(value, dict):
        return value
    return {re.sub(r"_(.)", lambda m: m[1].upper(), k): _camel(v) for k, v in value.items()}


def _wav(path):
    with wave.open(str(path)) as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getnframes() / wav.getframerate()


def test_gemini_speech_is_asked_for_as_the_guide_shows_and_written_as_wav(fake_gemini,
                                                                          tmp_path):
    fake_gemini.script(_audio_reply(1.0), _audio_reply(0.5, rate=16000))
    voice = GeminiVoice(TEST_KEY, base_url=fake_gemini.url)
    warnings: list[str] = []
    narrator = Narrator(voice, warnings.append, tmp_path / "said.wav")
    narrator.say("I'm putting the blue block on the orange bowl.")
    narrator.say("Done.")
    narrator.close()
    first = fake_gemini.requests[0]
    assert first.model == "gemini-3.8-flash-lite-tts"
    config = first.body["generationConfig"]
    assert config["responseModalities"] == ["AUDIO"]
    speech = _camel(config["speechConfig"])  # the SDK writes this one in snake_case, which the
    assert speech["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Kore"  # API accepts
    assert first.prompt == "I'm putting the blue block on the orange bowl."
    rate, channels, seconds = _wav(tmp_path / "said.wav")
    assert (rate, channels) == (24000, 1)  # the second sentence, at 16 kHz, resampled
    assert seconds == pytest.approx(1.0 + 0.5 + 2 * 0.25, abs=0.01)
    assert [text for text, _ in narrator.spoken] == ["I'm putting the blue block on the "
                                                     "orange bowl.", "Done."]
    assert warnings == []
    assert_key_absent(folder=tmp_path)


def test_a_failing_voice_or_no_engine_is_one_warning_and_nothing_fails(fake_gemini, tmp_path):
    from tests.fake_gemini import error_reply

    fake_gemini.script(error_reply(500, "boom"), error_reply(500, "boom"))
    warnings: list[str] = []
    narrator = Narrator(GeminiVoice(TEST_KEY, base_url=fake_gemini.url), warnings.append,
                        tmp_path / "said.wav")
    narrator.say("one")
    narrator.say("two")
    narrator.close()
    assert len(warnings) == 1 and warnings[0].startswith("warning: speech: ")
    assert not (tmp_path / "said.wav").exists()
    silent: list[str] = []
    nobody = Narrator(None, silent.append)
    nobody.say("anything")
    nobody.close()
    assert len(silent) == 1 and "espeak-ng" in silent[0]


def test_no_audio_device_is_one_warning(monkeypatch):
    import erarm.agent.speech as speech

    def no_device(_speech):
        raise SpeechError("cannot play sound: no device")

    class Quiet:
        name = "quiet"

        def synthesize(self, text: str) -> Speech:
            return Speech(pcm=bytes(3200), rate_hz=16000)

    monkeypatch.setattr(speech, "_play", no_device)
    warnings: list[str] = []
    narrator = Narrator(Quiet(), warnings.append)
    for sentence in ("a", "b", "c"):
        narrator.say(sentence)
    narrator.close()
    assert warnings == ["warning: speech: cannot play sound: no device"]
    assert len(narrator.spoken) == 3


def _espeak() -> EspeakVoice:
    voice = EspeakVoice.find()
    if voice is None:
        pytest.skip("espeak-ng is not installed here (.ci/run installs it: apt-get install "
                    "espeak-ng)")
    return voice


def test_espeak_ng_speaks_offline():
    speech = _espeak().synthesize("The blue block is in the orange bowl.")
    assert speech.rate_hz == 22050 and 1.0 < speech.seconds < 6.0
    assert np.abs(np.frombuffer(speech.pcm, "<i2")).max() > 1000  # not silence


def test_a_run_narrates_what_it_does_and_how_it_ended(sim_cell, tmp_path):
    said: list[str] = []
    result = run_task(TASK, sim_cell(TASK, seed=1), brain="local", out=tmp_path / "run",
                      narrate=said.append)
    assert result.success is True
    assert said[0] == "I'm putting the blue block on the orange bowl."
    assert said[-1] == "Done: the blue block rests inside the orange bowl."


def test_erarm_run_speak_to_writes_the_narration(tmp_path):
    _espeak()
    target = tmp_path / "narration.wav"
    done = subprocess.run([ERARM, "run", TASK, "--seed", "1", "--brain", "local", "--speak-to",
                           str(target), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rate, channels, seconds = _wav(target)
    assert (rate, channels) == (24000, 1) and seconds > 2.0
    assert "warning" not in done.stderr


@pytest.mark.parametrize(("name", "words"), [("narration.mp3", "ending in .wav"),
                                             ("missing/narration.wav", "no such folder")])
def test_a_bad_speak_to_is_refused_before_anything_moves(tmp_path, name, words):
    from tests.test_bad_input import assert_refused, erarm

    done = erarm("run", TASK, "--brain", "local", "--speak-to", str(tmp_path / name),
                 "--out", str(tmp_path / "run"))
    assert_refused(done, words)
    assert not (tmp_path / "run").exists()
