"""Calibration props and the stage that handles them in place of a person.

The board is a textured quad whose frame is exactly OpenCV's ChArUco board frame, so its pose in
the simulator is the ground truth for a calibration from its images.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pybullet as pb

from erarm.robots.targets import BoardSpec
from erarm.sim.camera import CameraSetup, camera_to_base
from erarm.sim.transforms import quaternion, rodrigues

HIDDEN = np.array([0.0, 0.0, -5.0])  # out of sight, under the floor
TABLE_CLEARANCE_M = 0.0005  # the board lies this far above the table, clear of its surface
TEXTURE_BLUR = 0.8  # pixels per 100 of square: how optics soften the print (the renderer does not)


class BoardProp:
    """A printed ChArUco board that can be put anywhere."""

    def __init__(self, client: int, spec: BoardSpec):
        self.client, self.spec = client, spec
        width, height = spec.size_m
        # board frame: x along columns, y down the rows, z into the board; the print faces -z
        vertices = [(0, 0, 0), (width, 0, 0), (width, height, 0), (0, height, 0)]
        visual = pb.createVisualShape(
            pb.GEOM_MESH, vertices=vertices, indices=[0, 3, 2, 0, 2, 1],
            uvs=[(0, 1), (1, 1), (1, 0), (0, 0)], normals=[(0, 0, -1)] * 4,
            physicsClientId=client)
        self.body = pb.createMultiBody(0, -1, visual, HIDDEN.tolist(), physicsClientId=client)
        with tempfile.TemporaryDirectory(prefix="erarm-board-") as folder:
            path = Path(folder) / "board.png"  # PyBullet loads textures from files only
            cv2.imwrite(str(path), spec.image(pixels_per_square=100, blur=TEXTURE_BLUR))
            texture = pb.loadTexture(str(path), physicsClientId=client)
        pb.changeVisualShape(self.body, -1, textureUniqueId=texture, rgbaColor=[1, 1, 1, 1],
                             physicsClientId=client)
        self.pose = np.eye(4)
        self.pose[:3, 3] = HIDDEN

    def place(self, pose: np.ndarray) -> None:
        """Put the board's frame at this 4x4 pose in the base frame."""
        self.pose = np.array(pose, dtype=float)
        pb.resetBasePositionAndOrientation(self.body, self.pose[:3, 3].tolist(),
                                           quaternion(self.pose[:3, :3]),
                                           physicsClientId=self.client)


class SimStage:
    """Holds the board up in front of the camera, or lays it on the table, as a person would."""

    def __init__(self, client: int, camera: CameraSetup, spec: BoardSpec, seed: int = 0):
        self.board = BoardProp(client, spec)
        self.camera = camera
        self.seed = seed

    def hold_board(self, view: int) -> None:
        """A varied view: 0.45-0.8 m from the camera, off-centre, tilted up to ~35 degrees."""
        rng = random.Random(self.seed * 1000 + view)
        camera = camera_to_base(self.camera)
        distance = rng.uniform(0.45, 0.8)
        offset = np.array([rng.uniform(-0.22, 0.22), rng.uniform(-0.16, 0.16), 1.0]) * distance
        centre = camera[:3, :3] @ offset + camera[:3, 3]
        tilt = rodrigues(rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), rng.uniform(-0.4, 0.4))
        rotation = camera[:3, :3] @ tilt  # board axes along the camera's, then tilted
        self._place_centred(rotation, centre)

    def lay_board(self, x: float, y: float, yaw: float) -> None:
        self.board.place(self.board.spec.on_table(x, y, yaw, table_z=TABLE_CLEARANCE_M))

    def clear_board(self) -> None:
        pose = np.eye(4)
        pose[:3, 3] = HIDDEN
        self.board.place(pose)

    def _place_centred(self, rotation: np.ndarray, centre: np.ndarray) -> None:
        width, height = self.board.spec.size_m
        pose = np.eye(4)
        pose[:3, :3] = rotation
        pose[:3, 3] = centre - rotation @ np.array([width / 2, height / 2, 0.0])
        self.board.place(pose)
