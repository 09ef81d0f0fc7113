"""`erarm bench`: success rates over many seeded episodes of the simulator's scenarios."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from erarm.agent import interrupts
from erarm.agent.brains import EMULATOR_KEY, BrainChoice, build_brain
from erarm.agent.cli.common import (
    BaseUrlOpt,
    ConfigOpt,
    EmulateOpt,
    EmulateOptions,
    JsonOpt,
    ModelOpt,
    OrchestrationOpt,
    app,
    emulator,
    err_console,
    out_console,
    print_json,
    refuse_emulate_with,
    say,
)
from erarm.agent.config import Orchestration
from erarm.robots.errors import ConfigError


@app.command(name="bench")
def bench_command(
    task: Annotated[list[str] | None, typer.Option(
        help="A scenario to run (repeatable) [default: all the brain can do]: pick-into-bowl, "
             "put-all, sort, stack-two, tower-three, place-beside, pick-into-bowl-hard; with "
             "household objects (a model's, --emulate): into-container, on-plate, "
             "household-beside.")] = None,
    episodes: Annotated[int, typer.Option(min=1, help="Episodes per task.")] = 20,
    seed: Annotated[int, typer.Option(help="The first episode's seed; episode i uses seed+i.")
                    ] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Parallel processes [default: CPUs].")
                       ] = os.cpu_count() or 1,
    brain: Annotated[BrainChoice | None, typer.Option(
        help="Who does the tasks [default: local; gemini with --emulate].")] = None,
    min_success: Annotated[float | None, typer.Option(
        min=0, max=1, help="Success rate every task must reach [default: each task's own "
                           "target].")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for bench.json and bench.png [default: a new folder under runs/].")
    ] = None,
    record: Annotated[bool, typer.Option(
        "--record", help="Keep every episode's flight record under OUT/episodes/.")] = False,
    rerun: Annotated[bool, typer.Option(
        "--rerun", help="With --record: each episode's record as a rerun recording too "
                        "(record/run.rrd; open them all with `rerun OUT/episodes/*/record/"
                        "run.rrd`).")] = False,
    ray: Annotated[bool, typer.Option(
        "--ray", help="Run the episodes as Ray tasks (needs erarm[ray]): on a Ray instance "
                      "started here with --workers CPUs, or on the cluster at --ray-address."
                      )] = False,
    ray_address: Annotated[str | None, typer.Option(
        help="An existing Ray cluster (ray://HOST:10001, or auto); implies --ray.")] = None,
    json_output: JsonOpt = False,
    model: ModelOpt = None, base_url: BaseUrlOpt = None, config: ConfigOpt = None,
    orchestration: OrchestrationOpt = Orchestration.auto,
    rehearse: Annotated[bool, typer.Option(
        "--rehearse", help="With tools: each episode's model does the task in a twin of the "
                           "perceived scene first; counts the collisions caught there.")] = False,
    emulate: EmulateOpt = False, emulate_opt: EmulateOptions = None,
) -> None:
    """Run seeded episodes of each task in parallel and report success rates (with 95%
    intervals), attempts, times and failure reasons. Exit 0 when every task met its target
    with enough episodes to show it."""
    from erarm.agent.api import default_out_dir
    from erarm.agent.bench import RayOptions, bench, chart, check_ray
    from erarm.agent.overlay import save_png
    from erarm.agent.recording.rerun_view import require_rerun
    from erarm.agent.recording.run_folder import RunFolder
    from erarm.sim.driver import scenarios

    if ray_address is not None and not ray_address.strip():
        raise ConfigError("--ray-address is empty: give HOST:PORT, ray://HOST:PORT or auto, or "
                          "--ray alone for a Ray instance started here")
    on_ray = (RayOptions(address=ray_address, local_cpus=workers)
              if ray or ray_address is not None else None)
    if on_ray is not None:
        check_ray(on_ray)  # before the report's folder is made
    if rerun and not record:
        raise ConfigError("--rerun keeps each episode's record as a rerun recording: give "
                          "--record too")
    if rerun:
        require_rerun()  # before any episode runs
    known = scenarios()
    if emulate:
        refuse_emulate_with(brain or BrainChoice.gemini, base_url)
    brain = brain or (BrainChoice.gemini if emulate else BrainChoice.local)
    offline = scenarios(offline=True)
    chosen = task or list(offline if brain is BrainChoice.local else known)
    unknown = [t for t in chosen if t not in known]
    if unknown:
        raise ConfigError(f"unknown task {unknown[0]!r} (known: {', '.join(known)})")
    beyond = [t for t in chosen if t not in offline]
    if brain is BrainChoice.local and beyond:
        raise ConfigError(f"the local brain knows blocks and bowls, not the household objects "
                          f"of {beyond[0]}: add --emulate to play it with the emulated Gemini "
                          "model, or --brain gemini with a key")
    targets = {t: min_success if min_success is not None else known[t] for t in chosen}
    options = {k: v for k, v in {"model": model, "base_url": base_url,
                                 "config": str(config) if config else None}.items() if v}
    # no key, a bad config: one error now, not one per episode
    build_brain(brain, **options, api_key=EMULATOR_KEY if emulate else None)
    with emulator(emulate, emulate_opt) as model_emulator:
        folder = RunFolder.claim(out) if out is not None else RunFolder.claim_new(
            default_out_dir("bench"))
        out = folder.path
        total = episodes * len(chosen)
        # a bar on a terminal; in a log, a line every twentieth of the way (never both)
        progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                            transient=json_output, disable=not err_console.is_terminal)
        finished = 0
        try:
            with progress:
                bar = progress.add_task("episodes", total=total)

                def done(result) -> None:
                    nonlocal finished
                    finished += 1
                    mark = "ok" if result.success else "failed"
                    what = f"{result.task} seed {result.seed}: {mark}"
                    progress.update(bar, advance=1, description=what)
                    if progress.disable and (finished % max(1, total // 20) == 0
                                             or finished == total):
                        say(f"{finished}/{total} episodes; last: {what}")

                report = bench(targets, episodes, seed, workers, brain.value, options,
                               out / "episodes" if record else None, on_done=done,
                               emulator=model_emulator.url if model_emulator else None,
                               orchestration=orchestration.value, rehearse=rehearse,
                               rerun=rerun, ray=on_ray)
        except KeyboardInterrupt:  # the workers are gone; report how far it got
            interrupts.announce(f"erarm: interrupted after {finished} of {total} episodes; no "
                                "report written")
            raise typer.Exit(130) from None
        with interrupts.deferred():
            (out / "bench.json").write_text(json.dumps(report.model_dump(mode="json"), indent=2))
            save_png(out / "bench.png", chart(report))
        if json_output:
            print_json(report.model_dump(mode="json"))
        else:
            _print(report, out)
        raise typer.Exit(0 if report.all_met else 1)


def _print(report, out: Path) -> None:
    from erarm.agent.bench import Verdict, rate_text

    calling = any(t.mean_refused_calls is not None for t in report.tasks)
    rehearsed = any(t.collisions_caught is not None for t in report.tasks)
    table = Table("task", "success", "95% CI", "target", "verified", "attempts", "round trips",
                  *(["refused calls"] if calling else []),
                  *(["collisions caught"] if rehearsed else []), "sim s", "wall s", "failures",
                  box=None, pad_edge=False)
    for column, text in zip(table.columns[:2], ("pick-into-bowl-hard", "100/100 100%"),
                            strict=True):
        column.min_width = len(text)  # on a narrow terminal the numbers wrap, never these
    for t in report.tasks:
        mark = {Verdict.met: "[green]", Verdict.not_met: "[red]",
                Verdict.too_few: "[yellow]"}[t.verdict]
        failures = "; ".join(f"{n} x {reason}" for reason, n in list(t.failures.items())[:2])
        table.add_row(t.task, f"{mark}{t.successes}/{t.episodes} {rate_text(t)}",
                      f"{t.ci95[0]:.0%}-{t.ci95[1]:.0%}", f"{t.target:.0%}",
                      f"{t.verified}" + (f" [red]({t.false_verified} failed)[/red]"
                                         if t.false_verified else ""),
                      f"{t.mean_attempts:.2f}", f"{t.mean_round_trips:.1f}",
                      *([f"{t.mean_refused_calls or 0:.2f}"] if calling else []),
                      *([str(t.collisions_caught or 0)] if rehearsed else []),
                      f"{t.mean_sim_s:.1f}", f"{t.mean_wall_s:.2f}",
                      failures or "-")
    console = out_console()
    console.print(table)
    for t in report.tasks:
        if t.verdict is Verdict.too_few:
            console.print(f"{t.task}: too few episodes to tell: {t.successes}/{t.episodes} "
                          f"reaches the {t.target:.0%} target, but the 95% interval starts at "
                          f"{t.ci95[0]:.0%}; showing it takes at least {t.episodes_needed} "
                          "episodes")
    wrong = report.false_verified
    console.print(f"[red]failed episodes erarm called done: {wrong}[/red]" if wrong else
                  "failed episodes erarm called done: 0")
    where = (f"{report.workers} workers" if report.runner == "processes" else
             report.runner.replace("ray", "Ray tasks on", 1))
    console.print(f"{report.episodes} episodes in {report.wall_s:.0f} s with {where}: "
                  f"{report.episodes_per_minute:.0f} episodes per minute; "
                  f"{out}/bench.json, {out}/bench.png")
