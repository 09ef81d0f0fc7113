"""The simulated workcell as a driver: a PyBullet xArm6, its tabletop camera and a referee.

Registered under the `erarm.robots` entry-point group like any third-party driver.
"""

from __future__ import annotations

from pathlib import Path

from robots.base import Workcell


def open_sim_workcell(task: str = "", seed: int = 0, scene: Path | None = None,
                      gui: bool = False, realtime: bool = False) -> Workcell:
    """Build a simulated cell staged for `task` (or laid out from a scene file); `realtime`
    paces the simulation to the wall clock, as `gui` always does."""
    from sim.arm import SimArm
    from sim.camera import CameraSetup, SimCamera
    from sim.scene import load_scene, stage_scene
    from sim.tasks import SimReferee
    from sim.world import World

    layout = load_scene(scene) if scene else stage_scene(task, seed)
    world = World(layout, gui=gui, realtime=realtime)
    try:
        arm = SimArm(world)
    except Exception:
        world.close()
        raise
    camera = SimCamera(world.client, CameraSetup())
    return Workcell(robot=arm, camera=camera, referee=SimReferee(world, task),
                    on_close=[world.close],
                    records={"scene.json": layout.model_dump()})  # replay with --scene
