"""`erarm run`: do a task in a workcell, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.brains import BrainChoice
from agent.cli.common import (
    BaseUrlOpt,
    BlurOpt,
    BrainOpt,
    ConfigOpt,
    ConsensusOpt,
    JsonOpt,
    ModelOpt,
    SafetyOpt,
    ThinkingOpt,
    ZoomOpt,
    app,
    build_brain,
    default_out_dir,
    err_console,
    out_console,
    print_json,
    say,
)


def _print_summary(result) -> None:  # result: agent.run.RunResult
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
    brain: BrainOpt = BrainChoice.auto,
    seed: Annotated[int, typer.Option(help="Seed of the simulated scene's layout.")] = 0,
    scene: Annotated[Path | None, typer.Option(
        help="Load this scene file (JSON objects with kind, colour, x, y in metres) instead of "
             "staging one for the task.")] = None,
    gui: Annotated[bool, typer.Option(help="Show the PyBullet window (needs a display).")] = False,
    json_output: JsonOpt = False,
    out: Annotated[Path | None, typer.Option(
        help="Folder for camera.png, overlay.png, plan.json, result.json, final.png and "
             "calibration.json [default: a new folder under runs/].")] = None,
    trajectory: Annotated[int, typer.Option(
        min=0, max=30, help="Carry the object along a path of this many points that the brain "
                            "draws (Gemini); 0 flies straight.")] = 0,
    model: ModelOpt = None, base_url: BaseUrlOpt = None, config: ConfigOpt = None,
    safety: SafetyOpt = None, thinking_budget: ThinkingOpt = None,
    consensus: ConsensusOpt = 1, zoom: ZoomOpt = False, blur_faces: BlurOpt = False,
) -> None:
    """Do a task with the arm: look, plan, validate the whole plan, then move and check."""
    from agent.run import run_task
    from robots.registry import open_workcell

    chosen = build_brain(brain, model=model, base_url=base_url, config=config, safety=safety,
                         thinking=thinking_budget, consensus=consensus, zoom=zoom)
    out_dir = out or default_out_dir(task)
    with open_workcell("sim", task=task, seed=seed, scene=scene, gui=gui) as cell:
        if blur_faces:
            from agent.privacy import FaceBlurringCamera

            cell.camera = FaceBlurringCamera(cell.camera)
        result = run_task(task, chosen, cell, out_dir, log=say, trajectory_points=trajectory)
    if json_output:
        print_json(result.model_dump(mode="json", exclude={"exit_code"}))
    else:
        _print_summary(result)
    if result.error:
        err_console.print(f"erarm: error: {result.error}", markup=False)
    raise typer.Exit(result.exit_code)
