"""Rehearsal: a model that decides step by step does the task first in a simulated twin of the
perceived scene, and the real arm then moves through the twin's calls as one plan, validated as
a whole against the real look before anything moves.

The twin is built from what the robot perceived, nothing else: each located object where it was
seen, of its measured footprint and height, in the colour it was seen in, with a camera where
the real one is (`erarm.robots.twin`); the simulator opens it through the robot registry, like any
driver. A rehearsal whose motions met something (a collision caught before the real arm moved) or
that did not finish the task is tried again from a fresh twin, at most `max_rehearsals` times.

On the real arm, each gripper step must hold what it held in the twin, and where the model looked
in the twin the real camera looks too and must see what was moved where the twin put it. When
they part, the arm stops and backs off; the model goes on live (each call checked, as in the tool
loop) only with the operator's permission: `resume_live` given in advance, or a yes when the
operator confirming the run is asked there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from erarm.agent.config import Orchestration
from erarm.agent.errors import GaveUp, Interrupted
from erarm.agent.execute import Watch, holding_watch
from erarm.agent.geometry import normalized_to_pixel
from erarm.agent.orchestration import Orchestrator, check_options
from erarm.agent.orchestration.tool_loop import ToolLoop, not_done_reason
from erarm.agent.parse import RawCall, parse_call
from erarm.agent.recording.run_folder import RunFolder
from erarm.agent.results import (
    CallOutcome,
    Outcome,
    Phase,
    RehearsalRecord,
    RunResult,
    Stop,
    ToolCallRecord,
)
from erarm.agent.schemas import SIGNATURES, Call, Move, Plan, ReturnToOrigin, SceneObject
from erarm.agent.session import AsksToGoOnLive, Session, Sighting
from erarm.agent.surface import SurfaceMap
from erarm.agent.validate import Action, ValidatedPlan
from erarm.agent.verify import Goal, Verification, carried_up, check_goals, goals_of
from erarm.robots.base import Frame, WorkspaceLimits
from erarm.robots.errors import ErarmError
from erarm.robots.registry import open_workcell
from erarm.robots.twin import TwinObject, TwinScene

TWIN_DRIVER = "sim"
UNKNOWN_ACROSS_MM = 40.0  # an object whose width was not measured stands in this wide
PARTED_MM = 80.0  # an object seen this far from where it was let go is elsewhere, not noise
POINT_WINDOW = 15  # normalized units about an object's point, when it has no box
VIVID_PERCENTILE = 75  # an object's colour: its pixels this saturated or more


def _colour_of(frame: Frame, obj: SceneObject) -> tuple[int, int, int]:
    """The colour an object was seen in: within its box (or around its point), the median of
    its most saturated pixels, so the table around it and its shadow do not grey it."""
    height, width = frame.rgb.shape[:2]
    if obj.box_2d is not None:
        ymin, xmin, ymax, xmax = obj.box_2d
    else:
        y, x = obj.point
        ymin, xmin, ymax, xmax = y - POINT_WINDOW, x - POINT_WINDOW, y + POINT_WINDOW, \
            x + POINT_WINDOW
    u0, v0 = normalized_to_pixel(ymin, xmin, width, height)
    u1, v1 = normalized_to_pixel(ymax, xmax, width, height)
    cols = slice(max(round(u0), 0), min(max(round(u1), round(u0) + 1), width))
    rows = slice(max(round(v0), 0), min(max(round(v1), round(v0) + 1), height))
    pixels = frame.rgb[rows, cols].reshape(-1, 3).astype(float)
    if len(pixels) == 0:
        return (128, 128, 128)
    saturation = (pixels.max(axis=1) - pixels.min(axis=1)) / np.maximum(pixels.max(axis=1), 1)
    vivid = pixels[saturation >= np.percentile(saturation, VIVID_PERCENTILE)]
    return tuple(int(c) for c in np.median(vivid, axis=0))


def twin_of(seen: Sighting, limits: WorkspaceLimits) -> TwinScene:
    """The perceived scene as a twin: every located object, its height the highest the depth
    camera sees within its footprint, and the camera's calibration."""
    frame = seen.frame
    surface = SurfaceMap(frame, limits)
    objects = []
    for o in seen.objects:
        across = 2 * o.radius_mm if o.radius_mm > 0 else UNKNOWN_ACROSS_MM
        x, y, top = (v / 1000 for v in o.position_mm)
        top = max(top, surface.top_z(x, y, across / 2000))
        objects.append(TwinObject(label=o.label, x_mm=o.position_mm[0], y_mm=o.position_mm[1],
                                  top_mm=max(0.0, (top - limits.table_z) * 1000),
                                  across_mm=across, rgb=_colour_of(frame, o)))
    return TwinScene(calibration=frame.calibration, objects=objects)


