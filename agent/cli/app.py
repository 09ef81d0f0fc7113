"""The `erarm` command line itself, behind `erarm.agent.cli.main` (which handles signals first)."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
from typing import NoReturn

import typer

from erarm.agent import interrupts
from erarm.agent.cli import (  # noqa: F401  (registers the commands)
    bench,
    calibrate,
    drivers,
    emulate,
    live,
    mcp,
    replay,
    run,
    track,
    vision,
)
from erarm.agent.cli.common import VersionOpt, app, err_console, printable
from erarm.agent.errors import Interrupted
from erarm.agent.redaction import redact
from erarm.robots.errors import ErarmError


@app.callback()
def _commands(version: VersionOpt = False) -> None:
    """Gemini Robotics-ER orchestration for robot arms: perceive, plan, validate, execute, verify.
    Runs offline on a simulated xArm6 by default."""


def _results_to_real_stdout() -> None:
    """Keep stdout for results. Native libraries (PyBullet prints its build time and warnings
    from C) write to file descriptor 1, which is pointed at /dev/null (at stderr with
    ERARM_DEBUG set); Python's sys.stdout keeps the real stdout."""
    try:
        sys.stdout.flush()
        real = os.dup(1)
        sink = 2 if os.environ.get("ERARM_DEBUG") else os.open(os.devnull, os.O_WRONLY)
        os.dup2(sink, 1)
    except OSError:
        return
    sys.stdout = os.fdopen(real, "w", buffering=1, encoding="utf-8", errors="replace")


def _usage_error(err: Exception) -> bool:
    """Typer raises click-style usage errors (from the click it bundles): they carry an exit
    code and a formatted message."""
    return hasattr(err, "format_message") and getattr(err, "exit_code", None) == 2


EXIT_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class _OneLine(logging.Formatter):
    """A library's log record as one line, shown rather than obeyed: its first line only, no
    traceback (a client that vanished mid-call is news, not a crash); ERARM_DEBUG keeps all."""

    def format(self, record: logging.LogRecord) -> str:
        if os.environ.get("ERARM_DEBUG"):
            return super().format(record)
        lines = record.getMessage().strip().splitlines() or [""]
        return printable(self._fmt % {"message": lines[0]} if self._fmt else lines[0])


def run_cli() -> None:
    """Run the command in sys.argv and exit with its code. An interrupt the command did not
    explain itself (typer turns a KeyboardInterrupt into a silent 130) gets one line here."""
    try:
        _results_to_real_stdout()
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_OneLine("· %(message)s"))
        logging.basicConfig(level=logging.WARNING, handlers=[handler])
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    except ErarmError as err:
        if isinstance(err, Interrupted):  # e.g. a replay stopped mid-motion
            interrupts.announce(f"erarm: {err}")
        else:
            err_console.print(printable(redact(f"erarm: error: {err}")), soft_wrap=True,
                              markup=False)
        code = err.exit_code
    except Exception as err:
        if type(err).__name__ == "NoArgsIsHelpError":
            print(err.format_message())
            code = 0
        elif _usage_error(err):
            ctx = getattr(err, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            err_console.print(f"erarm: error: {err.format_message()}{hint}", soft_wrap=True,
                              markup=False)
            code = 2
        elif os.environ.get("ERARM_DEBUG"):
            raise
        else:  # a bug: one line, and the traceback only on request
            err_console.print(redact(f"erarm: internal error: {type(err).__name__}: {err} "
                                     "(set ERARM_DEBUG=1 for the traceback)"), soft_wrap=True,
                              markup=False)
            code = 3
    _exit(130 if interrupts.take() or interrupts.interrupted() else
          code if isinstance(code, int) else 0)


def _exit(code: int) -> NoReturn:
    """End the process with `code` once the outcome is settled. From here a signal is counted,
    not raised, and still makes the code 130: the exit handlers run under that rule, then the
    process ends at once, because the interpreter's own teardown puts the default handlers
    back, and a SIGTERM there would end it as killed (-15) after a finished run."""
    late: list[int] = []
    for number in EXIT_SIGNALS:
        signal.signal(number, lambda received, _: late.append(received))
    atexit._run_exitfuncs()
    if late:
        code = 130
    with contextlib.suppress(OSError, ValueError):  # the reader went away (a killed client)
        if code == 130:
            interrupts.announce("erarm: interrupted")
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
