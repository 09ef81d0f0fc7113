"""A Gemini-compatible HTTP server on loopback for tests: the real google-genai SDK talks to it
through `base_url`, it records every request, and it answers from a script or a responder."""

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


def _b64decode(text: str) -> bytes:
    """The SDK sends URL-safe base64 without padding; the REST docs show the standard kind."""
    text = text.replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict is sent as JSON, a str as it is
    delay_s: float = 0.0


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict
    received: float = field(default_factory=time.perf_counter)
    answered: float = 0.0

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
    def generation_config(self) -> dict:
        return self.body.get("generationConfig", {})

    @property
    def thinking(self) -> dict:
        config = self.generation_config.get("thinkingConfig", {})
        return {re.sub(r"_(\w)", lambda m: m[1].upper(), k): v for k, v in config.items()}


def text_reply(text: str, finish: str = "STOP") -> Reply:
    return Reply(body={"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                       "finishReason": finish}]})


def safety_reply(category: str, probability: str) -> Reply:
    return Reply(body={"candidates": [{"finishReason": "SAFETY", "safetyRatings": [
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
        {"category": category, "probability": probability, "blocked": True}]}]})


def blocked_prompt_reply(reason: str, category: str, probability: str) -> Reply:
    return Reply(body={"promptFeedback": {"blockReason": reason, "safetyRatings": [
        {"category": category, "probability": probability, "blocked": True}]}})


def error_reply(status: int, message: str, state: str = "") -> Reply:
    state = state or {404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                      401: "UNAUTHENTICATED", 400: "INVALID_ARGUMENT"}.get(status, "UNKNOWN")
    return Reply(status=status, body={"error": {"code": status, "message": message,
                                                "status": state}})


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
