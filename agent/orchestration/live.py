"""A live session: the camera streams to a model on the Live API, the operator types, reads or
speaks commands, and the model calls the robot's functions, each answered by the same checks as
the tool loop's (`CallHandler`: envelope, reach, joint limits, strict targets against the latest
look, what the gripper holds) before anything moves.

The robot and the camera stay on this thread; the session's connection runs in its own
(`erarm.agent.brains.gemini_live`), and so does each command source. Frames go out at most once a
`frame_interval_s` (the docs' "JPEG <= 1 FPS"), whenever the arm is not in the middle of a call.
Commands go one at a time, the next when the model has finished its turn.

Stop means stop: a typed "stop", a spoken one (the server's transcription of it), the server's
`goAway` or a dropped connection halts the arm at once, wherever this thread is (`halt_main`),
and ends the session; Ctrl-C does the same and exits 130. The arm stays where it stopped.

On a physical arm (`RehearsedLive`) the session on the real camera only watches: each command
is first done by the model in a twin and, when that moved something, replayed on the real arm;
a command that moved nothing there (a standing instruction) goes to the watching session.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, Field

from erarm import prompts
from erarm.agent import interrupts
from erarm.agent.brains.base import LiveEvent, LiveEventKind, ToolResult
from erarm.agent.config import Orchestration
from erarm.agent.errors import BrainUnavailable, Interrupted
from erarm.agent.execute import stop_arm
from erarm.agent.images import encode_image
from erarm.agent.live_input import STOP_WORDS, Command, CommandSource, chunks
from erarm.agent.orchestration.rehearsal import Rehearsed
from erarm.agent.orchestration.tool_loop import CallHandler, moved_where_let_go
from erarm.agent.results import LiveRecord, SessionEnd
from erarm.agent.schemas import listing
from erarm.agent.session import Session
from erarm.robots.errors import ConfigError, ErarmError


class LiveOptions(BaseModel):
    frame_interval_s: float = Field(1.0, ge=1.0)  # the docs: JPEG frames at most ~1 per second
    frame_max_side: int = Field(768, ge=64)
    watch_s: float = Field(0.0, ge=0)  # after the last command, keep streaming this long
    idle_limit_s: float = Field(60.0, gt=0)  # a model that owes an answer and sends nothing
    # for this long ends the session
    session_limit_s: float = Field(900.0, gt=0)  # no session streams longer than this
    poll_s: float = 0.05  # how often the loop looks for what came in


class Channel(Protocol):
    """What a live session needs of its connection (`LiveLink` is one)."""

    model: str

    def open(self) -> None: ...
    def send_frame(self, jpeg: bytes) -> object: ...
    def send_text(self, text: str) -> None: ...
    def send_audio(self, pcm: bytes) -> None: ...
    def end_audio(self) -> None: ...
    def send_results(self, results: list[ToolResult]) -> None: ...
    def next_event(self, timeout_s: float) -> LiveEvent | None: ...
    def close(self) -> None: ...


Connect = Callable[[str, Callable[[LiveEvent], None], bool], Channel]  # (instruction, watch,
# moves: whether the robot's motions are declared)
Rehearse = Callable[[Session, Command], bool]  # True when it did the command on the arm


class SessionEnded(ErarmError):
    """The server closed the session or the connection dropped; the arm was halted."""

    exit_code = 1


class Live:
    """The session's loop; `connect(instruction, watch, moves)` makes its channel. With
    `rehearse` the session watches: its model is given no motions, and each command goes to
    `rehearse` first, then to the model only when that did not move the arm for it."""

    def __init__(self, connect: Connect, commands: CommandSource,
                 options: LiveOptions | None = None, physical_ok: bool = False,
                 rehearse: Rehearse | None = None):
        self.connect, self.commands = connect, commands
        self.physical_ok = physical_ok  # the operator let the model go on live on a real arm
        self.rehearse = rehearse
        self.options = options or LiveOptions()
        self._halted: list[tuple[SessionEnd, str]] = []  # the first halt, from any thread
        self._ending = False  # the session is closing as asked: nothing halts it any more
        self._frame_times: list[float] = []  # when each frame sent was captured

    def run(self, session: Session) -> None:
        moves = self.rehearse is None
        if session.robot.physical and moves and not self.physical_ok:  # rehearsed first
            raise ConfigError(f"the {session.robot.name} robot is a physical arm: each command "
                              "is rehearsed in a twin first (RehearsedLive), not streamed to it")
        result = session.result
        result.orchestration = Orchestration.tools
        record = result.live = LiveRecord()
        start = session.look()
        handler = CallHandler(session, start, moves)
        limits = session.robot.limits
        instruction = prompts.render(
            "live" if moves else "live_watch", objects=listing(start.objects),
            x_min=round(limits.x_min * 1000), x_max=round(limits.x_max * 1000),
            y_min=round(limits.y_min * 1000), y_max=round(limits.y_max * 1000))
        channel = self.connect(instruction, self._watch, moves)
        record.model = channel.model
        try:
            with interrupts.haltable():
                channel.open()
                session.log(f"live session open with {channel.model}; streaming the camera")
                inbox: queue.Queue[Command | None] = queue.Queue()
                self.commands.start(lambda command: self._arrive(command, inbox))
                record.ended, record.reason = self._converse(session, handler, channel, inbox,
                                                             record)
            if moves:  # (a watching session's rehearsals check what they moved)
                self._verify(session, handler, start)
        except (KeyboardInterrupt, Interrupted):
            if not self._halted:
                record.ended, record.reason = SessionEnd.interrupted, "interrupted"
                raise
            stop_arm(session.robot)
            record.ended, record.reason = self._halted[0]
            session.log(f"halted: {record.reason}; the arm stopped where it was")
            session.narrate("Stopped.")
        except BrainUnavailable:
            record.ended, record.reason = SessionEnd.failed, "the session could not open"
            raise
        except ErarmError as err:
            record.ended, record.reason = SessionEnd.failed, str(err)
            raise
        finally:
            self._ending = True
            channel.close()
            if len(self._frame_times) > 1:  # frames over the time between the first and last
                span = self._frame_times[-1] - self._frame_times[0]
                record.frames_per_s = (len(self._frame_times) - 1) / span
            handler.file(" ".join(record.said))
        session.log(f"live session ended: {record.reason}")
        if record.ended in (SessionEnd.go_away, SessionEnd.dropped, SessionEnd.timed_out):
            raise SessionEnded(f"{record.reason}; the arm was halted where it was")

    @staticmethod
    def _verify(session: Session, handler: CallHandler, start) -> None:
        checked = moved_where_let_go(handler, start)  # nothing moved: nothing to check
        if handler.actions:  # a last look: did what moved land where it was let go?
            handler.go_home()
            after = session.look()
            session.check_what_vanished(after)
            checked = moved_where_let_go(handler, after)
        session.result.verified = checked.verified
        session.result.verification = checked.reason

    # -- from other threads ----------------------------------------------------------------
    def _halt(self, end: SessionEnd, reason: str) -> None:
        if not self._halted and not self._ending:
            self._halted.append((end, reason))
            interrupts.halt_main()

    def _watch(self, event: LiveEvent) -> None:
        """Each event as it arrives, from the session's thread: what cannot wait halts."""
        if event.kind is LiveEventKind.going_away:
            self._halt(SessionEnd.go_away, "the server is closing the session (goAway"
                       + (f", {event.text}" if event.text else "") + ")")
        elif event.kind is LiveEventKind.closed and not event.asked:
            self._halt(SessionEnd.dropped, f"the connection to the Live API ended: {event.text}")
        elif event.kind is LiveEventKind.heard and _says_stop(event.text):
            self._halt(SessionEnd.operator_stop, f"the operator said {event.text.strip()!r}")

    def _arrive(self, command: Command | None, inbox: queue.Queue) -> bool:
        """A command from its source's thread; False once the session is over."""
        if self._ending or self._halted:
            return False
        if command is not None and command.halts_now:
            self._halt(SessionEnd.operator_stop, f"the operator said {command.text!r}")
        else:
            inbox.put(command)
        return True

    # -- this thread -----------------------------------------------------------------------
    def _converse(self, session: Session, handler: CallHandler, channel: Channel,
                  inbox: queue.Queue, record: LiveRecord) -> tuple[SessionEnd, str]:
        options = self.options
        waiting: deque[Command] = deque()
        no_more, busy, said = False, False, []
        last_frame, quiet_until = -float("inf"), None
        asked_at: float | None = None  # when erarm last sent what the model must answer
        began = heard_at = time.perf_counter()  # heard_at: the model's last event
        while True:
            if self._halted:  # its signal was missed (SIGINT ignored) or caught on the way
                raise interrupts.Halt
            now = time.perf_counter()
            if now - began > options.session_limit_s:
                return SessionEnd.timed_out, (f"the session reached its limit of "
                                              f"{options.session_limit_s:g} s")
            if (busy or asked_at is not None) and now - heard_at > options.idle_limit_s:
                return SessionEnd.timed_out, (f"the model sent nothing for "
                                              f"{options.idle_limit_s:g} s while an answer "
                                              "was due")
            if time.perf_counter() - last_frame >= options.frame_interval_s:
                last_frame = time.perf_counter()  # captures start a whole interval apart
                self._send_frame(session, channel, record)
            due = last_frame + options.frame_interval_s - time.perf_counter()
            event = channel.next_event(max(0.001, min(options.poll_s, due)))
            if event is not None and asked_at is not None and event.kind in (
                    LiveEventKind.called, LiveEventKind.turn_done):
                session.asked(1)  # one model turn, its wait counted as planning
                session.result.timings.planning_s += time.perf_counter() - asked_at
                asked_at = None
            if event is not None:
                heard_at = time.perf_counter()
                if event.kind is LiveEventKind.said:
                    said.append(event.text)
                elif event.kind is LiveEventKind.heard:
                    session.log(f"heard: {event.text.strip()}")
                    self._stream(session, {"got": "heard", "text": event.text})
                elif event.kind is LiveEventKind.called:
                    self._stream(session, {"got": "calls",
                                           "calls": [c.model_dump() for c in event.calls]})
                    results = handler.answer_turn(event.calls)
                    channel.send_results(results)
                    asked_at = time.perf_counter()
                    self._stream(session, {"sent": "results", "results": [
                        {"id": r.call.id, "name": r.call.name, "response": r.response}
                        for r in results]})
                elif event.kind is LiveEventKind.interrupted:
                    said = []  # the sentence cut short is not what the model says
                    session.log("the model was interrupted")
                elif event.kind is LiveEventKind.cancelled:
                    session.log(f"the model cancelled calls {', '.join(event.ids)} (each call "
                                "runs to its end before the next is read)")
                elif event.kind is LiveEventKind.turn_done:
                    busy = False
                    if said:
                        text = "".join(said).strip()
                        said = []
                        record.said.append(text)
                        session.log(f"the model says: {text}")
                        session.narrate(text)
                        self._stream(session, {"got": "text", "text": text})
            while not inbox.empty():
                command = inbox.get_nowait()
                if command is None:
                    no_more = True
                elif command.streamed:  # the microphone: out as it comes
                    channel.send_audio(command.pcm)
                    record.audio_s += command.seconds
                else:
                    waiting.append(command)
            if waiting and not busy and waiting[0].is_stop:  # a file's "stop", in its turn
                return SessionEnd.operator_stop, "the commands say 'stop'"
            if waiting and not busy:
                command = waiting.popleft()
                record.commands.append(command.text)
                session.log(f"command ({command.source}): {command.text}")
                if self.rehearse is None or not self.rehearse(session, command):
                    self._send_command(session, channel, command, record)
                    busy, asked_at = True, time.perf_counter()
            if no_more and not waiting and not busy:
                quiet_until = quiet_until or time.perf_counter() + options.watch_s
                if time.perf_counter() >= quiet_until:
                    return SessionEnd.commands_done, "every command was answered"

    def _send_frame(self, session: Session, channel: Channel, record: LiveRecord) -> None:
        self._frame_times.append(time.perf_counter())
        frame = session.cell.camera.capture()
        jpeg, _ = encode_image(frame, self.options.frame_max_side, "jpeg")
        channel.send_frame(jpeg)
        record.frames_sent += 1
        self._stream(session, {"sent": "frame"}, jpeg, ".jpg")

    def _send_command(self, session: Session, channel: Channel, command: Command,
                      record: LiveRecord) -> None:
        if command.pcm:
            for piece in chunks(command.pcm):
                channel.send_audio(piece)
            channel.end_audio()
            record.audio_s += command.seconds
            self._stream(session, {"sent": "audio", "seconds": round(command.seconds, 2)},
                         command.pcm, ".pcm")
        else:
            channel.send_text(command.text)
            self._stream(session, {"sent": "text", "text": command.text})

    @staticmethod
    def _stream(session: Session, message: dict, media: bytes | None = None,
                suffix: str = "") -> None:
        if session.recorder is not None:
            session.recorder.streamed(message, media, suffix)


