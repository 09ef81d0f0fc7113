"""Camera calibration that a real cell can use, with OpenCV.

- intrinsics: ChArUco views -> `cv2.calibrateCamera`
- extrinsics from a board: a ChArUco board lying on the table at a known pose -> `cv2.solvePnP`
- extrinsics by hand-eye: the marker on the tool, moved through poses by the robot ->
  `cv2.calibrateHandEye` (eye-to-hand)
- plane: four or more pixel/robot pairs on one horizontal plane -> a homography, and from it the
  camera (with known intrinsics, or a focal length estimated from the homography itself)
- fit: whether a calibration still matches what a depth camera sees (the table must come out
  flat at the table height, and the robot where its own model, rendered through the
  calibration, puts it)

Everything works through the `Robot` and `Camera` interfaces, so it runs the same in the
simulator and on a physical arm.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel

from erarm.agent.geometry import unproject
from erarm.agent.overlay import draw_fit
from erarm.robots.base import (
    Camera,
    CameraCalibration,
    Frame,
    Robot,
    SeesItself,
    ToolPose,
    WorkspaceLimits,
)
from erarm.robots.errors import ConfigError, ErarmError
from erarm.robots.targets import BoardSpec, MarkerSpec, dictionary

MIN_CORNERS = 6
Log = Callable[[str], None]


class CalibrationFailed(ErarmError):
    """Not enough of the target was seen, or the numbers do not hold together."""


class CalibrationMismatch(ErarmError):
    """The calibration no longer fits the scene (the camera was moved?); nothing moves."""


@dataclass
class BoardView:
    object_points: np.ndarray  # N x 3, board frame
    image_points: np.ndarray  # N x 2, pixels
    marker_corners: tuple
    marker_ids: np.ndarray | None


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def detect_board(rgb: np.ndarray, spec: BoardSpec) -> BoardView | None:
    """The ChArUco corners of the board in an image, or None if too few were found."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    corners, ids, markers, marker_ids = cv2.aruco.CharucoDetector(spec.board).detectBoard(gray)
    if ids is None or len(ids) < MIN_CORNERS:
        return None
    object_points, image_points = spec.board.matchImagePoints(corners, ids)
    return BoardView(object_points.reshape(-1, 3).astype(np.float64),
                     image_points.reshape(-1, 2).astype(np.float64), markers, marker_ids)


def detect_marker(rgb: np.ndarray, marker: MarkerSpec) -> np.ndarray | None:
    """The tool marker's four corners (4 x 2 pixels, ArUco order), or None."""
    detector = cv2.aruco.ArucoDetector(dictionary(marker.dictionary))
    parameters = detector.getDetectorParameters()
    parameters.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector.setDetectorParameters(parameters)
    corners, ids, _ = detector.detectMarkers(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    if ids is None:
        return None
    for found, marker_id in zip(corners, ids.ravel(), strict=True):
        if marker_id == marker.marker_id:
            return found.reshape(4, 2).astype(np.float64)
    return None


def _distortion(calibration: CameraCalibration) -> np.ndarray:
    return np.asarray(calibration.distortion, dtype=np.float64)


def _solve_pnp(object_points: np.ndarray, image_points: np.ndarray,
               calibration: CameraCalibration) -> np.ndarray:
    """4x4 pose of the object's frame in the camera frame."""
    k, dist = calibration.intrinsic_matrix(), _distortion(calibration)
    planar = np.ptp(object_points[:, 2]) < 1e-9
    flag = cv2.SOLVEPNP_IPPE if planar and len(object_points) >= 4 else cv2.SOLVEPNP_SQPNP
    ok, rvec, tvec = cv2.solvePnP(object_points, image_points, k, dist, flags=flag)
    if not ok:
        raise CalibrationFailed("could not solve for the target's pose")
    ok, rvec, tvec = cv2.solvePnP(object_points, image_points, k, dist, rvec, tvec,
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    pose = np.eye(4)
    pose[:3, :3], _ = cv2.Rodrigues(rvec)
    pose[:3, 3] = tvec.ravel()
    return pose


def _project(points: np.ndarray, camera_from_points: np.ndarray,
             calibration: CameraCalibration) -> np.ndarray:
    rvec, _ = cv2.Rodrigues(camera_from_points[:3, :3])
    pixels, _ = cv2.projectPoints(points, rvec, camera_from_points[:3, 3],
                                  calibration.intrinsic_matrix(), _distortion(calibration))
    return pixels.reshape(-1, 2)


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum((np.asarray(a) - np.asarray(b)) ** 2, axis=1))))


