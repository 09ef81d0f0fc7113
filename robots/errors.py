"""The error types every layer of erarm raises, so the CLI can turn any of them into one line.

`exit_code` follows the CLI contract: 2 for bad usage or input (nothing moved), 1 for a run that
started but failed (the robot was stopped and left safe).
"""


class ErarmError(Exception):
    """An expected failure with a one-line message for the operator. Line breaks in the message
    (say, from a model's reply quoted in it) are folded, so it always prints as one line."""

    exit_code = 2

    def __init__(self, message: object = "", *args: object):
        super().__init__(" ".join(str(message).split()), *args)


class RobotError(ErarmError):
    """A robot or camera could not do what it was asked; the run stops."""

    exit_code = 1


class MotionBlocked(RobotError):
    """The arm met something on its way and stopped short, and is still under control: it may
    back off and try again. A driver raises it only when it knows the arm is fine (the simulator
    does); a physical arm whose controller stops on a collision raises plain `RobotError`."""


class ConfigError(ErarmError):
    """A driver, scene or option was wrong before anything moved."""

    exit_code = 2
