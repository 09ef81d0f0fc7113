"""Grounding: imprecise points refined in depth land on the true objects (the sim referees)."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pybullet as pb

from erarm.agent.brains.local import LocalBrain
from erarm.agent.brains.local.rule_planner import transfers_for
from erarm.agent.brains.zoom import ZoomBrain
from erarm.agent.geometry import locate, pixel_to_normalized
from erarm.agent.locate import locate_objects
from erarm.agent.perceive import Perception, perceive
from erarm.agent.schemas import Point
from erarm.robots.base import Frame, ToolPose

TASK = "pick the blue block into the orange bowl"
BLOCK_TOP_MM = 40.0
BOWL_RIM_MM = 45.0


def _truth(cell) -> dict[str, np.ndarray]:
    return {o["label"]: np.array(o["position_mm"]) for o in cell.referee.judge().objects}


def _normalized(frame: Frame, x_mm: float, y_mm: float, z_mm: float) -> tuple[float, float]:
    """Where a base-frame point is seen, on the 0-1000 grid [y, x]."""
    calibration = frame.calibration
    u, v = calibration.project(np.array([[x_mm, y_mm, z_mm]]) / 1000)[0]
    return pixel_to_normalized(float(u), float(v), calibration.width, calibration.height)


def _moved(perception: Perception, label: str, point: tuple[float, float]) -> Perception:
    points = [Point(point=point, label=p.label) if p.label == label else p
              for p in perception.points]
    return perception.model_copy(update={"points": points, "warnings": []})


def _one(objects, label):
    return next(o for o in objects if o.label == label)


def _xy_error(seen, truth: np.ndarray) -> float:
    return math.hypot(seen.position_mm[0] - truth[0], seen.position_mm[1] - truth[1])


def _beside(truth: dict[str, np.ndarray], label: str, distance_mm: float
            ) -> tuple[float, float]:
    """A spot `distance_mm` from an object's centre, away from every other object."""
    x, y = truth[label][:2]
    spots = [(x + distance_mm * math.cos(a), y + distance_mm * math.sin(a))
             for a in np.linspace(0, 2 * math.pi, 16, endpoint=False)]
    return max(spots, key=lambda s: min(math.dist(s, t[:2]) for name, t in truth.items()
                                        if name != label))


def _looked(sim_cell, seed: int = 0):
    """A staged table's frame, the local brain's clean perception of it, and the truth."""
    cell = sim_cell(task=TASK, seed=seed)
    frame = cell.camera.capture()
    return frame, perceive(LocalBrain(), frame), _truth(cell)


def test_a_point_on_the_table_beside_a_block_snaps_to_its_top_face(sim_cell):
    frame, perception, truth = _looked(sim_cell)
    for label in (name for name in truth if name.endswith("block")):
        x, y = _beside(truth, label, 34.0)  # just off the block's edge, on bare table
        nudged = _moved(perception, label, _normalized(frame, x, y, 0.0))
        raw = locate(*_one(nudged.points, label).point, frame) * 1000
        assert raw[2] < 3.0 and math.hypot(raw[0] - truth[label][0], raw[1] - truth[label][1]) > 25
        seen = _one(locate_objects(nudged, frame), label)
        assert _xy_error(seen, truth[label]) < 3.0, (label, seen.position_mm)
        assert abs(seen.position_mm[2] - BLOCK_TOP_MM) < 3.0
        assert 19.0 < seen.radius_mm < 32.0  # half of a 40 mm block, up to its half-diagonal


def test_a_point_on_a_bowls_rim_targets_the_centre_of_its_opening(sim_cell):
    frame, perception, truth = _looked(sim_cell)
    for label in (name for name in truth if name.endswith("bowl")):
        for angle in (0.0, math.pi / 2, math.pi, 3 * math.pi / 2):  # the near and far rim too
            x, y = (truth[label][0] + 64 * math.cos(angle), truth[label][1] + 64 * math.sin(angle))
            nudged = _moved(perception, label, _normalized(frame, x, y, BOWL_RIM_MM))
            seen = _one(locate_objects(nudged, frame), label)
            assert _xy_error(seen, truth[label]) < 4.0, (label, angle, seen.position_mm)
            assert seen.position_mm[2] < 12.0  # the floor: what a block set in it rests on
            assert 55.0 < seen.radius_mm < 75.0  # the rim's radius (68 mm)


def test_a_block_inside_a_bowl_does_not_shift_the_bowls_centre(sim_cell):
    cell = sim_cell(task=TASK, seed=0)
    world = cell.robot.world
    truth = _truth(cell)
    bowl = truth["orange bowl"]
    block = world.bodies[world.labels.index("blue block")]
    pb.resetBasePositionAndOrientation(block, ((bowl[0] + 22) / 1000, (bowl[1] - 10) / 1000,
                                               0.03), (0, 0, 0, 1), physicsClientId=world.client)
    world.settle_objects()
    truth = _truth(cell)
    frame = cell.camera.capture()
    perception = perceive(LocalBrain(), frame)
    # the bowl's point on the block it holds: the bowl's visible middle, not its centre
    on_block = _normalized(frame, *truth["blue block"][:2], BLOCK_TOP_MM + 6)
    objects = locate_objects(_moved(perception, "orange bowl", on_block), frame)
    seen_bowl, seen_block = _one(objects, "orange bowl"), _one(objects, "blue block")
    assert _xy_error(seen_bowl, truth["orange bowl"]) < 4.0, seen_bowl.position_mm
    assert seen_bowl.position_mm[2] < 12.0
    assert _xy_error(seen_block, truth["blue block"]) < 4.0, seen_block.position_mm
    assert transfers_for(TASK, objects) == []  # the block is seen inside: nothing left to do