def pose_error(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Translation (mm) and rotation (degrees) between two 4x4 poses."""
    translation = float(np.linalg.norm(estimate[:3, 3] - truth[:3, 3])) * 1000
    relative = estimate[:3, :3].T @ truth[:3, :3]
    angle = math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(relative) - 1) / 2))))
    return translation, angle


def compare_with_truth(calibration: CameraCalibration, truth: CameraCalibration) -> dict:
    """The errors a simulator can report, knowing its camera."""
    errors = {"fx_error_percent": abs(calibration.fx / truth.fx - 1) * 100,
              "principal_point_error_px": math.hypot(calibration.cx - truth.cx,
                                                     calibration.cy - truth.cy)}
    if calibration.camera_to_base is not None:
        moved, turned = pose_error(calibration.pose(), truth.pose())
        errors.update(translation_error_mm=moved, rotation_error_deg=turned)
    return errors


# -- intrinsics ----------------------------------------------------------------------------------

@dataclass
class CalibrationResult:
    calibration: CameraCalibration
    observations: int  # corners, marker views or pairs used
    picture: np.ndarray  # detections and their reprojections, for people to look at


def calibrate_intrinsics(images: list[np.ndarray], spec: BoardSpec) -> CalibrationResult:
    """Focal lengths, principal point and distortion from views of the board."""
    if not images:
        raise CalibrationFailed("no images given")
    height, width = images[0].shape[:2]
    views, shown = [], []  # the detections, and the image each came from
    for image in images:
        if image.shape[:2] != (height, width):
            raise CalibrationFailed("the images are not all the same size")
        view = detect_board(image, spec)
        if view is not None:
            views.append(view)
            shown.append(image)
    if len(views) < 4:
        raise CalibrationFailed(f"the board was found in {len(views)} of {len(images)} images; "
                                "intrinsics need at least 4 varied views")
    rms, k, dist, rvecs, tvecs = cv2.calibrateCamera(
        [v.object_points.astype(np.float32) for v in views],
        [v.image_points.astype(np.float32) for v in views], (width, height), None, None,
        flags=cv2.CALIB_FIX_K3)
    projected = [cv2.projectPoints(v.object_points, r, t, k, dist)[0].reshape(-1, 2)
                 for v, r, t in zip(views, rvecs, tvecs, strict=True)]
    worst = max(range(len(views)), key=lambda i: _rms(projected[i], views[i].image_points))
    calibration = CameraCalibration(
        width=width, height=height, fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2],
        distortion=dist.ravel().tolist(), camera_to_base=None, method="charuco-intrinsics",
        created=now(), errors={"rms_px": float(rms), "views_used": float(len(views)),
                               "views_rejected": float(len(images) - len(views))})
    picture = draw_fit(shown[worst], views[worst].image_points, projected[worst],
                       f"worst of {len(views)} views: "
                       f"{_rms(projected[worst], views[worst].image_points):.2f} px rms")
    return CalibrationResult(calibration, sum(len(v.object_points) for v in views), picture)


# -- extrinsics from a board on the table ---------------------------------------------------

def pose_from_board(views: list[tuple[Frame, np.ndarray]], intrinsics: CameraCalibration,
                    spec: BoardSpec) -> CalibrationResult:
    """The camera's pose from images of the board lying at known poses on the table (each a
    4x4 in the base frame). Every corner of every placement goes into one PnP in the base
    frame, so more placements average out the weak direction of a single oblique view."""
    points, pixels, seen = [], [], []
    for number, (frame, board_pose) in enumerate(views, 1):
        view = detect_board(frame.rgb, spec)
        if view is None:
            raise CalibrationFailed(f"placement {number}: the board is not in view (or too "
                                    "little of it)")
        homogeneous = np.column_stack([view.object_points, np.ones(len(view.object_points))])
        points.append((board_pose @ homogeneous.T).T[:, :3])
        pixels.append(view.image_points)
        seen.append(view)
    points_base, pixels_all = np.vstack(points), np.vstack(pixels)
    camera_from_base = _solve_pnp(points_base, pixels_all, intrinsics)
    rms = _rms(_project(points_base, camera_from_base, intrinsics), pixels_all)
    calibration = intrinsics.model_copy(update={
        "camera_to_base": np.linalg.inv(camera_from_base).tolist(), "method": "charuco-board",
        "created": now(), "errors": {"rms_px": rms}, "plane_homography": None, "plane_z": None})
    picture = draw_fit(views[0][0].rgb, pixels[0], _project(points[0], camera_from_base,
                                                            intrinsics),
                       f"{len(views)} placement(s), {len(points_base)} corners: {rms:.2f} px rms")
    return CalibrationResult(calibration, len(points_base), picture)


# -- extrinsics by hand-eye ----------------------------------------------------------------------

def hand_eye_poses(count: int, limits: WorkspaceLimits, seed: int = 0) -> list[ToolPose]:
    """Varied tool poses for hand-eye calibration: spread over the near half of the workspace,
    tilted about two axes (rotations about one axis alone leave the problem unsolvable)."""
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(count):
        poses.append(ToolPose(
            x=rng.uniform(0.38, min(0.56, limits.x_max)), y=rng.uniform(-0.16, 0.16),
            z=rng.uniform(0.07, 0.16), yaw=rng.uniform(-0.35, 0.35),
            roll=rng.uniform(-0.3, 0.3), pitch=rng.uniform(-0.3, 0.3)))
    return poses


def _mean_pose(poses: list[np.ndarray]) -> np.ndarray:
    """The chordal mean of rigid transforms."""
    u, _, vt = np.linalg.svd(sum(p[:3, :3] for p in poses))
    mean = np.eye(4)
    mean[:3, :3] = u @ np.diag([1, 1, np.linalg.det(u @ vt)]) @ vt
    mean[:3, 3] = np.mean([p[:3, 3] for p in poses], axis=0)
    return mean


def _transform(vector: np.ndarray) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3], _ = cv2.Rodrigues(vector[:3])
    pose[:3, 3] = vector[3:]
    return pose


def _vector(pose: np.ndarray) -> np.ndarray:
    return np.concatenate([cv2.Rodrigues(pose[:3, :3])[0].ravel(), pose[:3, 3]])


def refine_hand_eye(base_from_tool: list[np.ndarray], corners: list[np.ndarray],
                    intrinsics: CameraCalibration, marker: MarkerSpec,
                    camera_to_base: np.ndarray, tool_from_marker: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera pose and marker mount that best reproject every marker corner seen (damped
    Gauss-Newton on 12 parameters). Views left far off after a first pass are dropped: a
    marker seen edge-on or misdetected should not drag the answer. Returns the two poses and
    the mask of views kept."""
    square = marker.corners_m()
    keep = np.ones(len(corners), bool)

    def residuals(params: np.ndarray, views: np.ndarray) -> np.ndarray:
        camera_from_base = np.linalg.inv(_transform(params[:6]))
        mount = _transform(params[6:])
        return np.concatenate([
            (_project(square, camera_from_base @ base_from_tool[i] @ mount, intrinsics)
             - corners[i]).ravel() for i in np.flatnonzero(views)])

    params = np.concatenate([_vector(camera_to_base), _vector(tool_from_marker)])
    for round_ in range(2):
        damping = 1e-3
        for _ in range(50):
            r = residuals(params, keep)
            jacobian = np.empty((len(r), 12))
            for j in range(12):
                step = np.zeros(12)
                step[j] = 1e-6
                jacobian[:, j] = (residuals(params + step, keep) - r) / 1e-6
            normal = jacobian.T @ jacobian
            update = np.linalg.solve(normal + damping * np.diag(np.diag(normal) + 1e-9),
                                     -jacobian.T @ r)
            trial = params + update
            if np.sum(residuals(trial, keep) ** 2) < np.sum(r ** 2):
                params, damping = trial, damping / 3
                if np.linalg.norm(update) < 1e-10:
                    break
            else:
                damping *= 10
        if round_ == 0:  # drop views far off the fit, then refit
            per_view = np.array([np.sqrt(np.mean(residuals(params, np.eye(len(keep))[i] > 0)
                                                 ** 2)) for i in range(len(keep))])
            keep = per_view <= max(3 * np.median(per_view), 1.0)
    return _transform(params[:6]), _transform(params[6:]), keep


