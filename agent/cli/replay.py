"""`erarm replay`: a recorded run's timeline, and its robot commands re-run in the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from erarm.agent.cli.common import (
    JsonOpt,
    app,
    err_console,
    open_cell,
    out_console,
    print_json,
    say,
)
from erarm.agent.cli.run import GuiOpt, RealtimeOpt
from erarm.robots.errors import ConfigError


def _print_timeline(recording) -> None:  # recording: erarm.agent.recording.replay.Recording
    console = out_console()
    console.print(f"[bold]{recording.task}[/bold] · {recording.run_dir}")
    for event in recording.timeline:
        console.print(f"  [dim]{event.t:7.2f} s[/dim]  {event.event}", markup=True,
                      highlight=False)
    if recording.recorded is not None:
        mark = {True: "[green]✓ success[/green]", False: "[red]✗ not done[/red]",
                None: "no verdict"}[recording.recorded.success]
        console.print(f"  recorded: {mark} (simulator ground truth): {recording.recorded.reason}")


def _print_replay(result) -> None:  # result: erarm.agent.recording.replay.ReplayResult
    console = out_console()
    table = Table("#", "when", "command", "Δ reached mm", "Δ yaw deg", "holding (recorded)",
                  box=None, pad_edge=False)
    for command in result.commands:
        deviation = "" if command.deviation_mm is None else f"{command.deviation_mm:.1f}"
        turn = "" if command.yaw_deviation_deg is None else f"{command.yaw_deviation_deg:.1f}"
        holding = ("" if command.holding is None else
                   f"{command.holding} ({command.recorded_holding})")
        table.add_row(str(command.index), command.context, command.call, deviation, turn,
                      holding)
    console.print(table)
    mark = {True: "[green]✓ success[/green]", False: "[red]✗ not done[/red]",
            None: "no verdict"}[result.success]
    same = ("[green]reproduced[/green]" if result.reproduced else
            "[red]not reproduced[/red]")
    console.print(f"replayed: {mark} (simulator ground truth): {result.reason}")
    console.print(f"  {same}: {len(result.commands)} commands, reached poses within "
                  f"{result.max_deviation_mm:.1f} mm and {result.max_yaw_deviation_deg:.1f} "
                  "degrees of the recording")
    for line in result.unfinished:
        console.print(f"  the record holds a motion that stopped on the way: {line}; "
                      "the replay did not redo it", markup=False)


@app.command()
def replay(
    run_dir: Annotated[Path, typer.Argument(
        metavar="DIR", help="A run folder recorded with --record (or its record/ folder).")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only show the timeline and the checked commands; move nothing.")]
    = False,
    gui: GuiOpt = False,
    realtime: RealtimeOpt = False,
    json_output: JsonOpt = False,
    rerun: Annotated[bool, typer.Option(
        "--rerun", help="Show the flight record in rerun instead (spawns its viewer).")] = False,
    rerun_save: Annotated[Path | None, typer.Option(
        "--rerun-save", help="Convert the flight record to a rerun recording in this .rrd file "
                             "instead; nothing is replayed.")] = None,
) -> None:
    """Print a recorded run's timeline, then re-execute its robot commands in the simulator,
    from the scene it started in, and judge the task again from ground truth.

    Every recorded pose is checked against the workspace and the arm's joint limits before the
    first command runs. Exit 0 when the replay ends as the recording did (success or not), 1 when
    it does not, 2 when the record is missing or damaged.
    """
    from erarm.agent.recording.replay import load_recording, replay_actions
    from erarm.agent.recording.replay import replay as run_replay
    from erarm.agent.recording.rerun_view import rerun_options

    recording = load_recording(run_dir)
    viewing = rerun_options(rerun, rerun_save)
    if viewing is not None:  # a physical arm's record converts too
        from erarm.agent.recording.rerun_view import convert

        count = convert(recording.run_dir, viewing)
        where = f"wrote {rerun_save}" if rerun_save else "sent it to the viewer"
        if json_output:
            print_json({"run_dir": str(recording.run_dir), "records": count,
                        "rerun_save": str(rerun_save) if rerun_save else None})
        else:
            out_console().print(f"{recording.run_dir}: {count} records; {where}")
        return
    if recording.scene is None:
        raise ConfigError(f"{recording.run_dir} has no scene.json: only simulator runs can be "
                          "replayed")
    result = None
    # the cell opens before anything is printed: what cannot be (--gui without a display) is
    # refused in one line
    with open_cell("sim", None, task=recording.task, seed=0, scene=recording.scene, gui=gui,
                   realtime=realtime) as cell:
        if not json_output:
            _print_timeline(recording)
        if dry_run:
            actions = replay_actions(recording.commands, cell.robot.limits, cell.robot.reachable)
            if not json_output:
                out_console().print(f"[green]✓ all {len(actions)} recorded commands pass the "
                                    "workspace and joint-limit checks[/green]; dry run, nothing "
                                    "moved")
        else:
            say(f"replaying {len(recording.commands)} recorded commands")
            result = run_replay(recording, cell.robot, cell.referee.judge,
                                on_command=lambda c: say(f"{c.index}/{len(recording.commands)} "
                                                         f"{c.call}"))
    if json_output:
        print_json({"run_dir": str(recording.run_dir), "task": recording.task,
                    "recorded": recording.recorded.model_dump(mode="json", exclude={
                        "objects", "objects_at_start"}) if recording.recorded else None,
                    "timeline": [e.model_dump() for e in recording.timeline],
                    "commands": len(recording.commands),
                    "replay": result.model_dump(mode="json") if result else None})
    elif result is not None:
        _print_replay(result)
    if result is not None and not result.reproduced:
        why = (f"the record holds {len(result.unfinished)} motion(s) that stopped on the way"
               if result.unfinished else
               f"recorded {result.recorded_success}, replayed {result.success}")
        err_console.print(f"erarm: error: the replay did not end as the recording did ({why})",
                          markup=False)
        raise typer.Exit(1)