def test_noisy_points_land_within_a_few_mm_of_the_truth(sim_cell):
    cell = sim_cell(task=TASK, seed=4)
    frame = cell.camera.capture()
    perception = perceive(LocalBrain(), frame)
    truth = _truth(cell)
    rng = np.random.default_rng(7)
    errors = {label: [] for label in truth}
    spent = []
    for _ in range(10):
        points = [Point(point=tuple(float(np.clip(c + rng.normal(0, 20), 0, 1000))
                                    for c in p.point), label=p.label) for p in perception.points]
        clock = time.perf_counter()
        objects = locate_objects(perception.model_copy(update={"points": points,
                                                               "warnings": []}), frame)
        spent.append(time.perf_counter() - clock)
        for seen in objects:
            errors[seen.label].append(_xy_error(seen, truth[seen.label]))
    print(f"\ngrounding {len(truth)} objects: {np.median(spent) * 1000:.0f} ms per look")
    for label, found in errors.items():
        assert len(found) == 10, label
        assert np.percentile(found, 90) < 5.0, (label, np.round(found, 1))


def test_two_labels_on_one_object_give_one_object(sim_cell):
    cell = sim_cell(task=TASK, seed=0)
    frame = cell.camera.capture()
    perception = perceive(LocalBrain(), frame)
    red = _one(perception.points, "red block")
    confused = Point(point=(red.y + 5, red.x - 5), label="red bowl")  # the bowl's name, misplaced
    twice = perception.model_copy(update={"points": [confused, *perception.points],
                                          "warnings": []})
    objects = locate_objects(twice, frame)
    here = [o for o in objects if _xy_error(o, _truth(cell)["red block"]) < 10]
    assert [o.label for o in here] == ["red block"]  # its box and colour agree with it
    assert "red bowl" in [o.label for o in objects]  # the real red bowl is still seen, once
    assert len(objects) == len(perception.points)
    assert any("'red bowl'" in w for w in twice.warnings)


def test_a_confused_label_without_a_box_of_its_own_keeps_the_label_its_box_agrees_with(sim_cell):
    cell = sim_cell(task=TASK, seed=0)
    frame = cell.camera.capture()
    perception = perceive(LocalBrain(), frame)
    red = _one(perception.points, "red block")
    confused = Point(point=(red.y + 5, red.x - 5), label="blue bowl")  # no such bowl here
    twice = perception.model_copy(update={"points": [confused, *perception.points],
                                          "warnings": []})
    objects = locate_objects(twice, frame)
    assert sorted(o.label for o in objects) == sorted(p.label for p in perception.points)
    assert twice.warnings == ["the 'blue bowl' point is on the same object as the 'red block' "
                              "point; kept 'red block'"]


def test_without_depth_points_are_located_as_before(sim_cell):
    cell = sim_cell(task=TASK, seed=0)
    frame = cell.camera.capture()
    perception = perceive(LocalBrain(), frame)
    plain = Frame(rgb=frame.rgb, calibration=frame.calibration)
    for seen, point in zip(locate_objects(perception, plain), perception.points, strict=True):
        assert np.allclose(np.array(seen.position_mm) / 1000, locate(*point.point, plain))


class _Scripted:
    """The local brain's vision with its replies spoiled as a model's can be."""

    def __init__(self, spoil_points, spoil_boxes):
        self.inner = LocalBrain()
        self.name, self.capabilities = self.inner.name, self.inner.capabilities
        self.spoil_points, self.spoil_boxes = spoil_points, spoil_boxes

    def point(self, frame, queries=None, limit=10):
        return json.dumps(self.spoil_points(json.loads(self.inner.point(frame, queries, limit))))

    def detect(self, frame, limit=25):
        return json.dumps(self.spoil_boxes(json.loads(self.inner.detect(frame, limit))))


def test_malformed_entries_are_dropped_and_the_rest_grounded(sim_cell):
    cell = sim_cell(task=TASK, seed=0)
    frame = cell.camera.capture()
    truth = _truth(cell)

    def bad_points(points):
        return [*points, {"point": [1200, 40], "label": "ghost"}, {"point": [5], "label": "x"}]

    def bad_boxes(boxes):
        first = boxes[0]["box_2d"]
        swapped = {"box_2d": [first[2], first[3], first[0], first[1]], "label": "cyan block"}
        duplicate = {**boxes[1], "box_2d": [0, 0, 20, 20]}  # a second box of one label
        return [swapped, duplicate, *boxes]

    perception = perceive(_Scripted(bad_points, bad_boxes), frame)
    assert len(perception.warnings) == 3 and "corners swapped" in " ".join(perception.warnings)
    objects = locate_objects(perception, frame)
    assert sorted(o.label for o in objects) == sorted(truth)
    for seen in objects:
        assert _xy_error(seen, truth[seen.label]) < 4.0, seen


