"""The emulator's Live API endpoint: Gemini Robotics-ER 2 Streaming's WebSocket session, as the
google-genai SDK's Live client speaks it, so `erarm live --emulate` runs with no key and no
network.

The SDK opens only WSS, so the endpoint serves TLS with a certificate made at start for
127.0.0.1 (by `cryptography`, which google-auth already brings); the client trusts it through
`ca_file`. A connection's URL carries the session (`/s/{session}/ws/...`), whose truth the
simulator feeds as for REST. The model's side is the tool-loop dialect's (`tool_loop.answer`):
the live conversation is kept as the REST history would be (the system instruction and each
command as the user's text, each toolCall as a model turn with its thought signature, each
toolResponse as the user's function responses), so the emulated model plans, errs and corrects
itself as it does over REST. It does the scene's task whatever a command says (it reads the
scene, not the words), and it takes any speech for a command.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import random
import re
import ssl
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection, serve

from erarm.sim.emulator import tool_loop
from erarm.sim.emulator.replies import calls_body
from erarm.sim.emulator.settings import EmulatorSettings
from erarm.sim.emulator.truth import SceneTruth
from erarm.sim.emulator.whole_plan import Mistakes

_PATH = re.compile(r"^(?:/s/([^/]+))?/ws/")


def _certificate(folder: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for `host` (an IP address), and its key, as PEM files."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "erarm emulator")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "emulator-cert.pem", folder / "emulator-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class LiveEndpoint:
    """Serves WSS on `host` (any free port) from construction until `close`."""

    def __init__(self, settings: EmulatorSettings, truth_of: Callable[[str], SceneTruth | None],
                 made: Callable[[Counter[str]], None]):
        self.settings, self._truth_of, self._made = settings, truth_of, made
        self._folder = tempfile.TemporaryDirectory(prefix="erarm-emulator-")
        self.ca_file, key_file = _certificate(Path(self._folder.name), settings.host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._loop = asyncio.new_event_loop()
        self._connections = 0
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(context, started),
                                        daemon=True, name="erarm-emulator-live")
        self._thread.start()
        started.wait(10)

    def url(self, session: str) -> str:
        """The base_url a Live client is given (the SDK makes it wss://)."""
        return f"https://{self.settings.host}:{self.port}/s/{session}"

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)
        self._folder.cleanup()

    def _serve(self, context: ssl.SSLContext, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            async with serve(self._converse, self.settings.host, 0, ssl=context,
                             max_size=2 ** 24) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                started.set()
                await self._stop.wait()

        self._loop.run_until_complete(main())

    async def _converse(self, connection: ServerConnection) -> None:
        match = _PATH.match(connection.request.path or "")
        session = (match and match[1]) or "default"
        self._connections += 1
        conversation = _Conversation(session, self._connections)
        try:
            async for raw in connection:
                for reply in self._answer(conversation, json.loads(raw)):
                    latency = self.settings.latency_s(conversation.rng)
                    if latency > 0:
                        await asyncio.sleep(latency)
                    await connection.send(json.dumps(reply))
        except Exception:  # the client went away, or sent what is not JSON: the session ends
            return

    def _answer(self, conversation: _Conversation, message: dict) -> list[dict]:
        if "setup" in message:
            setup = message["setup"]
            conversation.tools = setup.get("tools") or []
            conversation.instruction = " ".join(
                p.get("text", "") for p in (setup.get("systemInstruction") or {}).get("parts", []))
            return [{"setupComplete": {}}]
        realtime = message.get("realtimeInput") or message.get("realtime_input") or {}
        responses = message.get("toolResponse") or message.get("tool_response")
        if realtime.get("text") or realtime.get("audioStreamEnd") or realtime.get(
                "audio_stream_end"):
            command = realtime.get("text") or "(the operator spoke)"
            conversation.contents.append({"role": "user", "parts": [
                {"text": f"{conversation.instruction}\n\nThe operator: {command}"}]})
            return self._turn(conversation)
        if responses:
            answered = responses.get("functionResponses") or responses.get(
                "function_responses") or []
            conversation.contents.append({"role": "user", "parts": [
                {"functionResponse": {"name": r.get("name"), "id": r.get("id"),
                                      "response": r.get("response") or {}}} for r in answered]})
            return self._turn(conversation)
        return []  # frames and audio chunks: watched, not answered

    def _turn(self, conversation: _Conversation) -> list[dict]:
        truth = self._truth_of(conversation.session)
        if truth is None:
            return [{"serverContent": {"modelTurn": {"parts": [{"text": (
                "The emulator has no scene for this session yet.")}]}, "turnComplete": True}}]
        conversation.turns += 1
        rng = random.Random(f"{self.settings.seed}/{conversation.session}/live/"
                            f"{conversation.number}/{conversation.turns}")
        conversation.rng = rng
        mistakes = Mistakes(rng, self.settings)
        body = {"contents": conversation.contents, "tools": conversation.tools}
        try:
            turn = tool_loop.answer(truth, body, mistakes)
        except tool_loop.HistoryError as err:
            return [{"serverContent": {"modelTurn": {"parts": [{"text": str(err)}]},
                                       "turnComplete": True}}]
        self._made(mistakes.made)
        conversation.contents.append(calls_body(turn.text, turn.calls,
                                                turn.signature)["candidates"][0]["content"])
        if turn.calls:
            return [{"toolCall": {"functionCalls": turn.calls}}]
        return [{"serverContent": {"modelTurn": {"parts": [{"text": turn.text}]},
                                   "turnComplete": True}}]


class _Conversation:
    def __init__(self, session: str, number: int):
        self.session, self.number = session, number
        self.contents: list[dict[str, Any]] = []
        self.tools: list[dict] = []
        self.instruction = ""
        self.turns = 0
        self.rng = random.Random(number)