def pose_from_hand_eye(robot: Robot, camera: Camera, intrinsics: CameraCalibration,
                       marker: MarkerSpec, poses: list[ToolPose], log: Log = lambda _: None
                       ) -> CalibrationResult:
    """Move the tool through `poses`, find the marker at each, and solve the eye-to-hand problem
    for the camera's pose in the base frame. The arm returns home afterwards."""
    base_from_tool, camera_from_marker, corners_seen, last_image = [], [], [], None
    square = marker.corners_m()
    try:
        for number, pose in enumerate(poses, 1):
            problem = robot.reachable(pose)
            if problem:
                log(f"pose {number}: skipped ({problem})")
                continue
            robot.move_to(pose)
            image = camera.capture().rgb
            corners = detect_marker(image, marker)
            if corners is None:
                log(f"pose {number}: marker not seen")
                continue
            last_image = image
            base_from_tool.append(robot.state().tool.matrix())
            camera_from_marker.append(_solve_pnp(square, corners, intrinsics))
            corners_seen.append(corners)
            log(f"pose {number}: marker found")
    finally:
        robot.return_to_origin()
    if len(base_from_tool) < 5:
        raise CalibrationFailed(f"the marker was seen in {len(base_from_tool)} poses; hand-eye "
                                "needs at least 5")
    # A first guess from OpenCV's eye-to-hand solver (its hand-eye solver with the tool poses
    # inverted gives the camera in the base frame), then every corner refined together.
    tool_from_base = [np.linalg.inv(p) for p in base_from_tool]
    rotation, translation = cv2.calibrateHandEye(
        [p[:3, :3] for p in tool_from_base], [p[:3, 3] for p in tool_from_base],
        [p[:3, :3] for p in camera_from_marker], [p[:3, 3] for p in camera_from_marker],
        method=cv2.CALIB_HAND_EYE_PARK)
    guess = np.eye(4)
    guess[:3, :3], guess[:3, 3] = rotation, translation.ravel()
    mount = _mean_pose([np.linalg.inv(b) @ guess @ c
                        for b, c in zip(base_from_tool, camera_from_marker, strict=True)])
    camera_to_base, mount, kept = refine_hand_eye(base_from_tool, corners_seen, intrinsics,
                                                  marker, guess, mount)
    used = [i for i in range(len(kept)) if kept[i]]
    predicted = [_project(square, np.linalg.inv(camera_to_base) @ base_from_tool[i] @ mount,
                          intrinsics) for i in used]
    rms = _rms(np.vstack(predicted), np.vstack([corners_seen[i] for i in used]))
    calibration = intrinsics.model_copy(update={
        "camera_to_base": camera_to_base.tolist(), "method": "hand-eye", "created": now(),
        "errors": {"rms_px": rms, "views_dropped": float(len(kept) - len(used))},
        "plane_homography": None, "plane_z": None})
    everything = [_project(square, np.linalg.inv(camera_to_base) @ b @ mount, intrinsics)
                  for b in base_from_tool]
    picture = draw_fit(last_image, np.vstack(corners_seen), np.vstack(everything),
                       f"marker in {len(used)} poses: {rms:.2f} px rms")
    return CalibrationResult(calibration, len(used), picture)