@dataclass
class Script:
    """The twin's calls as a plan: each motion that ran there, a return home before each look,
    what the gripper held after each gripper step, and the steps after which the model looked."""

    calls: list[Call] = field(default_factory=list)
    holding: dict[int, bool] = field(default_factory=dict)  # step -> held after it, in the twin
    looks: list[int] = field(default_factory=list)  # steps after which the model looked

    @classmethod
    def of(cls, records: list[ToolCallRecord]) -> Script:
        script = cls()
        for record in records:
            if record.outcome is CallOutcome.ran and record.name in SIGNATURES:
                call = parse_call(len(script.calls) + 1, RawCall(function=record.name,
                                                                 args=record.args))
                script.calls.append(call)
                held = record.response.get("result", {}).get("holding")
                if record.name == "setGripperState" and held is not None:
                    script.holding[len(script.calls)] = bool(held)
            elif record.outcome is CallOutcome.observed and record.name == "look" \
                    and script.calls:
                if not isinstance(script.calls[-1], ReturnToOrigin):  # the twin went home,
                    low = next((c for c in reversed(script.calls) if isinstance(c, Move)), None)
                    if low is not None and not low.high:  # straight up first
                        script.calls.append(Move(x=low.x, y=low.y, high=True))
                    script.calls.append(ReturnToOrigin())
                if script.looks[-1:] != [len(script.calls)]:
                    script.looks.append(len(script.calls))
        return script


def _twin_watch(script: Script, robot) -> Watch:
    """Stop the real arm at the first gripper step that holds otherwise than in the twin (and,
    between grasp and release, when what it carries slips out)."""
    carrying = holding_watch(robot)

    def watch(action: Action, step) -> Stop | None:
        expected = None if action.added else script.holding.get(action.step)
        if expected is not None and step.holding is not None and bool(step.holding) != expected:
            return Stop(outcome=Outcome.diverged, detail=(
                f"step {action.step} {action.label}: the gripper holds "
                f"{'something' if step.holding else 'nothing'}; in the twin it held "
                f"{'nothing' if step.holding else 'something'}"))
        return carrying(action, step)

    return watch


