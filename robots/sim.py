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
    seed: int = 0
    scene: Path | None = None  # an explicit layout instead of staging
    gui: bool = False
    realtime: bool = False
    camera_offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # a bumped camera...
    camera_rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)  # ...and how it turned


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
    from sim.scene import load_scene, stage_scene
    from sim.tasks import SimReferee
    from sim.world import World

    layout = load_scene(settings.scene) if settings.scene else stage_scene(settings.task,
                                                                           settings.seed)
    world = World(layout, gui=settings.gui, realtime=settings.realtime)
    try:
        arm = SimArm(world)
    except Exception:
        world.close()
        raise
    setup = CameraSetup(offset_m=tuple(v / 1000 for v in settings.camera_offset_mm),
                        rotation_deg=settings.camera_rotation_deg)
    return Workcell(robot=arm, camera=SimCamera(world.client, setup),
                    referee=SimReferee(world, settings.task, setup),
                    stage=SimStage(world.client, setup, BoardSpec(), seed=settings.seed),
                    on_close=[world.close],
                    records={"scene.json": layout.model_dump()})  # replay with --scene
