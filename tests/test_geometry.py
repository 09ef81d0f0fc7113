"""Pixels to robot coordinates and back, on synthetic cameras and on the simulator's camera."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erarm.agent.geometry import (
    intersect_plane,
    locate,
    normalized_to_pixel,
    pixel_rays,
    pixel_to_normalized,
    unproject,
)
from erarm.robots.base import Frame
from tests.conftest import raycast_frame, synthetic_calibration

coordinate = st.floats(min_value=0, max_value=1000, allow_nan=False)


@given(coordinate, coordinate)
def test_normalized_pixel_round_trip(y, x):
    u, v = normalized_to_pixel(y, x, 640, 480)
    assert pixel_to_normalized(u, v, 640, 480) == pytest.approx((y, x), abs=1e-9)


def test_normalized_grid_spans_image_edges():
    assert normalized_to_pixel(0, 0, 640, 480) == (-0.5, -0.5)  # the top-left pixel's outer corner
    assert normalized_to_pixel(1000, 1000, 640, 480) == (639.5, 479.5)
    assert normalized_to_pixel(500, 500, 640, 480) == (319.5, 239.5)  # the image centre


points_3d = st.tuples(st.floats(0.2, 0.7), st.floats(-0.3, 0.3), st.floats(0.0, 0.2))
distortions = st.sampled_from([(0.0, 0.0, 0.0, 0.0, 0.0), (-0.12, 0.05, 0.001, -0.001, 0.0)])


@settings(max_examples=60, deadline=None)
@given(st.lists(points_3d, min_size=1, max_size=20), distortions,
       st.tuples(st.floats(0.7, 1.1), st.floats(-0.3, 0.3), st.floats(0.4, 0.9)))
def test_project_then_unproject_recovers_points(points, distortion, eye):
    calibration = synthetic_calibration(eye=eye, distortion=distortion)
    points = np.array(points)
    pixels = calibration.project(points)
    depth = (points - calibration.pose()[:3, 3]) @ calibration.pose()[:3, 2]
    assert np.allclose(unproject(pixels, depth, calibration), points, atol=1e-6)


def test_rays_pass_through_the_points_they_see():
    calibration = synthetic_calibration(distortion=(-0.1, 0.02, 0.0, 0.0, 0.0))
    point = np.array([0.45, -0.12, 0.0])
    origin, directions = pixel_rays(calibration.project(point[None]), calibration)
    hit = intersect_plane(origin, directions[0], 0.0)
    assert np.allclose(hit, point, atol=1e-6)


def test_ray_parallel_to_or_away_from_plane_misses():
    assert intersect_plane(np.array([0, 0, 1.0]), np.array([1.0, 0, 0]), 0.0) is None
    assert intersect_plane(np.array([0, 0, 1.0]), np.array([0, 0, 1.0]), 0.0) is None


def test_locate_uses_depth_and_falls_back_to_the_table_plane():
    calibration = synthetic_calibration()
    block_top = (0.42, 0.05, 0.02, 0.04)  # a 4 cm block's top face
    frame = raycast_frame(calibration, [block_top])
    u, v = calibration.project(np.array([[0.42, 0.05, 0.04]]))[0]
    y, x = pixel_to_normalized(u, v, calibration.width, calibration.height)
    assert np.allclose(locate(y, x, frame), [0.42, 0.05, 0.04], atol=1e-3)
    no_depth = Frame(rgb=frame.rgb, calibration=calibration)
    on_table = locate(y, x, no_depth)  # without depth the same pixel reads as table further away
    assert on_table[2] == pytest.approx(0.0)
    assert on_table[0] < 0.42


def test_sim_camera_calibration_matches_its_render(sim_cell):
    """The calibration the simulator reports maps its own pixels onto the table and objects."""
    cell = sim_cell(seed=3)
    frame = cell.camera.capture()
    truth = {o["label"]: np.array(o["position_mm"]) / 1000 for o in cell.referee.judge().objects}
    rows, cols = np.mgrid[400:470:7, 40:600:13]
    pixels = np.column_stack([cols.ravel(), rows.ravel()])
    table = unproject(pixels, frame.depth_m[rows.ravel(), cols.ravel()], frame.calibration)
    assert np.abs(table[:, 2]).max() < 1e-3  # the near table rows lie on z = 0
    top = truth["blue block"] + [0, 0, 0.02]
    u, v = frame.calibration.project(top[None])[0]
    depth = frame.depth_m[round(v), round(u)]
    seen = unproject(np.array([[round(u), round(v)]]), np.array([depth]), frame.calibration)[0]
    assert np.linalg.norm(seen - top) < 0.004
    red, green, blue = frame.rgb[round(v), round(u)].astype(int)
    assert blue > red + 60 and blue > green + 60  # the pixel really shows the blue block
