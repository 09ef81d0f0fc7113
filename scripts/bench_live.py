"""Measure `erarm live` through the real google-genai Live client against the emulator's Live API
endpoint (WSS on loopback; the emulated model errs as in the benches): frame-to-request latency,
frames sent per second, and the time from a typed "stop" to the simulated arm at rest.

- frame-to-request latency: from the camera's frame in hand (capture started) to its message
  written to the socket (JPEG encoding, the hop to the session's thread, the SDK, TLS).
- frames per second: frames sent over a session's wall time, while the model works the arm (no
  frame goes out in the middle of a robot call) and while it only watches.
- stop to halt: from "stop" reaching erarm (the command source hands it over) to the arm at rest
  (the robot's stop returned; the simulator halts within its next control step).

Usage:

    python scripts/bench_live.py --sessions 10 [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from erarm.agent.bench import percentile
from erarm.agent.brains import EMULATOR_KEY
from erarm.agent.brains.gemini_live import LiveLink
from erarm.agent.brains.local import LocalBrain
from erarm.agent.live_input import Command
from erarm.agent.orchestration.live import LiveOptions
from erarm.agent.run import run_live
from erarm.robots.registry import open_workcell
from erarm.sim.emulator import Emulator
from erarm.sim.emulator.settings import EmulatorSettings

TASK = "pick the blue block into the orange bowl"


class TimedCamera:
    """The cell's camera, noting when each frame is in hand."""

    def __init__(self, camera):
        self.camera, self.name, self.captured = camera, camera.name, []

    def capture(self):
        frame = self.camera.capture()
        self.captured.append(time.perf_counter())
        return frame

    def close(self):
        self.camera.close()


class TimedLink(LiveLink):
    """The Live client, noting when each frame is handed to it and when the SDK has written its
    message to the socket."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.handed: list[float] = []
        self.written: list[float] = []

    def send_frame(self, jpeg: bytes, wait_s: float = 0.05) -> threading.Event:
        self.handed.append(time.perf_counter())
        written = super().send_frame(jpeg, wait_s)
        written.wait()
        self.written.append(time.perf_counter())
        return written


class Script:
    """Commands for one session: the task, then "stop" once the arm has made `stop_after`
    motions (or, with None, nothing more)."""

    source = "file"

    def __init__(self, robot, stop_after: int | None, watch: bool):
        self.robot, self.stop_after, self.watch = robot, stop_after, watch
        self.stop_sent: float | None = None

    def start(self, arrive) -> None:
        def speak() -> None:
            arrive(Command(text="tell me what you see" if self.watch else TASK,
                           source=self.source))
            if self.stop_after is not None:
                while self.robot.moves < self.stop_after:
                    time.sleep(0.005)
                self.stop_sent = time.perf_counter()
                arrive(Command(text="stop", source="typed"))
            else:
                arrive(None)

        threading.Thread(target=speak, daemon=True).start()


class CountingRobot:
    """The robot, counting motions and noting when a stop returned."""

    def __init__(self, robot):
        self._robot, self.moves, self.stopped = robot, 0, None

    def __getattr__(self, name):
        return getattr(self._robot, name)

    def move_to(self, pose):
        report = self._robot.move_to(pose)
        self.moves += 1
        return report

    def stop(self):
        self._robot.stop()
        self.stopped = time.perf_counter()


def session(emulator: Emulator, seed: int, out: Path, stop_after: int | None,
            watch: bool) -> dict:
    name = f"bench-live-{seed}-{stop_after}-{watch}"
    url, ca_file = emulator.live_url(name)
    cell = open_workcell("sim", task=TASK, seed=seed, emulator=emulator.session_url(name))
    cell.robot.connect()
    robot = CountingRobot(cell.robot)
    cell.robot = robot
    camera = cell.camera = TimedCamera(cell.camera)
    script = Script(robot, stop_after, watch)

    links: list[TimedLink] = []

    def connect(instruction, watch_events, moves):
        links.append(TimedLink(EMULATOR_KEY, system_instruction=instruction, base_url=url,
                               ca_file=ca_file, watch=watch_events, moves=moves))
        return links[0]

    try:
        result = run_live(LocalBrain(), cell, out / name, connect, script,
                          live=LiveOptions(watch_s=6.0 if watch else 0.0))
    finally:
        cell.close()
    # each frame sent is the last capture before it was handed over (a look captures too)
    frames = [max(c for c in camera.captured if c <= handed) for handed in links[0].handed]
    return {"result": result, "frames": frames, "written": links[0].written,
            "stop_sent": script.stop_sent,
            "stopped": robot.stopped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--latency-s", type=float, default=0.0,
                        help="the emulated model's median answer time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    latencies, working_fps, watching_fps, halts = [], [], [], []
    with tempfile.TemporaryDirectory() as folder, Emulator(EmulatorSettings(
            latency_median_s=args.latency_s)) as emulator:
        for seed in range(args.sessions):
            for stop_after, watch in ((None, False), (None, True), (3, False)):
                run = session(emulator, seed, Path(folder), stop_after, watch)
                if stop_after is not None:
                    if run["stopped"] and run["stop_sent"]:
                        halts.append(run["stopped"] - run["stop_sent"])
                    continue
                (watching_fps if watch else working_fps).append(run["result"].live.frames_per_s)
                latencies += [w - c for c, w in zip(run["frames"], run["written"], strict=False)]
    report = {
        "sessions": args.sessions,
        "frame_to_request_ms": {"median": 1000 * statistics.median(latencies),
                                "p95": 1000 * percentile(latencies, 0.95),
                                "frames": len(latencies)},
        "frames_per_s": {"working": statistics.median(working_fps),
                         "watching": statistics.median(watching_fps)},
        "stop_to_halt_ms": {"median": 1000 * statistics.median(halts),
                            "max": 1000 * max(halts), "stops": len(halts)},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    f, h = report["frame_to_request_ms"], report["stop_to_halt_ms"]
    print(f"frame to request: median {f['median']:.1f} ms, p95 {f['p95']:.1f} ms "
          f"({f['frames']} frames)")
    print(f"frames per second: {report['frames_per_s']['working']:.2f} while working the arm, "
          f"{report['frames_per_s']['watching']:.2f} while watching")
    print(f"stop to halt: median {h['median']:.1f} ms, max {h['max']:.1f} ms ({h['stops']} "
          "stops)")


if __name__ == "__main__":
    main()
