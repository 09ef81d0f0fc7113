"""A video of a simulated run, rendered from the cell's camera as the simulation steps."""

from __future__ import annotations

import cv2

from erarm.sim.camera import CameraSetup, render
from erarm.sim.world import STEP_HZ, World


class SimVideo:
    """Renders the camera every 1/fps simulated seconds into an MP4 while recording."""

    def __init__(self, world: World, camera: CameraSetup, fps: int = 10, scale: float = 0.5):
        self.world, self.fps = world, fps
        self.setup = camera.model_copy(update={"width": round(camera.width * scale),
                                               "height": round(camera.height * scale)})
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def start(self, path: str) -> None:
        self.stop()
        size = (self.setup.width, self.setup.height)
        self._writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
        self._frame()
        self.world.on_step.append(self._on_step)

    def _on_step(self, steps: int) -> None:
        if steps % (STEP_HZ // self.fps) == 0:
            self._frame()

    def _frame(self) -> None:
        rgb = render(self.world.client, self.setup).rgb
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def stop(self) -> None:
        if self._writer is not None:
            self.world.on_step.remove(self._on_step)
            self._writer.release()
            self._writer = None