# -- plane ---------------------------------------------------------------------------------------

class PlanePair(BaseModel):
    """One point seen at `pixel` (u, v) and known to the robot at `robot_mm` (x, y)."""

    pixel: tuple[float, float]
    robot_mm: tuple[float, float]


def focal_from_homography(plane_to_image: np.ndarray, cx: float, cy: float) -> float:
    """The focal length (pixels) that makes a plane's homography a rotation, assuming square
    pixels and the principal point at (cx, cy): Zhang's two constraints on one view (the plane's
    axes are orthogonal and of equal length), solved together by least squares in 1/f^2. The
    plane's axes are first turned 45 degrees, so neither lines up with the camera's."""
    turn = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, math.sqrt(2)]]) / math.sqrt(2)
    h = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]]) @ plane_to_image @ turn
    h = h / np.linalg.norm(h[:, :2])
    h1, h2 = h[:, 0], h[:, 1]
    # a * w + b = 0 for each constraint, w = 1 / f^2
    a = np.array([h1[0] * h2[0] + h1[1] * h2[1], h1[0] ** 2 + h1[1] ** 2 - h2[0] ** 2 - h2[1] ** 2])
    b = np.array([h1[2] * h2[2], h1[2] ** 2 - h2[2] ** 2])
    w = -float(a @ b) / float(a @ a) if float(a @ a) > 1e-18 else 0.0
    if w <= 0:
        raise CalibrationFailed("the plane is seen head-on: the focal length cannot be "
                                "estimated; give --intrinsics")
    return 1 / math.sqrt(w)


