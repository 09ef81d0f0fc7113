"""False alarms and misses of the calibration fit check, measured in the simulator.

Over many seeds (cycling through the benchmark scenarios, the hard one's camera bumped with its
calibration exact), the check must pass the exact calibration every time. On the same frames it
must refuse every calibration edited by 10 mm along x, y or z or turned by 1 degree about x, y or
z (base axes, about the camera's centre, either sign); on every tenth seed the camera itself is
bumped that way while the calibration stays the exact one. Reports the check's time per run (the
first check of a run, which also loads the robot's model), on the wall clock and in CPU time.

    python scripts/bench_fit_check.py [--seeds 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from erarm.agent.calibrate import CalibratedCamera, check_fit
from erarm.robots.base import CameraCalibration, Frame
from erarm.robots.registry import open_workcell
from erarm.sim.tasks import SCENARIOS
from erarm.sim.transforms import rodrigues

SHIFT_MM, TURN_DEG = 10.0, 1.0


def errors() -> list[tuple[str, tuple[float, float, float], tuple[float, float, float]]]:
    """Every single-axis shift and turn, both signs: (name, shift mm, turn degrees)."""
    cases = []
    for axis, name in enumerate("xyz"):
        for sign in (1, -1):
            vector = np.zeros(3)
            vector[axis] = sign
            cases.append((f"{sign * SHIFT_MM:+.0f} mm {name}", tuple(vector * SHIFT_MM),
                          (0.0, 0.0, 0.0)))
            cases.append((f"{sign * TURN_DEG:+.0f} deg about {name}", (0.0, 0.0, 0.0),
                          tuple(vector * TURN_DEG)))
    return cases


def edited(calibration: CameraCalibration, shift_mm, turn_deg) -> CameraCalibration:
    """The calibration with its camera moved and turned about its own centre (base axes), the
    way the simulator bumps its camera."""
    pose = calibration.pose().copy()
    pose[:3, :3] = rodrigues(*np.radians(turn_deg)) @ pose[:3, :3]
    pose[:3, 3] += np.asarray(shift_mm) / 1000
    return calibration.model_copy(update={"camera_to_base": pose.tolist()})


def measure(seeds: int) -> dict:
    names = list(SCENARIOS)
    false_alarms, missed, bump_missed, timings, cpu, bumps = [], [], [], [], [], 0
    for seed in range(seeds):
        scenario = names[seed % len(names)]
        with open_workcell("sim", scenario=scenario, seed=seed) as cell:
            frame = cell.camera.capture()
            clock, cpu_clock = time.perf_counter(), time.process_time()
            report = check_fit(frame, cell.robot.limits, cell.robot)
            timings.append((time.perf_counter() - clock) * 1000)
            cpu.append((time.process_time() - cpu_clock) * 1000)
            if not report.fits:
                false_alarms.append({"seed": seed, "scenario": scenario,
                                     "problem": report.problem})
            for name, shift, turn in errors():
                moved = Frame(rgb=frame.rgb, depth_m=frame.depth_m,
                              calibration=edited(frame.calibration, shift, turn))
                if check_fit(moved, cell.robot.limits, cell.robot).fits:
                    missed.append({"seed": seed, "scenario": scenario, "edit": name})
            exact = frame.calibration
        if seed % 10:
            continue
        for name, shift, turn in errors():  # the camera bumped, the calibration kept
            bumps += 1
            with open_workcell("sim", scenario=scenario, seed=seed, camera_offset_mm=shift,
                               camera_rotation_deg=turn) as bumped:
                view = CalibratedCamera(bumped.camera, exact).capture()
                if check_fit(view, bumped.robot.limits, bumped.robot).fits:
                    bump_missed.append({"seed": seed, "scenario": scenario, "bump": name})
    return {"seeds": seeds, "false_alarms": false_alarms,
            "edited_checked": seeds * len(errors()), "edited_missed": missed,
            "bumps_checked": bumps, "bumps_missed": bump_missed,
            "check_ms_median": statistics.median(timings), "check_ms_max": max(timings),
            "check_cpu_ms_median": statistics.median(cpu)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.seeds)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"exact calibration refused: {len(result['false_alarms'])} of {result['seeds']} seeds")
    print(f"edited by 10 mm / 1 degree, passed: {len(result['edited_missed'])} of "
          f"{result['edited_checked']}")
    print(f"camera bumped by 10 mm / 1 degree, passed: {len(result['bumps_missed'])} of "
          f"{result['bumps_checked']}")
    print(f"check time: median {result['check_ms_median']:.0f} ms, max "
          f"{result['check_ms_max']:.0f} ms wall; median {result['check_cpu_ms_median']:.0f} ms "
          "CPU")
    for row in result["false_alarms"] + result["edited_missed"] + result["bumps_missed"]:
        print("  ", row)


if __name__ == "__main__":
    main()
