"""The PyBullet world: a table, the arm and the scene's objects, stepped at a fixed rate.

Everything passes `physicsClientId`, so several worlds can live in one process. Time is counted in
simulation steps, never read from the wall clock (except to pace the GUI for a human).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable

import pybullet as pb

from erarm.robots.errors import ConfigError
from erarm.sim.arm_model import arm_urdf_path
from erarm.sim.objects import spawn, spawn_solid
from erarm.sim.scene import SceneSpec

STEP_HZ = 240
TABLE_HALF_EXTENTS_M = (0.65, 0.6, 0.025)
TABLE_CENTRE_M = (0.35, 0.0, -0.025)  # top surface at z = 0, the robot base on it
TABLE_RGBA = (0.80, 0.78, 0.74, 1.0)


class World:
    """One simulated tabletop cell."""

    def __init__(self, scene: SceneSpec, gui: bool = False, realtime: bool = False):
        self.gui = gui
        self.paced = gui or realtime  # step no faster than the wall clock
        if gui and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            # PyBullet's GUI calls exit() when it finds no X server; refuse before that
            raise ConfigError("--gui needs a display (DISPLAY is not set); run without --gui "
                              "and look at the pictures in the run folder instead")
        self.client = pb.connect(pb.GUI if gui else pb.DIRECT)
        if self.client < 0:
            raise ConfigError("cannot connect to PyBullet" + (" in GUI mode" if gui else ""))
        self.steps = 0
        self.on_step: list[Callable[[int], None]] = []  # called after each step, with the count
        self._wall_start: float | None = None
        pb.setGravity(0, 0, -9.81, physicsClientId=self.client)
        pb.setTimeStep(1 / STEP_HZ, physicsClientId=self.client)
        if gui:
            pb.configureDebugVisualizer(pb.COV_ENABLE_GUI, 0, physicsClientId=self.client)
            pb.resetDebugVisualizerCamera(1.1, 90, -35, [0.4, 0, 0.05],
                                          physicsClientId=self.client)
        self.table = self._add_table()
        self.arm = pb.loadURDF(str(arm_urdf_path()), useFixedBase=True,
                               physicsClientId=self.client)
        self.objects = list(scene.objects)
        self.labels = [obj.label for obj in scene.objects]
        self.bodies = [spawn(self.client, obj.kind, obj.colour, obj.x, obj.y,
                             math.radians(obj.yaw_deg), obj.size, obj.z)
                       for obj in scene.objects]
        self.solids = [spawn_solid(self.client, s.rgb, s.x, s.y, s.z, s.across, s.height)
                       for s in scene.solids]
        self.settle_objects()

    def _add_table(self) -> int:
        shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=TABLE_HALF_EXTENTS_M,
                                        physicsClientId=self.client)
        visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=TABLE_HALF_EXTENTS_M,
                                      rgbaColor=TABLE_RGBA, specularColor=[0.05] * 3,
                                      physicsClientId=self.client)
        table = pb.createMultiBody(0, shape, visual, TABLE_CENTRE_M, physicsClientId=self.client)
        pb.changeDynamics(table, -1, lateralFriction=0.8, physicsClientId=self.client)
        return table

    @property
    def sim_time_s(self) -> float:
        return self.steps / STEP_HZ

    def step(self, count: int = 1) -> None:
        for _ in range(count):
            pb.stepSimulation(physicsClientId=self.client)
            self.steps += 1
            for hook in self.on_step:
                hook(self.steps)
        if self.paced:
            self._pace()

    def _pace(self) -> None:
        """Keep to real time, so a person can follow the motion."""
        now = time.monotonic()
        if self._wall_start is None:
            self._wall_start = now - self.sim_time_s
        ahead = self.sim_time_s - (now - self._wall_start)
        if ahead > 0:
            time.sleep(ahead)

    def settle_objects(self, max_steps: int = STEP_HZ) -> None:
        """Step until every object is at rest (objects spawn a hair above their resting pose)."""
        for _ in range(max_steps // 10):
            self.step(10)
            if all(self._speed(body) < 1e-3 for body in [*self.bodies, *self.solids]):
                return

    def _speed(self, body: int) -> float:
        linear, angular = pb.getBaseVelocity(body, physicsClientId=self.client)
        return math.hypot(*linear) + 0.05 * math.hypot(*angular)

    def arm_touches(self, body: int) -> bool:
        return bool(pb.getContactPoints(self.arm, body, physicsClientId=self.client))

    def object_report(self) -> list[dict]:
        """Ground-truth positions (millimetres) for scoring perception and runs."""
        report = []
        for label, body in zip(self.labels, self.bodies, strict=True):
            (x, y, z), _ = pb.getBasePositionAndOrientation(body, physicsClientId=self.client)
            report.append({"label": label,
                           "position_mm": [round(x * 1000, 1), round(y * 1000, 1),
                                           round(z * 1000, 1)]})
        return report

    def close(self) -> None:
        if pb.isConnected(self.client):
            pb.disconnect(self.client)