def test_zoom_keeps_a_coarse_point_when_its_second_look_is_unreadable(sim_cell):
    frame = sim_cell(task=TASK, seed=0).camera.capture()
    coarse = json.loads(LocalBrain().point(frame))

    class Unreadable(_Scripted):
        def point(self, frame, queries=None, limit=10):
            if queries:  # the second look, in a crop
                return '[{"point": [2000, 1], "label": "blue block"}]'
            return super().point(frame, queries, limit)

    zoomed = json.loads(ZoomBrain(Unreadable(list, lambda b: [{"box_2d": [9, 9, 1, 1],
                                                               "label": "x"}])).point(frame))
    assert zoomed == coarse


def _relabelled(perception: Perception, label: str, new_label: str) -> Perception:
    """The perception with one point's label confused (its box keeps the true label, as a model
    confuses each entry on its own)."""
    points = [Point(point=p.point, label=new_label) if p.label == label else p
              for p in perception.points]
    return perception.model_copy(update={"points": points, "warnings": []})


def test_a_bowl_called_a_block_is_grounded_as_the_bowl_its_shape_shows(sim_cell):
    for seed in (0, 1):
        frame, perception, truth = _looked(sim_cell, seed)
        confused = _relabelled(perception, "orange bowl", "orange block")
        objects = locate_objects(confused, frame)
        assert "orange block" not in [o.label for o in objects]
        bowl = _one(objects, "orange bowl")  # the kind follows the shape
        assert _xy_error(bowl, truth["orange bowl"]) < 4.0, bowl.position_mm  # its opening
        assert bowl.position_mm[2] < 12.0 and 55.0 < bowl.radius_mm < 75.0  # floor, rim
        assert confused.warnings == ["the 'orange block' looks like a container (a rim around a "
                                     "lower floor); treated as the 'orange bowl'"]
        (transfer,) = transfers_for(TASK, objects)  # so the plan lets go over its centre
        assert math.dist(transfer.spot, truth["orange bowl"][:2]) < 4.0


def test_a_block_called_a_bowl_is_grounded_as_the_solid_its_shape_shows(sim_cell):
    frame, perception, truth = _looked(sim_cell)
    confused = _relabelled(perception, "blue block", "blue bowl")
    objects = locate_objects(confused, frame)
    block = _one(objects, "blue block")
    assert "blue bowl" not in [o.label for o in objects]
    assert _xy_error(block, truth["blue block"]) < 3.0 and abs(block.position_mm[2]
                                                               - BLOCK_TOP_MM) < 3.0
    assert confused.warnings == ["the 'blue bowl' looks like a solid (a flat top across it), no "
                                 "container; treated as the 'blue block'"]


def test_blocks_in_bowls_on_blocks_and_under_the_arm_keep_their_kind(sim_cell):
    """Shapes that must not flip a label: a block standing in a bowl (of another colour, and of
    its own), a block on another, a block the lowered arm half hides."""
    for task, seed in ((TASK, 1), ("sort the blocks into the bowls of matching colour", 0)):
        cell = sim_cell(task=task, seed=seed)
        world, truth = cell.robot.world, _truth(cell)
        blocks = sorted(k for k in truth if k.endswith("block"))
        bowls = sorted(k for k in truth if k.endswith("bowl"))
        inside = (blocks[0], bowls[0]) if task == TASK else (blocks[0], blocks[0][:-5] + "bowl")
        moves = {inside[0]: truth[inside[1]][:2] + np.array([35, 0]),
                 blocks[-1]: truth[blocks[1]][:2]}
        for label, (x, y) in moves.items():
            pb.resetBasePositionAndOrientation(
                world.bodies[world.labels.index(label)],
                (x / 1000, y / 1000, 0.03 if label == inside[0] else 0.065), (0, 0, 0, 1),
                physicsClientId=world.client)
        world.settle_objects()
        staged = _truth(cell)
        assert staged[blocks[-1]][2] > 55  # stacked on the other block
        assert math.dist(staged[blocks[-1]][:2], staged[blocks[1]][:2]) < 15
        hidden = staged[blocks[1]]
        cell.robot.move_to(ToolPose(x=hidden[0] / 1000 + 0.02, y=hidden[1] / 1000, z=0.12,
                                    yaw=0.0))
        frame = cell.camera.capture()
        perception = perceive(LocalBrain(), frame)
        objects = locate_objects(perception, frame)
        assert not [w for w in perception.warnings if "looks like" in w], perception.warnings
        assert sorted(o.label for o in objects) == sorted(p.label for p in perception.points)
        seen = _one(objects, inside[0])  # grounded on its own top, standing on the bowl's floor
        assert _xy_error(seen, _truth(cell)[inside[0]]) < 4.0, seen.position_mm