LINE_RATIO = 0.02  # points whose narrower spread is below this share of the wider lie on a line


def _orientation(image_to_plane: np.ndarray, pixel: np.ndarray) -> float:
    """The sign of the map's Jacobian at `pixel`: negative for a camera looking down at the
    table (image x right, y down against the robot's x, y and z up), positive for a mirror."""
    around = pixel + np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mapped = cv2.perspectiveTransform(around.reshape(-1, 1, 2), image_to_plane).reshape(-1, 2)
    return float(np.linalg.det(np.array([mapped[1] - mapped[0], mapped[2] - mapped[0]])))


def calibrate_plane(pairs: list[PlanePair], plane_z: float, image: np.ndarray,
                    intrinsics: CameraCalibration | None = None) -> CalibrationResult:
    """A homography from pixels to the plane z = plane_z, and the camera that explains it.
    `image` is a view of the scene, for the picture."""
    height, width = image.shape[:2]
    if len(pairs) < 4:
        raise CalibrationFailed(f"a plane needs at least 4 pixel/robot pairs, got {len(pairs)}")
    pixels = np.array([p.pixel for p in pairs], dtype=np.float64)
    robot_mm = np.array([p.robot_mm for p in pairs], dtype=np.float64)
    for what, points in (("pixels", pixels), ("robot points", robot_mm)):
        spread = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
        if not np.all(np.isfinite(spread)) or spread[1] < LINE_RATIO * spread[0]:
            raise CalibrationFailed(f"the pairs' {what} lie on or near one line: spread the "
                                    "points over the table, as a quadrilateral")
    image_to_plane, _ = cv2.findHomography(pixels, robot_mm, 0)
    if image_to_plane is None or not np.all(np.isfinite(image_to_plane)) \
            or np.linalg.cond(image_to_plane) > 1e12:
        raise CalibrationFailed("the pairs do not define a plane (are three in a line?)")
    if _orientation(image_to_plane, pixels.mean(axis=0)) > 0:
        raise CalibrationFailed("the pairs are mirrored: no camera above the table sees the "
                                "robot's points in that order (is x swapped with y, or a sign "
                                "flipped?)")
    mapped = cv2.perspectiveTransform(pixels.reshape(-1, 1, 2), image_to_plane).reshape(-1, 2)
    plane_rms_mm = _rms(mapped, robot_mm)
    if intrinsics is None:
        cx, cy = width / 2 - 0.5, height / 2 - 0.5
        focal = focal_from_homography(np.linalg.inv(image_to_plane) @ np.diag([1000, 1000, 1]),
                                      cx, cy)
        intrinsics = CameraCalibration(width=width, height=height, fx=focal, fy=focal, cx=cx,
                                       cy=cy, camera_to_base=None)
    points = np.column_stack([robot_mm / 1000, np.full(len(pairs), plane_z)])
    camera_from_base = _solve_pnp(points, pixels, intrinsics)
    predicted = _project(points, camera_from_base, intrinsics)
    rms = _rms(predicted, pixels)
    calibration = intrinsics.model_copy(update={
        "camera_to_base": np.linalg.inv(camera_from_base).tolist(), "method": "plane",
        "created": now(), "errors": {"rms_px": rms, "plane_rms_mm": plane_rms_mm},
        "plane_homography": image_to_plane.tolist(), "plane_z": plane_z})
    picture = draw_fit(image, pixels, predicted,
                       f"{len(pairs)} points: {rms:.2f} px rms, {plane_rms_mm:.2f} mm on the plane")
    return CalibrationResult(calibration, len(pairs), picture)


