"""The `erarm` command line.

stdout carries results only (a rich summary, or one JSON document with --json); progress and
messages go to stderr. Every expected failure is one line on stderr and an exit code: 0 success,
1 ran but failed, 2 bad usage or input, 130 interrupted.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import typer

from agent.cli import bench, calibrate, drivers, replay, run, vision  # noqa: F401  (registers the commands)
from agent.cli.common import VersionOpt, app, err_console
from robots.errors import ErarmError


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


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM stops a run exactly as Ctrl-C does: the arm is stopped, the exit code is 130."""
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    _results_to_real_stdout()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("· %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        err_console.print("erarm: interrupted")
        code = 130
    except ErarmError as err:
        err_console.print(f"erarm: error: {err}", soft_wrap=True, markup=False)
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
            err_console.print(f"erarm: internal error: {type(err).__name__}: {err} "
                              "(set ERARM_DEBUG=1 for the traceback)", soft_wrap=True,
                              markup=False)
            code = 3
    sys.stdout.flush()
    sys.exit(code if isinstance(code, int) else 0)
