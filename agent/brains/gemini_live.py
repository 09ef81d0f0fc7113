"""A Live API session with Gemini Robotics-ER 2 Streaming, through google-genai's Live client.

The session is a stateful WebSocket (WSS): erarm sends camera frames (JPEG, at most about one a
second), 16 kHz PCM audio and text as realtime input, and function responses; the model sends
text, function calls, cancellations and, before the server closes the session, `goAway`. The
robot's functions are declared as the tool loop declares them, the physical ones `BLOCKING`, so
the model waits for the arm before it decides its next step.

The SDK's session is asynchronous; the robot and the camera are not, and they stay on the
caller's thread. So the session runs on an event loop of its own, in a thread: what erarm sends
is queued to it, what the model says comes back as `LiveEvent`s on a queue, and each event is
also shown at once, from the session's thread, to `watch`: what cannot wait (the server going
away, the connection dropping, a spoken "stop") stops the arm wherever the caller is. Speech
sent is transcribed by the server (`heard`). Everything that comes back is redacted.
"""

from __future__ import annotations

import asyncio
import queue
import ssl
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from google import genai
from google.genai import types

from erarm.agent.brains.base import LiveEvent, LiveEventKind, ToolCall, ToolResult
from erarm.agent.brains.gemini import robot_tools
from erarm.agent.brains.gemini_conversation import redacted_args
from erarm.agent.errors import BrainUnavailable
from erarm.agent.redaction import guard, redact

STREAMING_MODEL = "gemini-robotics-er-2-streaming-preview"
AUDIO_MIME = "audio/pcm;rate=16000"  # the docs' input: raw 16-bit PCM, 16 kHz, little-endian
CONNECT_TIMEOUT_S = 20.0

Send = Callable[[Any], Coroutine[Any, Any, None]]  # one message, given the SDK's session


