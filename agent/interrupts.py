"""One signal path for the whole process: SIGINT (Ctrl-C) and SIGTERM both interrupt.

`install()` runs first thing in `erarm`'s entry, before the heavy imports. From then on a signal
raises `KeyboardInterrupt` where the program is, except inside `deferred()`: what must not be cut
short (stopping the arm, writing the record, closing the workcell) runs to its end and the signal
is honoured after it. Once an interrupt has been raised the process is winding down to exit 130,
so later signals (a second Ctrl-C while the arm is being stopped) are noted and change nothing.

`halt_main()` lets another thread (a live session's connection, a typed "stop") stop the main
thread the same way, wherever it is, without winding the process down: it raises `Halt`, a
`KeyboardInterrupt`, so every path that stops the arm on Ctrl-C stops it for a halt too.

Standard library only: it is imported before anything else.
"""

from __future__ import annotations

import _thread
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_deferring = 0  # nesting depth of deferred() blocks
_pending = False  # a signal arrived inside a deferred() block and waits
_winding_down = False  # an interrupt was raised: the process is on its way to exit 130
_announced = False  # the one line saying so has been printed
_halt_asked = False  # halt_main() sent the signal: the next one is a halt, not an interrupt
_halt_pending = False  # a halt arrived inside a deferred() block and waits


class Halt(KeyboardInterrupt):
    """Stop where you are, as for Ctrl-C, but the process goes on (see `halt_main`)."""


def _interrupt() -> None:
    global _winding_down
    _winding_down = True
    raise KeyboardInterrupt


def _on_signal(signum: int, frame: object) -> None:
    global _pending, _halt_asked, _halt_pending
    if _halt_asked:
        _halt_asked = False
        if _deferring:
            _halt_pending = True
            return
        raise Halt
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


def halt_main() -> None:
    """From another thread: raise `Halt` in the main thread as soon as it runs Python code (at
    the end of a deferred block when it is in one). Needs `install()`; without it the main
    thread gets Python's plain `KeyboardInterrupt`."""
    global _halt_asked
    _halt_asked = signal.getsignal(signal.SIGINT) is _on_signal
    _thread.interrupt_main(signal.SIGINT)


@contextmanager
def haltable() -> Iterator[None]:
    """Let `halt_main` reach the main thread for the block's length even where SIGINT is ignored
    (a process started in the background by a shell ignores it): Python's own handler stands in
    for the ignored one, then the ignored one is put back. Call from the main thread."""
    ignored = signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None)
    if ignored:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, previous)


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
    global _deferring, _halt_pending
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring and take():
        raise KeyboardInterrupt
    if not _deferring and _halt_pending:
        _halt_pending = False
        raise Halt


def announce(line: str) -> None:
    """Print the interruption's one line on stderr, once: the first caller that knows most (a
    run that stopped the arm at step 3) says it, the CLI's generic line is then left out."""
    global _announced
    if not _announced:
        _announced = True
        with deferred():
            print(line, file=sys.stderr, flush=True)
