"""Secrets kept out of everything that leaves the process: messages, replies, log lines, warnings
and records. The one place that knows what to hide and how.

A secret is the value of an API-key variable (GEMINI_API_KEY, GOOGLE_API_KEY) or any value given
to `guard` (the Gemini brain guards the key it was given). It is found in any letter case, and
with any of its characters written as a JSON `\\uXXXX` escape (a reply that spells the key that
way would otherwise decode to it after redaction). Once a secret is guarded, every log record the
process creates is redacted too, whichever library logs it.
"""

from __future__ import annotations

import logging
import os
import re
from functools import cache

from erarm.agent.brains import EMULATOR_KEY, KEY_VARIABLES

MASK = "***"

_guarded: set[str] = set()


def guard(secret: str) -> None:
    """Redact `secret` from now on, in `redact` and in every log record."""
    if secret:
        _guarded.add(secret)
        _redact_log_records()


def redact(text: str) -> str:
    """`text` with every known secret, in any case or JSON-escaped, replaced by ***; and any
    piece of one (or of it reversed) long enough to narrow a guess, as an echo that splits or
    reverses the key would leave it."""
    known = set(_guarded) | {value for name in KEY_VARIABLES if (value := os.environ.get(name))}
    pattern = _pattern(frozenset(known))
    if not pattern:
        return text
    return _mask_pieces(pattern.sub(MASK, text), frozenset(known - {EMULATOR_KEY}))


FRAGMENT_CHARS = 12  # a run of this many of a secret's characters, in order, is masked


def _mask_pieces(text: str, secrets: frozenset[str]) -> str:
    """Every run of at least FRAGMENT_CHARS consecutive characters of a secret, forwards or
    backwards, in any case, replaced by *** (overlapping runs as one)."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a letter whose lower case is longer: compare as written
        lowered = text
    covered = bytearray(len(text))
    for secret in secrets:
        for spelling in {secret.lower(), secret.lower()[::-1]}:
            width = min(FRAGMENT_CHARS, len(spelling))
            for start in range(len(spelling) - width + 1):
                piece = spelling[start:start + width]
                found = lowered.find(piece)
                while found >= 0:
                    covered[found:found + width] = b"\x01" * width
                    found = lowered.find(piece, found + 1)
    pieces, start = [], 0
    for run in re.finditer(rb"\x01+", bytes(covered)):
        pieces += [text[start:run.start()], MASK]
        start = run.end()
    return "".join([*pieces, text[start:]])


@cache
def _pattern(secrets: frozenset[str]) -> re.Pattern | None:
    if not secrets:
        return None
    longest_first = sorted(secrets, key=len, reverse=True)
    return re.compile("|".join(_spellings(secret) for secret in longest_first), re.IGNORECASE)


def _spellings(secret: str) -> str:
    """Each character as itself or as a JSON escape of either of its cases. An escape right after
    a backslash is not one (`\\\\u0074` is a backslash and text), so the first is not matched
    there: redacting it would leave JSON text with a dangling backslash."""
    def one(char: str, first: bool) -> str:
        escapes = "|".join(sorted({("(?<!\\\\)" if first else "") + rf"\\u{ord(c):04x}"
                                   for c in (char.lower(), char.upper())}))
        return f"(?:{re.escape(char)}|{escapes})"
    return "".join(one(char, index == 0) for index, char in enumerate(secret))


@cache
def _redact_log_records() -> None:
    """Wrap the log-record factory once: each record's message (and traceback) is redacted as
    it is made, so no handler or formatter, erarm's or a library's, ever sees a secret."""
    make_record = logging.getLogRecordFactory()

    def redacting(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it when it formats the record
            return record
        if (clean := redact(message)) != message:
            record.msg, record.args = clean, ()
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(redacting)
