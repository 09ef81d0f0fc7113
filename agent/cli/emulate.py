"""`erarm emulate`: serve the simulator's Robotics-ER emulator on loopback until Ctrl-C."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from erarm.agent.cli.common import app, out_console, say
from erarm.robots.errors import ConfigError

Rate = Annotated[float | None, typer.Option(min=0, max=1, show_default=False)]


@app.command(name="emulate")
def emulate_command(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free "
                                                             "one).")] = 8765,
    noise: Annotated[float | None, typer.Option(
        min=0, help="Pointing error: sigma per axis on the 0-1000 grid [default: 12].")] = None,
    seed: Annotated[int, typer.Option(help="Seeds every answer's randomness.")] = 0,
    latency_s: Annotated[float | None, typer.Option(
        min=0, help="Median seconds per answer, lognormal (0: at once) [default: 1.5].")] = None,
    rpm: Annotated[int | None, typer.Option(
        min=0, help="Requests per minute across sessions before 429s (0: no limit) "
                    "[default: 0].")] = None,
    box_jitter: Annotated[float | None, typer.Option(
        min=0, help="Sigma of each box edge, 0-1000 grid [default: 8].")] = None,
    confusion: Rate = None, miss: Rate = None, hallucination: Rate = None,
    malformed: Rate = None, prose: Rate = None, max_tokens: Rate = None,
    judge_error: Rate = None,
) -> None:
    """A Gemini-compatible server answering like Robotics-ER from the simulator's ground truth,
    with a seeded error model. Rates (--confusion, --miss, --hallucination, --malformed, --prose,
    --max-tokens, --judge-error) are chances 0-1; see the README for their defaults."""
    from erarm.sim.emulator import Emulator, EmulatorSettings

    given = {"pointing_sigma": noise, "latency_median_s": latency_s, "requests_per_minute": rpm,
             "box_jitter": box_jitter, "confusion_rate": confusion, "miss_rate": miss,
             "hallucination_rate": hallucination, "malformed_rate": malformed,
             "prose_rate": prose, "max_tokens_rate": max_tokens,
             "judge_error_rate": judge_error}
    settings = EmulatorSettings(port=port, seed=seed,
                                **{k: v for k, v in given.items() if v is not None})
    try:
        emulator = Emulator(settings)
    except OSError as err:
        raise ConfigError(f"cannot serve on port {port}: {err.strerror or err}") from None
    try:
        say(f"emulating Robotics-ER at {emulator.url} (pointing sigma "
            f"{settings.pointing_sigma:g}, seed {seed}); Ctrl-C ends it. Point a run at one "
            f"session, e.g. NAME=demo:\n  erarm run --brain gemini --base-url "
            f"{emulator.url}/s/NAME --robot sim --robot-opt emulator={emulator.url}/s/NAME "
            f"'put the red block in the blue bowl'\n(any GEMINI_API_KEY will do)")
        out_console().print(emulator.url, soft_wrap=True)  # last: a script reading it is ready
        while True:
            time.sleep(0.5)
    finally:
        emulator.close()