def touch_pairs(robot: Robot, camera: Camera, marker: MarkerSpec, count: int, height_m: float,
                log: Log = lambda _: None) -> list[PlanePair]:
    """Move the tool over a grid at one height with the marker facing the camera; each place
    the marker is seen gives a pair: its pixel centre, and its centre known from the tool pose."""
    columns = max(2, math.ceil(math.sqrt(count)))
    rows = max(2, math.ceil(count / columns))
    pairs = []
    try:
        for i in range(rows):
            for j in range(columns):
                if len(pairs) >= count:
                    break
                pose = ToolPose(x=0.36 + 0.18 * i / (rows - 1), y=-0.16 + 0.32 * j / (columns - 1),
                                z=height_m)
                if robot.reachable(pose):
                    continue
                robot.move_to(pose)
                corners = detect_marker(camera.capture().rgb, marker)
                if corners is None:
                    log(f"({pose.x * 1000:.0f}, {pose.y * 1000:.0f}) mm: marker not seen")
                    continue
                tool = robot.state().tool
                centre = tool.matrix() @ np.array([*marker.offset_m, 1.0])
                pairs.append(PlanePair(pixel=tuple(corners.mean(axis=0)),
                                       robot_mm=(centre[0] * 1000, centre[1] * 1000)))
    finally:
        robot.return_to_origin()
    return pairs


def marker_plane_z(marker: MarkerSpec, height_m: float) -> float:
    """The height of the marker's centre when the tool points down at `height_m`."""
    return height_m + ToolPose(x=0, y=0, z=0).rotation()[2] @ np.array(marker.offset_m)


# -- does a calibration still fit? ---------------------------------------------------------------

MAX_TABLE_OFFSET_MM = 6.0
MAX_TABLE_TILT_DEG = 0.6
MAX_ROBOT_MISMATCH = 0.05  # share of the robot's expected silhouette seen otherwise
MAX_ROBOT_DEPTH_OFFSET_MM = 4.0
MAX_ROBOT_HIDDEN = 0.5  # more of the robot behind something nearer: too little left to judge
TABLE_STRIDE_PX = 2  # every other row and column is plenty for a plane
MIN_ROBOT_PIXELS = 300  # fewer: the robot is (nearly) out of view, so it cannot be compared
ROBOT_DEPTH_TOLERANCE_M = 0.015  # seen and expected depth agree within this
ROBOT_RING_PX = 9  # how far around the expected silhouette to look for robot seen there


class RobotFit(BaseModel):
    """The robot's own model rendered through the calibration, against the depth seen."""

    pixels: int  # where the calibration says the robot should be seen
    mismatch: float  # share of those where it is not, or just outside them where it is
    depth_offset_mm: float  # median of seen minus expected depth where the two agree
    hidden: float = 0.0  # share of those behind something nearer, which says nothing


class FitReport(BaseModel):
    table_offset_mm: float  # where the table comes out, against where it should be
    table_tilt_deg: float
    fits: bool
    points: int
    robot: RobotFit | None = None  # None: the robot cannot render itself
    problem: str | None = None  # what is off, when it does not fit

    def summary(self) -> str:
        """What the check found, as one clause for people."""
        text = (f"the table comes out {self.table_offset_mm:+.1f} mm from its height, tilted "
                f"{self.table_tilt_deg:.2f} degrees")
        if self.robot is None:
            return text + "; the robot cannot render itself, so it was not checked"
        return (text + f"; the robot is seen where its model puts it ({self.robot.mismatch:.1%} "
                f"of {self.robot.pixels} pixels off, depth {self.robot.depth_offset_mm:+.1f} mm)")


