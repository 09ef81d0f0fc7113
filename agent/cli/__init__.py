"""The `erarm` command line.

stdout carries results only (a rich summary, or one JSON document with --json); progress and
messages go to stderr. Every expected failure is one line on stderr and an exit code: 0 success,
1 ran but failed, 2 bad usage or input, 130 interrupted.

This module stays tiny: the console script imports it and calls `main`, which takes over SIGINT
and SIGTERM before the heavy imports (typer, numpy, OpenCV, the commands) so that a signal in the
first second is handled like any other.
"""

from __future__ import annotations

import sys


def main() -> None:
    from erarm.agent import interrupts

    interrupts.install()
    try:
        from erarm.agent.cli.app import run_cli
    except KeyboardInterrupt:
        interrupts.announce("erarm: interrupted")
        sys.exit(130)
    run_cli()
