"""The simulated workcell as a driver: a PyBullet xArm6, its tabletop camera, a referee that
knows the ground truth, and a stage that handles calibration props in place of a person.

Registered under the `erarm.robots` entry-point group like any third-party driver.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from robots.base import Workcell
from robots.errors import ConfigError


class SimOptions(BaseModel):
    """What `--robot sim --robot-opt key=value` accepts."""

    model_config = ConfigDict(extra="forbid")

    task: str = ""  # staged: every object the task names, plus distractors
    scenario: str | None = None  # or a benchmark scenario, which says the task itself
    seed: int = 0
    scene: Path | None = None  # an explicit layout instead of staging
    gui: bool = False
    realtime: bool = False
    camera_offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # a bumped camera...
    camera_rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)  # ...and how it turned


def scenarios() -> dict[str, float]:
    """The benchmark scenarios the simulator stages, with their target success rates."""
    from sim.tasks import SCENARIOS

    return {name: scenario.target for name, scenario in SCENARIOS.items()}


def open_sim_workcell(**options: object) -> Workcell:
    """Build a simulated cell staged for a task (or laid out from a scene file)."""
    try:
        settings = SimOptions.model_validate(options)
    except ValidationError as err:
        first = err.errors()[0]
        raise ConfigError(f"sim option {'.'.join(map(str, first['loc']))}: {first['msg']}") \
            from None
    from robots.targets import BoardSpec
    from sim.arm import SimArm
    from sim.camera import CameraSetup, SimCamera
    from sim.props import SimStage
    from sim.scene import RenderConditions, load_scene
    from sim.tasks import SCENARIOS, SimReferee, stage
    from sim.video import SimVideo
    from sim.world import World

    task = settings.task
    if settings.scenario is not None:
        if settings.scenario not in SCENARIOS:
            raise ConfigError(f"unknown scenario {settings.scenario!r} (known: "
                              f"{', '.join(SCENARIOS)})")
        task, layout = SCENARIOS[settings.scenario].episode(settings.seed)
    elif settings.scene:
        layout = load_scene(settings.scene)
    else:
        layout = stage(task, settings.seed)
    world = World(layout, gui=settings.gui, realtime=settings.realtime)
    try:
        arm = SimArm(world)
    except Exception:
        world.close()
        raise
    look = layout.render or RenderConditions()
    setup = CameraSetup(
        offset_m=tuple(a / 1000 + b for a, b in zip(settings.camera_offset_mm,
                                                    look.camera_offset_m, strict=True)),
        rotation_deg=tuple(a + b for a, b in zip(settings.camera_rotation_deg,
                                                 look.camera_rotation_deg, strict=True)),
        light_direction=look.light_direction, ambient=look.ambient, diffuse=look.diffuse)
    return Workcell(robot=arm, camera=SimCamera(world.client, setup),
                    referee=SimReferee(world, task, setup), instruction=task or None,
                    video=SimVideo(world, setup),
                    stage=SimStage(world.client, setup, BoardSpec(), seed=settings.seed),
                    on_close=[world.close],
                    records={"scene.json": layout.model_dump()})  # replay with --scene
