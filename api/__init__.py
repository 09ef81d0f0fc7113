"""erarm: a robot-arm orchestration agent on Gemini Robotics-ER.

The folders of the source tree install as subpackages: `erarm.agent` thinks (brains,
perception, planning, validation, execution, verification), `erarm.sim` simulates, `erarm.robots`
moves things (the robot and camera contracts, drivers, the plugin registry) and `erarm.prompts`
holds the prompts. For notebooks and scripts, the Python API is here:

    import erarm

    task = "pick the blue block into the orange bowl"
    with erarm.open_workcell("sim", task=task, seed=3) as cell:  # the simulator stages the task
        result = erarm.run_task(task, cell, brain="local")

The API's names (`erarm.agent.api`) load on first use, so `import erarm` (and the `erarm`
command) stays quick.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

try:
    __version__ = version("erarm")  # from the installed distribution's metadata
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from erarm.agent.api import (
        Box,
        Brain,
        ConfigError,
        ErarmError,
        Frame,
        Point,
        ReplyWarning,
        RunOptions,
        RunResult,
        Workcell,
        detect,
        execute_plan,
        open_workcell,
        point,
        run_task,
        trajectory,
    )

__all__ = ["Box", "Brain", "ConfigError", "ErarmError", "Frame", "Point", "ReplyWarning",
           "RunOptions", "RunResult", "Workcell", "__version__", "detect", "execute_plan",
           "open_workcell", "point", "run_task", "trajectory"]


def __getattr__(name: str) -> object:
    if name in __all__:
        return getattr(import_module("erarm.agent.api"), name)
    raise AttributeError(f"module 'erarm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
