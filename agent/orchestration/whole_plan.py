"""The whole-plan orchestrator, in Robotics-ER 1.5's dialect: one request, a whole plan back,
every step validated before any motion.

In the closed loop it executes only the plan's first pick and place, watches the gripper while
it does, and looks again: did the gripper hold the object, did it land where it should, did
nothing come back up with the open gripper (which ends the run)? Then it
plans again from the new view, so a missed grasp is retried and a changed scene replanned,
until the brain says the task is done or an object has failed too often. In the open loop the
whole plan runs at once.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Sequence

from erarm.agent.errors import GaveUp, PlanRejected
from erarm.agent.execute import holding_watch
from erarm.agent.goals import check_task
from erarm.agent.plan import carry_along, make_plan
from erarm.agent.results import Attempt, Outcome, Stop
from erarm.agent.schemas import Call, Move, Plan, ReturnToOrigin, SceneObject, SetGripperState
from erarm.agent.session import Session, Sighting
from erarm.agent.validate import Action, ValidatedPlan
from erarm.agent.verify import (
    GRASP_MATCH_MM,
    Goal,
    Verification,
    carried_up,
    check_goals,
    disturbed,
    goals_of,
)


def transfer_ends(calls: Sequence[Call | None]) -> list[int]:
    """Where each pick and place of the calls ends (an index one past it): after the release,
    the moves up that follow it and a return home right after."""
    ends, closed = [], False
    for index, call in enumerate(calls):
        if isinstance(call, SetGripperState) and not call.opened:
            closed = True
        elif isinstance(call, SetGripperState) and closed:
            closed = False
            end = index + 1
            while end < len(calls) and isinstance(calls[end], Move) and calls[end].high:
                end += 1  # the lift after letting go
            if end < len(calls) and isinstance(calls[end], ReturnToOrigin):
                end += 1
            ends.append(end)
    return ends


def first_transfer(validated: ValidatedPlan) -> list[Action]:
    """The actions up to the end of the first pick and place. A plan with no pick and place is
    returned whole."""
    ends = transfer_ends([a.call for a in validated.actions])
    return validated.actions[:ends[0]] if ends else validated.actions


def without_repeats(plan: Plan, achieved: dict[str, Goal], objects: list[SceneObject]
                    ) -> tuple[Plan, list[str]] | None:
    """The plan without its picks and places of objects already where this run put them (a model
    may plan a finished move again), and those objects; None when it repeats nothing."""
    calls = list(plan.calls)
    seen = {o.label: o for o in objects}
    done = [seen[label] for label, goal in achieved.items()
            if label in seen and check_goals([goal], objects).verified]
    repeated, keep, start = [], [], 0
    for end in transfer_ends(calls):
        span = calls[start:end]
        grasp = next((c for c, after in itertools.pairwise(span)
                      if isinstance(c, Move) and not c.high
                      and isinstance(after, SetGripperState) and not after.opened), None)
        again = grasp and next((o.label for o in done if math.hypot(
            o.position_mm[0] - grasp.x, o.position_mm[1] - grasp.y) <= GRASP_MATCH_MM), None)
        if again:
            repeated.append(again)
        else:
            keep += span
        start = end
    if not repeated:
        return None
    return Plan(reasoning=plan.reasoning, calls=keep + calls[start:], notes=plan.notes), repeated


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
    """Plan, validate the whole plan, execute (a pick and place at a time), look, repeat.

    Each round asks the model twice in sequence: the plan, then the look after it (points and
    boxes together). When a round finishes what the plan asked for, the brain's judgement of the
    task travels with that look, and if it and erarm's own check agree the task is done, the run
    ends there, without asking for another plan."""

    def run(self, session: Session) -> None:
        options, result, task = session.options, session.result, session.task
        brain, log = session.brain, session.log  # as started: recording, when asked to
        limits = session.cell.robot.limits
        seen = start = session.look()
        achieved: dict[str, Goal] = {}  # per object moved: where it landed as planned
        failures: Counter[str] = Counter()
        refusals = 0
        for round_ in range(1, options.max_rounds + 1):
            clock = time.perf_counter()
            trips = result.model_round_trips
            log(f"planning with the {brain.name} brain" + (f", round {round_}" if round_ > 1
                                                            else ""))

            def ask_plan(seen=seen):
                return make_plan(brain, task, seen.objects, seen.frame, limits)[0]

            plan = session.reasked(ask_plan, 1, "plan")
            if plan.calls and options.trajectory_points and round_ == 1:
                plan = carry_along(plan, session.carry_path(seen.frame,
                                                            options.trajectory_points))
            repeats = without_repeats(plan, achieved, seen.objects)
            if repeats is not None:
                plan, repeated = repeats
                log(f"warning: the plan moves the {', the '.join(repeated)} again, already where "
                    "this run put it; not picking it again")
            try:
                validated = session.validate(plan, seen, clock, round_) if plan.calls else None
            except PlanRejected as rejected:
                if not options.closed_loop or options.dry_run or refusals >= options.reasks:
                    raise
                refusals += 1  # a look that missed what the plan uses: look and plan again
                log(f"warning: the plan was refused ({rejected}); looking again")
                session.narrate("I refused the plan and will look again.")
                result.attempts.append(Attempt(round=round_, outcome=Outcome.refused,
                                               detail=str(rejected),
                                               round_trips=result.model_round_trips - trips))
                seen = session.look()
                continue
            if validated is None or (not validated.transfers and repeats is not None):
                detail = (plan.reasoning if repeats is None else
                          "the plan only repeats moves already done")
                log("the brain says the task is done" if repeats is None else
                    "nothing new in the plan: the task is done")
                result.attempts.append(Attempt(round=round_, outcome=Outcome.done, detail=detail,
                                               round_trips=result.model_round_trips - trips))
                break
            if options.dry_run:
                log("dry run: nothing moved")
                return
            batch = first_transfer(validated) if options.closed_loop else validated.actions
            goal = goals_of(validated.transfers[:1], seen.objects) if validated.transfers else []
            before = result.steps_executed
            if goal:
                session.narrate(f"I'm putting the {goal[0].item} on the {goal[0].container}.")
            watch = holding_watch(session.robot) if options.closed_loop else None
            stop = session.act(batch, validated, watch, round_=round_,
                               recover_blocked=options.closed_loop)
            finished_plan = stop is None and len(batch) == len(validated.actions)
            planned_from, seen = seen, session.look(judge_from=start.frame if finished_plan
                                                    else None)
            attempt = Attempt(round=round_, steps=result.steps_executed - before,
                              item=goal[0].item if goal else None,
                              target=goal[0].container if goal else None,
                              outcome=Outcome.placed,
                              round_trips=result.model_round_trips - trips)
            stop = carried_up(seen.frame, session.robot.state(), seen.objects) or stop
            judge_attempt(attempt, stop, check_goals(goal, seen.objects) if goal else None)
            knocked = disturbed(planned_from.objects, seen.objects, {g.item for g in goal})
            if knocked is not None:  # the run's last check fails on it, unless moved on purpose
                log(f"warning: {knocked}")
            result.attempts.append(attempt)
            log(f"round {round_}: {attempt.outcome}" + (f" ({attempt.detail})"
                                                        if attempt.detail else ""))
            if attempt.outcome is Outcome.carried:  # moving on would carry it about
                raise GaveUp(f"stopped: {attempt.detail}; free the gripper, then run again")
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
            if attempt.outcome is Outcome.placed and _agreed_done(session, start, seen,
                                                                  achieved):
                log("the brain judges the task done, and every object moved is where it was put")
                break
        else:
            raise GaveUp(f"gave up after {options.max_rounds} rounds without finishing")
        if achieved:
            pointing = check_goals(list(achieved.values()), seen.objects, start.objects)
        else:
            pointing = Verification(verified=bool(result.attempts)
                                    and result.attempts[-1].outcome is Outcome.done,
                                    reason="the brain found nothing left to do", goals=[])
        session.judge(start.frame, seen, pointing)


def _agreed_done(session: Session, start: Sighting, seen: Sighting,
                 achieved: dict[str, Goal]) -> bool:
    """The brain's judgement that came with the look says done, and erarm's own checks agree:
    what moved is where it was put, and no goal of the task is seen unmet."""
    if seen.verdict is None or seen.verdict.error is not None or not achieved:
        return False
    return (seen.verdict.value.done
            and check_goals(list(achieved.values()), seen.objects, start.objects).verified
            and check_task(session.task_goals, seen.objects).holds is not False)
