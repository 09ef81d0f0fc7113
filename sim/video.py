"""A video of a simulated run, rendered from the cell's camera as the simulation steps."""

from __future__ import annotations

from erarm.agent.recording.video import Mp4Writer
from erarm.sim.camera import CameraSetup, render
from erarm.sim.world import STEP_HZ, World


class SimVideo:
    """Renders the camera every 1/fps simulated seconds into an H.264 MP4 while recording, at
    the camera's own size (640 x 480 by default: what browsers show without upscaling), without
    shadows to keep the film's cost down."""

    def __init__(self, world: World, camera: CameraSetup, fps: int = 10, scale: float = 1.0):
        self.world, self.fps = world, fps
        self.setup = camera.model_copy(update={"width": round(camera.width * scale),
                                               "height": round(camera.height * scale)})
        self._writer: Mp4Writer | None = None
        self.frames = 0

    def start(self, path: str) -> None:
        self.stop()
        self._writer = Mp4Writer(path, self.fps)
        self._frame()
        self.world.on_step.append(self._on_step)

    def _on_step(self, steps: int) -> None:
        if steps % (STEP_HZ // self.fps) == 0:
            self._frame()

    def _frame(self) -> None:
        rgb = render(self.world.client, self.setup, shadows=False).rgb
        self._writer.write(rgb)
        self.frames += 1

    def stop(self) -> None:
        if self._writer is not None:
            self.world.on_step.remove(self._on_step)
            self._writer.close()
            self._writer = None
