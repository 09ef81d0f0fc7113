"""The simulated workcell as a driver: a PyBullet xArm6, its tabletop camera, a referee that
knows the ground truth, and a stage that handles calibration props in place of a person.

Registered under the `erarm.robots` and `erarm.cameras` entry-point groups like any third-party
driver.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from erarm.robots.base import Camera, Workcell
from erarm.robots.errors import ConfigError
from erarm.robots.registry import check_options
from erarm.robots.twin import TwinScene


class SimCameraOptions(BaseModel):
    """What `--camera sim --camera-opt key=value` accepts (and the simulated robot too)."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field("", description="stage every object the task names, plus distractors")
    scenario: str | None = Field(None, description="or a benchmark scenario, which says the task")
    seed: int = Field(0, description="the staged layout's seed")
    scene: Path | None = Field(None, description="an explicit layout (JSON) instead of staging")
    camera_offset_mm: tuple[float, float, float] = Field(
        (0.0, 0.0, 0.0), description="move the camera from its calibrated pose (a bump)")
    camera_rotation_deg: tuple[float, float, float] = Field(
        (0.0, 0.0, 0.0), description="and turn it about its own x, y, z axes")
    emulator: str = Field("", description="an emulator session's URL (erarm emulate): every "
                                          "capture sends it the scene's ground truth")
    twin: TwinScene | None = Field(None, description="a twin of a perceived scene (what a "
                                                     "rehearsal stages; set by erarm)")


class SimOptions(SimCameraOptions):
    """What `--robot sim --robot-opt key=value` accepts."""

    gui: bool = Field(False, description="show the PyBullet window (needs a display)")
    realtime: bool = Field(False, description="pace the simulation to the wall clock")


def scenarios(offline: bool = False) -> dict[str, float]:
    """The benchmark scenarios the simulator stages, with their target success rates; with
    `offline`, only those the local brain can do (blocks and bowls, not household objects)."""
    from erarm.sim.tasks import SCENARIOS

    return {name: scenario.target for name, scenario in SCENARIOS.items()
            if scenario.offline or not offline}


def _staged(settings: SimOptions):
    """The task, the layout, the world built from it and the camera's setup."""
    from erarm.sim.camera import CameraSetup
    from erarm.sim.scene import RenderConditions, load_scene
    from erarm.sim.tasks import SCENARIOS, stage
    from erarm.sim.world import World

    task = settings.task
    if settings.scenario is not None:
        if settings.scenario not in SCENARIOS:
            raise ConfigError(f"unknown scenario {settings.scenario!r} (known: "
                              f"{', '.join(SCENARIOS)})")
        task, layout = SCENARIOS[settings.scenario].episode(settings.seed)
    elif settings.twin is not None:
        from erarm.sim.twin import twin_layout

        layout = twin_layout(settings.twin)
    elif settings.scene:
        layout = load_scene(settings.scene)
    else:
        layout = stage(task, settings.seed)
    world = World(layout, gui=settings.gui, realtime=settings.realtime)
    look = layout.render or RenderConditions()
    real = settings.twin.calibration if settings.twin is not None else None
    if real is not None and real.camera_to_base is not None:  # where the real camera is
        return task, layout, world, CameraSetup.like(real)
    setup = CameraSetup(
        offset_m=tuple(a / 1000 + b for a, b in zip(settings.camera_offset_mm,
                                                    look.camera_offset_m, strict=True)),
        rotation_deg=tuple(a + b for a, b in zip(settings.camera_rotation_deg,
                                                 look.camera_rotation_deg, strict=True)),
        light_direction=look.light_direction, ambient=look.ambient, diffuse=look.diffuse)
    return task, layout, world, setup


def _truth_feed(settings: SimCameraOptions, world, referee):
    """What a camera calls after each capture to feed an emulator session, or None."""
    if not settings.emulator:
        return None
    from erarm.sim.emulator.truth import scene_truth, send_truth

    def feed(frame, mask) -> None:
        send_truth(settings.emulator, scene_truth(world, referee, frame.calibration, mask))

    return feed


def open_sim_workcell(**options: object) -> Workcell:
    """A simulated xArm6 on a staged table, with its RGB-D camera (exact calibration)."""
    settings = check_options(SimOptions, options, "sim robot")
    from erarm.robots.targets import BoardSpec
    from erarm.sim.arm import SimArm
    from erarm.sim.camera import SimCamera
    from erarm.sim.props import SimStage
    from erarm.sim.referee import SimReferee
    from erarm.sim.scene import scene_document
    from erarm.sim.video import SimVideo

    task, layout, world, setup = _staged(settings)
    try:
        arm = SimArm(world)
    except Exception:
        world.close()
        raise
    referee = SimReferee(world, task, setup)
    camera = SimCamera(world.client, setup, on_capture=_truth_feed(settings, world, referee))
    records = ({"twin.json": settings.twin.model_dump(mode="json")} if settings.twin else
               {"scene.json": scene_document(layout)})  # replay with --scene
    return Workcell(robot=arm, camera=camera, referee=referee, instruction=task or None,
                    video=SimVideo(world, setup),
                    stage=SimStage(world.client, setup, BoardSpec(), seed=settings.seed),
                    on_close=[world.close], records=records,
                    twin_options={"emulator": settings.emulator} if settings.emulator else {})


def open_sim_camera(**options: object) -> Camera:
    """The simulator's RGB-D camera over a staged table, on its own."""
    settings = check_options(SimCameraOptions, options, "sim camera")
    from erarm.sim.camera import SimCamera
    from erarm.sim.referee import SimReferee

    task, _, world, setup = _staged(SimOptions(**dict(settings)))
    feed = _truth_feed(settings, world, SimReferee(world, task, setup))
    return SimCamera(world.client, setup, on_close=world.close, on_capture=feed)


open_sim_workcell.options = SimOptions
open_sim_camera.options = SimCameraOptions
