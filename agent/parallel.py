"""Model questions asked at the same time: a round trip to a remote model costs its latency once
however many questions travel together, so the session sends the ones that do not depend on each
other (points and boxes of one frame; a judgement beside them) together.

Each call runs in a daemon thread: an interrupt reaches the main thread at once, and a call still
waiting on the network cannot keep the process alive after the run has stopped the arm.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Answer:
    """One call's return value, or the exception it raised."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None

    def get(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class Asked:
    """Calls started at once in daemon threads, so the caller can work while the model thinks;
    `wait` collects their answers."""

    def __init__(self, *calls: Callable[[], Any]) -> None:
        self.answers = [Answer() for _ in calls]
        self._threads = [threading.Thread(target=_answer, args=pair, daemon=True)
                         for pair in zip(calls, self.answers, strict=True)]
        for thread in self._threads:
            thread.start()

    def wait(self) -> list[Answer]:
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.05)  # short waits, so Ctrl-C is felt at once
        return self.answers


def _answer(call: Callable[[], Any], answer: Answer) -> None:
    try:
        answer.value = call()
    except BaseException as err:  # handed to the caller, raised by `get`
        answer.error = err


def together(*calls: Callable[[], Any]) -> list[Answer]:
    """Run the calls concurrently and wait for all of them; a single call runs in place."""
    if len(calls) == 1:
        answer = Answer()
        _answer(calls[0], answer)
        return [answer]
    return Asked(*calls).wait()