class LiveLink:
    """One Live session: `open` it, send, read `next_event`, `close` it. Thread-safe senders."""

    def __init__(self, api_key: str, model: str = STREAMING_MODEL, *,
                 system_instruction: str, base_url: str | None = None,
                 api_version: str = "v1beta", ca_file: str | None = None,
                 watch: Callable[[LiveEvent], None] | None = None, moves: bool = True):
        guard(api_key)
        http_options = types.HttpOptions(api_version=api_version)
        if base_url:
            http_options.base_url = base_url
        if ca_file:  # a server whose certificate is its own (the emulator's)
            http_options.async_client_args = {"ssl": ssl.create_default_context(cafile=ca_file)}
        self._client = genai.Client(api_key=api_key, http_options=http_options)
        self.model = model
        self._config = types.LiveConnectConfig(
            response_modalities=[types.Modality.TEXT],
            system_instruction=types.Content(parts=[types.Part(text=system_instruction)]),
            tools=[robot_tools(blocking=True, moves=moves)],
            input_audio_transcription=types.AudioTranscriptionConfig())
        self.watch = watch
        self._events: queue.Queue[LiveEvent] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._outbox: asyncio.Queue[Send | None] | None = None
        self._thread = threading.Thread(target=self._run, name="erarm-live", daemon=True)
        self._ready = threading.Event()
        self._failure: str | None = None
        self._closing = False

    # -- the caller's side -----------------------------------------------------------------
    def open(self) -> None:
        """Connect and set the session up; a one-line `BrainUnavailable` when it cannot."""
        self._thread.start()
        if not self._ready.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise BrainUnavailable(f"the Live API did not set the session up within "
                                   f"{CONNECT_TIMEOUT_S:g} s")
        if self._failure is not None:
            raise BrainUnavailable(f"could not open a Live API session: {self._failure}")

    def send_frame(self, jpeg: bytes, wait_s: float = 0.05) -> threading.Event:
        """Send a frame, waiting up to `wait_s` until it is written (the event returned is set
        then): a frame left queued while the caller's thread drives the arm waits for the
        interpreter's lock far longer."""
        blob = types.Blob(data=jpeg, mime_type="image/jpeg")
        written = threading.Event()

        async def send(session: Any) -> None:
            await session.send_realtime_input(video=blob)
            written.set()

        self._post(send)
        written.wait(wait_s)
        return written

    def send_text(self, text: str) -> None:
        self._post(lambda s: s.send_realtime_input(text=text))

    def send_audio(self, pcm: bytes) -> None:
        blob = types.Blob(data=pcm, mime_type=AUDIO_MIME)
        self._post(lambda s: s.send_realtime_input(audio=blob))

    def end_audio(self) -> None:
        self._post(lambda s: s.send_realtime_input(audio_stream_end=True))

    def send_results(self, results: list[ToolResult]) -> None:
        responses = [types.FunctionResponse(id=r.call.id, name=r.call.name, response=r.response)
                     for r in results]
        self._post(lambda s: s.send_tool_response(function_responses=responses))

    def next_event(self, timeout_s: float) -> LiveEvent | None:
        try:
            return self._events.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        """End the session (idempotent); its `closed` event says it was asked for."""
        self._closing = True
        if self._outbox is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._outbox.put_nowait, None)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _post(self, send: Send) -> None:
        if self._outbox is None or self._closing:
            return
        self._loop.call_soon_threadsafe(self._outbox.put_nowait, send)

    # -- the session's thread --------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._session())
        finally:
            self._loop.close()

    async def _session(self) -> None:
        self._outbox = asyncio.Queue()
        reason = "the session ended"
        try:
            async with self._client.aio.live.connect(model=self.model,
                                                     config=self._config) as session:
                self._ready.set()
                sender = asyncio.create_task(self._send_all(session))
                receiver = asyncio.create_task(self._receive_all(session))
                done, _ = await asyncio.wait({sender, receiver},
                                             return_when=asyncio.FIRST_COMPLETED)
                for task in (sender, receiver):
                    task.cancel()
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()
        except Exception as err:  # the SDK's and the socket's errors alike: one line
            reason = redact(f"{type(err).__name__}: {err}".splitlines()[0])
            if not self._ready.is_set():
                self._failure = reason
                self._ready.set()
                return
        self._tell(LiveEvent(kind=LiveEventKind.closed, text=reason, asked=self._closing))

    async def _send_all(self, session: Any) -> None:
        assert self._outbox is not None
        while (send := await self._outbox.get()) is not None:
            await send(session)
        await session.close()

    async def _receive_all(self, session: Any) -> None:
        while True:
            async for message in session.receive():
                self._dispatch(message)

    def _dispatch(self, message: types.LiveServerMessage) -> None:
        content = message.server_content
        if content is not None:
            parts = content.model_turn.parts if content.model_turn else None
            text = "".join(p.text for p in parts or [] if p.text and not p.thought)
            if text:
                self._tell(LiveEvent(kind=LiveEventKind.said, text=redact(text)))
            heard = content.input_transcription.text if content.input_transcription else None
            if heard:
                self._tell(LiveEvent(kind=LiveEventKind.heard, text=redact(heard)))
            if content.interrupted:
                self._tell(LiveEvent(kind=LiveEventKind.interrupted))
            if content.turn_complete:
                self._tell(LiveEvent(kind=LiveEventKind.turn_done))
        if message.tool_call is not None:
            calls = [ToolCall(id=c.id and redact(c.id), name=redact(c.name or ""),
                              args=redacted_args(dict(c.args or {})))
                     for c in message.tool_call.function_calls or []]
            self._tell(LiveEvent(kind=LiveEventKind.called, calls=calls))
        if message.tool_call_cancellation is not None:
            self._tell(LiveEvent(kind=LiveEventKind.cancelled,
                                 ids=list(message.tool_call_cancellation.ids or [])))
        if message.go_away is not None:
            left = message.go_away.time_left
            self._tell(LiveEvent(kind=LiveEventKind.going_away,
                                 text=f"{left} left" if left else ""))

    def _tell(self, event: LiveEvent) -> None:
        self._events.put(event)
        if self.watch is not None:
            self.watch(event)
