"""The simulator: a PyBullet world with an xArm6, objects, a camera, tasks and their referees."""

import os
import sys


def _import_pybullet_quietly() -> None:
    """PyBullet announces its build time on stderr when first imported; erarm keeps stderr for
    its own one-line messages, so the announcement goes to /dev/null."""
    if "pybullet" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
            import pybullet  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_import_pybullet_quietly()
