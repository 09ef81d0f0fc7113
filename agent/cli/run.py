"""`erarm run` and `erarm execute`: a task, or a plan file, in a workcell."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from erarm.agent import interrupts
from erarm.agent.brains import EMULATOR_KEY, Brain, BrainChoice, build_brain, check_task
from erarm.agent.cli.common import (
    BaseUrlOpt,
    BlurOpt,
    BrainOpt,
    CameraOpt,
    CameraOptions,
    ConfigOpt,
    ConsensusOpt,
    EmulateOpt,
    EmulateOptions,
    JsonOpt,
    ModelOpt,
    OrchestrationOpt,
    RerunOpt,
    RerunSaveOpt,
    RobotOpt,
    RobotOptions,
    SafetyOpt,
    SpeakOpt,
    SpeakToOpt,
    ThinkingOpt,
    ZoomOpt,
    app,
    emulator,
    err_console,
    input_file,
    narration,
    open_cell,
    out_console,
    print_json,
    printable,
    refuse_emulate_with,
    say,
)
from erarm.agent.config import Orchestration
from erarm.agent.instructions import UNDERSTOOD
from erarm.agent.results import ActionRecord
from erarm.agent.schemas import describe

SeedOpt = Annotated[int, typer.Option(help="Seed of the simulated scene's layout.")]
SceneOpt = Annotated[Path | None, typer.Option(
    callback=input_file("scene file"),
    help="Load this scene file (JSON objects with kind, colour, x_mm, y_mm, yaw_deg) instead "
         "of staging one for the task.")]
GuiOpt = Annotated[bool, typer.Option(help="Show the PyBullet window (needs a display).")]
RealtimeOpt = Annotated[bool, typer.Option(
    help="Pace the simulation to the wall clock (always so with --gui).")]
OutOpt = Annotated[Path | None, typer.Option(
    help="Folder for camera.png, overlay.png, plan.json, result.json, final.png and "
         "calibration.json [default: a new folder under runs/].")]
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="Validate the plan and show every resolved target and check; move "
                      "nothing.")]
ConfirmOpt = Annotated[bool | None, typer.Option(
    "--confirm/--no-confirm", help="Show the plan and ask before any motion [default: on for "
                                   "physical robots].")]
StrictOpt = Annotated[bool, typer.Option(
    help="Moves down must go to a perceived object (or, holding one, to free table).")]
RecordOpt = Annotated[bool, typer.Option(
    "--record", help="Keep a flight record in the run folder: every frame, question and reply, "
                     "plan, robot command and a video; replay it with erarm replay.")]
CalibrationOpt = Annotated[Path | None, typer.Option(
    callback=input_file("calibration file"),
    help="Use this camera calibration file instead of the camera's own; it is checked against "
         "what the camera sees before anything moves.")]


def _actions_table(actions: list[ActionRecord]) -> Table:
    """Resolved actions (as in a result's `actions`): what each call became and why it passed."""
    table = Table("step", "call", "target x, y, z mm / yaw", "how", "checks passed",
                  box=None, pad_edge=False)
    for action in actions:
        target = action.target
        where = ("" if target is None else
                 f"{target.x_mm:.0f}, {target.y_mm:.0f}, {target.z_mm:.0f} / "
                 f"{target.yaw_deg:.0f}°")
        table.add_row(str(action.step) + ("+" if action.added else ""),
                      describe(action.call), where, action.why, ", ".join(action.checks))
    return table


class _OperatorPrompt:
    """Questions for the operator on stderr (stdout stays for the result): the plan before any
    motion, and whether to go on live when a rehearsed run parts from its rehearsal. Only "y" or
    "yes" is a yes, and end of input is a no."""

    def __init__(self, console: Console):
        self.console = console

    def __call__(self, validated) -> bool:
        self.console.print(_actions_table([ActionRecord.of(a) for a in validated.actions]))
        return self._ask(f"Move the arm through these {len(validated.actions)} steps?")

    def go_on_live(self, divergence: str) -> bool:
        self.console.print(f"The arm stopped and went home: the real run parted from its "
                           f"rehearsal: {divergence}", markup=False)
        return self._ask("Let the model go on live, each call checked?")

    def _ask(self, question: str) -> bool:
        console = self.console
        console.file.write(f"{question} [y/N]: ")
        console.file.flush()
        try:
            answer = sys.stdin.readline()
        except KeyboardInterrupt:
            console.file.write("\n")
            raise
        if not answer.endswith("\n") or not sys.stdin.isatty():
            console.file.write("\n")  # what follows starts on a line of its own
        if not answer:
            console.print("no answer (end of input): taken as no")
        return answer.strip().lower() in ("y", "yes")


def _without_asking(_validated) -> bool:
    """--no-confirm: the operator's yes given in advance."""
    return True


def _print_summary(result) -> None:  # result: erarm.agent.run.RunResult
    console = out_console()
    if result.dry_run and not result.error:
        console.print(_actions_table(result.actions))
        console.print(f"[green]✓ the plan is valid[/green]: {len(result.actions)} steps; dry "
                      "run, nothing moved")
    elif result.error:
        console.print("[red]✗ failed[/red] (the reason is on stderr)")
    elif result.success is not None:
        mark = "[green]✓ success[/green]" if result.success else "[red]✗ not done[/red]"
        console.print(f"{mark} (simulator ground truth): {result.ground_truth.reason}")
    verdict = "[green]verified[/green]" if result.verified else "[yellow]not verified[/yellow]"
    if result.verification:
        console.print(f"  perception: {verdict}: {escape(printable(result.verification))}")
    t = result.timings
    console.print(f"  brain {result.brain} · {result.steps_executed} steps executed · "
                  f"perception {t.perception_s:.2f} s · planning {t.planning_s:.2f} s · "
                  f"execution {t.execution_s:.2f} s ({t.simulated_s:.1f} s robot time) · "
                  f"total {t.total_s:.2f} s")
    rehearsal = result.rehearsal
    if result.orchestration is Orchestration.tools and (result.tool_calls or rehearsal is None):
        counts = Counter(call.outcome.value for call in result.tool_calls)
        console.print(f"  the model made {len(result.tool_calls)} function calls in "
                      f"{result.model_round_trips} round trips: "
                      + (", ".join(f"{n} {outcome}" for outcome, n in counts.items()) or "none"))
    if rehearsal is not None:
        console.print(f"  rehearsed in a simulated twin {rehearsal.attempts}x: "
                      f"{rehearsal.calls} calls, {rehearsal.refused} refused, "
                      f"{rehearsal.collisions} collisions caught; {rehearsal.steps} steps "
                      "validated as one plan"
                      + (f"; parted from it: {rehearsal.diverged}" if rehearsal.diverged else ""))
    if result.live is not None:
        session = result.live
        count, frames = len(session.commands), session.frames_sent
        rate = f" ({session.frames_per_s:.2f}/s)" if frames > 1 else ""
        console.print(f"  live session with {session.model}: {count} "
                      f"command{'' if count == 1 else 's'}, {frames} "
                      f"frame{'' if frames == 1 else 's'} streamed{rate}, ended: "
                      f"{session.reason}", markup=False)
        for text in session.said:
            console.print(f"  the model said: {printable(text)}", markup=False)
    console.print(f"  pictures and records: {result.out_dir}/")


def _open(hardware: dict, calibration, blur_faces: bool):
    """The workcell, connected, its camera wrapped as asked; closed again if opening fails."""
    cell = open_cell(**hardware, calibration=calibration, blur_faces=blur_faces)
    try:
        cell.robot.connect()
    except BaseException:
        with interrupts.deferred():
            cell.close()
        raise
    return cell


def in_workcell(go: Callable, *, task: str, brain: Brain, out: Path | None, name: str,
                 hardware: dict,
                 calibration: Path | None, blur_faces: bool, confirm: bool | None,
                 json_output: bool):
    """Claim the run folder (`out`, else a new one named after `name`) before anything opens,
    open the workcell (`hardware`: what `open_cell` takes), run `go(cell, folder, confirm)`,
    report, and exit with the result's code. Ctrl-C or SIGTERM at any moment from the claim on
    ends in a result: written to result.json, printed, exit 130."""
    from erarm.agent.api import default_out_dir
    from erarm.agent.recording.run_folder import RunFolder
    from erarm.agent.results import Interruption, Phase
    from erarm.agent.run import interrupted_while_opening, note_interruption
    from erarm.robots.base import load_calibration

    camera_calibration = load_calibration(calibration) if calibration is not None else None
    folder = RunFolder.claim(out) if out is not None else RunFolder.claim_new(
        default_out_dir(name))
    try:
        cell = _open(hardware, camera_calibration, blur_faces)
    except KeyboardInterrupt:
        result = interrupted_while_opening(task, brain, hardware.get("robot") or "", folder)
    except Exception:  # a workcell that cannot open (no display for --gui, no arm): no run
        folder.abandon()
        raise
    else:
        result = None
        try:
            asking = cell.robot.physical if confirm is None else confirm
            ask = _OperatorPrompt(err_console) if asking else _without_asking
            result = go(cell, folder, ask)
        finally:
            with interrupts.deferred():
                cell.close()
                late = interrupts.take()
        if late:
            note_interruption(result, Interruption.during(Phase.closing, result.steps_executed),
                              folder)
    with interrupts.deferred():
        if json_output:
            print_json(result.model_dump(mode="json"))
        else:
            _print_summary(result)
        if result.interrupted is not None:
            interrupts.announce(f"erarm: {result.error}")
        elif result.error:
            err_console.print(f"erarm: error: {printable(result.error)}", markup=False)
        if interrupts.take():
            note_interruption(result, Interruption.during(Phase.writing, result.steps_executed),
                              folder)
    raise typer.Exit(result.exit_code)


@app.command()
def run(
    task: Annotated[str, typer.Argument(help=(
        'What to do, e.g. "pick the blue block into the orange bowl". Offline, the local brain '
        f"understands: {UNDERSTOOD}. Anything else (\"put the ketchup in the basket\", \"move the "
        "mug to the left of the plate\"): --emulate, or --brain gemini with a key."))],
    brain: BrainOpt = BrainChoice.auto, robot: RobotOpt = None, robot_opt: RobotOptions = None,
    camera: CameraOpt = None, camera_opt: CameraOptions = None,
    seed: SeedOpt = 0, scene: SceneOpt = None, gui: GuiOpt = False,
    realtime: RealtimeOpt = False, calibration: CalibrationOpt = None,
    json_output: JsonOpt = False, out: OutOpt = None, dry_run: DryRunOpt = False,
    confirm: ConfirmOpt = None, strict_targets: StrictOpt = True,
    trajectory: Annotated[int, typer.Option(
        min=0, max=30, help="Carry the object along a path of this many points that the brain "
                            "draws (Gemini); 0 flies straight.")] = 0,
    model: ModelOpt = None, base_url: BaseUrlOpt = None, config: ConfigOpt = None,
    safety: SafetyOpt = None, thinking_budget: ThinkingOpt = None,
    consensus: ConsensusOpt = 1, zoom: ZoomOpt = False, blur_faces: BlurOpt = False,
    record: RecordOpt = False,
    open_loop: Annotated[bool, typer.Option(
        "--open-loop", help="Run the whole plan at once instead of one pick and place at a "
                            "time with a look after each.")] = False,
    orchestration: OrchestrationOpt = Orchestration.auto,
    rehearse: Annotated[bool, typer.Option(
        "--rehearse", help="With tools: let the model do the task in a simulated twin of the "
                           "perceived scene first, then move the arm through its calls as one "
                           "validated plan [always on physical robots].")] = False,
    resume_live: Annotated[bool, typer.Option(
        "--resume-live", help="When the arm or camera parts from the rehearsal, let the model "
                              "go on live, each call checked (default: ask the operator when "
                              "the plan is confirmed, else stop there).")] = False,
    emulate: EmulateOpt = False, emulate_opt: EmulateOptions = None,
    speak: SpeakOpt = False, speak_to: SpeakToOpt = None,
    rerun: RerunOpt = False, rerun_save: RerunSaveOpt = None,
) -> None:
    """Do a task with the arm: look, plan, validate, then move and check. With a whole plan,
    one pick and place at a time, looking again after each, retrying what failed; with tools,
    the model calls the robot's functions and erarm checks each call before it runs (on a
    physical arm, rehearsed in a simulated twin first)."""
    from erarm.agent.api import run_task
    from erarm.agent.orchestration import check_options
    from erarm.agent.recording.rerun_view import rerun_options
    from erarm.agent.session import RunOptions

    viewing = rerun_options(rerun, rerun_save)  # checked before anything opens
    if emulate:
        refuse_emulate_with(brain, base_url, robot, camera)
    with emulator(emulate, emulate_opt) as model_emulator, \
            narration(speak, speak_to, base_url) as narrate:
        session = model_emulator.session_url(f"run-{seed}") if model_emulator else None
        chosen = build_brain(brain, model=model, base_url=session or base_url, config=config,
                             safety=safety, thinking=thinking_budget, consensus=consensus,
                             zoom=zoom, trajectory=trajectory,
                             api_key=EMULATOR_KEY if session else None)
        check_task(task, chosen)  # before the workcell opens and a run folder is made
        check_options(RunOptions(trajectory_points=trajectory, closed_loop=not open_loop,
                                 orchestration=orchestration, rehearse=rehearse), chosen)

        def go(cell, folder, asking):
            return run_task(task, cell, brain=chosen, out=folder, dry_run=dry_run,
                            strict_targets=strict_targets, trajectory=trajectory,
                            closed_loop=not open_loop, record=record, log=say, confirm=asking,
                            orchestration=orchestration, rehearse=rehearse,
                            resume_live=resume_live, narrate=narrate,
                            rerun=viewing)

        simulator = dict(task=task, seed=seed, scene=scene, gui=gui, realtime=realtime)
        if session:
            simulator["emulator"] = session
        in_workcell(go, task=task, brain=chosen, out=out, name=task,
                     hardware=dict(robot=robot, robot_entries=robot_opt, camera=camera,
                                   camera_entries=camera_opt, config=config, **simulator),
                     calibration=calibration, blur_faces=blur_faces, confirm=confirm,
                     json_output=json_output)


@app.command()
def execute(
    plan_file: Annotated[Path, typer.Argument(
        help="Model text (reasoning then JSON), a JSON list of calls, or a run's plan.json.")],
    task: Annotated[str | None, typer.Option(
        help="The task the plan is for: stages the simulated scene and scores it [default: the "
             "one in a plan.json].")] = None,
    brain: Annotated[BrainChoice, typer.Option(
        help="Who looks at the scene for validation and verification.")] = BrainChoice.local,
    robot: RobotOpt = None, robot_opt: RobotOptions = None, camera: CameraOpt = None,
    camera_opt: CameraOptions = None, seed: SeedOpt = 0,
    scene: SceneOpt = None, gui: GuiOpt = False, realtime: RealtimeOpt = False,
    calibration: CalibrationOpt = None, json_output: JsonOpt = False, out: OutOpt = None,
    dry_run: DryRunOpt = False, confirm: ConfirmOpt = None, strict_targets: StrictOpt = True,
    model: ModelOpt = None, base_url: BaseUrlOpt = None, config: ConfigOpt = None,
    blur_faces: BlurOpt = False, record: RecordOpt = False,
    speak: SpeakOpt = False, speak_to: SpeakToOpt = None,
    rerun: RerunOpt = False, rerun_save: RerunSaveOpt = None,
) -> None:
    """Run a plan file on the arm, after the same validation a model's plan gets."""
    from erarm.agent.api import execute_plan, load_plan
    from erarm.agent.recording.rerun_view import rerun_options

    viewing = rerun_options(rerun, rerun_save)  # checked before anything opens
    plan = load_plan(plan_file, task)  # a file that is no plan fails here, before any robot
    goal = plan.task
    looker: Brain = build_brain(brain, model=model, base_url=base_url, config=config)

    def go(cell, folder, asking):
        return execute_plan(plan.text, cell, task=goal, brain=looker, out=folder,
                            dry_run=dry_run, strict_targets=strict_targets, record=record,
                            log=say, confirm=asking, narrate=narrate,
                            rerun=viewing)

    with narration(speak, speak_to, base_url) as narrate:
        in_workcell(go, task=goal, brain=looker, out=out, name=plan.name,
                    hardware=dict(robot=robot, robot_entries=robot_opt, camera=camera,
                                  camera_entries=camera_opt, config=config, task=goal,
                                  seed=seed, scene=scene, gui=gui, realtime=realtime),
                    calibration=calibration, blur_faces=blur_faces, confirm=confirm,
                    json_output=json_output)