def _says_stop(text: str) -> bool:
    words = text.lower().replace(",", " ").replace(".", " ").split()
    return any(word in STOP_WORDS for word in words)


class OneCommand:
    """A command source of one command (a rehearsal's)."""

    def __init__(self, command: Command):
        self.command = command
        self.source = command.source

    def start(self, arrive) -> None:
        arrive(self.command)
        arrive(None)


class RehearsedLive:
    """A live session on a physical arm: a model followed step by step is rehearsed in a twin
    first, always. The real camera streams to a session that watches (no motions declared to
    its model). Each command is first done by the model in a live session with a simulated twin
    of the perceived scene (its camera streaming the twin); the twin's calls, validated as one
    plan against the real look and confirmed, are then what the real arm does, checked against
    the twin as it goes (`Rehearsed`). A command that moved nothing in the twin ("tell me
    when...") goes to the watching session, which reports what it sees. A "stop" halts the arm at
    once; the terminal answers the confirmations, so the commands come from a file or speech."""

    def __init__(self, connect: Connect, commands: CommandSource,
                 options: LiveOptions | None = None):
        self.connect, self.commands = connect, commands
        self.options = options or LiveOptions()

    def run(self, session: Session) -> None:
        source = self.commands.source
        if source == "typed":
            raise ConfigError("on a physical arm the terminal answers the confirmations: give "
                              "the commands with --commands FILE or --say WAV")
        if source == "mic":
            raise ConfigError("--mic streams without turns: on a physical arm give whole "
                              "commands (--commands or --say)")
        Live(self.connect, self.commands, self.options, rehearse=self._rehearse).run(session)

    def _rehearse(self, session: Session, command: Command) -> bool:
        """Do the command as rehearsed in a twin; False when the twin's model moved nothing."""
        def session_for(physical_ok: bool) -> Callable[[], Live]:
            return lambda: Live(self.connect, OneCommand(command), self.options, physical_ok)

        session.log("rehearsing it in a twin first")
        session.task = command.text  # what the rehearsal's checks judge
        rehearsal = Rehearsed(inner=session_for(False), live=session_for(True))
        steps_before = session.result.rehearsal.steps if session.result.rehearsal else 0
        try:
            rehearsal.run(session)
        finally:
            session.result.live.said += [text for twin in rehearsal.twins if twin.live
                                         for text in twin.live.said]
        moved = session.result.rehearsal.steps > steps_before
        if not moved:
            session.log("it moved nothing in the twin: the session watching the real camera "
                        "takes it")
        return moved
