"""16-bit little-endian mono PCM in and out of WAV files, at any rate: what a live session sends
(16 kHz) and what the narrator speaks."""

from __future__ import annotations

import wave

import numpy as np

SAMPLE_KINDS = {1: np.uint8, 2: np.int16, 4: np.int32}  # bytes per sample -> numpy type


def read_wav(source) -> tuple[bytes, int]:
    """A WAV file's (path or file object) sound as mono PCM (channels averaged) and its rate;
    `wave.Error`, `EOFError` or `OSError` for what is no WAV, `ValueError` for a sample width
    other than 8, 16 or 32 bits."""
    with wave.open(str(source) if not hasattr(source, "read") else source, "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        raw = wav.readframes(wav.getnframes())
    if width not in SAMPLE_KINDS:
        raise ValueError(f"{8 * width}-bit samples are not supported (8, 16 or 32-bit PCM)")
    samples = np.frombuffer(raw, dtype=SAMPLE_KINDS[width]).astype(np.float64)
    if width == 1:
        samples = (samples - 128) * 256
    elif width == 4:
        samples /= 65536
    samples = samples[:len(samples) - len(samples) % channels].reshape(-1, channels).mean(axis=1)
    return _pcm(samples), rate


def resample(pcm: bytes, rate_hz: int, to_hz: int) -> bytes:
    """The samples at another rate (linear interpolation)."""
    if rate_hz == to_hz or not pcm:
        return pcm
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    times = np.arange(round(len(samples) * to_hz / rate_hz)) / to_hz
    return _pcm(np.interp(times, np.arange(len(samples)) / rate_hz, samples))


def write_wav(target, pcm: bytes, rate_hz: int) -> None:
    with wave.open(target, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(pcm)


def _pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
