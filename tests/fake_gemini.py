"""A Gemini-compatible HTTP server on loopback for tests: the real google-genai SDK talks to it
through `base_url`, it records every request, and it answers from a script or a responder
(`model_like` plays the model from the request alone)."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from erarm.agent.brains.local import LocalBrain
from erarm.agent.brains.local.rule_planner import plan_text
from erarm.agent.parse import parse_boxes, parse_plan, parse_points
from erarm.agent.schemas import SceneObject, function_call
from erarm.robots.base import Frame
from erarm.sim.camera import CameraSetup, calibration
from erarm.sim.emulator.replies import calls_body, error_body, rate_limit_body, text_body


def _b64decode(text: str) -> bytes:
    """The SDK sends URL-safe base64 without padding; the REST docs show the standard kind."""
    text = text.replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict is sent as JSON, a str as it is
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict
    received: float = field(default_factory=time.perf_counter)
    answered: float = 0.0

    @property
    def key(self) -> str:
        """The API key the client sent (a hostile server may echo it back)."""
        return self.headers.get("x-goog-api-key", "")

    @property
    def model(self) -> str:
        match = re.search(r"/models/([^/:]+):generateContent", self.path)
        return match[1] if match else ""

    @property
    def parts(self) -> list[dict]:
        return [p for c in self.body.get("contents", []) for p in c.get("parts", [])]

    @property
    def prompt(self) -> str:
        return "\n".join(p["text"] for p in self.parts if "text" in p)

    @property
    def images(self) -> list[tuple[str, bytes]]:
        found = []
        for part in self.parts:
            inline = part.get("inlineData") or part.get("inline_data")
            if inline:
                mime = inline.get("mimeType") or inline.get("mime_type")
                found.append((mime, _b64decode(inline["data"])))
        return found

    def image(self, index: int = 0) -> np.ndarray:
        """The request's image as RGB pixels."""
        data = np.frombuffer(self.images[index][1], np.uint8)
        return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    @property
    def function_responses(self) -> list[dict]:
        """The function responses of the request's last turn, as sent."""
        contents = self.body.get("contents") or [{}]
        return [p["functionResponse"] for p in contents[-1].get("parts", [])
                if "functionResponse" in p]

    @property
    def model_turns(self) -> list[dict]:
        """The model's earlier turns, as the client sent them back."""
        return [c for c in self.body.get("contents", []) if c.get("role") == "model"]

    @property
    def declares_tools(self) -> bool:
        return bool(self.body.get("tools"))

    @property
    def generation_config(self) -> dict:
        return self.body.get("generationConfig", {})

    @property
    def thinking(self) -> dict:
        config = self.generation_config.get("thinkingConfig", {})
        return {re.sub(r"_(\w)", lambda m: m[1].upper(), k): v for k, v in config.items()}


def text_reply(text: str, finish: str = "STOP") -> Reply:
    return Reply(body=text_body(text, finish))


def calls_reply(*calls: dict, text: str = "", signature: str = "c2lnbmVk") -> Reply:
    """A model turn that calls functions: each call {"name", "args"[, "id"]}."""
    return Reply(body=calls_body(text, list(calls), signature))


def safety_reply(category: str, probability: str) -> Reply:
    return Reply(body={"candidates": [{"finishReason": "SAFETY", "safetyRatings": [
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
        {"category": category, "probability": probability, "blocked": True}]}]})


def blocked_prompt_reply(reason: str, category: str, probability: str) -> Reply:
    return Reply(body={"promptFeedback": {"blockReason": reason, "safetyRatings": [
        {"category": category, "probability": probability, "blocked": True}]}})


def error_reply(status: int, message: str, state: str = "") -> Reply:
    return Reply(status=status, body=error_body(status, message, state))


def rate_limit_reply(retry_delay: str) -> Reply:
    return Reply(status=429, body=rate_limit_body(retry_delay))


class FakeGemini:
    """Answers POST .../models/{model}:generateContent; scripted replies first, then the
    responder, then a 500 saying the test forgot to script a reply."""

    def __init__(self, responder: Callable[[Request], Reply] | None = None):
        self.requests: list[Request] = []
        self.replies: deque[Reply] = deque()
        self.responder = responder
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                request = Request(path=self.path, headers=dict(self.headers),
                                  body=json.loads(raw or b"{}"))
                fake.requests.append(request)
                reply = fake._next(request)
                time.sleep(reply.delay_s)
                payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                request.answered = time.perf_counter()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload.encode())))
                    self.end_headers()
                    self.wfile.write(payload.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def _next(self, request: Request) -> Reply:
        if self.replies:
            return self.replies.popleft()
        if self.responder:
            return self.responder(request)
        return error_reply(500, "the test scripted no reply for this request")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


SIM_CALIBRATION = calibration(CameraSetup())


def _planned(prompt: str):
    """The local planner's plan for the task and objects a planning prompt lists."""
    task = re.search(r"<task>(.*?)</task>", prompt)[1]
    objects = [SceneObject(label=m[1], point=(0, 0), radius_mm=float(m[5]) / 2,
                           position_mm=(float(m[2]), float(m[3]), float(m[4])))
               for m in re.finditer(r"^- (.+): (-?\d+), (-?\d+) \(top (-?\d+) mm, (\d+) mm "
                                    r"across\)$", prompt, re.MULTILINE)]
    return parse_plan(plan_text(task, objects))


def _tool_turn(request) -> Reply:
    """The docs' tool loop at its simplest: every call of the plan in the first turn, then a
    sentence once their results are back."""
    if request.model_turns:
        return text_reply("The task is done: the block is in the bowl.")
    calls = [{**function_call(c), "id": f"call-{i}"}
             for i, c in enumerate(_planned(request.prompt).calls)]
    return calls_reply(*calls, text="I will pick it up and put it in the bowl.")


def model_like(request) -> Reply:
    """Answers like a Robotics-ER model would, from the request alone."""
    prompt = request.prompt
    eyes = LocalBrain()
    if request.declares_tools:
        return _tool_turn(request)
    if "Has the task been completed" in prompt:
        return text_reply('{"done": true, "reason": "the block sits in the bowl"}')
    if "You are a robotic arm" in prompt:
        plan = _planned(prompt)
        return text_reply(json.dumps({"reasoning": plan.reasoning, "calls": plan.as_json()}))
    frame = Frame(rgb=request.image(), calibration=SIM_CALIBRATION)
    if "Return bounding boxes" in prompt:
        return text_reply(eyes.detect(frame))
    if "give each one's bounding box" in prompt:  # a point and a box per object
        boxes = {b.label: b.box_2d for b in parse_boxes(eyes.detect(frame))}
        return text_reply(json.dumps([{**p.model_dump(), "box_2d": boxes[p.label]}
                                      for p in parse_points(eyes.point(frame))
                                      if p.label in boxes]))
    if "points for the trajectory" in prompt:
        count = int(re.search(r"then (\d+) points", prompt)[1])
        seen = {p.label: np.array(p.point) for p in parse_points(eyes.point(frame))}
        start = next(v for k, v in seen.items() if k.endswith("block"))
        end = seen[re.search(r"into the (\w+ bowl)", prompt)[1]]
        path = [start + (end - start) * i / count - [120 * np.sin(np.pi * i / count), 0]
                for i in range(count + 1)]
        return text_reply(json.dumps([{"point": [round(y), round(x)], "label": str(i)}
                                      for i, (y, x) in enumerate(path)]))
    return text_reply(eyes.point(frame))