def _table_fit(frame: Frame, limits: WorkspaceLimits) -> tuple[float, float, int]:
    """Offset (mm) and tilt (degrees) of the table as the calibration unprojects it, and how
    many points it rests on (inf, inf, n with too few)."""
    rows, cols = np.mgrid[0:frame.depth_m.shape[0]:TABLE_STRIDE_PX,
                          0:frame.depth_m.shape[1]:TABLE_STRIDE_PX]
    depth = frame.depth_m[rows, cols].ravel().astype(np.float64)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan)
    cloud = unproject(np.column_stack([cols.ravel(), rows.ravel()]).astype(np.float64), depth,
                      frame.calibration)
    x, y = cloud[:, 0], cloud[:, 1]
    near = (np.isfinite(cloud).all(axis=1) & (x > limits.x_min) & (x < limits.x_max)
            & (y > limits.y_min) & (y < limits.y_max))
    points = cloud[near]
    if len(points) < 500:
        return float("inf"), float("inf"), len(points)
    keep = np.ones(len(points), bool)
    centre = np.array([(limits.x_min + limits.x_max) / 2, (limits.y_min + limits.y_max) / 2])
    for _ in range(4):  # the table is most of the view: fit it, drop what stands on it, refit
        a = np.column_stack([points[keep, 0] - centre[0], points[keep, 1] - centre[1],
                             np.ones(keep.sum())])
        (slope_x, slope_y, height), *_ = np.linalg.lstsq(a, points[keep, 2], rcond=None)
        fitted = (slope_x * (points[:, 0] - centre[0]) + slope_y * (points[:, 1] - centre[1])
                  + height)
        keep = np.abs(points[:, 2] - fitted) < 0.008
    offset = (height - frame.calibration.table_z) * 1000
    tilt = math.degrees(math.atan(math.hypot(slope_x, slope_y)))
    return float(offset), float(tilt), int(keep.sum())


def robot_fit(seen_m: np.ndarray, expected_m: np.ndarray,
              calibration: CameraCalibration) -> RobotFit:
    """Compare the depth seen with the robot's expected depth (NaN off the robot). Robot
    pixels seen further away are where it is not; seen nearer, something stands in front and
    they say nothing; just outside the silhouette, anything standing above the table within
    the robot's depth is robot where it should not be. Among the pixels that agree, the median
    depth difference shows a shift along the line of sight."""
    seen = np.where(np.isfinite(seen_m) & (seen_m > 0), seen_m, np.inf).astype(np.float64)
    robot = np.isfinite(expected_m)
    pixels = int(robot.sum())
    if pixels < MIN_ROBOT_PIXELS:
        return RobotFit(pixels=pixels, mismatch=0.0, depth_offset_mm=0.0)
    tolerance = ROBOT_DEPTH_TOLERANCE_M
    difference = np.where(robot, seen - np.where(robot, expected_m, 0.0), np.nan)
    with np.errstate(invalid="ignore"):
        missing = robot & (difference > tolerance)
        hidden = robot & (difference < -tolerance)
        agree = robot & (np.abs(difference) <= tolerance)
    kernel = np.ones((2 * ROBOT_RING_PX + 1,) * 2, np.uint8)
    ring = cv2.dilate(robot.astype(np.uint8), kernel).astype(bool) & ~robot
    farthest_nearby = cv2.dilate(np.where(robot, expected_m, 0).astype(np.float32), kernel)
    candidates = ring & (seen < farthest_nearby + tolerance)
    rows, cols = np.nonzero(candidates)
    heights = unproject(np.column_stack([cols, rows]).astype(np.float64), seen[rows, cols],
                        calibration)[:, 2] - calibration.table_z
    extra = int(np.sum(heights > tolerance))
    judged = max(pixels - int(hidden.sum()) + extra, 1)
    offset = float(np.median(difference[agree])) * 1000 if agree.any() else float("nan")
    return RobotFit(pixels=pixels, mismatch=float((missing.sum() + extra) / judged),
                    depth_offset_mm=offset, hidden=float(hidden.sum() / pixels))


