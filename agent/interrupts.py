"""One signal path for the whole process: SIGINT (Ctrl-C) and SIGTERM both interrupt.

`install()` runs first thing in `erarm`'s entry, before the heavy imports. From then on a signal
raises `KeyboardInterrupt` where the program is, except inside `deferred()`: what must not be cut
short (stopping the arm, writing the record, closing the workcell) runs to its end and the signal
is honoured after it. Once an interrupt has been raised the process is winding down to exit 130,
so later signals (a second Ctrl-C while the arm is being stopped) are noted and change nothing.

Standard library only: it is imported before anything else.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_deferring = 0  # nesting depth of deferred() blocks
_pending = False  # a signal arrived inside a deferred() block and waits
_winding_down = False  # an interrupt was raised: the process is on its way to exit 130
_announced = False  # the one line saying so has been printed


def _interrupt() -> None:
    global _winding_down
    _winding_down = True
    raise KeyboardInterrupt


def _on_signal(signum: int, frame: object) -> None:
    global _pending
    if _winding_down:
        return
    if _deferring:
        _pending = True
        return
    _interrupt()


def install() -> None:
    """SIGINT and SIGTERM take the same path from here on."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def interrupted() -> bool:
    """Whether a signal has arrived (raised, or waiting at the end of a deferred block)."""
    return _winding_down or _pending


def take() -> bool:
    """Claim a waiting signal: the caller records it instead of raising; True if one was."""
    global _pending, _winding_down
    if not _pending:
        return False
    _pending, _winding_down = False, True
    return True


@contextmanager
def deferred() -> Iterator[None]:
    """Run the block to its end whatever signal arrives; an interrupt that arrived in it is raised
    when the outermost block ends (unless `take()` claimed it, or an error is on its way)."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring and take():
        raise KeyboardInterrupt


def announce(line: str) -> None:
    """Print the interruption's one line on stderr, once: the first caller that knows most (a
    run that stopped the arm at step 3) says it, the CLI's generic line is then left out."""
    global _announced
    if not _announced:
        _announced = True
        with deferred():
            print(line, file=sys.stderr, flush=True)
