"""Pixel-to-robot error of each calibration mode, measured in the simulator.

For a grid of table points, the true camera gives the pixel each point appears at; the calibration
under test turns that pixel back into a point on the table (and at a block's top, 40 mm up). The
distance to the true point is the error a grasp would inherit. The last column is the fit check's
verdict on each calibration (table plane and the robot's own model, as `run` applies it).

    python scripts/bench_calibration.py [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np

from erarm.agent.calibrate import (
    CalibratedCamera,
    calibrate_intrinsics,
    calibrate_plane,
    check_fit,
    compare_with_truth,
    hand_eye_poses,
    marker_plane_z,
    pose_from_board,
    pose_from_hand_eye,
    touch_pairs,
)
from erarm.agent.geometry import intersect_plane, pixel_rays
from erarm.robots.base import CameraCalibration
from erarm.robots.registry import open_workcell
from erarm.robots.targets import BoardSpec

GRID = [(x, y) for x in np.linspace(0.30, 0.60, 7) for y in np.linspace(-0.25, 0.25, 11)]
PLACEMENTS = [(0.45, 0.0, 0.3), (0.38, 0.12, -0.2), (0.52, -0.12, 0.1)]


def pixel_to_robot_errors(estimate: CameraCalibration, truth: CameraCalibration,
                          height: float) -> list[float]:
    points = np.array([[x, y, height] for x, y in GRID])
    pixels = truth.project(points)
    origin, directions = pixel_rays(pixels, estimate)
    errors = []
    for point, direction in zip(points, directions, strict=True):
        hit = intersect_plane(origin, direction, height)
        errors.append(float("inf") if hit is None else float(np.linalg.norm(hit - point)) * 1000)
    return errors


def score(name: str, estimate: CameraCalibration, truth: CameraCalibration, cell) -> dict:
    fit = check_fit(CalibratedCamera(cell.camera, estimate).capture(), cell.robot.limits,
                    cell.robot)
    row = {"mode": name, "rms_px": estimate.errors.get("rms_px", 0.0),
           **compare_with_truth(estimate, truth), "fits": fit.fits}
    for label, height in (("table", 0.0), ("block_top", 0.04)):
        errors = pixel_to_robot_errors(estimate, truth, height)
        row[f"{label}_median_mm"] = statistics.median(errors)
        row[f"{label}_max_mm"] = max(errors)
    return row


def measure() -> list[dict]:
    spec = BoardSpec()
    rows = []
    with open_workcell("sim", task="", seed=0) as cell:
        truth = cell.referee.true_calibration()
        rows.append(score("simulator (by construction)", truth, truth, cell))
        views = []
        for view in range(20):
            cell.stage.hold_board(view)
            views.append(cell.camera.capture().rgb)
        lens = calibrate_intrinsics(views, spec).calibration
        laid = []
        for x, y, yaw in PLACEMENTS:
            cell.stage.lay_board(x, y, yaw)
            laid.append((cell.camera.capture(), spec.on_table(x, y, yaw)))
        cell.stage.clear_board()
        board = pose_from_board(laid, lens, spec).calibration
        rows.append(score("ChArUco intrinsics + board on the table (3 placements)", board, truth,
                          cell))
        hand_eye = pose_from_hand_eye(cell.robot, cell.camera, lens, cell.robot.marker,
                                      hand_eye_poses(16, cell.robot.limits)).calibration
        rows.append(score("ChArUco intrinsics + hand-eye (16 poses)", hand_eye, truth, cell))
        pairs = touch_pairs(cell.robot, cell.camera, cell.robot.marker, 9, 0.06)
        plane_z = marker_plane_z(cell.robot.marker, 0.06)
        image = cell.camera.capture().rgb
        rows.append(score("plane, 9 traced points, ChArUco intrinsics",
                          calibrate_plane(pairs, plane_z, image, lens).calibration, truth, cell))
        rows.append(score("plane, 9 traced points, focal length estimated",
                          calibrate_plane(pairs, plane_z, image).calibration, truth, cell))
    with open_workcell("sim", task="", seed=0, camera_offset_mm=(30, -20, 15),
                       camera_rotation_deg=(2, -1.5, 1)) as bumped:
        rows.append(score("stale: the board calibration after the camera was bumped", board,
                          bumped.referee.true_calibration(), bumped))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'mode':58s} {'rms px':>7s} {'pos mm':>7s} {'rot deg':>7s} "
          f"{'table mm (median/max)':>22s} {'block top mm':>14s} {'fits':>5s}")
    for r in rows:
        print(f"{r['mode']:58s} {r['rms_px']:7.2f} {r['translation_error_mm']:7.2f} "
              f"{r['rotation_error_deg']:7.3f} {r['table_median_mm']:10.2f} / "
              f"{r['table_max_mm']:<9.2f} {r['block_top_median_mm']:6.2f} / "
              f"{r['block_top_max_mm']:<6.2f} {'yes' if r['fits'] else 'no':>5s}")


if __name__ == "__main__":
    main()
