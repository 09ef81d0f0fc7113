"""The `erarm` command line.

stdout carries results only (a rich summary, or one JSON document with --json); progress and
messages go to stderr. Every expected failure is one line on stderr and an exit code: 0 the task
succeeded, 1 it ran but failed, 2 bad usage or input, 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agent.brains import BrainChoice
from robots.errors import ErarmError

app = typer.Typer(
    name="erarm",
    help="Gemini Robotics-ER orchestration for robot arms: perceive, plan, validate, execute, "
         "verify. Runs offline on a simulated xArm6 by default.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode="rich")

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback()
def _commands() -> None:
    """Gemini Robotics-ER orchestration for robot arms: perceive, plan, validate, execute, verify.
    Runs offline on a simulated xArm6 by default."""


def out_console() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def default_out_dir(task: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", task.lower()).strip("-")[:40] or "run"
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"


def _print_run_summary(result) -> None:  # result: agent.run.RunResult
    console = out_console()
    if result.error:
        console.print("[red]✗ failed[/red] (the reason is on stderr)")
    elif result.success is not None:
        mark = "[green]✓ success[/green]" if result.success else "[red]✗ not done[/red]"
        console.print(f"{mark} (simulator ground truth): {result.ground_truth.reason}")
    verdict = "[green]verified[/green]" if result.verified else "[yellow]not verified[/yellow]"
    if result.verification:
        console.print(f"  perception: {verdict}: {result.verification}")
    t = result.timings
    console.print(f"  brain {result.brain} · {result.steps_executed} steps executed · "
                  f"perception {t.perception_s:.2f} s · planning {t.planning_s:.2f} s · "
                  f"execution {t.execution_s:.2f} s ({t.simulated_s:.1f} s robot time) · "
                  f"total {t.total_s:.2f} s")
    console.print(f"  pictures and records: {result.out_dir}/")


@app.command()
def run(
    task: Annotated[str, typer.Argument(help='What to do, e.g. "pick the blue block into the '
                                             'orange bowl".')],
    brain: Annotated[BrainChoice, typer.Option(
        help="auto: Gemini when GEMINI_API_KEY or GOOGLE_API_KEY is set, else local (offline).")
    ] = BrainChoice.auto,
    seed: Annotated[int, typer.Option(help="Seed of the simulated scene's layout.")] = 0,
    scene: Annotated[Path | None, typer.Option(
        help="Load this scene file (JSON objects with kind, colour, x, y in metres) instead of "
             "staging one for the task.")] = None,
    gui: Annotated[bool, typer.Option(help="Show the PyBullet window (needs a display).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON result on stdout.")
                           ] = False,
    out: Annotated[Path | None, typer.Option(
        help="Folder for camera.png, overlay.png, plan.json, result.json and final.png "
             "[default: a new folder under runs/].")] = None,
    model: Annotated[str | None, typer.Option(
        help="Gemini model id [default: gemini-robotics-er-2-preview].")] = None,
    base_url: Annotated[str | None, typer.Option(
        help="Gemini API endpoint, for gateways and tests [default: Google's, or "
             "GOOGLE_GEMINI_BASE_URL].")] = None,
) -> None:
    """Do a task with the arm: look, plan, validate the whole plan, then move and check."""
    from agent.brains import choose_brain
    from agent.run import run_task
    from robots.registry import open_workcell

    chosen = choose_brain(brain, model=model, base_url=base_url)
    out_dir = out or default_out_dir(task)

    def say(message: str) -> None:
        err_console.print(f"[dim]·[/dim] {message}", markup=True)

    with open_workcell("sim", task=task, seed=seed, scene=scene, gui=gui) as cell:
        result = run_task(task, chosen, cell, out_dir, log=say)
    if json_output:
        print(json.dumps(result.model_dump(mode="json", exclude={"exit_code"})))
    else:
        _print_run_summary(result)
    if result.error:
        err_console.print(f"erarm: error: {result.error}", soft_wrap=True, markup=False)
    raise typer.Exit(result.exit_code)


def _results_to_real_stdout() -> None:
    """Keep stdout for results. Native libraries (PyBullet prints its build time and warnings
    from C) write to file descriptor 1, which is pointed at /dev/null (at stderr with
    ERARM_DEBUG set); Python's sys.stdout keeps the real stdout."""
    try:
        sys.stdout.flush()
        real = os.dup(1)
        sink = 2 if os.environ.get("ERARM_DEBUG") else os.open(os.devnull, os.O_WRONLY)
        os.dup2(sink, 1)
    except OSError:
        return
    sys.stdout = os.fdopen(real, "w", buffering=1, encoding="utf-8", errors="replace")


def _usage_error(err: Exception) -> bool:
    """Typer raises click-style usage errors (from the click it bundles): they carry an exit
    code and a formatted message."""
    return hasattr(err, "format_message") and getattr(err, "exit_code", None) == 2


def main() -> None:
    _results_to_real_stdout()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("· %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        err_console.print("erarm: interrupted")
        code = 130
    except ErarmError as err:
        err_console.print(f"erarm: error: {err}", soft_wrap=True, markup=False)
        code = err.exit_code
    except Exception as err:
        if type(err).__name__ == "NoArgsIsHelpError":
            print(err.format_message())
            code = 0
        elif _usage_error(err):
            ctx = getattr(err, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            err_console.print(f"erarm: error: {err.format_message()}{hint}", soft_wrap=True,
                              markup=False)
            code = 2
        elif os.environ.get("ERARM_DEBUG"):
            raise
        else:  # a bug: one line, and the traceback only on request
            err_console.print(f"erarm: internal error: {type(err).__name__}: {err} "
                              "(set ERARM_DEBUG=1 for the traceback)", soft_wrap=True,
                              markup=False)
            code = 3
    sys.stdout.flush()
    sys.exit(code if isinstance(code, int) else 0)
