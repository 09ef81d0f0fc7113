"""Spoken narration (`--speak`, `--speak-to FILE.wav`): erarm says what it is about to do and
what happened.

A voice turns a sentence into 16-bit mono PCM: Gemini's speech generation with a key (the TTS
models of Google's speech-generation guide: `generate_content` with audio out and a prebuilt
voice, 24 kHz PCM back), else espeak-ng, a system package (`apt-get install espeak-ng`). The
narrator speaks from a thread of its own, so no sentence ever holds the arm up: each is played
(through `sounddevice` when installed, else ALSA's `aplay`) or, with a file, appended to one WAV.
A missing engine or audio device is one warning line, once; the task goes on.
"""

from __future__ import annotations

import io
import queue
import re
import shutil
import subprocess
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel

from erarm.agent.audio import read_wav, resample, write_wav
from erarm.agent.redaction import guard, redact
from erarm.robots.errors import ConfigError

TTS_MODEL = "gemini-3.8-flash-lite-tts"  # the guide's pick for voice agents and read-aloud
TTS_VOICE = "Kore"
FILE_RATE_HZ = 24_000  # a narration file's rate (Gemini's own); other voices are resampled
QUIET_S = 0.25  # silence between sentences in a file

Warn = Callable[[str], None]


class SpeechError(Exception):
    """A voice could not say something (the reason, one line)."""


class Speech(BaseModel):
    pcm: bytes  # 16-bit little-endian mono
    rate_hz: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.rate_hz

    def at(self, rate_hz: int) -> bytes:
        """The samples at another rate (linear interpolation)."""
        return resample(self.pcm, self.rate_hz, rate_hz)


class Voice(Protocol):
    name: str

    def synthesize(self, text: str) -> Speech: ...


class GeminiVoice:
    """Gemini's speech generation through google-genai."""

    name = "gemini"

    def __init__(self, api_key: str, model: str = TTS_MODEL, voice: str = TTS_VOICE,
                 base_url: str | None = None):
        from google import genai
        from google.genai import types

        guard(api_key)
        options = types.HttpOptions(base_url=base_url) if base_url else None
        self._client = genai.Client(api_key=api_key, http_options=options)
        self._types, self.model, self.voice = types, model, voice

    def synthesize(self, text: str) -> Speech:
        types = self._types
        config = types.GenerateContentConfig(
            response_modalities=[types.Modality.AUDIO],
            speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=self.voice))))
        try:
            response = self._client.models.generate_content(model=self.model, contents=text,
                                                            config=config)
            blob = response.candidates[0].content.parts[0].inline_data
        except Exception as err:  # the SDK's errors and an empty reply alike: one line
            raise SpeechError(redact(f"{type(err).__name__}: {err}".splitlines()[0])) from None
        if blob is None or not blob.data:
            raise SpeechError("the speech model sent no audio")
        rate = re.search(r"rate=(\d+)", blob.mime_type or "")
        return Speech(pcm=blob.data, rate_hz=int(rate[1]) if rate else FILE_RATE_HZ)


class EspeakVoice:
    """espeak-ng (or espeak), writing WAV to stdout."""

    name = "espeak-ng"

    def __init__(self, program: str):
        self.program = program

    @classmethod
    def find(cls) -> EspeakVoice | None:
        program = shutil.which("espeak-ng") or shutil.which("espeak")
        return cls(program) if program else None

    def synthesize(self, text: str) -> Speech:
        try:
            done = subprocess.run([self.program, "--stdout", text], capture_output=True,
                                  timeout=30, check=True)
        except (OSError, subprocess.SubprocessError) as err:
            raise SpeechError(f"{self.program} failed: {err}") from None
        try:
            pcm, rate = read_wav(io.BytesIO(done.stdout))
        except (EOFError, wave.Error, ValueError) as err:
            raise SpeechError(f"{self.program} wrote no WAV: {err}") from None
        return Speech(pcm=pcm, rate_hz=rate)


def _play(speech: Speech) -> None:
    """Out of the speakers: sounddevice when installed, else aplay; SpeechError when neither
    can (no device, no program)."""
    try:
        import sounddevice
    except ImportError:
        sounddevice = None
    if sounddevice is not None:
        try:
            sounddevice.play(np.frombuffer(speech.pcm, "<i2"), speech.rate_hz, blocking=True)
            return
        except Exception as err:  # PortAudio's errors: no device, busy, ...
            raise SpeechError(f"cannot play sound: {err}") from None
    aplay = shutil.which("aplay")
    if aplay is None:
        raise SpeechError("no audio player: install sounddevice (erarm's audio extra) or "
                          "ALSA's aplay, or write the speech to a file with --speak-to")
    buffer = io.BytesIO()
    write_wav(buffer, speech.pcm, speech.rate_hz)
    done = subprocess.run([aplay, "-q", "-"], input=buffer.getvalue(), capture_output=True,
                          timeout=120, check=False)
    if done.returncode:
        raise SpeechError("cannot play sound: " + (done.stderr.decode(errors="replace").strip()
                                                   .splitlines() or ["aplay failed"])[-1])


def check_speak_to(path: Path) -> Path:
    """A place a WAV file can be written, checked before anything starts."""
    if path.suffix.lower() != ".wav":
        raise ConfigError(f"--speak-to writes a WAV file: give a name ending in .wav, not {path}")
    if path.is_dir() or not path.parent.is_dir():
        raise ConfigError(f"cannot write the narration to {path}: "
                          + ("it is a folder" if path.is_dir() else "no such folder"))
    return path


class Narrator:
    """Says sentences in order, from its own thread; `close` waits for the last and writes the
    file, if any. `voice` None: nothing to speak with (warned once)."""

    def __init__(self, voice: Voice | None, warn: Warn, to_file: Path | None = None):
        self.voice, self.warn, self.to_file = voice, warn, to_file
        self.spoken: list[tuple[str, float]] = []  # each sentence and its seconds
        self._pcm: list[bytes] = []
        self._warned: set[str] = set()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._speak_all, name="erarm-speech",
                                        daemon=True)
        if voice is None:
            self._warn_once("no speech engine: install espeak-ng (apt-get install espeak-ng) "
                            "or set GEMINI_API_KEY; --speak stays silent")
        self._thread.start()

    def say(self, text: str) -> None:
        if text.strip():
            self._queue.put(text.strip())

    def close(self, timeout_s: float = 60.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self.to_file is not None and self._pcm:
            try:
                write_wav(str(self.to_file), b"".join(self._pcm), FILE_RATE_HZ)
            except OSError as err:
                self._warn_once(f"cannot write the narration to {self.to_file}: {err}")

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.warn(f"warning: {message}")

    def _speak_all(self) -> None:
        while (text := self._queue.get()) is not None:
            if self.voice is None:
                continue
            try:
                speech = self.voice.synthesize(text)
                self.spoken.append((text, speech.seconds))
                if self.to_file is not None:
                    self._pcm += [speech.at(FILE_RATE_HZ),
                                  bytes(2 * round(QUIET_S * FILE_RATE_HZ))]
                else:
                    _play(speech)
            except SpeechError as err:
                self._warn_once(f"speech: {err}")


def open_narrator(api_key: str | None, warn: Warn, to_file: Path | None = None,
                  base_url: str | None = None) -> Narrator:
    """Gemini's voice with a key, else espeak-ng when installed, else none (warned)."""
    voice: Voice | None = GeminiVoice(api_key, base_url=base_url) if api_key else \
        EspeakVoice.find()
    return Narrator(voice, warn, to_file)