def check_fit(frame: Frame, limits: WorkspaceLimits, robot: Robot | None = None
              ) -> FitReport | None:
    """Unproject what the depth camera sees through the calibration: the table must come out at
    the table height and flat; and the robot, rendered from its own model at its joint readings
    through the calibration, must be seen where and as far away as predicted. The table pins
    height and tilt; the robot pins shifts along the table and turns about the vertical. None
    without depth (nothing to check against)."""
    if frame.depth_m is None or frame.calibration is None:
        return None
    offset, tilt, points = _table_fit(frame, limits)
    problems = []
    if not math.isfinite(offset):
        problems.append(f"through it the camera sees too little of the table ({points} "
                        "points in the workspace)")
    elif abs(offset) > MAX_TABLE_OFFSET_MM:
        problems.append(f"through it the table appears {offset:+.0f} mm from its height")
    if math.isfinite(tilt) and tilt > MAX_TABLE_TILT_DEG:
        problems.append(f"through it the table appears tilted {tilt:.1f} degrees")
    expected = (robot.expected_depth(frame.calibration) if isinstance(robot, SeesItself)
                else None)
    seen_robot = None
    if expected is not None:
        seen_robot = robot_fit(frame.depth_m, expected, frame.calibration)
        if seen_robot.pixels < MIN_ROBOT_PIXELS:  # a robot that sees itself must be in view
            problems.append(f"through it the robot would be out of the camera's view "
                            f"({seen_robot.pixels} pixels), so it cannot be checked (the "
                            "calibration of another camera?)")
        elif seen_robot.hidden > MAX_ROBOT_HIDDEN:
            problems.append(f"{seen_robot.hidden:.0%} of the robot is hidden behind something "
                            "nearer than the calibration puts it, so it cannot be checked (the "
                            "camera moved closer, or something stands in front of the arm?)")
        else:
            if seen_robot.mismatch > MAX_ROBOT_MISMATCH:
                problems.append(f"the robot is not where the calibration puts it "
                                f"({seen_robot.mismatch:.0%} of its {seen_robot.pixels} pixels "
                                "differ: shifted or turned)")
            depth = seen_robot.depth_offset_mm
            if math.isfinite(depth) and abs(depth) > MAX_ROBOT_DEPTH_OFFSET_MM:
                problems.append(f"the robot appears {abs(depth):.0f} mm "
                                f"{'further away' if depth > 0 else 'nearer'} than its model "
                                "puts it")
    return FitReport(table_offset_mm=offset, table_tilt_deg=tilt, fits=not problems,
                     points=points, robot=seen_robot,
                     problem="; ".join(problems) if problems else None)


class CalibratedCamera:
    """A camera whose frames carry a calibration from a file rather than the camera's own."""

    def __init__(self, camera: Camera, calibration: CameraCalibration):
        calibration.pose()  # a file without a camera pose cannot locate anything
        self._camera, self.calibration, self.name = camera, calibration, camera.name

    def capture(self) -> Frame:
        frame = self._camera.capture()
        if frame.size != (self.calibration.width, self.calibration.height):
            raise ConfigError(f"the calibration is for {self.calibration.width}x"
                              f"{self.calibration.height} images; the camera gives "
                              f"{frame.size[0]}x{frame.size[1]}")
        return Frame(rgb=frame.rgb, calibration=self.calibration, depth_m=frame.depth_m)

    def close(self) -> None:
        self._camera.close()


def require_fit(frame: Frame, limits: WorkspaceLimits, robot: Robot | None = None
                ) -> FitReport | None:
    """Refuse to go on with a calibration that no longer fits what the camera sees."""
    report = check_fit(frame, limits, robot)
    if report is not None and not report.fits:
        raise CalibrationMismatch(
            f"the camera calibration no longer fits the scene: {report.problem}. Has the "
            "camera moved? Recalibrate with erarm calibrate extrinsics, or pass a fresh file "
            "with --calibration")
    return report


def save_calibration(calibration: CameraCalibration, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(calibration.model_dump_json(indent=2) + "\n", encoding="utf-8")
