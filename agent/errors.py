"""What can go wrong while thinking, each with a one-line message and the CLI's exit code."""

from erarm.robots.errors import ErarmError


class ReplyError(ErarmError):
    """A brain's reply could not be turned into points, boxes or a plan."""


class WithheldReply(ReplyError):
    """The model's service blocked the prompt or withheld the reply (safety): asking the same
    again would get the same."""


class PlanRejected(ErarmError):
    """A parsed plan fails a safety check; nothing has moved."""


class TaskNotUnderstood(ErarmError):
    """The brain cannot turn this instruction into a plan."""


class BrainUnavailable(ErarmError):
    """The chosen brain cannot run here (no key, no SDK, no network)."""


class TargetNotFound(ErarmError):
    """Perception did not find an object the task needs; the run stops before any motion."""

    exit_code = 1


class GaveUp(ErarmError):
    """The closed loop ran out of attempts; the reason says what kept failing."""

    exit_code = 1


class Declined(ErarmError):
    """The operator said no at --confirm; nothing moved."""

    exit_code = 1


class ExecutionFailed(ErarmError):
    """The robot failed partway through a plan; the arm was stopped. Carries what had run."""

    exit_code = 1

    def __init__(self, message: str, steps_done: list):
        super().__init__(message)
        self.steps_done = steps_done


class Crashed(ErarmError):
    """Something that is not an erarm error (a bug, or a caller's callback that raised) ended a
    run: the arm was stopped and the record says so; the original exception goes on."""

    exit_code = 3


class Interrupted(ExecutionFailed):
    """The operator stopped the run (Ctrl-C or SIGTERM); the arm was stopped where it was."""

    exit_code = 130