class Rehearsed:
    """Rehearse a step-by-step model in a twin (the tool loop, or what `inner` makes: a live
    session's command), validate its calls as one plan against the real look, confirm, replay,
    and check the real arm and camera against the twin as it goes. `live` makes the orchestrator
    that goes on live after a divergence, when the operator allows it."""

    def __init__(self, inner: Callable[[], Orchestrator] | None = None,
                 live: Callable[[], Orchestrator] | None = None):
        self.inner, self.live = inner or ToolLoop, live or ToolLoop
        self.twins: list[RunResult] = []  # each rehearsal's result

    def run(self, session: Session) -> None:
        options, result = session.options, session.result
        if self.inner is ToolLoop:  # the brain itself calls the functions
            check_options(options.model_copy(update={"orchestration": Orchestration.tools}),
                          session.brain)
        result.orchestration = Orchestration.tools
        record = result.rehearsal = result.rehearsal or RehearsalRecord()  # a live session's
        # commands are rehearsed one by one, into one record
        start = seen = session.look()
        goals: dict[str, Goal] = {}  # per object moved: where it was last let go
        for round_ in range(1, options.reasks + 2):
            twin, seen = self._rehearse(session, seen, record)
            script = Script.of(twin.tool_calls)
            if not script.calls:
                session.log("the model found nothing to do in the twin")
                after = seen
                pointing = check_goals(list(goals.values()), seen.objects, start.objects) \
                    if goals else \
                    Verification(verified=True, reason="the model found nothing to do", goals=[])
                break
            validated = session.validate(Plan(calls=script.calls, reasoning=twin.reasoning),
                                         seen, time.perf_counter(), round_,
                                         looks_after=script.looks)
            record.steps += len(validated.actions)
            session.log(f"the rehearsed calls are valid here as one plan: "
                        f"{len(validated.actions)} steps")
            if options.dry_run:
                session.log("dry run: rehearsed and validated, nothing moved")
                return
            session.confirm_plan(validated)
            diverged = self._replay(session, validated, script, seen)
            if diverged is not None:
                self._diverged(session, record, diverged)
                return
            goals.update({g.item: g for g in goals_of(validated.transfers, seen.objects)})
            after = session.look(judge_from=start.frame)
            pointing = check_goals(list(goals.values()), after.objects, start.objects)
            not_done = not_done_reason(pointing, after)
            if not_done is None or round_ > options.reasks:
                break
            session.log(f"erarm's check: {not_done}; rehearsing again from this look")
            seen = after
        session.judge(start.frame, after, pointing)

    def _diverged(self, session: Session, record: RehearsalRecord, diverged: str) -> None:
        """The arm has stopped and backed off: stop there, or go on live when allowed (by
        `resume_live`, or by the operator when asked)."""
        record.diverged = diverged
        operator = session.confirm
        if not session.options.resume_live and not (
                isinstance(operator, AsksToGoOnLive) and operator.go_on_live(diverged)):
            raise GaveUp(f"the real run parted from its rehearsal: {diverged}; the arm "
                         "stopped and went home (--resume-live lets the model go on live)")
        session.log(f"the real run parted from its rehearsal: {diverged}; going on live")
        record.resumed_live = True
        self.live().run(session)

    # -- in the twin ------------------------------------------------------------------------
    def _rehearse(self, session: Session, seen: Sighting, record: RehearsalRecord
                  ) -> tuple[RunResult, Sighting]:
        """Rehearsals until one finishes the task without meeting anything, each after the
        first from a fresh look (the last may have missed what the task needs): the rehearsal,
        and the look its twin was made from; `GaveUp` (nothing moved) when none does."""
        limit = session.options.max_rehearsals
        for attempt in range(1, limit + 1):
            if attempt > 1:
                seen = session.look()
            twin = self._once(session, seen)
            record.attempts += 1
            record.calls += len(twin.tool_calls)
            record.refused += sum(c.outcome is CallOutcome.refused for c in twin.tool_calls)
            collisions = sum(a.outcome is Outcome.blocked for a in twin.attempts)
            record.collisions += collisions
            stopped = [a.detail for a in twin.attempts
                       if a.outcome in (Outcome.blocked, Outcome.missed_grasp, Outcome.dropped,
                                        Outcome.jammed)]
            record.verified = twin.error is None and twin.verified and not stopped
            record.reason = (twin.error or (f"in the twin: {stopped[0]}" if stopped else "")
                             or twin.verification)
            if record.verified:
                session.log(f"rehearsal {attempt}: the task is done in the twin "
                            f"({len(twin.tool_calls)} calls)")
                return twin, seen
            session.log(f"warning: rehearsal {attempt} failed: {record.reason}")
        raise GaveUp(f"no rehearsal in the twin finished the task ({limit} tried; the last: "
                     f"{record.reason}); nothing moved")

    def _once(self, session: Session, start: Sighting) -> RunResult:
        """One rehearsal: the tool loop on a fresh twin, in its own run folder."""
        clock = time.perf_counter()
        session.phase = Phase.rehearsing
        name = f"rehearsal-{len(session.result.rehearsal.folders) + 1}"
        folder = RunFolder.claim(session.folder.path / name)
        session.result.rehearsal.folders.append(name)
        options = session.options.model_copy(update={
            "dry_run": False, "rehearse": False, "orchestration": Orchestration.tools,
            "rerun": None})  # the rerun view follows the real arm
        cell = open_workcell(TWIN_DRIVER, task=session.task,
                             twin=twin_of(start, session.robot.limits),
                             **session.cell.twin_options)
        log = session.log

        def in_twin(message: str) -> None:
            log(f"{name}: {message}")

        twin = Session(session.task, session.brain, cell, folder, in_twin, options,
                       confirm=None)
        try:
            with cell:
                twin.start()
                try:
                    self.inner().run(twin)
                except ErarmError as err:
                    return twin.finish(err)
                except KeyboardInterrupt:
                    twin.finish(Interrupted(twin.interruption().message, []))
                    raise
                return twin.finish(None)
        finally:
            self.twins.append(twin.result)
            result = session.result
            result.model_calls += twin.result.model_calls
            result.model_round_trips += twin.result.model_round_trips
            result.timings.rehearsal_s += time.perf_counter() - clock

    # -- on the real arm --------------------------------------------------------------------
    def _replay(self, session: Session, validated: ValidatedPlan, script: Script,
                start: Sighting) -> str | None:
        """The validated plan on the real arm, stopping where the twin looked to look too;
        why it parted from the twin, or None."""
        watch = _twin_watch(script, session.robot)
        actions = validated.actions
        done = 0
        for end in [*script.looks, len(actions)]:
            segment = actions[done:end]
            done = max(done, end)
            if not segment:
                continue
            stop = session.act(segment, validated, watch, recover_blocked=True,
                               clear_view=False, context="rehearsed plan", confirmed=True)
            if stop is not None:
                return stop.detail
            if end < len(actions):
                diverged = self._compare(session, validated, end, start)
                if diverged is not None:
                    return diverged
        return None

    @staticmethod
    def _compare(session: Session, validated: ValidatedPlan, step: int, start: Sighting
                 ) -> str | None:
        """Where the model looked in the twin: the real camera must see nothing hanging from
        the open gripper, and no object let go so far clearly elsewhere (the fine check, which
        a look's noise can fail, is the one at the end)."""
        seen = session.look()
        carried = carried_up(seen.frame, session.robot.state(), seen.objects)
        if carried is not None:
            return f"after step {step}: {carried.detail}"
        released = [t for t in validated.transfers if t.released_at <= step]
        where = {o.label: o.position_mm for o in seen.objects}
        for goal in goals_of(released, start.objects):
            if goal.item not in where:  # hidden, or missed this time: no sign either way
                continue
            x, y, _ = where[goal.item]
            off = math.hypot(x - goal.spot_mm[0], y - goal.spot_mm[1])
            if off > PARTED_MM:
                return (f"after step {step}: the {goal.item} is seen {off:.0f} mm from where "
                        f"it was let go over the {goal.container}")
        return None
