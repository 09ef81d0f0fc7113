"""A Live-API-compatible WebSocket server on loopback for tests: the real google-genai SDK connects
to it over WSS (its certificate from a throwaway authority, trusted through SSL_CERT_FILE), it
records every message the client sends, with when, and it answers from a responder: a function of
each client message returning the server messages to send back. Tests can also push a message at
any moment (`goAway`) or drop the connection. Several sessions may be open at once (a physical
arm's watching session and its rehearsals): each message says which sent it, and the replies go
back to that one."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from websockets.asyncio.server import ServerConnection, serve

# the SDK writes some protocol fields in snake_case, which the API accepts as well as camelCase
PROTOCOL_KEYS = {"realtime_input": "realtimeInput", "tool_response": "toolResponse",
                 "function_responses": "functionResponses", "mime_type": "mimeType",
                 "client_content": "clientContent", "audio_stream_end": "audioStreamEnd",
                 "turn_complete": "turnComplete"}


def _camel(value: Any) -> Any:
    """Protocol keys in camelCase, at any depth; what the client wrote inside a function's
    response (its own field names) stays as it is."""
    if isinstance(value, list):
        return [_camel(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {PROTOCOL_KEYS.get(k, k): v if k in ("response", "args") else _camel(v)
            for k, v in value.items()}


@dataclass
class Received:
    message: dict
    session: int = 1  # which connection sent it, counted from 1
    t: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.message = _camel(self.message)

    @property
    def kind(self) -> str:
        return next(iter(self.message), "")

    @property
    def realtime(self) -> dict:
        return self.message.get("realtimeInput") or {}


Responder = Callable[[Received, "FakeLive"], list[dict]]


def _b64decode(text: str) -> bytes:
    text = text.replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tool_call(*calls: dict) -> dict:
    """A toolCall message: each call {"name", "args"[, "id"]}; ids are made up when missing."""
    return {"toolCall": {"functionCalls": [
        {"id": call.get("id", f"fc-{i}-{call['name']}"), "name": call["name"],
         "args": call.get("args", {})} for i, call in enumerate(calls)]}}


def text_turn(text: str) -> dict:
    return {"serverContent": {"modelTurn": {"parts": [{"text": text}]}, "turnComplete": True}}


def heard(text: str) -> dict:
    return {"serverContent": {"inputTranscription": {"text": text}}}


def go_away(time_left: str = "5s") -> dict:
    return {"goAway": {"timeLeft": time_left}}


class FakeLive:
    def __init__(self, responder: Responder | None = None):
        self.responder = responder or (lambda received, server: [])
        self.authority = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.received: list[Received] = []
        self.path = ""
        self.headers: dict[str, str] = {}
        self.connected = threading.Event()
        self._sessions = 0
        self._connection: ServerConnection | None = None
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(context, started), daemon=True)
        self._thread.start()
        started.wait(10)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def trust(self, folder: Path) -> Path:
        """The authority's certificate as a PEM file, for SSL_CERT_FILE."""
        path = folder / "fake-live-ca.pem"
        self.authority.cert_pem.write_to_path(str(path))
        return path

    @property
    def setup(self) -> dict:
        return next(iter(self.setups.values()), {})

    @property
    def setups(self) -> dict[int, dict]:
        """Each session's setup message, by session."""
        return {r.session: r.message["setup"] for r in self.received if r.kind == "setup"}

    def sent(self, kind: str) -> list[Received]:
        """What the client sent as realtime input of this kind (video, text, audio...)."""
        return [r for r in self.received if kind in r.realtime]

    def frames(self) -> list[tuple[float, str, bytes]]:
        return [(r.t, r.realtime["video"]["mimeType"], _b64decode(r.realtime["video"]["data"]))
                for r in self.sent("video")]

    def audio(self) -> list[tuple[str, bytes]]:
        """Each audio chunk sent: its MIME type and its bytes."""
        return [(r.realtime["audio"]["mimeType"], _b64decode(r.realtime["audio"]["data"]))
                for r in self.sent("audio")]

    def function_responses(self) -> list[dict]:
        return [f for r in self.received if r.kind == "toolResponse"
                for f in r.message["toolResponse"]["functionResponses"]]

    def push(self, message: dict) -> None:
        """Send a server message now (from the test's thread)."""
        asyncio.run_coroutine_threadsafe(self._send(message), self._loop).result(5)

    def drop(self) -> None:
        """Cut the connection without a closing handshake."""
        def cut() -> None:
            if self._connection is not None:
                self._connection.transport.abort()
        self._loop.call_soon_threadsafe(cut)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    # -- the server's thread ---------------------------------------------------------------
    def _serve(self, context: ssl.SSLContext, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            async with serve(self._handle, "127.0.0.1", 0, ssl=context) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                started.set()
                await self._stop.wait()

        self._loop.run_until_complete(main())

    async def _send(self, message: dict) -> None:
        """To the session that connected last."""
        if self._connection is not None:
            await self._connection.send(json.dumps(message))

    async def _handle(self, connection: ServerConnection) -> None:
        self._connection = connection
        self._sessions += 1
        session = self._sessions
        self.path = connection.request.path
        self.headers = {k.lower(): v for k, v in connection.request.headers.raw_items()}
        self.connected.set()
        try:
            async for raw in connection:
                received = Received(json.loads(raw), session)
                self.received.append(received)
                if received.kind == "setup":
                    await connection.send(json.dumps({"setupComplete": {}}))
                    continue
                for reply in self.responder(received, self):
                    await connection.send(json.dumps(reply))
        except Exception:  # the client went away: the test reads what it sent
            return


def respond_to_commands(*turns: list[dict]) -> Responder:
    """A responder that answers each text or audio command with the next turn's messages, and
    each tool response with a closing text turn once the command's calls are all answered."""
    script = list(turns)
    pending: list[Any] = []

    def respond(received: Received, server: FakeLive) -> list[dict]:
        if "text" in received.realtime or received.realtime.get("audioStreamEnd"):
            if not script:
                return [text_turn("I have nothing more to do.")]
            turn = script.pop(0)
            pending[:] = [m for m in turn[1:]]
            return turn[:1]
        if received.kind == "toolResponse":
            if pending:
                return [pending.pop(0)]
            return [text_turn("Done.")]
        return []

    return respond
