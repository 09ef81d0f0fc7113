"""What the operator tells a live session: commands typed at a prompt, read from a file, or
spoken (a WAV file, sent as the Live API's 16 kHz mono 16-bit PCM).

Each source runs in a thread of its own and hands `Command`s to the session as they come, then
None when it has no more. "stop" (typed, or a line of the file) is recognised here, before it
could be sent: the session halts the arm at once rather than wait for the model.
"""

from __future__ import annotations

import sys
import threading
import wave
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol, TextIO

from pydantic import BaseModel

from erarm.agent.audio import read_wav, resample
from erarm.robots.errors import ConfigError

PCM_RATE_HZ = 16_000
AUDIO_CHUNK_S = 0.1  # audio goes out in chunks this long
STOP_WORDS = frozenset({"stop", "halt", "stop!", "halt!"})

Arrive = Callable[["Command | None"], bool]  # False: the session has ended, stop sending


class Command(BaseModel):
    """One thing the operator said: text, or speech as 16 kHz mono 16-bit PCM."""

    text: str = ""
    pcm: bytes = b""
    source: str = "typed"  # typed, file, wav, mic

    @property
    def streamed(self) -> bool:
        """Audio that goes out as it comes (the microphone), not one command after another."""
        return self.source == "mic"

    @property
    def is_stop(self) -> bool:
        return self.text.strip().lower() in STOP_WORDS

    @property
    def halts_now(self) -> bool:
        """A "stop" said as it happens (typed): at once. A file's "stop" waits its turn."""
        return self.is_stop and self.source != "file"

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / PCM_RATE_HZ


class CommandSource(Protocol):
    source: str  # where its commands come from, as `Command.source` says

    def start(self, arrive: Arrive) -> None:
        """Begin handing commands to `arrive` (from a thread of its own), then None."""
        ...


def _in_thread(name: str, work: Callable[[], None]) -> None:
    threading.Thread(target=work, name=f"erarm-{name}", daemon=True).start()


class Lines:
    """One command per line of a stream (the terminal) or a file; blank lines and lines
    starting with # are skipped."""

    def __init__(self, lines: Callable[[], Iterable[str]], source: str, prompt: str = ""):
        self._lines, self.source, self.prompt = lines, source, prompt

    @classmethod
    def typed(cls, stream: TextIO | None = None) -> Lines:
        stream = stream or sys.stdin
        return cls(lambda: iter(stream.readline, ""), "typed",
                   prompt="erarm> " if stream.isatty() else "")

    @classmethod
    def from_file(cls, path: Path) -> Lines:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read the commands file {path}: {err}") from None
        return cls(lambda: text.splitlines(), "file")

    def start(self, arrive: Arrive) -> None:
        def read() -> None:
            try:
                if self.prompt:
                    print(self.prompt, end="", file=sys.stderr, flush=True)
                for line in self._lines():
                    text = line.strip()
                    if text and not text.startswith("#"):
                        arrive(Command(text=text, source=self.source))
                    if self.prompt:
                        print(self.prompt, end="", file=sys.stderr, flush=True)
            finally:
                arrive(None)

        _in_thread(f"{self.source}-commands", read)


def pcm_16k(path: Path) -> bytes:
    """A WAV file's sound as 16 kHz mono 16-bit little-endian PCM (channels averaged,
    resampled linearly); a one-line `ConfigError` for what is not a PCM WAV file."""
    try:
        pcm, rate = read_wav(path)
    except (OSError, EOFError, wave.Error) as err:
        raise ConfigError(f"{path} is not a readable WAV file: {err}") from None
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None
    return resample(pcm, rate, PCM_RATE_HZ)


class Spoken:
    """Speech from WAV files, one command each, in order."""

    source = "wav"

    def __init__(self, paths: list[Path]):
        self._speech = [(path, pcm_16k(path)) for path in paths]  # bad files fail here, first

    def start(self, arrive: Arrive) -> None:
        def speak() -> None:
            try:
                for path, pcm in self._speech:
                    arrive(Command(pcm=pcm, text=f"(speech: {path.name})", source=self.source))
            finally:
                arrive(None)

        _in_thread("speech", speak)


class Microphone:
    """The microphone, streamed as 16 kHz mono PCM in chunks of `AUDIO_CHUNK_S` until the
    session ends (through `sounddevice`, the audio extra); the server's voice activity detection
    finds the commands in it."""

    source = "mic"

    def __init__(self, device: str | int | None = None):
        try:
            import sounddevice
        except ImportError:
            raise ConfigError("--mic records through sounddevice: pip install 'erarm[audio]' "
                              "(and PortAudio, apt-get install libportaudio2)") from None
        except OSError as err:  # the module is there, PortAudio is not
            raise ConfigError(f"--mic: {err}") from None
        try:
            sounddevice.check_input_settings(device=device, samplerate=PCM_RATE_HZ, channels=1,
                                             dtype="int16")
        except Exception as err:  # PortAudio's errors: no device, no such rate
            raise ConfigError(f"no microphone to record from: {err}") from None
        self._sounddevice, self.device = sounddevice, device

    def start(self, arrive: Arrive) -> None:
        frames = round(PCM_RATE_HZ * AUDIO_CHUNK_S)

        def record() -> None:
            with self._sounddevice.InputStream(device=self.device, samplerate=PCM_RATE_HZ,
                                               channels=1, dtype="int16",
                                               blocksize=frames) as stream:
                listening = True
                while listening:
                    data, _ = stream.read(frames)
                    listening = arrive(Command(pcm=data.tobytes(), text="(microphone)",
                                               source=self.source))

        _in_thread("microphone", record)


def chunks(pcm: bytes, seconds: float = AUDIO_CHUNK_S) -> list[bytes]:
    """PCM cut into pieces of `seconds` (whole samples)."""
    size = 2 * round(PCM_RATE_HZ * seconds)
    return [pcm[i:i + size] for i in range(0, len(pcm), size)]
