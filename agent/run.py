"""A task (or a plan file), end to end: perceive -> locate -> plan -> validate -> execute -> verify.

`run_task` and `execute_plan` open a session on a claimed run folder and hand it to an
orchestrator (`erarm.agent.orchestration`); whatever happens, the result is written and
returned, with its exit code, instead of raised.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from erarm.agent.brains.base import Brain
from erarm.agent.config import Orchestration
from erarm.agent.errors import Crashed, Interrupted
from erarm.agent.execute import stop_arm
from erarm.agent.live_input import CommandSource
from erarm.agent.orchestration import Orchestrator, rehearsing, resolved
from erarm.agent.orchestration.given_plan import GivenPlan
from erarm.agent.orchestration.live import Connect, Live, LiveOptions, RehearsedLive
from erarm.agent.orchestration.rehearsal import Rehearsed
from erarm.agent.orchestration.tool_loop import ToolLoop
from erarm.agent.orchestration.whole_plan import WholePlan
from erarm.agent.recording.run_folder import RunFolder
from erarm.agent.results import Interruption, Phase, RunResult
from erarm.agent.session import Confirm, Log, RunOptions, Session, note_interruption
from erarm.robots.base import Workcell
from erarm.robots.errors import ErarmError

__all__ = ["RunOptions", "RunResult", "execute_plan", "interrupted_while_opening",
           "note_interruption", "run_live", "run_task"]


def interrupted_while_opening(task: str, brain: Brain, robot: str, folder: RunFolder
                              ) -> RunResult:
    """The record of a run interrupted before its workcell was open: nothing moved."""
    result = RunResult(task=task, brain=brain.name, robot=robot, out_dir=str(folder.path),
                       interrupted=Phase.opening, exit_code=Interrupted.exit_code,
                       error=Interruption.during(Phase.opening, 0).message)
    folder.write_result(result)
    return result


def orchestrator_for(options: RunOptions, brain: Brain, physical: bool) -> Orchestrator:
    """The orchestrator asked for, `auto` resolved for the brain, rehearsed in a twin first
    when asked and on a physical arm."""
    if rehearsing(options, brain, physical):
        return Rehearsed()
    if resolved(options.orchestration, brain) is Orchestration.tools:
        return ToolLoop()
    return WholePlan()


def _conduct(session: Session, orchestrator: Orchestrator) -> RunResult:
    """Start the session and let the orchestrator run it; any `ErarmError`, and an interrupt
    wherever it lands, ends up in the result with its exit code, never as an exception."""
    try:
        session.start()
        orchestrator.run(session)
    except ErarmError as err:
        return session.finish(err)
    except KeyboardInterrupt:
        return session.finish(Interrupted(session.interruption().message, []))
    except Exception as err:  # a bug or a caller's callback: stop, record, and let it go on
        with contextlib.suppress(Exception):
            stop_arm(session.robot)
        with contextlib.suppress(Exception):
            session.finish(Crashed(f"{type(err).__name__}: {err}"))
        raise
    return session.finish(None)


def _folder(out_dir: Path | RunFolder) -> RunFolder:
    return out_dir if isinstance(out_dir, RunFolder) else RunFolder.claim(out_dir)


def run_task(task: str, brain: Brain, cell: Workcell, out_dir: Path | RunFolder,
             log: Log = lambda _: None, options: RunOptions | None = None,
             confirm: Confirm | None = None, record: bool = False,
             narrate: Log | None = None) -> RunResult:
    """Do the task with this brain in this cell. Never raises an `ErarmError` once the run folder
    is claimed (a `ConfigError` when it belongs to another run): it is recorded in the result,
    with its exit code, instead. `record` keeps a flight record in the run folder."""
    options = options or RunOptions()
    session = Session(task, brain, cell, _folder(out_dir), log, options, confirm, record,
                      narrate)
    return _conduct(session, orchestrator_for(options, brain, cell.robot.physical))


def run_live(brain: Brain, cell: Workcell, out_dir: Path | RunFolder, connect: Connect,
             commands: CommandSource, log: Log = lambda _: None,
             options: RunOptions | None = None, live: LiveOptions | None = None,
             confirm: Confirm | None = None, record: bool = False,
             task: str = "live session", narrate: Log | None = None) -> RunResult:
    """A live session in this cell: `brain` perceives (each look), the model on the channel
    `connect` opens orchestrates, `commands` say what to do. Never raises an `ErarmError` once
    the run folder is claimed; the result says how the session ended (`result.live`)."""
    session = Session(task, brain, cell, _folder(out_dir), log, options or RunOptions(), confirm,
                      record, narrate)
    orchestrator = (RehearsedLive if cell.robot.physical else Live)(connect, commands, live)
    return _conduct(session, orchestrator)


def execute_plan(plan_text: str, task: str, brain: Brain, cell: Workcell,
                 out_dir: Path | RunFolder, log: Log = lambda _: None,
                 options: RunOptions | None = None, confirm: Confirm | None = None,
                 record: bool = False, narrate: Log | None = None) -> RunResult:
    """Run a plan from a file (model text or JSON) as written, if it passes every check: the
    brain only looks, for validation and verification."""
    session = Session(task, brain, cell, _folder(out_dir), log, options or RunOptions(),
                      confirm, record, narrate)
    return _conduct(session, GivenPlan(plan_text))
