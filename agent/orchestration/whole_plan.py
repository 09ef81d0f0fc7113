"""The whole-plan orchestrator, in Robotics-ER 1.5's dialect: one request, a whole plan back,
every step validated before any motion.

In the closed loop it executes only the plan's first pick and place, watches the gripper while
it does, and looks again: did the gripper hold the object, did it land where it should? Then it
plans again from the new view, so a missed grasp is retried and a changed scene replanned,
until the brain says the task is done or an object has failed too often. In the open loop the
whole plan runs at once.
"""

from __future__ import annotations

import time
from collections import Counter

from erarm.agent.errors import GaveUp
from erarm.agent.execute import StepReport, Watch
from erarm.agent.plan import carry_along, make_plan
from erarm.agent.results import Attempt, Outcome, Stop
from erarm.agent.session import Session
from erarm.agent.validate import Action, ValidatedPlan
from erarm.agent.verify import Goal, Verification, check_goals, goals_of
from erarm.robots.base import Robot


def first_transfer(validated: ValidatedPlan) -> list[Action]:
    """The actions up to the end of the first pick and place: through the first release, the
    moves up that follow it and a return home right after. A plan with no pick and place is
    returned whole."""
    actions = validated.actions
    closed = False
    for index, action in enumerate(actions):
        if action.opened is False:
            closed = True
        elif action.opened is True and closed:
            end = index + 1
            while end < len(actions) and actions[end].lifts:
                end += 1  # the lift after letting go
            if end < len(actions) and actions[end].goes_home:
                end += 1
            return actions[:end]
    return actions


def holding_watch(robot: Robot) -> Watch:
    """Between closing on an object and letting go, the gripper must keep holding it."""
    holding = False

    def watch(action: Action, step: StepReport) -> Stop | None:
        nonlocal holding
        if action.opened is False:
            holding = bool(step.holding)
            return None if holding else Stop(
                outcome=Outcome.missed_grasp,
                detail="missed grasp: the gripper closed on nothing")
        if action.opened is True:
            holding = False
            if step.holding:
                return Stop(outcome=Outcome.jammed,
                            detail="jammed: an object stayed wedged between the open fingers")
        elif holding and not robot.state().holding:
            holding = False
            return Stop(outcome=Outcome.dropped,
                        detail="dropped: the object slipped out of the gripper")
        return None

    return watch


def judge_attempt(attempt: Attempt, stop: Stop | None, landed: Verification | None) -> None:
    """A round's outcome, from what the watch saw while moving and the look afterwards.
    Fingers that could not open fully may only have met a neighbour: then the look decides."""
    blocked = stop is not None and stop.outcome is Outcome.jammed
    if stop is not None and not (blocked and landed is not None and landed.verified):
        attempt.outcome, attempt.detail = stop.outcome, stop.detail
    elif landed is not None:
        attempt.detail = landed.reason + ("; the fingers met something as they opened"
                                          if blocked else "")
        if not landed.verified:
            attempt.outcome = Outcome.landed_elsewhere


class WholePlan:
    """Plan, validate the whole plan, execute (a pick and place at a time), look, repeat."""

    def run(self, session: Session) -> None:
        options, result, task = session.options, session.result, session.task
        brain, log = session.brain, session.log  # as started: recording, when asked to
        limits = session.cell.robot.limits
        seen = start = session.look()
        achieved: dict[str, Goal] = {}  # per object moved: where it landed as planned
        failures: Counter[str] = Counter()
        for round_ in range(1, options.max_rounds + 1):
            clock = time.perf_counter()
            log(f"planning with the {brain.name} brain" + (f", round {round_}" if round_ > 1
                                                            else ""))
            plan, _ = make_plan(brain, task, seen.objects, seen.frame, limits)
            if not plan.calls:
                log("the brain says the task is done")
                result.attempts.append(Attempt(round=round_, outcome=Outcome.done,
                                               detail=plan.reasoning))
                break
            if options.trajectory_points and round_ == 1:
                plan = carry_along(plan, session.carry_path(seen.frame,
                                                            options.trajectory_points))
            validated = session.validate(plan, seen, clock, round_)
            if options.dry_run:
                log("dry run: nothing moved")
                return
            batch = first_transfer(validated) if options.closed_loop else validated.actions
            goal = goals_of(validated.transfers[:1], seen.objects) if validated.transfers else []
            before = result.steps_executed
            watch = holding_watch(session.robot) if options.closed_loop else None
            stop = session.act(batch, validated, watch, round_=round_)
            seen = session.look()
            attempt = Attempt(round=round_, steps=result.steps_executed - before,
                              item=goal[0].item if goal else None,
                              target=goal[0].container if goal else None,
                              outcome=Outcome.placed)
            judge_attempt(attempt, stop, check_goals(goal, seen.objects) if goal else None)
            result.attempts.append(attempt)
            log(f"round {round_}: {attempt.outcome}" + (f" ({attempt.detail})"
                                                        if attempt.detail else ""))
            if attempt.outcome is Outcome.placed:
                if goal:
                    achieved[goal[0].item] = goal[0]
            else:
                failures[attempt.item or "the plan"] += 1
                if failures[attempt.item or "the plan"] >= options.attempts_per_object:
                    raise GaveUp(f"gave up after {options.attempts_per_object} attempts on the "
                                 f"{attempt.item or 'plan'}: {attempt.detail}")
            if not options.closed_loop or not validated.transfers:
                break
        else:
            raise GaveUp(f"gave up after {options.max_rounds} rounds without finishing")
        pointing = (check_goals(list(achieved.values()), seen.objects) if achieved else
                    Verification(
                        verified=bool(result.attempts)
                        and result.attempts[-1].outcome is Outcome.done,
                        reason="the brain found nothing left to do", goals=[]))
        session.judge(start.frame, seen, pointing)
