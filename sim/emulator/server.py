"""The emulator's HTTP server: Gemini's REST generateContent endpoint (what the google-genai SDK
calls through `base_url`) and the simulator's truth feed, per session.

A session is a URL prefix, /s/{session}: one sim cell PUTs its truth to {session}/erarm/truth
and the agent driving that cell uses {session} as its base_url. Requests without the prefix use
the session "default"."""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from erarm.sim.emulator import tool_loop, whole_plan
from erarm.sim.emulator.replies import calls_body, error_body, rate_limit_body, text_body
from erarm.sim.emulator.settings import EmulatorSettings
from erarm.sim.emulator.truth import SceneTruth

if TYPE_CHECKING:
    from erarm.sim.emulator.live import LiveEndpoint

_GENERATE = re.compile(r"^(?:/s/([^/]+))?/[^/]+/models/([^/:]+):generateContent$")
_TRUTH = re.compile(r"^(?:/s/([^/]+))?/erarm/truth$")
RATE_WINDOW_S = 60.0


class EmulatorStats(BaseModel):
    requests: dict[str, int]  # generateContent requests answered, per question kind
    rate_limited: int  # 429s sent
    errors: dict[str, int]  # errors injected, per kind (miss, confusion, malformed, ...)
    truths: int  # truth snapshots received


class _Session:
    def __init__(self) -> None:
        self.truth: SceneTruth | None = None
        self.asked: Counter[str] = Counter()  # questions of each kind so far


class Emulator:
    """Serves on settings.host:settings.port (0: any free port) from construction until
    close(); a context manager. `clock` and `sleep` are for tests (the rate budget's clock, the
    latency's wait)."""

    def __init__(self, settings: EmulatorSettings | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.settings = settings or EmulatorSettings()
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._recent: deque[float] = deque()  # when requests within the rate window came
        self._requests: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._rate_limited = 0
        self._truths = 0
        self._live: LiveEndpoint | None = None
        self._server = ThreadingHTTPServer((self.settings.host, self.settings.port),
                                           self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name="erarm-emulator")
        self._thread.start()

    # -- the public face ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def session_url(self, session: str) -> str:
        """A base_url for google-genai, and the truth feed's URL for one sim cell."""
        if not re.fullmatch(r"[A-Za-z0-9._-]+", session):
            raise ValueError(f"a session name is letters, digits, '.', '_' or '-': {session!r}")
        return f"{self.url}/s/{session}"

    def live_url(self, session: str) -> tuple[str, str]:
        """A base_url for google-genai's Live client, and the CA file it must trust (the Live
        endpoint serves WSS, started on first use)."""
        self.session_url(session)  # the same rule for its name
        with self._lock:
            if self._live is None:
                from erarm.sim.emulator.live import LiveEndpoint

                self._live = LiveEndpoint(self.settings, self._truth_of, self._made)
        return self._live.url(session), str(self._live.ca_file)

    def _truth_of(self, session: str) -> SceneTruth | None:
        with self._lock:
            return self._session(session).truth

    def _made(self, mistakes: Counter[str]) -> None:
        with self._lock:
            self._requests["live"] += 1
            self._errors.update(mistakes)

    def stats(self) -> EmulatorStats:
        with self._lock:
            return EmulatorStats(requests=dict(self._requests), rate_limited=self._rate_limited,
                                 errors=dict(self._errors), truths=self._truths)

    def close(self) -> None:
        if self._live is not None:
            self._live.close()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- answering -------------------------------------------------------------------------
    def _session(self, name: str | None) -> _Session:
        return self._sessions.setdefault(name or "default", _Session())

    def _put_truth(self, session: str | None, body: bytes) -> tuple[int, dict]:
        try:
            truth = SceneTruth.model_validate_json(body)
        except ValidationError as err:
            return 400, error_body(400, f"not a scene truth: {err.errors()[0]['msg']}")
        with self._lock:
            self._session(session).truth = truth
            self._truths += 1
        return 200, {}

    def _over_budget(self) -> float | None:
        """Seconds until the request budget has room again, or None when it has room now
        (and then this request is counted)."""
        budget = self.settings.requests_per_minute
        if not budget:
            return None
        now = self._clock()
        while self._recent and self._recent[0] <= now - RATE_WINDOW_S:
            self._recent.popleft()
        if len(self._recent) >= budget:
            return self._recent[0] + RATE_WINDOW_S - now
        self._recent.append(now)
        return None

    def _generate(self, session_name: str | None, body: dict) -> tuple[int, dict]:
        session_name = session_name or "default"
        config = body.get("generationConfig", {})
        prompt = "\n".join(part["text"] for content in body.get("contents", [])
                           for part in content.get("parts", []) if "text" in part)
        schema = config.get("responseJsonSchema")
        calling = tool_loop.declares_robot(body)
        kind = "tools" if calling else whole_plan.question_kind(prompt, schema)
        with self._lock:
            wait_s = self._over_budget()
            if wait_s is not None:
                self._rate_limited += 1
                return 429, rate_limit_body(f"{max(1, math.ceil(wait_s))}s")
            session = self._session(session_name)
            if session.truth is None:
                return 409, error_body(409, f"the emulator has no scene for session "
                                            f"{session_name!r} yet: open the simulator with "
                                            f"emulator={self.url}/s/{session_name}")
            if body.get("tools") and not calling:
                return 400, error_body(400, "the emulator's tools are the robot's functions "
                                            "(move, setGripperState, returnToOrigin)")
            count = session.asked[kind]
            session.asked[kind] += 1
            truth = session.truth
        rng = random.Random(f"{self.settings.seed}/{session_name}/{kind}/{count}")
        mistakes = whole_plan.Mistakes(rng, self.settings)
        if calling:
            try:
                turn = tool_loop.answer(truth, body, mistakes)
            except tool_loop.HistoryError as err:
                return 400, error_body(400, str(err))
            document = calls_body(turn.text, turn.calls, turn.signature)
            if mistakes.happens("max_tokens", self.settings.max_tokens_rate):
                cut = turn.text[:max(1, len(turn.text) // 2)] or "I will"
                document = text_body(cut, "MAX_TOKENS")
        else:
            reply = whole_plan.answer(kind, truth, prompt, schema is not None, mistakes)
            document = text_body(reply.text, reply.finish)
        latency_s = self.settings.latency_s(rng)
        with self._lock:
            self._requests[kind] += 1
            self._errors.update(mistakes.made)
        if latency_s > 0:
            self._sleep(latency_s)
        return 200, document

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _send(self, status: int, document: dict) -> None:
                payload = json.dumps(document).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            def do_PUT(self) -> None:
                path = self.path.split("?")[0]
                if not (match := _TRUTH.match(path)):
                    return self._send(404, error_body(404, f"no such resource: {path}"))
                self._send(*emulator._put_truth(match[1], self._body()))

            def do_POST(self) -> None:
                path = self.path.split("?")[0]
                if not (match := _GENERATE.match(path)):
                    return self._send(404, error_body(404, f"no such method: {path}"))
                try:
                    body = json.loads(self._body() or b"{}")
                except json.JSONDecodeError:
                    return self._send(400, error_body(400, "the request is not JSON"))
                self._send(*emulator._generate(match[1], body))

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
