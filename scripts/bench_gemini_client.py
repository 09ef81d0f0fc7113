"""Measure the Gemini client's own cost, against a loopback server that answers at once.

- overhead per model call, excluding the server's time: encoding the frame, building and sending
  the request through google-genai, reading the reply, parsing, validating and locating the points
- request bytes per image at the default downscale, against the raw frame

    python scripts/bench_gemini_client.py [--calls 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for the test server in tests/

from erarm.agent.bench import percentile
from erarm.agent.brains.gemini import GeminiBrain
from erarm.agent.config import GeminiSettings
from erarm.agent.images import encode_image
from erarm.agent.locate import locate_objects
from erarm.agent.parse import parse_boxes, parse_points
from erarm.agent.perceive import Perception
from erarm.robots.registry import open_workcell
from tests.fake_gemini import FakeGemini, text_reply

REPLY = json.dumps([{"point": [517, 325], "label": "blue block"},
                    {"point": [540, 584], "label": "orange bowl"},
                    {"point": [656, 753], "label": "cyan block"}])


def capture(width: int, height: int):
    from erarm.sim.camera import CameraSetup, SimCamera

    with open_workcell("sim", task="pick the blue block into the orange bowl", seed=2) as cell:
        camera = SimCamera(cell.robot.world.client, CameraSetup(width=width, height=height))
        return camera.capture()


def overhead(calls: int) -> dict:
    frame = capture(640, 480)
    server = FakeGemini(responder=lambda request: text_reply(REPLY))
    brain = GeminiBrain("bench-key", GeminiSettings(base_url=server.url))
    totals, servers, encodes, parses = [], [], [], []
    try:
        for _ in range(calls + 5):
            started = time.perf_counter()
            text = brain.point(frame)
            parsed = time.perf_counter()
            points = parse_points(text)
            locate_objects(Perception(points=points, boxes=parse_boxes("[]"), replies={}), frame)
            finished = time.perf_counter()
            request = server.requests[-1]
            totals.append(finished - started)
            servers.append(request.answered - request.received)
            parses.append(finished - parsed)
            clock = time.perf_counter()
            encode_image(frame, brain.settings.image_max_side, brain.settings.image_format)
            encodes.append(time.perf_counter() - clock)
    finally:
        server.close()
    agent = [(t - s) * 1000 for t, s in zip(totals[5:], servers[5:], strict=True)]  # warm only
    return {"calls": calls, "agent_ms_median": statistics.median(agent),
            "agent_ms_p90": percentile(agent, 0.9),
            "encode_ms_median": statistics.median(encodes[5:]) * 1000,
            "parse_locate_ms_median": statistics.median(parses[5:]) * 1000,
            "server_ms_median": statistics.median(servers[5:]) * 1000}


def request_bytes() -> list[dict]:
    rows = []
    settings = GeminiSettings()
    for width, height in ((640, 480), (1920, 1080)):
        frame = capture(width, height)
        raw = frame.rgb.nbytes
        sent, _ = encode_image(frame, settings.image_max_side, settings.image_format)
        full_jpeg, _ = encode_image(frame, 10_000, "jpeg")
        png, _ = encode_image(frame, settings.image_max_side, "png")
        rows.append({"frame": f"{width}x{height}", "raw_bytes": raw,
                     "jpeg_full_size_bytes": len(full_jpeg),
                     "sent_bytes": len(sent), "sent_base64_bytes": (len(sent) + 2) // 3 * 4,
                     "png_downscaled_bytes": len(png), "saving_vs_raw": 1 - len(sent) / raw})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = {"overhead": overhead(args.calls), "request_bytes": request_bytes()}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    o = report["overhead"]
    print(f"agent overhead per call: median {o['agent_ms_median']:.1f} ms, "
          f"p90 {o['agent_ms_p90']:.1f} ms over {o['calls']} calls "
          f"(JPEG encode {o['encode_ms_median']:.1f} ms, parse+locate "
          f"{o['parse_locate_ms_median']:.2f} ms; server {o['server_ms_median']:.2f} ms excluded)")
    for row in report["request_bytes"]:
        print(f"{row['frame']}: raw {row['raw_bytes']:,} B -> sent JPEG {row['sent_bytes']:,} B "
              f"({row['sent_base64_bytes']:,} B as base64; {row['saving_vs_raw']:.1%} saved; "
              f"JPEG at full size {row['jpeg_full_size_bytes']:,} B, PNG "
              f"{row['png_downscaled_bytes']:,} B)")


if __name__ == "__main__":
    main()
