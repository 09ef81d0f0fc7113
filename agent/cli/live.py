"""`erarm live`: a streaming session with Gemini Robotics-ER 2 Streaming on the Live API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from erarm.agent.brains import EMULATOR_KEY, BrainChoice, api_key_from_env, build_brain
from erarm.agent.cli.common import (
    BaseUrlOpt,
    BlurOpt,
    BrainOpt,
    CameraOpt,
    CameraOptions,
    ConfigOpt,
    EmulateOpt,
    EmulateOptions,
    JsonOpt,
    RerunOpt,
    RerunSaveOpt,
    RobotOpt,
    RobotOptions,
    SpeakOpt,
    SpeakToOpt,
    app,
    emulator,
    input_file,
    narration,
    refuse_emulate_with,
    say,
)
from erarm.agent.cli.run import (
    CalibrationOpt,
    ConfirmOpt,
    GuiOpt,
    OutOpt,
    RealtimeOpt,
    RecordOpt,
    SceneOpt,
    SeedOpt,
    in_workcell,
)
from erarm.robots.errors import ConfigError

DEFAULT_SCENE_TASK = "pick the blue block into the orange bowl"


@app.command()
def live(
    commands: Annotated[Path | None, typer.Option(
        "--commands", callback=input_file("commands file"),
        help="Read the commands from this file, one per line, each sent when the last is "
             "done (a line 'stop' ends the session there) [default: typed at the prompt].")
    ] = None,
    speech: Annotated[list[Path] | None, typer.Option(
        "--say", help="Speak a command from this WAV file (sent as 16 kHz PCM); repeatable, "
                      "in order.")] = None,
    mic: Annotated[bool, typer.Option(
        "--mic", help="Stream the microphone (needs the audio extra, sounddevice); the server "
                      "finds the commands in it, and a spoken \"stop\" halts the arm.")] = False,
    watch: Annotated[float, typer.Option(
        min=0, help="After the last command, keep streaming this many seconds so standing "
                    "instructions (\"tell me when...\") can fire.")] = 0.0,
    task: Annotated[str, typer.Option(
        help="The task the simulated scene is laid out for (and the emulator does).")
    ] = DEFAULT_SCENE_TASK,
    model: Annotated[str | None, typer.Option(
        help="The streaming model [default: gemini-robotics-er-2-streaming-preview].")] = None,
    brain: BrainOpt = BrainChoice.auto, base_url: BaseUrlOpt = None, config: ConfigOpt = None,
    robot: RobotOpt = None, robot_opt: RobotOptions = None,
    camera: CameraOpt = None, camera_opt: CameraOptions = None,
    seed: SeedOpt = 0, scene: SceneOpt = None, gui: GuiOpt = False,
    realtime: RealtimeOpt = False, calibration: CalibrationOpt = None,
    json_output: JsonOpt = False, out: OutOpt = None, confirm: ConfirmOpt = None,
    blur_faces: BlurOpt = False, record: RecordOpt = False,
    emulate: EmulateOpt = False, emulate_opt: EmulateOptions = None,
    speak: SpeakOpt = False, speak_to: SpeakToOpt = None,
    rerun: RerunOpt = False, rerun_save: RerunSaveOpt = None,
) -> None:
    """Stream the camera to Gemini Robotics-ER 2 Streaming and let it work the arm: commands
    typed, read from a file or spoken; each function call checked before it runs; "stop",
    Ctrl-C, the server going away or a dropped connection halt the arm at once."""
    from erarm.agent.brains.gemini_live import STREAMING_MODEL, LiveLink
    from erarm.agent.live_input import Lines, Microphone, Spoken
    from erarm.agent.orchestration.live import LiveOptions
    from erarm.agent.recording.rerun_view import rerun_options
    from erarm.agent.run import run_live
    from erarm.agent.session import RunOptions

    if sum((commands is not None, bool(speech), mic)) > 1:
        raise ConfigError("give one of --commands, --say and --mic")
    viewing = rerun_options(rerun, rerun_save)
    if emulate:
        refuse_emulate_with(brain, base_url, robot, camera)
    key = api_key_from_env()
    if not emulate and not key:
        raise ConfigError("erarm live talks to Gemini Robotics-ER 2 Streaming on the Live API: "
                          "set GEMINI_API_KEY (or GOOGLE_API_KEY), or try it offline with "
                          "--emulate")
    source = (Microphone() if mic else Spoken(speech) if speech
              else Lines.from_file(commands) if commands else Lines.typed())
    with emulator(emulate, emulate_opt) as model_emulator, \
            narration(speak, speak_to, base_url) as narrate:
        name = f"live-{seed}"
        rest = model_emulator.session_url(name) if model_emulator else None
        live_url, ca_file = model_emulator.live_url(name) if model_emulator else (base_url, None)
        perceiving = build_brain(brain, base_url=rest or base_url, config=config,
                                 api_key=EMULATOR_KEY if rest else None)

        def connect(instruction, watch_events, moves):
            return LiveLink(EMULATOR_KEY if rest else key, model or STREAMING_MODEL,
                            system_instruction=instruction, base_url=live_url,
                            ca_file=ca_file, watch=watch_events, moves=moves)

        def go(cell, folder, asking):
            return run_live(perceiving, cell, folder, connect, source, log=say,
                            live=LiveOptions(watch_s=watch), confirm=asking, record=record,
                            options=RunOptions(rerun=viewing),
                            task=f"live session ({task})", narrate=narrate)

        simulator = dict(task=task, seed=seed, scene=scene, gui=gui, realtime=realtime)
        if rest:
            simulator["emulator"] = rest
        in_workcell(go, task=task, brain=perceiving, out=out, name="live",
                    hardware=dict(robot=robot, robot_entries=robot_opt, camera=camera,
                                  camera_entries=camera_opt, config=config, **simulator),
                    calibration=calibration, blur_faces=blur_faces, confirm=confirm,
                    json_output=json_output)
