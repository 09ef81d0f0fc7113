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

from erarm.agent.brains import KEY_VARIABLES

MASK = "***"

_guarded: set[str] = set()


def guard(secret: str) -> None:
    """Redact `secret` from now on, in `redact` and in every log record."""
    if secret:
        _guarded.add(secret)
        _redact_log_records()


def redact(text: str) -> str:
    """`text` with every known secret, in any case or JSON-escaped, replaced by ***."""
    known = set(_guarded) | {value for name in KEY_VARIABLES if (value := os.environ.get(name))}
    pattern = _pattern(frozenset(known))
    return pattern.sub(MASK, text) if pattern else text


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
